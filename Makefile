# See https://tech.davis-hansson.com/p/make/
SHELL := bash
.DELETE_ON_ERROR:
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --warn-undefined-variables
MAKEFLAGS += --no-builtin-rules
MAKEFLAGS += --no-print-directory

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The venv is synced again whenever the project or its lock changes.
STAMP := $(VENV)/.installed
BUF := $(BIN)/buf
UV := $(BIN)/uv
# The uv that installs the toolchain: the version the dev group pins.
UV_VERSION := $(shell sed -n 's/^ *"uv==\([0-9.]*\)".*/\1/p' pyproject.toml)
# Put the venv first so buf finds the plugins installed in it.
export PATH := $(abspath $(BIN)):$(PATH)
# uv uses this venv and the interpreter that made it; it never downloads one.
export UV_PROJECT_ENVIRONMENT := $(abspath $(VENV))
export UV_PYTHON_DOWNLOADS := never

.PHONY: help
help: ## Describe useful make targets
	@grep -E '^[a-zA-Z_-]+:.*?## .*$$' $(MAKEFILE_LIST) | sort | awk 'BEGIN {FS = ":.*?## "}; {printf "%-15s %s\n", $$1, $$2}'

# Python, make and git are all a machine needs: pip (in the new venv) installs
# uv, and uv installs the locked toolchain, every extra and this package
# (editable) exactly as uv.lock says; --locked fails if the lock is stale.
$(UV):
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check 'uv==$(UV_VERSION)'

$(STAMP): pyproject.toml uv.lock | $(UV)
	$(UV) sync --locked --all-extras --quiet
	touch $@

.PHONY: install
install: $(STAMP) ## Create .venv and install the locked toolchain, every extra and this package

.PHONY: lock
lock: | $(UV) ## Update uv.lock after a change to the dependencies in pyproject.toml
	$(UV) lock

SERVE_ARGS ?=

.PHONY: serve
serve: $(STAMP) ## Run the local REST (:8080) + gRPC (:50051) server; SERVE_ARGS='--db :memory:'
	$(BIN)/auxia-decision serve $(SERVE_ARGS)

# $(call regenerate,DIR): write generated/ under DIR: the buf plugins' output,
# then the FileDescriptorSet (with source info and imports) shipped for other builds.
regenerate = $(BUF) generate --output $(1) && \
  $(BUF) build --path proto/auxia/decision/model --as-file-descriptor-set \
    -o $(1)/generated/auxia/decision/model/descriptor_set.binpb

.PHONY: generate
generate: $(STAMP) ## Regenerate generated/ from proto/ with buf
	$(call regenerate,.)

.PHONY: format
format: $(STAMP) ## Format .proto and Python files in place
	$(BUF) format --write
	$(BIN)/ruff format src tests tools bench examples
	$(BIN)/ruff check --fix src tests tools bench examples

.PHONY: lint
lint: $(STAMP) ## Lint and format-check protos and Python, and type-check Python
	$(BUF) lint
	@$(BUF) format --diff --exit-code || { echo 'buf format found differences: run `make format`' >&2; exit 1; }
	$(BIN)/ruff check src tests tools bench examples
	@$(BIN)/ruff format --check src tests tools bench examples || { echo 'ruff format found differences: run `make format`' >&2; exit 1; }
	$(BIN)/mypy

.PHONY: checkgenerate
checkgenerate: $(STAMP) ## Fail if generated/ differs from what buf produces
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	$(call regenerate,$$tmp); \
	if ! diff -r generated "$$tmp/generated" >&2; then \
	  echo 'generated/ is out of date with proto/: run `make generate` and commit the result' >&2; exit 1; \
	fi

# Each part is checked where the commit has it: the API's package
# (proto/auxia/decision/model) and the local server's protos (server-proto/,
# which earlier commits kept in proto/).
.PHONY: breaking
breaking: $(STAMP) ## Check the API and the server's protos for wire-breaking changes against HEAD and the previous commit
	@for ref in HEAD HEAD~1; do \
	  if git rev-parse --verify --quiet "$$ref^{commit}" >/dev/null && git cat-file -e "$$ref:buf.yaml" 2>/dev/null; then \
	    for part in proto/auxia/decision/model server-proto/auxia; do \
	      if git cat-file -e "$$ref:$$part" 2>/dev/null; then \
	        echo "buf breaking $$part against $$ref"; \
	        $(BUF) breaking --against ".git#ref=$$ref" --path "$$part"; \
	      fi; \
	    done; \
	  fi; \
	done

# What the tests need from Debian besides buf and npm: for the monorepo test,
# protoc, the well-known types and the protobuf Java library of one version
# (3.21), and a JDK; for the console's browser test, Chromium. Installed with
# apt-get when missing (as root; otherwise the line to run).
DEBIAN_PACKAGES := protobuf-compiler libprotobuf-dev libprotobuf-java default-jdk-headless chromium

.PHONY: system-packages
system-packages: ## Install the Debian packages the monorepo and browser tests need, if missing
	@if ! command -v protoc >/dev/null || ! command -v javac >/dev/null || ! command -v chromium >/dev/null \
	  || [ ! -f /usr/share/java/protobuf.jar ] || [ ! -f /usr/include/google/protobuf/timestamp.proto ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get install -y -q --no-install-recommends $(DEBIAN_PACKAGES) >/dev/null \
	      || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends $(DEBIAN_PACKAGES) >/dev/null; }; \
	  else \
	    echo "make test needs Debian's $(DEBIAN_PACKAGES): sudo apt-get install $(DEBIAN_PACKAGES)" >&2; exit 1; \
	  fi; \
	fi

.PHONY: test
test: lint checkgenerate breaking system-packages ## Run every check: lint, drift, breaking, and the test suite
	$(BIN)/pytest

.PHONY: unit
unit: $(STAMP) ## Run the fast unit tests alone (tests/unit: in-process, no server process)
	$(BIN)/pytest tests/unit

.PHONY: bench
bench: $(STAMP) ## Benchmark the JSON codec against json_format (writes bench/results/codec.md)
	$(BIN)/python -m bench.bench_codec

.PHONY: bench-install
bench-install: $(STAMP) ## Measure each install (core, extras) in a fresh venv (writes bench/results/install.md)
	$(BIN)/python -m bench.bench_install

.PHONY: bench-emulator
bench-emulator: $(STAMP) ## Measure the local server in a test suite: start, reset, fixture overhead (writes bench/results/emulator.md)
	$(BIN)/python -m bench.bench_emulator

FUZZ_EXAMPLES ?= 300
CODEC_FUZZ_SCHEMAS ?= 5000

.PHONY: fuzz
fuzz: $(STAMP) ## Fuzz the codec over CODEC_FUZZ_SCHEMAS random schemas, and the live server (FUZZ_EXAMPLES per case)
	AUXIA_CODEC_FUZZ_SCHEMAS=$(CODEC_FUZZ_SCHEMAS) $(BIN)/pytest -s tests/unit/test_codec_fuzz.py -k random_schemas
	AUXIA_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) AUXIA_MUTATED_BODIES=25000 $(BIN)/pytest tests/system/test_schemathesis.py tests/system/test_hostile_input.py

BENCH_SERVER_ARGS ?=

.PHONY: bench-server
bench-server: $(STAMP) ## Load-test LogTreatmentInteraction and GetTreatments against their baselines (writes bench/results/server.md)
	$(BIN)/python -m bench.bench_server $(BENCH_SERVER_ARGS)

.PHONY: clean
clean: ## Remove the venv and caches
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis build dist ts/node_modules ts/gen
