"""What a REST connection writes: interim answers, pipelined answers, answers before a close.

Raw HTTP/1.1 to a served process: an interim ``100 Continue`` comes before
the client sends its body, pipelined requests are answered whole and in
order, and an error answered just before the server closes the connection
(or keeps it open) reaches the client whole.
"""

from __future__ import annotations

import json
import socket
import uuid

import pytest

from tests._raw_http import KEY, PATH, body, connect, http_request, read_all
from tests._served import Served
from tests._stored import stored_tracking_ids


def _answers(raw: bytes) -> list[tuple[int, bytes]]:
    """Split the raw answers of one connection into (status, body), by their Content-Length."""
    found = []
    while raw:
        head, _, rest = raw.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        fields = dict(line.lower().split(b": ", 1) for line in lines[1:])
        length = int(fields.get(b"content-length", b"0"))
        found.append((status, rest[:length]))
        raw = rest[length:]
    return found


def test_expect_100_continue_is_answered_before_the_body_is_sent(server: Served) -> None:
    tracking_id = f"continue-{uuid.uuid4()}"
    payload = body(tracking_id)
    request = http_request(PATH, payload, "Expect: 100-continue", "Connection: close")
    head = request[: len(request) - len(payload)]
    with connect(server) as sock:
        sock.sendall(head)
        sock.settimeout(5)
        interim = sock.recv(65536)  # the client waits for it before sending the body
        assert interim.startswith(b"HTTP/1.1 100 Continue\r\n"), interim
        sock.sendall(payload)
        answer = read_all(sock)
    assert _answers(answer) == [(200, b"{}")]
    assert tracking_id in stored_tracking_ids(server.db)


def test_pipelined_requests_are_answered_whole_and_in_order(server: Served) -> None:
    first, third = f"pipelined-{uuid.uuid4()}", f"pipelined-{uuid.uuid4()}"
    invalid = json.dumps({"projectId": "PROJECT_ID", "interactionType": "VIEWED"}).encode()
    with connect(server) as sock:
        sock.sendall(
            http_request(PATH, body(first))
            + http_request(PATH, invalid)
            + http_request(PATH, body(third), "Connection: close")
        )
        answers = _answers(read_all(sock))
    assert [status for status, _ in answers] == [200, 400, 200]
    assert answers[0][1] == answers[2][1] == b"{}"
    assert b"treatmentTrackingId" in answers[1][1]
    stored = set(stored_tracking_ids(server.db))
    assert {first, third} <= stored


@pytest.mark.parametrize("keep_alive", [True, False], ids=["keep-alive", "close"])
def test_every_answer_reaches_the_client_before_the_connection_ends(
    server: Served, keep_alive: bool
) -> None:
    # An answer the server closes the connection after (a refused head) and
    # one it keeps the connection open after: both arrive whole.
    with connect(server) as sock:
        if keep_alive:
            sock.sendall(http_request(PATH, b"{", "Connection: keep-alive"))
            sock.settimeout(5)
            raw = b""
            while not _whole(raw):
                chunk = sock.recv(65536)  # the connection stays open: read one answer
                assert chunk, raw
                raw += chunk
        else:
            sock.sendall(
                f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nx-api-key: {KEY}\r\n".encode()
                + b"x-filler: " + b"a" * 70_000 + b"\r\n\r\n"
            )  # fmt: skip
            raw = read_all(sock)
        sock.shutdown(socket.SHUT_WR)
    (status, answer), *rest = _answers(raw)
    assert rest == []
    assert status == (400 if keep_alive else 431)
    assert json.loads(answer)["message"]


def _whole(raw: bytes) -> bool:
    """Whether raw bytes hold a whole answer: its head and as much body as it declares."""
    head, found, rest = raw.partition(b"\r\n\r\n")
    if not found:
        return False
    length = head.lower().split(b"content-length: ", 1)[1].split(b"\r\n", 1)[0]
    return len(rest) >= int(length)
