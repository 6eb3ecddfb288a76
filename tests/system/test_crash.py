"""Faults in the middle of a load: SIGKILL loses no acknowledged write, SIGTERM drains.

Each test runs ``auxia-decision serve`` on a SQLite file on loopback ports,
loads it with ``tools.loadgen`` in other processes (bounded in count and
time), signals the server while the load runs, and reads the file back.
"""

from __future__ import annotations

import contextlib
import json
import pathlib
import signal
import socket
import sqlite3
import subprocess
import time
from collections.abc import Iterator

import pytest

from tests._served import Served, served, start
from tests._stored import stored_tracking_ids
from tools.loadgen import (
    LoadResult,
    collect,
    is_server_error,
    reconcile,
    rest_body,
    spawn,
)
from tools.processes import process_tree

# More than the server can answer before it is signalled: the load is under way then.
REQUESTS = 200_000
TIME_LIMIT = 20.0


def _rows(db: pathlib.Path, tag: str) -> int:
    """Return how many committed rows hold a tracking id of run ``tag``."""
    marker = f"{tag}-".encode()
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as connection:
            query = "SELECT COUNT(*) FROM interactions WHERE instr(body, ?) > 0"
            return int(connection.execute(query, (marker,)).fetchone()[0])
    except sqlite3.Error:
        return 0


def _kill(running: Served) -> None:
    """SIGKILL the server if it runs, and reap it (closing its pipes)."""
    if running.process.returncode is None:
        running.process.kill()
        running.process.communicate(timeout=30)


def _wait_for_rows(db: pathlib.Path, minimum: int, timeout: float = 30.0) -> None:
    """Wait until both loads have ``minimum`` committed rows each: they are under way."""
    deadline = time.monotonic() + timeout
    while min(_rows(db, "rest"), _rows(db, "grpc")) < minimum:
        assert time.monotonic() < deadline, f"fewer than {minimum} rows after {timeout} s"
        time.sleep(0.05)


def _load_both(running: Served) -> tuple[subprocess.Popen[str], subprocess.Popen[str]]:
    rest = spawn(
        "rest",
        running.rest_url,
        requests=REQUESTS,
        connections=64,
        time_limit=TIME_LIMIT,
        tag="rest",
    )
    grpc = spawn(
        "grpc",
        running.grpc_target,
        requests=REQUESTS,
        connections=64,
        time_limit=TIME_LIMIT,
        tag="grpc",
    )
    return rest, grpc


def _check_no_acknowledged_write_lost(
    db: pathlib.Path, results: dict[str, LoadResult], allowed: dict[str, set[str]]
) -> None:
    stored = stored_tracking_ids(db)
    for tag, result in results.items():
        answered = {status for status in result.statuses if status != "no answer"}
        assert not result.count(is_server_error), result.statuses
        assert answered <= allowed[tag], result.statuses
        found = reconcile(result, stored, tag)
        assert found.acknowledged > 0, result
        assert found.lost == 0, found
        assert found.duplicated == 0, found
        # A stored row was acknowledged, unless its answer was lost with the
        # connection; a call refused (gRPC CANCELLED) was not processed.
        assert found.stored_unacknowledged <= result.statuses.get("no answer", 0), found


@contextlib.contextmanager
def _under_load(
    db: pathlib.Path,
) -> Iterator[tuple[Served, subprocess.Popen[str], subprocess.Popen[str]]]:
    """Start a server and a REST and a gRPC load on it; kill whatever still runs at the end."""
    running = start(db)
    generators: tuple[subprocess.Popen[str], ...] = ()
    try:
        generators = _load_both(running)
        yield running, *generators
    finally:
        for generator in generators:
            if generator.returncode is None:
                generator.kill()
                generator.communicate(timeout=30)
        _kill(running)


def test_sigkill_mid_load_loses_no_acknowledged_write(tmp_path: pathlib.Path) -> None:
    db = tmp_path / "crash.db"
    with _under_load(db) as (running, rest, grpc):
        _wait_for_rows(db, 500)
        _kill(running)
        results = {
            "rest": collect(rest, timeout=TIME_LIMIT + 60),
            "grpc": collect(grpc, timeout=TIME_LIMIT + 60),
        }
    # The kill came mid-run: calls were in flight, and they got no answer.
    for result in results.values():
        assert result.statuses.get("no answer", 0) > 0, result.statuses
    # Restarting on the same file recovers every committed transaction.
    with served(db) as again:
        code, output = again.stop()
        assert code == 0, output
    _check_no_acknowledged_write_lost(db, results, {"rest": {"200"}, "grpc": {"OK"}})


def test_sigterm_mid_load_drains_and_loses_nothing(tmp_path: pathlib.Path) -> None:
    db = tmp_path / "drain.db"
    with _under_load(db) as (running, rest, grpc):
        _wait_for_rows(db, 500)
        code, output = running.stop(signal.SIGTERM)
        results = {
            "rest": collect(rest, timeout=TIME_LIMIT + 60),
            "grpc": collect(grpc, timeout=TIME_LIMIT + 60),
        }
    assert code == 0, output
    assert "Traceback" not in output
    # Calls made after SIGTERM are refused: gRPC answers them CANCELLED,
    # and REST connections are closed (connection refused or reset).
    _check_no_acknowledged_write_lost(db, results, {"rest": {"200"}, "grpc": {"OK", "CANCELLED"}})


def _read_response(connection: socket.socket) -> tuple[int, bytes]:
    """Read one HTTP/1.1 response with a Content-Length, returning status and body."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        assert chunk, f"the connection closed before a response: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = next(
        int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length:")
    )
    while len(body) < length:
        chunk = connection.recv(65536)
        assert chunk, "the connection closed in the middle of the body"
        body += chunk
    return int(lines[0].split()[1]), body


def _refused(address: tuple[str, int]) -> bool:
    try:
        socket.create_connection(address, timeout=1).close()
    except OSError:
        return True
    return False


def test_sigterm_answers_the_request_in_flight_then_stops(tmp_path: pathlib.Path) -> None:
    db = tmp_path / "in_flight.db"
    running = start(db)
    host, port = running.rest_url.removeprefix("http://").split(":")
    address = (host, int(port))
    body = rest_body("in-flight", 0)
    try:
        with socket.create_connection(address, timeout=10) as connection:
            # The head, then half of the body once the server asks for it (100
            # Continue: the API is reading the body): the request is in flight.
            connection.sendall(
                b"POST /v1/LogTreatmentInteraction HTTP/1.1\r\nhost: localhost\r\n"
                b"content-type: application/json\r\nx-api-key: TEST_API_KEY\r\n"
                b"expect: 100-continue\r\ncontent-length: %d\r\n\r\n" % len(body)
            )
            interim = b""
            while not interim.endswith(b"\r\n\r\n"):
                chunk = connection.recv(1)
                assert chunk, f"the connection closed before 100 Continue: {interim!r}"
                interim += chunk
            assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
            connection.sendall(body[:20])
            running.process.send_signal(signal.SIGTERM)
            # Draining: no new connection is taken while this one is answered.
            deadline = time.monotonic() + 10
            while not _refused(address):
                assert time.monotonic() < deadline, "still accepting connections after SIGTERM"
                time.sleep(0.05)
            assert running.process.poll() is None, "stopped before answering the request"
            connection.sendall(body[20:])
            status, answer = _read_response(connection)
        assert (status, json.loads(answer)) == (200, {})
        code, output = running.stop()
    finally:
        if running.process.poll() is None:
            _kill(running)
    assert code == 0, output
    assert stored_tracking_ids(db) == ["in-flight-0"]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_an_idle_server_stops_at_once(tmp_path: pathlib.Path, signum: signal.Signals) -> None:
    running = start(tmp_path / "idle.db")
    started = time.monotonic()
    code, output = running.stop(signum)
    assert code == 0, output
    assert time.monotonic() - started < 3


def _gone(pid: int) -> bool:
    """Whether a process has exited (a zombie waiting to be reaped counts)."""
    try:
        stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_the_writer_and_reader_processes_do_not_outlive_the_server(
    tmp_path: pathlib.Path, signum: signal.Signals
) -> None:
    db = tmp_path / "writer.db"
    running = start(db)
    try:
        helpers = process_tree(running.process.pid)[1:]
        assert len(helpers) == 2, helpers  # the writer and the reader
        running.process.send_signal(signum)
        running.process.communicate(timeout=30)
        deadline = time.monotonic() + 10
        while not all(_gone(helper) for helper in helpers):
            assert time.monotonic() < deadline, "a helper process outlived the server"
            time.sleep(0.02)
    finally:
        _kill(running)
