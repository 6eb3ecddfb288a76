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

# --compile-bytecode: as pip does at install. Without it, where
# PYTHONDONTWRITEBYTECODE is set, every Python process compiles the modules it
# imports from source, which costs a server's start more CPU than the start
# itself (bench/results/polyglot.md measures a start with and without).
$(STAMP): pyproject.toml uv.lock | $(UV)
	$(UV) sync --locked --all-extras --quiet --compile-bytecode
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
  $(BUF) build --path proto/auxia/decision/model --path third_party/googleapis/google/rpc --as-file-descriptor-set \
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
	if ! diff -r -x __pycache__ generated "$$tmp/generated" >&2; then \
	  echo 'generated/ is out of date with proto/: run `make generate` and commit the result' >&2; exit 1; \
	fi

# Each part is checked where the commit has it: the API's package
# (proto/auxia/decision/model) and the local server's protos (server-proto/,
# which earlier commits kept in proto/).
.PHONY: breaking
breaking: $(STAMP) ## Check the protos for wire-breaking changes against HEAD, the previous commit and the latest release (v*)
	@for ref in HEAD HEAD~1 $$($(BIN)/python tools/release.py latest); do \
	  if git rev-parse --verify --quiet "$$ref^{commit}" >/dev/null && git cat-file -e "$$ref:buf.yaml" 2>/dev/null; then \
	    for part in proto/auxia/decision/model server-proto/auxia; do \
	      if git cat-file -e "$$ref:$$part" 2>/dev/null; then \
	        echo "buf breaking $$part against $$ref"; \
	        $(BUF) breaking --against ".git#ref=$$ref" --path "$$part"; \
	      fi; \
	    done; \
	  fi; \
	done

.PHONY: release-check
release-check: $(STAMP) ## Fail when a change to the protos is not in CHANGELOG.md, or a release tag disagrees with it
	$(BIN)/python tools/release.py check

# What the tests need from Debian besides buf and npm: for the monorepo test
# and the Java jar, protoc, the well-known types and the protobuf Java library
# of one version (3.21), Gson (JsonFormat needs it), a JDK and, for the Java
# example's tests, JUnit 5; for the console's browser test, Chromium; for the
# replicas' tests, PostgreSQL (its programs: the tests start a server of their own).
# Installed with apt-get when missing (as root; otherwise the line to run).
DEBIAN_PACKAGES := protobuf-compiler libprotobuf-dev libprotobuf-java libgoogle-gson-java junit5 default-jdk-headless chromium postgresql

.PHONY: system-packages
system-packages: ## Install the Debian packages the monorepo, browser and PostgreSQL tests need, if missing
	@if ! command -v protoc >/dev/null || ! command -v javac >/dev/null || ! command -v chromium >/dev/null \
	  || [ ! -f /usr/share/java/protobuf.jar ] || [ ! -f /usr/include/google/protobuf/timestamp.proto ] \
	  || [ ! -f /usr/share/java/gson.jar ] || [ ! -f /usr/share/java/junit-platform-console-standalone.jar ] \
	  || ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get install -y -q --no-install-recommends $(DEBIAN_PACKAGES) >/dev/null \
	      || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends $(DEBIAN_PACKAGES) >/dev/null; }; \
	  else \
	    echo "make test needs Debian's $(DEBIAN_PACKAGES): sudo apt-get install $(DEBIAN_PACKAGES)" >&2; exit 1; \
	  fi; \
	fi

DIST_DIR ?= dist

.PHONY: dist-java
dist-java: $(STAMP) system-packages ## Build the Java jar and its -sources.jar into dist/ (Debian's JDK, protoc, protobuf-java)
	$(BIN)/python -m tools.dist_java --out $(DIST_DIR)

.PHONY: dist
dist: dist-ts dist-java ## Build every language's artifact into dist/ (the npm tarball, the Java jars)

# pytest-xdist workers: most system tests wait on processes they started (servers, javac, npm,
# pip), so two workers on two cores take about 60% of one's time. A module's tests stay on one
# worker (its module-scoped server); PYTEST_WORKERS=0 runs them all in this process.
PYTEST_WORKERS ?= 2

.PHONY: test
test: lint checkgenerate breaking release-check system-packages ## Run every check: lint, drift, breaking, the changelog, and the test suite
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadscope

.PHONY: unit
unit: $(STAMP) ## Run the fast unit tests alone (tests/unit: in-process, no server process)
	$(BIN)/pytest tests/unit

.PHONY: bench
bench: $(STAMP) ## Benchmark the JSON codec against json_format, and the drift check (writes bench/results/codec.md, drift.md)
	$(BIN)/python -m bench.bench_codec
	$(BIN)/python -m bench.bench_drift

.PHONY: bench-install
bench-install: $(STAMP) ## Measure each install (core, extras) in a fresh venv (writes bench/results/install.md)
	$(BIN)/python -m bench.bench_install

.PHONY: bench-emulator
bench-emulator: $(STAMP) ## Measure the local server in a test suite: start, reset, fixture overhead (writes bench/results/emulator.md)
	$(BIN)/python -m bench.bench_emulator

.PHONY: bench-proxy
bench-proxy: $(STAMP) ## Measure GetTreatments through the validation proxy against direct (writes bench/results/proxy.md)
	$(BIN)/python -m bench.bench_proxy

.PHONY: bench-java
bench-java: $(STAMP) system-packages ## Measure AuxiaEmulator (Java): start to a served GetTreatments, close (writes bench/results/polyglot-java.md)
	$(BIN)/python -m bench.bench_java

.PHONY: bench-polyglot
bench-polyglot: dist-ts ## Measure startEmulator() and stop() from Node, and the npm install (writes bench/results/polyglot.md)
	$(BIN)/python -m bench.bench_polyglot

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

BENCH_SCALE_ARGS ?=

.PHONY: bench-scale
bench-scale: $(STAMP) ## Start, memory and throughput for 1,000 to 1,000,000 users (writes bench/results/scale.md)
	$(BIN)/python -m bench.bench_scale $(BENCH_SCALE_ARGS)

# The npm package @auxia/decision-api (typescript/): its development tools
# installed from its lockfile, then buf writes the protobuf-es messages and our
# init types into typescript/src/gen, and tools/build.mjs compiles, stamps the
# Python package's version and packs dist/auxia-decision-api-VERSION.tgz.
TS_DIR := typescript
TS_STAMP := $(TS_DIR)/node_modules/.installed

$(TS_STAMP): $(TS_DIR)/package.json $(TS_DIR)/package-lock.json
	npm ci --prefix $(TS_DIR) --no-audit --no-fund --loglevel=error
	touch $@

.PHONY: dist-ts
dist-ts: $(STAMP) $(TS_STAMP) ## Build the npm package (typescript/) into dist/ as an npm pack tarball
	$(BUF) generate --template $(TS_DIR)/buf.gen.yaml
	node $(TS_DIR)/tools/build.mjs dist


BENCH_REPLICAS_ARGS ?=

.PHONY: bench-replicas
bench-replicas: $(STAMP) system-packages ## One server on SQLite, one and two on PostgreSQL: throughput, p99, CPU (writes bench/results/replicas.md)
	$(BIN)/python -m bench.bench_replicas $(BENCH_REPLICAS_ARGS)

.PHONY: clean
clean: ## Remove the venv, caches, built artifacts and npm packages
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis build dist ts/node_modules ts/gen
	rm -rf $(TS_DIR)/node_modules $(TS_DIR)/src/gen $(TS_DIR)/src/version.ts $(TS_DIR)/lib $(TS_DIR)/build
	rm -rf examples/consumer-ts/node_modules examples/consumer-ts/build
