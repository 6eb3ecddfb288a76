"""The README's commands and snippets, run as a new user runs them.

A fresh virtual environment, in a folder outside the checkout, gets the
README's ``pip install`` lines as written (pip finds this checkout's wheel
through ``PIP_FIND_LINKS``, and the other packages at their locked versions
through ``PIP_CONSTRAINT``). The server is the README's own ``auxia-decision
serve`` line, and every snippet runs against it. One change is made to what is
written: the ports 8080 and 50051 become free ports, so that the test never
depends on them being free.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import pathlib
import shlex
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

import pytest

from tests._docs import code_blocks
from tests._processes import own_pytest_environment
from tests._repo import ROOT, VENV_BIN, copy_tree
from tools.installs import build_wheel, locked_constraints

README: Final = ROOT / "README.md"
SERVER_DOC: Final = ROOT / "docs" / "server.md"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@dataclass
class NewUser:
    """A folder outside the checkout, a fresh venv with the README's installs, and a server."""

    home: pathlib.Path
    venv: pathlib.Path
    rest_port: int
    grpc_port: int

    def localize(self, text: str) -> str:
        """Return a snippet with the documented ports replaced by the server's."""
        return text.replace(":8080", f":{self.rest_port}").replace(":50051", f":{self.grpc_port}")

    def environment(self) -> dict[str, str]:
        """Return the environment of a shell in which the venv is activated."""
        return {
            **own_pytest_environment(),
            "PATH": f"{self.venv / 'bin'}:{os.environ['PATH']}",
            "VIRTUAL_ENV": str(self.venv),
        }

    def run(self, args: list[str], **extra_environment: str) -> subprocess.CompletedProcess[str]:
        """Run a command in the user's folder, with the venv activated."""
        return subprocess.run(
            args,
            cwd=self.home,
            env={**self.environment(), **extra_environment},
            capture_output=True,
            text=True,
            check=False,
            timeout=900,
        )

    def shell(self, script: str, **extra_environment: str) -> subprocess.CompletedProcess[str]:
        """Run a shell snippet, failing on the first failed command."""
        return self.run(["bash", "-euo", "pipefail", "-c", script], **extra_environment)

    def python(self, code: str) -> subprocess.CompletedProcess[str]:
        """Run a Python snippet with the venv's interpreter, warnings as errors."""
        return self.run([str(self.venv / "bin" / "python"), "-W", "error", "-c", code])


def _install_block() -> str:
    (block,) = [
        text
        for text in code_blocks(README, "sh")
        if all(line.startswith("pip install ") for line in text.splitlines())
    ]
    return block


@pytest.fixture(scope="module")
def new_user(tmp_path_factory: pytest.TempPathFactory) -> NewUser:
    home = tmp_path_factory.mktemp("new-user")
    wheels = home / "wheels"
    build_wheel(wheels)
    constraints = locked_constraints(home)
    venv = home / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    user = NewUser(home, venv, _free_port(), _free_port())
    result = user.shell(
        _install_block(),
        PIP_FIND_LINKS=str(wheels),
        PIP_CONSTRAINT=str(constraints),
        PIP_DISABLE_PIP_VERSION_CHECK="1",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return user


def _serve_line(path: pathlib.Path) -> str:
    for block in code_blocks(path, "sh"):
        for line in block.splitlines():
            if line.startswith("auxia-decision serve"):
                return line.split("#", 1)[0].strip()
    msg = f"{path.name} has no `auxia-decision serve` line"
    raise AssertionError(msg)


@pytest.fixture(scope="module")
def server(new_user: NewUser) -> Iterator[NewUser]:
    command = shlex.split(_serve_line(README))
    command += ["--rest-port", str(new_user.rest_port), "--grpc-port", str(new_user.grpc_port)]
    process = subprocess.Popen(
        command,
        cwd=new_user.home,
        env=new_user.environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    output = ""
    while "ready" not in output:
        line = process.stdout.readline()
        assert line, f"the server stopped: {output}{process.communicate()[1]}"
        output += line
    yield new_user
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err


def _json_documents(text: str) -> list[Any]:
    """Return the JSON documents written one after the other (curl adds no newline)."""
    decoder = json.JSONDecoder()
    documents, position = [], 0
    while position < len(text):
        document, end = decoder.raw_decode(text, position)
        documents.append(document)
        position = end
        while position < len(text) and text[position].isspace():
            position += 1
    return documents


def test_the_install_lines_install_this_package_with_every_part(new_user: NewUser) -> None:
    code = (
        "import auxia_decision, auxia_decision.server\n"
        "from auxia_decision import Client\n"
        "print(auxia_decision.__version__, auxia_decision.__file__)"
    )
    result = new_user.python(code)
    assert result.returncode == 0, result.stderr
    version, location = result.stdout.split()
    assert version == _version()
    assert pathlib.Path(location).is_relative_to(new_user.venv)


def _version() -> str:
    namespace: dict[str, Any] = {}
    exec((ROOT / "src/auxia_decision/_version.py").read_text(), namespace)
    return str(namespace["__version__"])


def test_the_message_example_prints_proto3_json(new_user: NewUser) -> None:
    (example,) = [block for block in code_blocks(README, "python") if "validate(" in block]
    result = new_user.python(example)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "projectId": "PROJECT_ID",
        "treatmentTrackingId": "TREATMENT_TRACKING_ID",
        "interactionType": "CLICKED",
        "interactionTimeMicros": "1732312345123456",
    }


def test_the_curl_quickstart_answers_as_documented(server: NewUser) -> None:
    (block,) = [text for text in code_blocks(README, "sh") if text.startswith("curl")]
    result = server.shell(server.localize(block))
    assert result.returncode == 0, result.stderr
    decided, logged, fields = _json_documents(result.stdout)
    assert [t["treatmentId"] for t in decided["userTreatments"]] == ["CART_REMINDER"]
    assert logged == {}
    assert fields["dataFields"][0]["dataFieldType"] == "STRING"


def test_the_client_example_reports_every_invalid_field(server: NewUser) -> None:
    (example,) = [block for block in code_blocks(README, "python") if "Client(" in block]
    result = server.python(server.localize(example))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "INVALID_ARGUMENT (HTTP 400): the request has 5 invalid fields"
    assert len(lines) == 6


def test_make_serve_starts_the_server(tmp_path: pathlib.Path) -> None:
    (block,) = [text for text in code_blocks(README, "sh") if "make serve" in text]
    commands = [line.split("#", 1)[0].strip() for line in block.splitlines()]
    # `make test` is the command that runs this very test; `make serve` is run here.
    assert commands == ["make test", "make serve"]
    tree = copy_tree(tmp_path / "tree")
    environment = {**os.environ, "SERVE_ARGS": "--db :memory: --rest-port 0 --grpc-port 0"}
    process = subprocess.Popen(
        shlex.split(commands[1]),
        cwd=tree,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert process.stdout is not None
    try:
        output = ""
        while "ready" not in output:
            line = process.stdout.readline()
            assert line, f"make serve stopped: {output}{process.communicate()[1]}"
            output += line
        assert "auxia-decision: REST on http://127.0.0.1:" in output
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.communicate(timeout=60)


def test_the_server_docs_grpc_snippets_work(server: NewUser) -> None:
    (python_block,) = code_blocks(SERVER_DOC, "python")
    result = server.python(server.localize(python_block))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("INVALID_ARGUMENT: the request has")
    (buf_block,) = [text for text in code_blocks(SERVER_DOC, "sh") if "buf curl" in text]
    listed = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", server.localize(buf_block)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={**os.environ, "PATH": f"{VENV_BIN}:{os.environ['PATH']}"},
    )
    assert listed.returncode == 0, listed.stderr
    assert "io.auxia.decision.model.TreatmentManagementService/GetDataFields" in listed.stdout
    assert '"dataFieldType": "STRING"' in listed.stdout


EMULATOR_DOC: Final = ROOT / "docs" / "emulator.md"


def test_the_readme_fixture_example_passes_under_pytest(new_user: NewUser) -> None:
    (example,) = [block for block in code_blocks(README, "python") if "auxia_server" in block]
    installed = new_user.run(
        [
            str(new_user.venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            f"pytest=={importlib.metadata.version('pytest')}",
        ],
        PIP_DISABLE_PIP_VERSION_CHECK="1",
    )
    assert installed.returncode == 0, installed.stderr
    project = new_user.home / "fixture-example"
    project.mkdir()
    (project / "test_example.py").write_text(example)
    result = new_user.run(
        [
            str(new_user.venv / "bin" / "python"),
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            str(project),
        ]
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


def test_the_emulator_docs_local_server_example_prints_what_they_say(new_user: NewUser) -> None:
    (example,) = code_blocks(EMULATOR_DOC, "python")
    (printed,) = code_blocks(EMULATOR_DOC, "text")
    result = new_user.python(example)
    assert result.returncode == 0, result.stderr
    assert result.stdout == printed


def test_the_emulator_docs_curls_drive_the_admin_api(server: NewUser) -> None:
    (block,) = [text for text in code_blocks(EMULATOR_DOC, "sh") if "x-admin-key" in text]
    result = server.shell(server.localize(block))
    assert result.returncode == 0, result.stderr
    clock, fault, failed, stored, listed, reset, health = _json_documents(result.stdout)
    assert clock == {"clock": {"now": "2030-01-01T00:00:00Z", "frozen": True}}
    assert (fault["name"], fault["remainingCount"]) == ("faults/1", 1)
    assert (failed["code"], stored) == (14, {})
    (logged,) = listed["interactions"]
    assert logged["interaction"]["userId"] == "reader-1"
    assert reset == {"clock": {"now": reset["clock"]["now"]}}
    assert health == {"status": "SERVING"}
