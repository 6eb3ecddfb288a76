"""``auxia-decision proxy`` and ``drift-check``: a real proxy process on loopback sockets.

In front of our own server (with evolution faults armed) and in front of
upstreams of this module's own that answer wrong types, garbage, cut answers
or nothing at all: what the caller gets is the upstream's answer byte for
byte (or a 502/504 Status saying what went wrong), every departure from the
schema is in the report with its JSON path, and no key is in any report or
recording.
"""

from __future__ import annotations

import json
import pathlib
import signal
import socket
import socketserver
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final

import httpx
import pytest

from auxia_decision.server import LocalServer
from tests._evolution import evolution_paths
from tests._http_server import Answer, scripted_server
from tests._repo import VENV_BIN

CLI: Final = str(VENV_BIN / "auxia-decision")
KEY: Final = "proxy-test-key-5b1f9e77"
ADMIN_KEY: Final = "proxy-admin-key-81c2d"
JSON: Final = {"content-type": "application/json"}
CART: Final = {
    "projectId": "PROJECT_ID",
    "userId": "u1",
    "surfaces": [{"surface": "CART_SCREEN"}],
}


@dataclass
class Proxy:
    """A running ``auxia-decision proxy`` process."""

    process: subprocess.Popen[str]
    url: str
    report: pathlib.Path
    record: pathlib.Path

    def stop(self) -> str:
        """Stop it with SIGTERM; return what it wrote on standard error (the summary)."""
        self.process.send_signal(signal.SIGTERM)
        _, err = self.process.communicate(timeout=30)
        assert self.process.returncode == 0, err
        return err

    def findings(self) -> list[dict[str, Any]]:
        """Return the report's findings so far."""
        text = self.report.read_text() if self.report.exists() else ""
        return [json.loads(line) for line in text.splitlines()]

    def exchanges(self) -> list[dict[str, Any]]:
        """Return the recording's exchanges so far."""
        return [json.loads(line) for line in self.record.read_text().splitlines()]


@contextmanager
def proxy(upstream: str, folder: pathlib.Path, *extra: str) -> Iterator[Proxy]:
    """Run the proxy in front of ``upstream`` on a free port for the block."""
    report, record = folder / "report.jsonl", folder / "record.jsonl"
    process = subprocess.Popen(
        [
            *(CLI, "proxy", "--upstream", upstream, "--rest-port", "0"),
            *("--report", str(report), "--record", str(record), *extra),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    banner = process.stdout.readline()
    assert banner.startswith("auxia-decision proxy: http://"), process.communicate()
    running = Proxy(process, banner.split()[2], report, record)
    try:
        yield running
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with LocalServer(admin_key=ADMIN_KEY) as started:
        yield started


def _settled(proxy: Proxy, count: int) -> None:
    """Wait until the proxy has recorded ``count`` exchanges (it checks after answering)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proxy.record.exists() and len(proxy.record.read_text().splitlines()) >= count:
            return
        time.sleep(0.02)
    pytest.fail(f"the proxy recorded fewer than {count} exchanges")


def _post(base: str, path: str, body: bytes | dict[str, Any], **headers: str) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(f"{base}{path}", content=content, headers={**JSON, **headers}, timeout=30)


def test_answers_pass_unchanged_and_evolution_is_reported_path_by_path(
    server: LocalServer, tmp_path: pathlib.Path
) -> None:
    server.reset()
    key = {"x-api-key": server.api_key}
    asked = {"projectId": "PROJECT_ID", "treatmentId": "CART_REMINDER"}
    with proxy(server.rest_url, tmp_path) as running:
        direct = _post(server.rest_url, "/v1/GetTreatment", asked, **key)
        proxied = _post(running.url, "/v1/GetTreatment", asked, **key)
        server.faults.evolve("GetTreatment", count=2)
        evolved_direct = _post(server.rest_url, "/v1/GetTreatment", asked, **key)
        evolved = _post(running.url, "/v1/GetTreatment", asked, **key)
        _settled(running, 2)
        summary = running.stop()
    assert (proxied.status_code, proxied.content) == (200, direct.content)
    assert (evolved.status_code, evolved.content) == (200, evolved_direct.content)
    added = evolution_paths(evolved.json())
    assert {"evolvedObject", "evolvedField", "treatment.evolvedField"} <= added
    assert "treatment.versions[0].status" in added
    found = running.findings()
    assert all(f["method"] == "GetTreatment" and f["side"] == "response" for f in found)
    by_path = {f["path"]: f["kind"] for f in found}
    assert set(by_path) == added
    assert by_path["treatment.evolvedField"] == "unknown_field"
    assert by_path["treatment.versions[0].status"] == "unknown_enum_value"
    assert "GetTreatment  response  unknown_enum_value" in summary
    assert "2 exchanges" in summary


def test_requests_are_checked_as_the_server_would_check_them(
    server: LocalServer, tmp_path: pathlib.Path
) -> None:
    key = {"x-api-key": server.api_key}
    with proxy(server.rest_url, tmp_path) as running:
        unknown = _post(
            running.url,
            "/v1/GetTreatments",
            {"projectId": "PROJECT_ID", "surfaces": [], "colour": 1},
            **key,
        )
        rule = _post(
            running.url,
            "/v1/GetTreatments",
            {**CART, "surfaces": [{"surface": "CART_SCREEN", "maximumTreatmentCount": -1}]},
            **key,
        )
        valid = _post(running.url, "/v1/GetTreatments", CART, **key)
        nowhere = _post(running.url, "/v1/Nowhere", CART, **key)
        _settled(running, 4)
        running.stop()
    assert (unknown.status_code, rule.status_code, valid.status_code) == (400, 400, 200)
    assert nowhere.status_code == 404
    found = {(f["path"], f["kind"]) for f in running.findings() if f["side"] == "request"}
    assert ("colour", "unknown_field") in found
    assert ("userId", "missing_required") in found
    assert ("surfaces[0].maximumTreatmentCount", "rule_violation") in found
    assert ("", "unknown_method") in found
    # the server's 400 for the invalid requests is listed by GetTreatments' documentation
    assert not [f for f in running.findings() if f["kind"] == "unlisted_status"]


def test_no_key_is_in_the_report_or_the_recording(
    server: LocalServer, tmp_path: pathlib.Path
) -> None:
    with proxy(server.rest_url, tmp_path) as running:
        in_query = _post(running.url, f"/v1/GetTreatments?api_key={server.api_key}", CART)
        in_header = _post(running.url, "/v1/GetTreatments", CART, **{"api-key": server.api_key})
        # a key that is wrong, echoed in a body field: still redacted everywhere
        echoed = _post(
            running.url,
            "/v1/GetTreatments",
            {**CART, "userId": KEY, "colour": KEY},
            **{"x-api-key": KEY},
        )
        # other names a key goes by, and a proxy's own credentials (not forwarded)
        other_names = _post(
            running.url,
            f"/v1/GetTreatments?key={server.api_key}&admin-key=ADMIN_Q_SECRET",
            CART,
            **{"proxy-authorization": "Basic PROXY_AUTH_SECRET", "x-api-key": server.api_key},
        )
        _settled(running, 4)
        running.stop()
    statuses = (in_query, in_header, echoed, other_names)
    assert [answer.status_code for answer in statuses] == [200, 200, 401, 200]
    for written in (running.report.read_text(), running.record.read_text()):
        for secret in (server.api_key, KEY, "ADMIN_Q_SECRET", "PROXY_AUTH_SECRET"):
            assert secret not in written
    exchanges = running.exchanges()
    assert exchanges[0]["request"]["target"] == "/v1/GetTreatments?api_key=<redacted>"
    assert ["api-key", "<redacted>"] in exchanges[1]["request"]["headers"]
    assert exchanges[3]["request"]["target"] == (
        "/v1/GetTreatments?key=<redacted>&admin-key=<redacted>"
    )
    assert ["proxy-authorization", "<redacted>"] in exchanges[3]["request"]["headers"]
    assert [e["method"] for e in exchanges] == ["GetTreatments"] * 4
    # The upstream (the local server) never got the proxy's credentials.
    journal = server.journal(method="GetTreatments")
    assert not [e for e in journal if "proxy-authorization" in {h.name for h in e.headers}]


WRONG_TYPES: Final = b'{"responseId": 5, "userTreatments": [{"rank": true, "newField": {"a": 1}}]}'


def test_answers_of_a_drifting_upstream_pass_byte_for_byte(tmp_path: pathlib.Path) -> None:
    with scripted_server() as upstream:
        upstream.script("/v1/GetTreatments", Answer(200, WRONG_TYPES))
        upstream.script("/v1/GetTreatment", Answer(500, b"<html>oops</html>", (("x-a", "b"),)))
        upstream.script("/v1/GetDataFields", Answer(200, b"{{{ not json"))
        upstream.script("/v1/LogTreatmentInteraction", Answer(429, b'{"error": {"code": 429}}'))
        with proxy(upstream.url, tmp_path) as running:
            body = json.dumps(CART).encode() + b"  "
            answers = [
                _post(running.url, path, body, **{"x-api-key": KEY, "x-trace": "t-1"})
                for path in (
                    "/v1/GetTreatments",
                    "/v1/GetTreatment",
                    "/v1/GetDataFields",
                    "/v1/LogTreatmentInteraction",
                )
            ]
            _settled(running, 4)
            summary = running.stop()
    assert [(a.status_code, a.content) for a in answers] == [
        (200, WRONG_TYPES),
        (500, b"<html>oops</html>"),
        (200, b"{{{ not json"),
        (429, b'{"error": {"code": 429}}'),
    ]
    assert answers[1].headers["x-a"] == "b"
    sent = upstream.received[0]
    assert sent.body == body
    assert (sent.headers["x-api-key"], sent.headers["x-trace"]) == (KEY, "t-1")
    found = {(f["method"], f["side"], f["path"], f["kind"]) for f in running.findings()}
    assert {
        ("GetTreatments", "response", "responseId", "wrong_json_type"),
        ("GetTreatments", "response", "userTreatments[0].rank", "wrong_json_type"),
        ("GetTreatments", "response", "userTreatments[0].newField", "unknown_field"),
        ("GetTreatment", "response", "", "not_a_status"),
        ("GetTreatment", "response", "", "unlisted_status"),
        ("GetDataFields", "response", "", "invalid_json"),
        ("LogTreatmentInteraction", "response", "error", "not_a_status"),
        ("LogTreatmentInteraction", "response", "", "unlisted_status"),
    } <= found
    assert "4 exchanges" in summary


@dataclass
class RawUpstream:
    """A loopback server that reads a request and answers the raw bytes of its ``mode``."""

    url: str
    mode: list[str]


@contextmanager
def raw_upstream() -> Iterator[RawUpstream]:
    """Answer garbage, a cut answer, or nothing at all (stall), as ``mode[0]`` says."""
    state = RawUpstream("", ["garbage"])
    release = threading.Event()

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            self.request.settimeout(10)
            received = b""
            while b"\r\n\r\n" not in received:
                chunk = self.request.recv(65536)
                if not chunk:
                    return
                received += chunk
            mode = state.mode[0]
            if mode == "chunked":  # a whole answer, chunked, then the connection closes
                self.request.sendall(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                    b"transfer-encoding: chunked\r\nconnection: close\r\n\r\n"
                    b'5\r\n{"res\r\n17\r\nponseId": "r1", "x": 1}\r\n0\r\n\r\n'
                )
            elif mode == "garbage":
                self.request.sendall(b"SURPRISE! this is not HTTP\r\n\r\n")
            elif mode == "truncated":
                self.request.sendall(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                    b'content-length: 500\r\n\r\n{"responseId": "cut'
                )
            else:
                release.wait(10)

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        release.set()
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.mark.parametrize(
    ("mode", "status", "code", "kind"),
    [
        ("garbage", 502, "UNAVAILABLE", "upstream_broken"),
        ("truncated", 502, "UNAVAILABLE", "upstream_broken"),
        ("stall", 504, "DEADLINE_EXCEEDED", "upstream_timeout"),
    ],
)
def test_a_broken_upstream_gets_the_caller_a_status_saying_so(
    tmp_path: pathlib.Path, mode: str, status: int, code: str, kind: str
) -> None:
    with raw_upstream() as upstream:
        upstream.mode[0] = mode
        with proxy(upstream.url, tmp_path, "--timeout", "1") as running:
            answer = _post(running.url, "/v1/GetTreatments", CART, **{"x-api-key": KEY})
            after = _post(running.url, "/v1/GetTreatments", CART, **{"x-api-key": KEY})
            _settled(running, 2)
            running.stop()
    assert answer.status_code == status
    assert after.status_code == status  # still serving
    error = answer.json()
    assert error["code"] == {"UNAVAILABLE": 14, "DEADLINE_EXCEEDED": 4}[code]
    assert upstream.url in error["message"]
    found = [f for f in running.findings() if f["side"] == "response"]
    assert [f["kind"] for f in found] == [kind, kind]
    assert found[0]["method"] == "GetTreatments"


def test_an_upstream_that_is_down_gets_a_502(tmp_path: pathlib.Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with proxy(closed, tmp_path) as running:
        answer = _post(running.url, "/v1/GetTreatments", CART, **{"x-api-key": KEY})
        _settled(running, 1)
        summary = running.stop()
    assert answer.status_code == 502
    assert "cannot be reached" in answer.json()["message"]
    assert [f["kind"] for f in running.findings()] == ["upstream_unreachable"]
    assert "upstream_unreachable" in summary


def _drift_check(recording: pathlib.Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, "drift-check", str(recording)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_drift_check_finds_in_a_recording_what_the_proxy_found(
    server: LocalServer, tmp_path: pathlib.Path
) -> None:
    server.reset()
    key = {"x-api-key": server.api_key}
    asked = {"projectId": "PROJECT_ID", "treatmentId": "CART_REMINDER"}
    with proxy(server.rest_url, tmp_path) as running:
        _post(running.url, "/v1/GetTreatments", CART, **key)
        server.faults.evolve("GetTreatment", count=1)
        _post(running.url, "/v1/GetTreatment", asked, **key)
        _settled(running, 2)
        running.stop()
    checked = _drift_check(running.record)
    assert checked.returncode == 1, checked.stderr
    rechecked = [json.loads(line) for line in checked.stdout.splitlines()]
    assert rechecked == running.findings()
    assert "2 exchanges" in checked.stderr
    clean = tmp_path / "clean.jsonl"
    clean.write_text(running.record.read_text().splitlines()[0] + "\n")
    assert _drift_check(clean).returncode == 0
    broken = tmp_path / "broken.jsonl"
    broken.write_text(clean.read_text() + "not json\n")
    refused = _drift_check(broken)
    assert refused.returncode == 2
    assert f"{broken} line 2" in refused.stderr


def _failed_start(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, "proxy", *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_start_up_failures_are_one_line_naming_the_thing(tmp_path: pathlib.Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        taken = _failed_start("--upstream", "http://127.0.0.1:1", "--rest-port", str(port))
    bad_url = _failed_start("--upstream", "ftp://example.test", "--rest-port", "0")
    unwritable = _failed_start(
        "--upstream", "http://127.0.0.1:1", "--rest-port", "0", "--report", str(tmp_path)
    )
    for result, words in (
        (taken, f"the proxy port 127.0.0.1:{port} cannot be bound: it is in use"),
        (bad_url, "the upstream 'ftp://example.test' is not an http:// or https:// URL"),
        (unwritable, f"the report file {tmp_path} cannot be written"),
    ):
        assert result.returncode == 2
        assert result.stderr.count("\n") == 1, result.stderr
        assert result.stderr.startswith("error: ")
        assert words in result.stderr


def test_a_chunked_request_and_a_chunked_answer_go_through_whole(tmp_path: pathlib.Path) -> None:
    with raw_upstream() as upstream:
        upstream.mode[0] = "chunked"
        with proxy(upstream.url, tmp_path) as running:
            chunks = iter([b'{"projectId": "PROJECT_ID", ', b'"userId": "u1"}'])
            answer = httpx.post(
                f"{running.url}/v1/GetTreatments",
                content=chunks,
                headers={**JSON, "x-api-key": KEY},
                timeout=30,
            )
            _settled(running, 1)
            running.stop()
    assert (answer.status_code, answer.content) == (200, b'{"responseId": "r1", "x": 1}')
    (exchange,) = running.exchanges()
    assert exchange["request"]["body"] == '{"projectId": "PROJECT_ID", "userId": "u1"}'
    found = {(f["side"], f["path"], f["kind"]) for f in running.findings()}
    assert ("request", "surfaces", "missing_required") in found
    assert ("response", "x", "unknown_field") in found
    for written in (running.report, running.record):
        assert written.stat().st_mode & 0o777 == 0o600


def test_a_get_and_a_head_pass_as_the_upstream_answers_them(
    server: LocalServer, tmp_path: pathlib.Path
) -> None:
    with proxy(server.rest_url, tmp_path) as running:
        answers = [
            (httpx.request(method, f"{base}/healthz", timeout=30), base)
            for method in ("GET", "HEAD", "GET")
            for base in (server.rest_url, running.url)
        ]
        _settled(running, 3)
        running.stop()
    direct = [(a.status_code, a.content) for a, base in answers if base == server.rest_url]
    proxied = [(a.status_code, a.content) for a, base in answers if base != server.rest_url]
    assert proxied == direct
    assert direct[0] == (200, b'{"status":"SERVING"}')
    assert [f["kind"] for f in running.findings()] == ["unknown_method"] * 3
