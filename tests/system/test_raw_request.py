"""The raw-request extension: the read a request's head began, offered only when it is one.

The REST connection (``_transport/http.py``) offers each request the bytes of
the read that began with its head and held all of it, so that the journal
keeps them instead of joining the headers again. Over a real socket, an ASGI
app on that connection records what it was offered: the read when a request
came whole in it, and nothing when its head was split, or began after another
request in the same read.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator, MutableMapping
from typing import Any

import pytest

from auxia_decision.server._transport.asgi import RAW_REQUEST, RECEIVED, Receive, Send
from auxia_decision.server._transport.http import HttpLimits, protocol_with
from auxia_decision.server._transport.runtime import bound_socket, start_rest
from tests._raw_http import PATH, body, http_request, read_all

_PAUSE = 0.2
"""Seconds between two writes meant to arrive as two reads."""


class _Recorder:
    """An ASGI app that answers 200 and records each request's raw-request extension."""

    def __init__(self) -> None:
        self.offered: list[bytes | None] = []

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body", False):
            pass
        raw = scope.get("extensions", {}).get(RAW_REQUEST)
        self.offered.append(None if raw is None else raw[RECEIVED])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})


@pytest.fixture(scope="module")
def recorded() -> Iterator[tuple[_Recorder, int]]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    recorder = _Recorder()
    sock = bound_socket("127.0.0.1", 0)
    protocol = protocol_with(HttpLimits(), 4096)
    server, task = asyncio.run_coroutine_threadsafe(
        start_rest(recorder, sock, protocol), loop
    ).result(30)
    try:
        yield recorder, sock.getsockname()[1]
    finally:

        async def stop() -> None:
            server.should_exit = True
            await task

        asyncio.run_coroutine_threadsafe(stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
        sock.close()


def _send(port: int, *writes: bytes) -> None:
    """Write each piece apart, a pause between them, and read the answers to the end."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for number, piece in enumerate(writes):
            if number:
                time.sleep(_PAUSE)
            sock.sendall(piece)
        sock.shutdown(socket.SHUT_WR)
        read_all(sock)


_ONE = http_request(PATH, body("raw-one"))
_TWO = http_request(PATH, body("raw-two"))
_HEAD_END = _ONE.index(b"\r\n\r\n") + 4


@pytest.mark.parametrize(
    ("writes", "offered"),
    [
        ((_ONE,), [_ONE]),
        ((_ONE[:20], _ONE[20:]), [None]),  # the head in two reads
        ((_ONE[:_HEAD_END], _ONE[_HEAD_END:]), [_ONE[:_HEAD_END]]),  # the body read apart
        ((_ONE + _TWO,), [_ONE + _TWO, None]),  # the second began after the first
        ((_ONE, _TWO), [_ONE, _TWO]),
    ],
    ids=["whole", "head-split", "body-apart", "pipelined", "one-read-each"],
)
def test_a_request_is_offered_the_read_its_head_began_and_ended_in(
    recorded: tuple[_Recorder, int], writes: tuple[bytes, ...], offered: list[bytes | None]
) -> None:
    recorder, port = recorded
    recorder.offered.clear()
    _send(port, *writes)
    assert recorder.offered == offered
