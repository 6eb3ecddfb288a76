"""Raw HTTP/1.1 to a served process: request bytes written by hand, answers read as bytes.

For the tests that need what an HTTP client library hides: pipelining,
interim answers, oversized heads, upgrades. ``body`` is a valid
LogTreatmentInteraction with its own tracking id.
"""

from __future__ import annotations

import json
import socket
from typing import Final

from tests._served import Served

KEY: Final = "TEST_API_KEY"
PATH: Final = "/v1/LogTreatmentInteraction"


def body(tracking_id: str) -> bytes:
    """Return a valid LogTreatmentInteraction body with its own tracking id."""
    return json.dumps(
        {
            "projectId": "PROJECT_ID",
            "treatmentTrackingId": tracking_id,
            "interactionType": "VIEWED",
            "interactionTimeMicros": 1,
        }
    ).encode()


def http_request(path: str, payload: bytes, *extra: str, host: bool = True) -> bytes:
    """Return the bytes of a POST request, with more header lines if given."""
    lines = [f"POST {path} HTTP/1.1"]
    if host:
        lines.append("Host: 127.0.0.1")
    lines += [
        "Content-Type: application/json",
        f"x-api-key: {KEY}",
        f"Content-Length: {len(payload)}",
        *extra,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


def read_all(sock: socket.socket, timeout: float = 10.0) -> bytes:
    """Read until the server closes the connection or ``timeout`` passes."""
    return read_to_close(sock, timeout)[0]


def read_to_close(sock: socket.socket, timeout: float = 10.0) -> tuple[bytes, bool]:
    """Read until the server closes the connection or ``timeout`` passes; say which came.

    Returns what was read and whether the server closed (or reset) the
    connection within ``timeout``.
    """
    sock.settimeout(timeout)
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except TimeoutError:
        return b"".join(chunks), False
    except ConnectionResetError:
        pass
    return b"".join(chunks), True


def status_of(response: bytes) -> int:
    """Return the status code of the first response in raw bytes."""
    return int(response.split(b" ", 2)[1])


def count_responses(raw: bytes) -> int:
    """Return how many HTTP responses raw bytes hold."""
    return raw.count(b"HTTP/1.1 ")


def connect(served_server: Served) -> socket.socket:
    """Open a TCP connection to the server's REST port."""
    return socket.create_connection(("127.0.0.1", served_server.rest_port), timeout=10)
