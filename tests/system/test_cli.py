"""The auxia-decision command line, run as a real process."""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import socket
import subprocess
import threading
from collections.abc import Iterator

import pytest
from google.protobuf import descriptor_pb2

from tests._fixtures import BROKEN, FIXTURES
from tests._http_server import Answer, scripted_server
from tests._repo import VENV_BIN

CLI = str(VENV_BIN / "auxia-decision")
KEY = "sk-cli-test-0f9e8d7c"


def _run(*args: str, stdin: str = "", **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **env},
    )


def test_validate_accepts_a_doc_sample() -> None:
    result = _run(
        "validate", "InsertTreatment", str(FIXTURES / "docs/insert_treatment_request.json")
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "valid InsertTreatmentRequest\n"


def test_validate_prints_every_violation_with_its_json_path(tmp_path: pathlib.Path) -> None:
    request = tmp_path / "update.json"
    request.write_text(
        json.dumps(
            {
                "projectId": "P",
                "content": {"contentByLanguage": [{"contentFields": [{"stringValue": "x"}]}]},
            }
        )
    )
    result = _run("validate", "UpdateTreatment", str(request))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "INVALID_ARGUMENT: the request has 4 invalid fields",
        "  lastModifiedBy: required",
        "  content.contentByLanguage[0].languageCode: required",
        "  content.contentByLanguage[0].contentFields[0].fieldName: required",
        "  treatmentId: required: set treatmentId or externalTreatmentId",
    ]


def test_validate_reports_malformed_json_with_line_and_column() -> None:
    result = _run("validate", "GetDataFields", str(BROKEN["get_data_fields_request"].path))
    assert result.returncode == 1
    assert "malformed JSON at line 25 column 1" in result.stderr


def test_validate_reads_standard_input() -> None:
    result = _run("validate", "LogTreatmentInteraction", "-", stdin='{"projectId": 1}')
    assert result.returncode == 1
    assert "projectId: expected a string, got a number" in result.stderr


def test_unknown_method_is_a_usage_error() -> None:
    result = _run("validate", "DeleteEverything", "-", stdin="{}")
    assert result.returncode == 2
    assert "unknown method 'DeleteEverything'" in result.stderr


def test_call_prints_the_response_json() -> None:
    with scripted_server() as server:
        server.script("/v1/LogTreatmentInteraction", Answer(200, b"{}"))
        result = _run(
            "call",
            "LogTreatmentInteraction",
            "--data",
            f"@{FIXTURES / 'examples/log_treatment_interaction_request.json'}",
            "--base-url",
            server.url,
            AUXIA_API_KEY=KEY,
        )
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout) == {}
        assert server.received[0].headers["x-api-key"] == KEY


def test_call_failure_prints_the_decoded_error_and_exits_non_zero() -> None:
    status = {
        "code": 7,
        "message": "the key belongs to another project",
        "details": [],
    }
    with scripted_server() as server:
        server.script("/v1/GetDataFields", Answer(403, json.dumps(status).encode()))
        result = _run(
            "call",
            "GetDataFields",
            "--data",
            '{"projectId": "P", "dataFieldParams": []}',
            "--base-url",
            server.url,
            AUXIA_API_KEY=KEY,
        )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "PERMISSION_DENIED (HTTP 403): the key belongs to another project"
    )
    assert KEY not in result.stderr + result.stdout


def test_call_without_an_api_key_says_how_to_give_one() -> None:
    env = {k: v for k, v in os.environ.items() if k != "AUXIA_API_KEY"}
    result = subprocess.run(
        [
            CLI,
            "call",
            "LogTreatmentInteraction",
            "--data",
            "{}",
            "--base-url",
            "http://127.0.0.1:9",
        ],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    assert result.returncode == 2
    assert "AUXIA_API_KEY" in result.stderr


def test_protos_include_path_holds_the_proto_files() -> None:
    result = _run("protos", "--include-path")
    assert result.returncode == 0
    root = pathlib.Path(result.stdout.strip())
    assert (root / "auxia/decision/model/treatment_management_service.proto").is_file()


def test_protos_descriptor_set_is_a_file_descriptor_set() -> None:
    result = _run("protos", "--descriptor-set")
    assert result.returncode == 0, result.stderr
    data = pathlib.Path(result.stdout.strip()).read_bytes()
    names = [f.name for f in descriptor_pb2.FileDescriptorSet.FromString(data).file]
    assert "auxia/decision/model/treatment_management_service.proto" in names


def test_data_naming_a_file_gets_the_at_hint(tmp_path: pathlib.Path) -> None:
    (tmp_path / "request.json").write_text('{"projectId": "P"}')
    result = subprocess.run(
        [
            CLI,
            "call",
            "GetTreatments",
            "--data",
            "request.json",
            "--base-url",
            "http://127.0.0.1:9",
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
        env={**os.environ, "AUXIA_API_KEY": KEY},
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "error: --data request.json is not JSON (malformed JSON at line 1 column 1: "
        "Expecting value): "
        "to send the file, pass --data @request.json"
    ]


@pytest.mark.parametrize("url", ["not-a-url", "127.0.0.1:8080", "ftp://127.0.0.1", "http://"])
def test_a_bad_base_url_is_a_usage_error(url: str) -> None:
    result = _run("call", "GetTreatments", "--data", "{}", "--base-url", url, AUXIA_API_KEY=KEY)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"error: --base-url: not an http:// or https:// URL such as http://127.0.0.1:8080: {url!r}"
    ]


def test_a_base_url_with_credentials_is_a_usage_error_not_shown() -> None:
    url = "http://user:pw_S3CRET@127.0.0.1:8080"
    result = _run("call", "GetTreatments", "--data", "{}", "--base-url", url, AUXIA_API_KEY=KEY)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "error: --base-url: carries credentials, and a key goes in its header "
        "(the URL is not shown)"
    ]


def test_an_api_key_no_header_can_carry_is_a_usage_error_not_shown() -> None:
    result = _run("call", "GetTreatments", "--data", "{}", AUXIA_API_KEY="S3CRET_KEY\n")
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith("error: AUXIA_API_KEY holds a character a header cannot carry")
    assert "S3CRET" not in result.stderr


def test_a_bad_base_url_in_the_environment_is_a_usage_error() -> None:
    result = _run("call", "GetTreatments", "--data", "{}", AUXIA_API_KEY=KEY, AUXIA_BASE_URL="x")
    assert result.returncode == 2
    assert "error: AUXIA_BASE_URL: not an http:// or https:// URL" in result.stderr


@pytest.mark.parametrize(
    ("scheme", "words"),
    [
        ("https", "TLS failed (is the server plain HTTP? then use an http:// URL): ConnectError: "),
        ("http", "the answer is not HTTP (is the server TLS? then use an https:// URL): "),
    ],
    ids=["tls-to-plain", "not-http"],
)
def test_a_protocol_error_is_one_line_and_not_retried(scheme: str, words: str) -> None:
    # GetTreatment is safe to repeat: a broken connection would be retried, not these.
    with _not_http_server() as (address, connections):
        result = _run(
            "call",
            "GetTreatment",
            "--data",
            '{"projectId": "P", "treatmentId": "1"}',
            "--base-url",
            f"{scheme}://{address}",
            AUXIA_API_KEY=KEY,
        )
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"UNAVAILABLE (no HTTP answer): GetTreatment failed: {words}")
    assert connections == [1]


@contextlib.contextmanager
def _not_http_server() -> Iterator[tuple[str, list[int]]]:
    """A TCP server on loopback that answers every connection with bytes neither HTTP nor TLS."""
    listener = socket.create_server(("127.0.0.1", 0))
    connections = [0]

    def serve() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            connections[0] += 1
            with connection:
                connection.recv(65536)
                connection.sendall(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{listener.getsockname()[1]}", connections
    finally:
        listener.close()
        thread.join(5)
