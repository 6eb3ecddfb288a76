"""The built wheel in fresh environments: what each install holds, imports and can run.

Each install (core, ``[client]``, ``[grpc]``, ``[server]``, ``[all]``) is the
wheel built from this checkout in a new virtual environment, with the locked
versions of its dependencies.
"""

from __future__ import annotations

import importlib.metadata
import json
import pathlib
import shutil
import signal
import subprocess
from typing import Final

import httpx
import pytest

from tests._fixtures import FIXTURES
from tests._processes import own_pytest_environment
from tests._repo import ROOT
from tools.installs import (
    FLAVOURS,
    Install,
    add_packages,
    build_wheel,
    install,
    locked_constraints,
)

CORE: Final = {"auxia-decision-api", "googleapis-common-protos", "protobuf"}
SERVER: Final = {
    "grpcio",
    "grpcio-health-checking",
    "grpcio-reflection",
    "httptools",
    "httpx",
    "orjson",
    "uvicorn",
    "uvloop",
}
HEAVY: Final = ("httpx", "grpc", "uvicorn", "orjson")
# (what the install must hold beyond the core, what it must not hold)
CONTENTS: Final = {
    "core": (set(), {"httpx", "grpcio", *SERVER}),
    "client": ({"httpx"}, SERVER - {"httpx"}),
    "grpc": ({"grpcio"}, SERVER - {"grpcio"}),
    "server": (SERVER, set()),
    "all": (SERVER, set()),
}
WITH_SERVER: Final = ("server", "all")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[pathlib.Path, pathlib.Path]:
    """The wheel of this checkout, and the locked versions of its dependencies."""
    folder = tmp_path_factory.mktemp("wheel")
    return build_wheel(folder), locked_constraints(folder)


@pytest.fixture(scope="module")
def installs(
    tmp_path_factory: pytest.TempPathFactory, built: tuple[pathlib.Path, pathlib.Path]
) -> dict[str, Install]:
    folder = tmp_path_factory.mktemp("installs")
    wheel, constraints = built
    return {flavour: install(wheel, flavour, folder, constraints) for flavour in FLAVOURS}


def _with_pytest(
    built: tuple[pathlib.Path, pathlib.Path], flavour: str, folder: pathlib.Path
) -> Install:
    """A fresh install of the wheel, plus the pytest this checkout tests with."""
    wheel, constraints = built
    installed = install(wheel, flavour, folder, constraints)
    add_packages(installed, f"pytest=={importlib.metadata.version('pytest')}")
    return installed


def _pytest(installed: Install, project: pathlib.Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(installed.python), "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=project,
        env=own_pytest_environment(),
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def test_the_example_consumer_passes_with_the_server_extra(
    built: tuple[pathlib.Path, pathlib.Path], tmp_path: pathlib.Path
) -> None:
    # From `pip install 'auxia-decision-api[server]'` (and pytest) to a passing test suite.
    installed = _with_pytest(built, "server", tmp_path)
    project = shutil.copytree(ROOT / "examples" / "consumer", tmp_path / "consumer")
    result = _pytest(installed, project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 passed" in result.stdout


def test_without_the_server_extra_the_fixture_names_it(
    built: tuple[pathlib.Path, pathlib.Path], tmp_path: pathlib.Path
) -> None:
    installed = _with_pytest(built, "core", tmp_path)
    project = tmp_path / "project"
    project.mkdir()
    (project / "test_it.py").write_text(
        "def test_without_the_fixture():\n    pass\n\n\ndef test_with_it(auxia_server):\n    pass\n"
    )
    result = _pytest(installed, project)
    assert result.returncode == 1
    assert "1 passed, 1 error" in result.stdout
    assert (
        "auxia_server: the reference server (auxia-decision serve, LocalServer, the "
        "auxia_server fixture) needs the [server] extra, which is not installed (no module "
        "named 'grpc'): pip install 'auxia-decision-api[server]'"
    ) in result.stdout


def _python(installed: Install, code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(installed.python), "-W", "error", "-c", code],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_an_install_holds_its_extras_and_nothing_more(
    installs: dict[str, Install], flavour: str
) -> None:
    packages = set(installs[flavour].packages())
    needed, unwanted = CONTENTS[flavour]
    assert CORE | needed <= packages
    assert not packages & unwanted
    assert not packages & {"pytest", "hypothesis", "grpcio-status", "mypy", "fastapi", "buf-bin"}
    if flavour == "core":
        assert packages == CORE


def test_the_core_install_weighs_at_most_a_third_of_the_full_one(
    installs: dict[str, Install],
) -> None:
    core = installs["core"].site_packages_bytes()
    full = installs["all"].site_packages_bytes()
    assert core * 3 <= full, (core, full)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_importing_the_package_and_the_messages_loads_no_optional_dependency(
    installs: dict[str, Install], flavour: str
) -> None:
    code = (
        "import sys, auxia_decision\n"
        "from auxia.decision.model import treatment_pb2, treatment_management_service_pb2\n"
        f"print(sorted(name for name in {HEAVY!r} if name in sys.modules))"
    )
    result = _python(installs[flavour], code)
    assert result.returncode == 0, result.stderr
    assert (result.stdout.strip(), result.stderr) == ("[]", "")


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_the_codec_gives_the_same_json_with_or_without_orjson(
    installs: dict[str, Install], flavour: str
) -> None:
    sample = FIXTURES / "docs" / "insert_treatment_request.json"
    code = (
        "import pathlib\n"
        "from auxia_decision import RestCodec\n"
        "from auxia.decision.model.treatment_management_service_pb2 import "
        "InsertTreatmentRequest\n"
        f"text = pathlib.Path({str(sample)!r}).read_bytes()\n"
        "message = RestCodec().decode_request(text, InsertTreatmentRequest)\n"
        "print(RestCodec().encode(message).decode())"
    )
    outputs = {name: _python(installs[name], code) for name in ("core", flavour)}
    for result in outputs.values():
        assert result.returncode == 0, result.stderr
    assert outputs["core"].stdout == outputs[flavour].stdout
    assert json.loads(outputs["core"].stdout)["name"] == "CCB treatment"


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_the_client_loads_only_with_its_extra(installs: dict[str, Install], flavour: str) -> None:
    result = _python(
        installs[flavour],
        "from auxia_decision import Client\nprint(Client(api_key='K').base_url)",
    )
    if flavour in ("client", "server", "all"):
        assert (result.returncode, result.stdout.strip()) == (0, "https://apis.auxia.io")
    else:
        assert result.returncode == 1
        last = result.stderr.strip().splitlines()[-1]
        assert last.startswith("auxia_decision._extras.MissingExtraError: ")
        assert "pip install 'auxia-decision-api[client]'" in last


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_the_grpc_stubs_load_only_with_grpcio(installs: dict[str, Install], flavour: str) -> None:
    result = _python(
        installs[flavour],
        "from auxia.decision.model import treatment_management_service_pb2_grpc as stubs\n"
        "print(stubs.TreatmentManagementServiceStub.__name__)",
    )
    if flavour in ("grpc", *WITH_SERVER):
        assert (result.returncode, result.stdout.strip()) == (0, "TreatmentManagementServiceStub")
    else:
        assert "No module named 'grpc'" in result.stderr


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_serve_starts_only_with_the_server_extra(
    installs: dict[str, Install], flavour: str, tmp_path: pathlib.Path
) -> None:
    args = [str(installs[flavour].command), "serve", "--rest-port", "0", "--grpc-port", "0"]
    args += ["--db", str(tmp_path / "server.db")]
    if flavour not in WITH_SERVER:
        result = subprocess.run(args, capture_output=True, text=True, check=False, timeout=120)
        assert result.returncode == 2
        assert result.stdout == ""
        missing = "grpc_health" if flavour == "grpc" else "grpc"
        assert result.stderr.splitlines() == [
            "error: the reference server (auxia-decision serve, LocalServer, the auxia_server "
            "fixture) needs the [server] extra, "
            f"which is not installed (no module named {missing!r}): "
            "pip install 'auxia-decision-api[server]'"
        ]
        assert not (tmp_path / "server.db").exists()
        return
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(2)]
        assert lines[0].startswith("auxia-decision: REST on http://127.0.0.1:")
        assert lines[1].startswith("auxia-decision: gRPC on 127.0.0.1:")
        # The console's files are in the wheel.
        rest = lines[0].split()[-1]
        for path in ("/console/", "/console/explorer.html", "/console/vendor/rapidoc-min.js"):
            assert httpx.get(rest + path).status_code == 200, path
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_the_commands_that_need_no_extra_work_everywhere(
    installs: dict[str, Install], flavour: str
) -> None:
    command = str(installs[flavour].command)
    sample = FIXTURES / "examples" / "log_treatment_interaction_request.json"
    checked = subprocess.run(
        [command, "validate", "LogTreatmentInteraction", str(sample)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert (checked.returncode, checked.stdout) == (0, "valid LogTreatmentInteractionRequest\n")
    include = subprocess.run(
        [command, "protos", "--include-path"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert (pathlib.Path(include) / "auxia/decision/model/treatment.proto").is_file()
    # What our protos import is there too (the well-known types come with protoc).
    assert (pathlib.Path(include) / "google/api/field_behavior.proto").is_file()
    assert not (pathlib.Path(include) / "auxia/decision/model/seed.proto").exists()
