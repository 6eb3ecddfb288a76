"""What an attack run and a first try as a new user broke, each kept broken no more.

Every test targets a server of its own on loopback, bounded in connections,
bytes and time. ``B`` is the body of a valid LogTreatmentInteraction.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pathlib
import socket
import sqlite3
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, Final

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2

from auxia.decision.model import treatment_interaction_service_pb2 as interactions
from auxia.decision.model import treatment_interaction_service_pb2_grpc as interactions_grpc
from auxia_decision.server._domain.seed import default_seed_text
from tests._fixtures import REQUESTS
from tests._raw_http import (
    KEY,
    PATH,
    body,
    connect,
    count_responses,
    http_request,
    read_all,
    read_to_close,
    status_of,
)
from tests._repo import VENV_BIN
from tests._served import Served, served
from tests._stored import stored_tracking_ids

CLI: Final = str(VENV_BIN / "auxia-decision")


def timed_post(served_server: Served, tracking_id: str) -> float:
    """Log one interaction as a normal client would; return how long the answer took."""
    started = time.monotonic()
    response = httpx.post(
        served_server.rest_url + PATH,
        content=body(tracking_id),
        headers={"content-type": "application/json", "x-api-key": KEY},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return time.monotonic() - started


@contextlib.contextmanager
def normal_traffic(served_server: Served) -> Iterator[list[float]]:
    """Send normal requests from a thread for the duration of the block; yield their times."""
    times: list[float] = []
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            times.append(timed_post(served_server, f"normal-{uuid.uuid4()}"))
            time.sleep(0.05)

    thread = threading.Thread(target=run)
    thread.start()
    try:
        yield times
    finally:
        stop.set()
        thread.join(timeout=30)


def serve_command(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, "serve", *args], capture_output=True, text=True, check=False, timeout=60
    )


# 1. Busy ports are refused, in one line naming the port.


def test_a_busy_grpc_port_is_refused_and_the_first_server_goes_on(
    server: Served, tmp_path: pathlib.Path
) -> None:
    result = serve_command(
        "--grpc-port", str(server.grpc_port), "--rest-port", "0", "--db", str(tmp_path / "b.db")
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"error: the gRPC port 127.0.0.1:{server.grpc_port} cannot be bound: it is in use"
    ]
    assert not (tmp_path / "b.db").exists(), "a failed start made the database file"
    with grpc.insecure_channel(server.grpc_target) as channel:
        answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
    assert answer.status == health_pb2.HealthCheckResponse.SERVING


def test_a_busy_rest_port_is_refused_in_one_line(server: Served, tmp_path: pathlib.Path) -> None:
    result = serve_command(
        "--rest-port", str(server.rest_port), "--grpc-port", "0", "--db", str(tmp_path / "b.db")
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"error: the REST port 127.0.0.1:{server.rest_port} cannot be bound: it is in use"
    ]
    assert not (tmp_path / "b.db").exists(), "a failed start made the database file"
    assert timed_post(server, f"after-{uuid.uuid4()}") < 1


def test_both_busy_ports_are_named_in_one_line(server: Served, tmp_path: pathlib.Path) -> None:
    result = serve_command(
        "--rest-port",
        str(server.rest_port),
        "--grpc-port",
        str(server.grpc_port),
        "--db",
        str(tmp_path / "b.db"),
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"error: the gRPC port 127.0.0.1:{server.grpc_port} cannot be bound: it is in use; "
        f"the REST port 127.0.0.1:{server.rest_port} cannot be bound: it is in use"
    ]
    assert timed_post(server, f"after-{uuid.uuid4()}") < 1


# 2. An Upgrade is ignored: the request is answered over HTTP/1.1, its body is its body.


def test_curl_http2_over_http_is_answered_over_http1(server: Served) -> None:
    tracking_id = f"curl-h2c-{uuid.uuid4()}"
    result = subprocess.run(
        [
            "curl",
            "-sS",
            "--http2",
            "-X",
            "POST",
            server.rest_url + PATH,
            "-H",
            "Content-Type: application/json",
            "-H",
            f"x-api-key: {KEY}",
            "--data-binary",
            body(tracking_id).decode(),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert (result.returncode, result.stdout) == (0, "{}"), result.stderr
    assert tracking_id in stored_tracking_ids(server.db)


@pytest.mark.parametrize("pause", [0.0, 0.3], ids=["one read", "body in a later read"])
def test_the_body_of_an_upgrade_request_is_never_run_as_a_request(
    server: Served, pause: float
) -> None:
    smuggled = f"smuggled-{uuid.uuid4()}"
    inner = http_request(PATH, body(smuggled))
    outer = http_request(PATH, inner, "Connection: Upgrade", "Upgrade: h2c")
    head, _, payload = outer.partition(b"\r\n\r\n")
    with connect(server) as sock:
        sock.sendall(head + b"\r\n\r\n")
        time.sleep(pause)
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        answer = read_all(sock)
    assert count_responses(answer) == 1, answer
    assert status_of(answer) == 400  # the body, a request's text, is not JSON
    assert b"malformed JSON" in answer
    assert timed_post(server, f"after-smuggling-{uuid.uuid4()}") < 1
    assert smuggled not in stored_tracking_ids(server.db)


def test_an_upgrade_request_then_a_normal_one_on_the_same_connection(server: Served) -> None:
    first, second = f"upgrade-{uuid.uuid4()}", f"next-{uuid.uuid4()}"
    with connect(server) as sock:
        sock.sendall(
            http_request(PATH, body(first), "Connection: Upgrade", "Upgrade: h2c")
            + http_request(PATH, body(second), "Connection: close")
        )
        answer = read_all(sock)
    assert count_responses(answer) == 2, answer
    assert answer.count(b"HTTP/1.1 200 OK") == 2
    stored = stored_tracking_ids(server.db)
    assert first in stored
    assert second in stored


# 3. Lone surrogates are 400s naming their path, never 500s.


@pytest.mark.parametrize(
    ("method", "member", "path"),
    [
        ("LogTreatmentInteraction", '"interactionType": "\\ud800"', "interactionType"),
        ("LogTreatmentInteraction", '"treatmentTrackingId": "\\udfff"', "treatmentTrackingId"),
        ("LogTreatmentInteraction", '"\\ud800": 1', "\\ud800"),
        ("InsertTreatment", '"startTimestamp": "\\ud800"', "startTimestamp"),
        ("UpdateTreatment", '"tags": ["\\udc00"]', "tags[0]"),
    ],
)
def test_a_lone_surrogate_is_a_400_naming_its_path(
    server: Served, method: str, member: str, path: str
) -> None:
    document = REQUESTS[method].text().rstrip().rstrip("}").rstrip()
    text = document + ", " + member + "}"
    response = httpx.post(
        f"{server.rest_url}/v1/{method}",
        content=text.encode(),
        headers={"content-type": "application/json", "x-api-key": KEY},
        timeout=10,
    )
    assert response.status_code == 400, response.text
    status = response.json()
    fields = [violation["field"] for violation in status["details"][0]["fieldViolations"]]
    assert any(field.endswith(path) for field in fields), fields


# 4. A locked or full database fails its callers with 503, and the store goes on.


def _post_json(url: str, key: str, payload: bytes) -> httpx.Response:
    return httpx.post(
        url,
        content=payload,
        headers={"content-type": "application/json", "x-api-key": key},
        timeout=60,
    )


def _insert_body() -> bytes:
    document = json.loads(REQUESTS["InsertTreatment"].text())
    document.pop("external_treatment_id", None)
    return json.dumps(document).encode()


def _three_calls(running: Served, tag: str) -> dict[str, httpx.Response]:
    """Send InsertTreatment, GetDataFields and LogTreatmentInteraction at once."""
    calls = {
        "InsertTreatment": ("API_KEY", _insert_body()),
        "GetDataFields": ("API_KEY", REQUESTS["GetDataFields"].text().encode()),
        "LogTreatmentInteraction": (KEY, body(f"{tag}-{uuid.uuid4()}")),
    }
    answers: dict[str, httpx.Response] = {}

    def call(method: str) -> None:
        key, payload = calls[method]
        answers[method] = _post_json(f"{running.rest_url}/v1/{method}", key, payload)

    threads = [threading.Thread(target=call, args=(method,)) for method in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    assert answers.keys() == calls.keys(), f"unanswered: {sorted(calls.keys() - answers.keys())}"
    return answers


def test_a_locked_database_is_503_with_a_retry_hint_then_everything_works(
    tmp_path: pathlib.Path,
) -> None:
    db = tmp_path / "locked.db"
    with served(db) as running:
        holder = sqlite3.connect(db, isolation_level=None, timeout=1)
        holder.execute("BEGIN EXCLUSIVE")  # longer than the busy timeout (5 s)
        try:
            answers = _three_calls(running, "locked")
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        for method, answer in answers.items():
            assert answer.status_code == 503, (method, answer.text)
            assert answer.headers["retry-after"] == "1"
            assert "locked" in answer.json()["message"]
        after = _three_calls(running, "after-lock")
        assert {method: a.status_code for method, a in after.items()} == dict.fromkeys(after, 200)


@pytest.fixture
def small_disk(tmp_path: pathlib.Path) -> Iterator[pathlib.Path]:
    """A 2 MiB tmpfs mounted for the test (needs root, as CI and this machine run)."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.skip(f"a full disk needs a small tmpfs, and mounting one failed: {result.stderr}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_is_503_saying_so_then_writes_go_on_once_there_is_room(
    small_disk: pathlib.Path,
) -> None:
    with served(small_disk / "full.db") as running:
        filler = small_disk / "filler"
        with filler.open("wb", buffering=0) as file, contextlib.suppress(OSError):
            while True:
                file.write(b"\0" * 4096)
        big = "x" * 2000
        answers = []
        for index in range(400):
            document = json.loads(body(f"full-{index}"))
            document["actionName"] = big
            answer = _post_json(running.rest_url + PATH, KEY, json.dumps(document).encode())
            answers.append(answer)
            if answer.status_code != 200:
                break
        last = answers[-1]
        assert last.status_code == 503, last.text
        assert "disk is full" in last.json()["message"]
        filler.unlink()
        assert timed_post(running, f"room-again-{uuid.uuid4()}") < 5


# 5. No client holds more than its share.


def test_a_long_url_is_414_and_a_large_head_431(server: Served) -> None:
    with connect(server) as sock:
        sock.sendall(b"POST /v1/" + b"x" * 100_000 + b" HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert status_of(read_all(sock)) == 414
    with connect(server) as sock:
        sock.sendall(b"POST " + PATH.encode() + b" HTTP/1.1\r\nHost: localhost\r\nX-Big: ")
        sock.sendall(b"y" * 100_000 + b"\r\n\r\n")
        assert status_of(read_all(sock)) == 431


def test_a_large_body_sent_with_its_head_in_one_write_is_not_counted_as_head(
    server: Served,
) -> None:
    tracking_id = f"large-{uuid.uuid4()}"
    document = json.loads(body(tracking_id))
    document["actionName"] = "a" * (3 * 2**20)
    with connect(server) as sock:
        sock.sendall(http_request(PATH, json.dumps(document).encode(), "Connection: close"))
        answer = read_all(sock)
    assert status_of(answer) == 200, answer[:300]
    assert tracking_id in stored_tracking_ids(server.db)


def test_a_128_mib_header_is_cut_short_and_others_are_served_meanwhile(server: Served) -> None:
    sent = 0
    with normal_traffic(server) as times, connect(server) as sock:
        sock.sendall(b"POST " + PATH.encode() + b" HTTP/1.1\r\nHost: localhost\r\nX-Huge: ")
        chunk = b"z" * 65536
        with contextlib.suppress(OSError):
            while sent < 128 * 2**20:
                sock.sendall(chunk)
                sent += len(chunk)
        answer = read_all(sock)
        time.sleep(0.5)
    assert sent < 128 * 2**20  # the server closed the connection long before
    assert status_of(answer) == 431
    assert times
    assert max(times) < 1


@pytest.fixture(scope="module")
def strict_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A server with short timeouts and few connections, to see them at work quickly."""
    db = tmp_path_factory.mktemp("strict") / "strict.db"
    with served(
        db, "--idle-timeout", "1", "--request-timeout", "2", "--max-connections", "300"
    ) as running:
        yield running


def test_silent_and_slow_connections_time_out_while_others_are_served(
    strict_server: Served,
) -> None:
    sockets: list[socket.socket] = []
    try:
        with normal_traffic(strict_server) as times:
            for index in range(200):
                sock = connect(strict_server)
                if index % 2:  # half never send a byte; half send half a head
                    sock.sendall(b"POST " + PATH.encode() + b" HTTP/1.1\r\nHost: localhost\r\n")
                sockets.append(sock)
            time.sleep(3.5)  # past both timeouts, with the sweep's margin
        closed = [read_to_close(sock, timeout=2) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()
    assert times
    assert max(times) < 1
    assert all(was_closed for _, was_closed in closed)
    slow = [answer for index, (answer, _) in enumerate(closed) if index % 2]
    silent = [answer for index, (answer, _) in enumerate(closed) if not index % 2]
    assert all(status_of(answer) == 408 for answer in slow), slow[:3]
    assert all(answer == b"" for answer in silent)


def test_connections_beyond_the_cap_get_503_and_the_server_stays_up(
    strict_server: Served,
) -> None:
    sockets = [connect(strict_server) for _ in range(300)]
    try:
        with connect(strict_server) as extra:
            answer = read_all(extra, timeout=5)
        assert status_of(answer) == 503
        assert b"connections open" in answer
        with grpc.insecure_channel(strict_server.grpc_target) as channel:
            check = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
        assert check.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        for sock in sockets:
            sock.close()
    time.sleep(0.5)
    assert timed_post(strict_server, f"after-cap-{uuid.uuid4()}") < 1


# 6. Start-up errors are one line naming the path, and the file is left alone.


def _digest(path: pathlib.Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("not a database", "it is not a SQLite database, or it is damaged"),
        ("truncated", "it is not a SQLite database, or it is damaged"),
        ("directory", "is a directory, not a file"),
        ("missing folder", "cannot be created: no folder"),
        (
            "another application's",
            "it holds another application's tables (orders, treatments), "
            "not an auxia-decision store",
        ),
    ],
)
def test_an_unusable_database_is_one_line_and_left_alone(
    tmp_path: pathlib.Path, case: str, expected: str
) -> None:
    db = tmp_path / "store.db"
    if case == "not a database":
        db.write_bytes(b"this is not a database, " * 100)
    elif case == "truncated":
        with served(db) as running:
            timed_post(running, "before-truncation")
        db.write_bytes(db.read_bytes()[:1000])
    elif case == "directory":
        db.mkdir()
    elif case == "another application's":
        other = sqlite3.connect(db)
        other.executescript("CREATE TABLE orders (id INTEGER); CREATE TABLE treatments (x TEXT);")
        other.close()
    else:
        db = tmp_path / "no" / "such" / "store.db"
    before = _digest(db) if db.is_file() else None
    result = serve_command("--db", str(db), "--rest-port", "0", "--grpc-port", "0")
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"error: the database {db} ")
    assert expected in line
    assert (_digest(db) if db.is_file() else None) == before


def test_a_database_locked_at_start_is_one_line_naming_it(tmp_path: pathlib.Path) -> None:
    db = tmp_path / "store.db"
    with served(db) as running:
        timed_post(running, "before-lock")
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # longer than the busy timeout (5 s)
    try:
        result = serve_command("--db", str(db), "--rest-port", "0", "--grpc-port", "0")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"error: the database {db} cannot be used: the store is locked by another connection; "
        "nothing was written: try again"
    ]


def test_a_read_only_database_is_one_line(small_disk: pathlib.Path) -> None:
    db = small_disk / "store.db"
    with served(db) as running:
        timed_post(running, "before-read-only")
    before = _digest(db)
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    result = serve_command("--db", str(db), "--rest-port", "0", "--grpc-port", "0")
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"error: the database {db} cannot be used")
    assert _digest(db) == before


def test_a_key_in_two_projects_is_a_seed_error_naming_both(tmp_path: pathlib.Path) -> None:
    project = {
        "numericProjectId": "1",
        "apiKeys": ["SHARED_KEY"],
        "supportedLanguageCodes": ["en"],
    }
    seed = {
        "projects": [
            {**project, "projectId": "A"},
            {**project, "projectId": "B", "numericProjectId": "2"},
        ]
    }
    path = tmp_path / "seed.json"
    path.write_text(json.dumps(seed))
    result = serve_command("--seed", str(path), "--db", ":memory:", "--rest-port", "0")
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert line == (
        f"error: the seed {path} is invalid: projects[1].apiKeys[0]: the key is also a key "
        'of project "A" (projects[0]): a key belongs to one project'
    )
    assert "SHARED_KEY" not in result.stderr


def _numeric_id_an_object(seed: dict[str, Any]) -> None:
    seed["projects"][0]["numericProjectId"] = {"a": 1}


def _unknown_treatment_type(seed: dict[str, Any]) -> None:
    seed["projects"][0]["treatments"][0]["insert"]["treatmentTypeName"] = "NOPE"


def _rule_on_no_data_field(seed: dict[str, Any]) -> None:
    seed["projects"][0]["treatments"][1]["insert"]["eligibilityRules"]["rules"][0][
        "dataFieldId"
    ] = "999"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            _numeric_id_an_object,
            "projects[0].numericProjectId: expected an integer (a number or a string), "
            "got an object",
        ),
        (
            _unknown_treatment_type,
            "projects[0].treatments[0].insert.treatmentTypeName: no treatment type NOPE",
        ),
        (
            _rule_on_no_data_field,
            "projects[0].treatments[1].insert.eligibilityRules.rules[0].dataFieldId: "
            "the project has no data field 999: resolve it with GetDataFields first",
        ),
    ],
    ids=["a wrong type", "an unknown treatment type", "a rule on no data field"],
)
def test_a_seed_error_names_its_place_in_the_seed_and_nothing_else(
    tmp_path: pathlib.Path, change: Callable[[dict[str, Any]], None], expected: str
) -> None:
    seed = json.loads(default_seed_text())
    change(seed)
    path = tmp_path / "seed.json"
    path.write_text(json.dumps(seed))
    result = serve_command("--seed", str(path), "--db", ":memory:", "--rest-port", "0")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"error: the seed {path} is invalid: {expected}"]


# 7. Smaller faults.


@pytest.mark.parametrize("key", [f"{KEY} ", f"{KEY}\t", f" {KEY}", f"\t{KEY} "])
def test_white_space_around_the_key_is_not_part_of_it(server: Served, key: str) -> None:
    payload = body(f"spaces-{uuid.uuid4()}")
    with connect(server) as sock:
        request = http_request(PATH, payload).replace(
            f"x-api-key: {KEY}".encode(), f"x-api-key: {key}".encode()
        )
        sock.sendall(request.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n", 1))
        assert status_of(read_all(sock)) == 200
    if "\t" in key:
        return  # gRPC clients refuse a tab in metadata: only spaces can reach the server
    with grpc.insecure_channel(server.grpc_target) as channel:
        stub = interactions_grpc.TreatmentInteractionServiceStub(channel)
        stub.LogTreatmentInteraction(_grpc_interaction(), metadata=(("x-api-key", key),))


def _grpc_interaction() -> interactions.LogTreatmentInteractionRequest:
    return interactions.LogTreatmentInteractionRequest(
        project_id="PROJECT_ID",
        treatment_tracking_id=f"grpc-{uuid.uuid4()}",
        interaction_type=interactions.LogTreatmentInteractionRequest.VIEWED,
        interaction_time_micros=1,
    )


def test_the_api_key_metadata_is_accepted_over_grpc_as_the_header_is_over_rest(
    server: Served,
) -> None:
    with grpc.insecure_channel(server.grpc_target) as channel:
        stub = interactions_grpc.TreatmentInteractionServiceStub(channel)
        stub.LogTreatmentInteraction(_grpc_interaction(), metadata=(("api-key", KEY),))
        with pytest.raises(grpc.RpcError) as caught:
            stub.LogTreatmentInteraction(
                _grpc_interaction(), metadata=(("x-api-key", "WRONG"), ("api-key", KEY))
            )
    assert isinstance(caught.value, grpc.Call)
    assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED  # x-api-key wins


def test_garbage_to_health_and_reflection_is_invalid_argument_without_a_traceback(
    tmp_path: pathlib.Path,
) -> None:
    garbage = b"\xff\xff\xff garbage"
    with served(tmp_path / "health.db") as running:
        with grpc.insecure_channel(running.grpc_target) as channel:
            check = channel.unary_unary(
                "/grpc.health.v1.Health/Check", request_serializer=None, response_deserializer=None
            )
            with pytest.raises(grpc.RpcError) as health_error:
                check(garbage, timeout=10)
            watch = channel.unary_stream(
                "/grpc.health.v1.Health/Watch", request_serializer=None, response_deserializer=None
            )
            with pytest.raises(grpc.RpcError) as watch_error:
                list(watch(garbage, timeout=10))
            info = channel.stream_stream(
                "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
                request_serializer=None,
                response_deserializer=None,
            )
            with pytest.raises(grpc.RpcError) as reflection_error:
                list(info(iter([garbage]), timeout=10))
            listed = list(info(iter([_list_services()]), timeout=10))
        status, output = running.stop()
    for caught in (health_error, watch_error, reflection_error):
        assert isinstance(caught.value, grpc.Call)
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert b"io.auxia.decision.model.TreatmentManagementService" in listed[0]
    assert status == 0
    assert "Traceback" not in output


def _list_services() -> bytes:
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    return bytes(request.SerializeToString())


def test_an_encoded_body_is_415(server: Served) -> None:
    response = httpx.post(
        server.rest_url + PATH,
        content=body("gzip"),
        headers={"content-type": "application/json", "x-api-key": KEY, "content-encoding": "gzip"},
        timeout=10,
    )
    assert response.status_code == 415
    assert "Content-Encoding: gzip" in response.json()["message"]


def test_http11_without_host_is_400(server: Served) -> None:
    with connect(server) as sock:
        request = http_request(PATH, body("no-host"), "Connection: close", host=False)
        sock.sendall(request)
        answer = read_all(sock)
    assert status_of(answer) == 400
    assert b"Host header" in answer


# 8. The command line and the client, as a new user tries them.


def cli(*args: str, stdin: str = "", **environment: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("AUXIA_API_KEY", "AUXIA_BASE_URL")}
    env.update(environment)
    return subprocess.run(
        [CLI, *args], input=stdin, capture_output=True, text=True, check=False, env=env, timeout=60
    )


def test_call_reads_the_request_from_stdin_with_the_key_flag(server: Served) -> None:
    result = cli(
        "call",
        "LogTreatmentInteraction",
        "--data",
        "@-",
        "--api-key",
        KEY,
        "--base-url",
        server.rest_url,
        stdin=body("stdin").decode(),
    )
    assert (result.returncode, json.loads(result.stdout)) == (0, {}), result.stderr


def test_call_takes_the_base_url_from_the_environment(server: Served) -> None:
    result = cli(
        "call",
        "LogTreatmentInteraction",
        "--data",
        body("env").decode(),
        AUXIA_API_KEY=KEY,
        AUXIA_BASE_URL=server.rest_url,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["validate", "InsertTreatment", "/no/such/request.json"], "error: cannot read "),
        (["call", "InsertTreatment", "--data", "@/no/such.json", "--api-key", "K"], "error: "),
        (["call", "InsertTreatment", "--data", "{}"], "error: no API key: pass --api-key"),
        (
            ["serve", "--db", ":memory:", "--rest-port", "70000"],
            "auxia-decision serve: error: argument --rest-port: not a port (0 to 65535",
        ),
        (
            ["serve", "--db", ":memory:", "--idle-timeout", "nan"],
            "auxia-decision serve: error: argument --idle-timeout: not a number of seconds",
        ),
        (
            ["serve", "--db", ":memory:", "--clock", "0001-01-01T00:00:00+14:00"],
            "auxia-decision serve: error: argument --clock: a time from 0001-01-01",
        ),
        (["serve", "--bogus"], "auxia-decision: error: unrecognized arguments: --bogus (see "),
        (
            ["admin", "journal", "--base-url", "http://127.0.0.1:notaport", "--admin-key", "K"],
            "error: --base-url: not an http:// or https:// URL",
        ),
        (
            ["proxy", "--upstream", "http://user:pw_S3CRET@127.0.0.1:1"],
            "error: the upstream has an @ in it, as a user would (the URL is not shown)",
        ),
    ],
    ids=[
        "validate a missing file",
        "call with a missing file",
        "call without a key",
        "a port out of range",
        "seconds that are no number",
        "a clock out of range",
        "an unknown flag",
        "a base URL whose port is no number",
        "an upstream with a password",
    ],
)
def test_cli_mistakes_are_one_line(args: list[str], expected: str) -> None:
    result = cli(*args)
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith(expected)


def test_one_port_for_both_rest_and_grpc_is_refused_in_one_line() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    result = cli("serve", "--db", ":memory:", "--rest-port", port, "--grpc-port", port)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"error: the REST and the gRPC port are both 127.0.0.1:{port}: give each its own"
    ]


def test_version_is_printed() -> None:
    result = cli("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("auxia-decision ")


def test_no_http_answer_is_reported_as_such() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = cli(
        "call",
        "LogTreatmentInteraction",
        "--data",
        body("nobody").decode(),
        "--api-key",
        KEY,
        "--base-url",
        f"http://127.0.0.1:{port}",
    )
    assert result.returncode == 1
    first = result.stderr.splitlines()[0]
    assert first.startswith("UNAVAILABLE (no HTTP answer): LogTreatmentInteraction failed")
    assert "HTTP 503" not in result.stderr


def test_one_violation_is_said_once_and_local_errors_name_no_http_status(
    tmp_path: pathlib.Path,
) -> None:
    request = tmp_path / "request.json"
    request.write_text('{"projectId": "P", "treatmentTrackingId": "t", "interactionType": 7.5}')
    result = cli("validate", "LogTreatmentInteraction", str(request))
    assert result.returncode == 1
    assert "HTTP" not in result.stderr
    assert "<request>" not in result.stderr
    lines = result.stderr.splitlines()
    assert lines[0] == "INVALID_ARGUMENT: the request has 2 invalid fields"
    # The type error, and the required field it would otherwise hide, in one answer.
    assert lines[1:] == [
        "  interactionType: expected an enum value name or an integer, got 7.5",
        "  interactionTimeMicros: required",
    ]
    request.write_text("{")
    single = cli("validate", "LogTreatmentInteraction", str(request))
    assert single.stderr.splitlines() == [
        "INVALID_ARGUMENT: malformed JSON at line 1 column 2: "
        "Expecting property name enclosed in double quotes"
    ]


def test_type_errors_and_missing_fields_come_in_one_answer_over_rest(server: Served) -> None:
    response = _post_json(server.rest_url + PATH, KEY, b'{"interactionType": 7.5}')
    assert response.status_code == 400
    fields = [v["field"] for v in response.json()["details"][0]["fieldViolations"]]
    assert fields == [
        "interactionType",
        "projectId",
        "treatmentTrackingId",
        "interactionTimeMicros",
    ]
