"""The start contract any language's harness uses: the ready file, exit with the parent, env."""

from __future__ import annotations

import json
import pathlib
import signal
import stat
import subprocess
import sys
import textwrap

import httpx
import pytest

from auxia_decision.server._domain.seed import default_seed_text
from auxia_decision.server._ready import ENV_NAMES, wait_for_ready_file
from tests._repo import VENV_BIN
from tests._served import start
from tools.processes import gone_within, serve_command

MEMORY = serve_command(":memory:")


def test_the_ready_file_says_where_the_server_is_and_goes_when_it_stops(
    tmp_path: pathlib.Path,
) -> None:
    ready = tmp_path / "ready.json"
    served = start(":memory:", ready_file=ready)
    try:
        document = json.loads(ready.read_text())
        assert stat.S_IMODE(ready.stat().st_mode) == 0o600
        assert document == {
            "restUrl": served.rest_url,
            "grpcTarget": served.grpc_target,
            "pid": served.process.pid,
            "projectId": "PROJECT_ID",
            "apiKey": "TEST_API_KEY",
            "adminKey": "EMULATOR_ADMIN_KEY",
        }
        answer = httpx.post(
            f"{document['restUrl']}/v1/GetTreatments",
            headers={"x-api-key": document["apiKey"]},
            json={"projectId": document["projectId"], "userId": "u", "surfaces": []},
        )
        assert answer.status_code in (200, 400), answer.text
        assert answer.status_code != 401
    finally:
        status, _ = served.stop()
    assert status == 0
    assert not ready.exists()


def test_a_seed_without_admin_keys_leaves_the_admin_key_out(tmp_path: pathlib.Path) -> None:
    document = json.loads(default_seed_text())
    document.pop("adminKeys", None)
    seed_file = tmp_path / "seed.json"
    seed_file.write_text(json.dumps(document))
    ready = tmp_path / "ready.json"
    served = start(":memory:", "--seed", str(seed_file), ready_file=ready)
    try:
        assert "adminKey" not in json.loads(ready.read_text())
    finally:
        served.stop()


@pytest.mark.parametrize(
    ("place", "reason"),
    [("missing/ready.json", "no folder"), ("folder/ready.json/", "is a directory")],
)
def test_a_ready_file_that_cannot_be_written_is_one_line_and_exit_2(
    tmp_path: pathlib.Path, place: str, reason: str
) -> None:
    (tmp_path / "folder" / "ready.json").mkdir(parents=True)
    finished = subprocess.run(
        [*MEMORY, "--ready-file", str(tmp_path / place)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert finished.returncode == 2
    lines = finished.stderr.strip().splitlines()
    assert len(lines) == 1, finished.stderr
    assert lines[0].startswith(f"error: the ready file {tmp_path / place.rstrip('/')}")
    assert reason in lines[0]
    assert "Traceback" not in finished.stderr


def test_a_ready_file_in_a_folder_that_is_a_file_is_one_line_and_exit_2(
    tmp_path: pathlib.Path,
) -> None:
    (tmp_path / "plain").write_text("")
    finished = subprocess.run(
        [*MEMORY, "--ready-file", str(tmp_path / "plain" / "ready.json")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert finished.returncode == 2
    assert finished.stderr.count("\n") == 1
    assert "cannot be written: no folder" in finished.stderr


# A parent that starts the server and then waits: the test kills it.
_PARENT = textwrap.dedent(
    """
    import subprocess, sys, time
    subprocess.Popen(sys.argv[1:], stdin=subprocess.{stdin}, stdout=subprocess.DEVNULL)
    time.sleep(120)
    """
)


@pytest.mark.parametrize("stdin", ["DEVNULL", "PIPE"], ids=["stdin not a pipe", "stdin a pipe"])
def test_the_server_stops_within_2_s_of_its_parent_being_killed(
    tmp_path: pathlib.Path, stdin: str
) -> None:
    ready = tmp_path / "ready.json"
    command = [*MEMORY, "--ready-file", str(ready), "--exit-with-parent"]
    parent = subprocess.Popen([sys.executable, "-c", _PARENT.format(stdin=stdin), *command])
    try:
        info = wait_for_ready_file(ready, parent, 60)
        assert info is not None
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        assert gone_within([info.pid], 2.0)
    finally:
        parent.kill()
        parent.wait()
    assert not ready.exists()  # it stopped cleanly, as on SIGTERM


@pytest.mark.parametrize(
    "exit_with_parent", [True, False], ids=["with --exit-with-parent", "without"]
)
def test_a_closed_stdin_pipe_stops_the_server_with_exit_with_parent_only(
    tmp_path: pathlib.Path, exit_with_parent: bool
) -> None:
    ready = tmp_path / "ready.json"
    flags = ["--exit-with-parent"] if exit_with_parent else []
    server = subprocess.Popen(
        [*MEMORY, "--ready-file", str(ready), *flags],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
    )
    try:
        assert wait_for_ready_file(ready, server, 60) is not None
        assert server.stdin is not None
        server.stdin.close()
        if exit_with_parent:
            assert server.wait(timeout=10) == 0
        else:
            with pytest.raises(subprocess.TimeoutExpired):
                server.wait(timeout=1)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=20)


def test_env_prints_what_a_client_reads_in_sh_syntax(tmp_path: pathlib.Path) -> None:
    ready = tmp_path / "ready.json"
    served = start(":memory:", ready_file=ready)
    try:
        printed = subprocess.run(
            [str(VENV_BIN / "auxia-decision"), "env", "--ready-file", str(ready)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        shown = subprocess.run(
            ["sh", "-c", f"{printed}\nenv"], capture_output=True, text=True, check=True
        ).stdout.splitlines()
    finally:
        served.stop()
    assert printed.startswith("export AUXIA_BASE_URL=")
    assert f"{ENV_NAMES['rest_url']}={served.rest_url}" in shown
    assert f"{ENV_NAMES['grpc_target']}={served.grpc_target}" in shown
    assert f"{ENV_NAMES['api_key']}=TEST_API_KEY" in shown
    assert f"{ENV_NAMES['admin_key']}=EMULATOR_ADMIN_KEY" in shown


def test_env_without_a_ready_file_is_one_line_and_exit_2(tmp_path: pathlib.Path) -> None:
    finished = subprocess.run(
        [str(VENV_BIN / "auxia-decision"), "env", "--ready-file", str(tmp_path / "none.json")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert finished.returncode == 2
    assert finished.stderr == (
        f"error: the ready file {tmp_path / 'none.json'} cannot be read: "
        "No such file or directory\n"
    )
