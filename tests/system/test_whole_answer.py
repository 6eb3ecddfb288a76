"""The whole-answer extension: one write per answer, the same bytes as uvicorn's ASGI messages.

The served gateway answers through its connection's whole-answer extension
(``server/_asgi.py``). The same gateway object is also served on stock
uvicorn, which offers no such extension (the gateway sends the two ASGI
messages there): over real sockets, every kind of answer must be the same
bytes on both, but for the ``date`` header. And the served connection must
write each answer in one write, and fall back to the ASGI messages (which
wait) when a client stops reading.
"""

from __future__ import annotations

import asyncio
import gc
import re
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest

from auxia.decision.emulator.v1 import emulator_pb2
from auxia_decision.server._assembly import RunningServer, ServerConfig, start_server
from auxia_decision.server._transport.gateway import RestGateway
from auxia_decision.server._transport.http import LimitedHttpProtocol
from auxia_decision.server._transport.runtime import bound_socket, start_rest
from tests._raw_http import KEY, PATH, body, http_request, read_all

T = TypeVar("T")
_DATE = re.compile(rb"\r\ndate: [^\r]*\r\n")


@dataclass
class _Servers:
    """The reference server, and its gateway on stock uvicorn, on one event loop thread."""

    loop: asyncio.AbstractEventLoop
    running: RunningServer
    stock_port: int

    def run(self, make: Callable[[], Awaitable[T]]) -> T:
        """Run a coroutine on the servers' loop and return its result."""

        async def wrapped() -> T:
            return await make()

        return asyncio.run_coroutine_threadsafe(wrapped(), self.loop).result(30)


@pytest.fixture(scope="module")
def servers() -> Iterator[_Servers]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def start() -> tuple[RunningServer, Any, int]:
        running = await start_server(ServerConfig(rest_port=0, grpc_port=0, db=":memory:"))
        sock = bound_socket("127.0.0.1", 0)
        gateway = running.rest_server.config.app
        assert isinstance(gateway, RestGateway)
        stock, task = await start_rest(gateway, sock)
        return running, (stock, task), sock.getsockname()[1]

    running, (stock, task), port = asyncio.run_coroutine_threadsafe(start(), loop).result(60)
    servers = _Servers(loop, running, port)
    try:
        yield servers
    finally:

        async def stop() -> None:
            stock.stop()
            await task
            await running.stop()

        asyncio.run_coroutine_threadsafe(stop(), loop).result(60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def _exchange(port: int, request: bytes) -> bytes:
    """Send raw requests on one connection (the last one closes it); read every answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        return read_all(sock)


def _log(*extra: str) -> bytes:
    return http_request(PATH, body(f"whole-{uuid.uuid4()}"), *extra)


_REQUESTS = {
    "kept alive, two answers": lambda: _log() + _log("Connection: close"),
    "connection close": lambda: _log("Connection: close"),
    "HTTP/1.0": lambda: _log().replace(b" HTTP/1.1\r\n", b" HTTP/1.0\r\n", 1),
    "bad body 400": lambda: http_request(PATH, b'{"interactionType": 7}', "Connection: close"),
    "no key 401": lambda: _log("Connection: close").replace(f"x-api-key: {KEY}".encode(), b"x: 1"),
    "unknown path 404": lambda: http_request("/v1/Nothing", b"{}", "Connection: close"),
    "wrong method 405": lambda: (
        b"GET " + PATH.encode() + b" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    ),
    "document GET": lambda: (
        b"GET /openapi.json HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    ),
    "document HEAD": lambda: (
        b"HEAD /openapi.json HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    ),
}


@pytest.mark.parametrize("make_request", _REQUESTS.values(), ids=_REQUESTS.keys())
def test_answers_are_the_bytes_uvicorn_writes(
    servers: _Servers, make_request: Callable[[], bytes]
) -> None:
    request = make_request()
    ours = _exchange(servers.running.rest_port, request)
    stock = _exchange(servers.stock_port, request)
    assert ours.startswith(b"HTTP/1.")
    assert _DATE.sub(b"\r\n", ours) == _DATE.sub(b"\r\n", stock)


class _RecordingTransport(asyncio.Transport):
    """A connection's transport that records each write (what the server sends)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 1), "peername": ("127.0.0.1", 2)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


@pytest.mark.parametrize("requests", [1, 3])
def test_each_answer_is_one_write(servers: _Servers, requests: int) -> None:
    running = servers.running

    async def serve() -> _RecordingTransport:
        config = running.rest_server.config
        protocol_class = config.http_protocol_class
        assert isinstance(protocol_class, type)
        assert issubclass(protocol_class, LimitedHttpProtocol)
        protocol = protocol_class(
            config=config,
            server_state=running.rest_server.server_state,
            app_state={},
            _loop=asyncio.get_running_loop(),
        )
        transport = _RecordingTransport()
        protocol.connection_made(transport)
        protocol.data_received(b"".join(_log() for _ in range(requests)))
        for _ in range(500):
            if len(transport.writes) >= requests:
                break
            await asyncio.sleep(0.01)
        protocol.connection_lost(None)
        return transport

    transport = servers.run(serve)
    assert len(transport.writes) == requests
    for write in transport.writes:
        head, _, answer = write.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")
        assert answer == b"{}"


def test_a_request_leaves_nothing_to_the_garbage_collector(servers: _Servers) -> None:
    # The cycle holds the scope, which holds the extension: holding the cycle
    # back would make every request's objects garbage for the collector.
    gc.collect()
    gc.disable()
    try:
        before = sum(1 for o in gc.get_objects() if type(o).__name__ == "RequestResponseCycle")
        with socket.create_connection(("127.0.0.1", servers.running.rest_port)) as sock:
            sock.sendall(b"".join(_log() for _ in range(200)) + _log("Connection: close"))
            answers = read_all(sock)
        assert answers.count(b"HTTP/1.1 200 OK") == 201
        after = sum(1 for o in gc.get_objects() if type(o).__name__ == "RequestResponseCycle")
    finally:
        gc.enable()
    assert after - before <= 1


def test_answers_wait_for_a_client_that_does_not_read(servers: _Servers) -> None:
    # Pipelined answers of 117 KB each fill the socket's buffers while the
    # client reads nothing: the connection's writes pause, the gateway then
    # sends its ASGI messages, which wait for the client; all arrive whole.
    request = b"GET /openapi.json HTTP/1.1\r\nHost: localhost\r\n\r\n"
    last = request.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n")
    requests = 60
    one = _exchange(servers.running.rest_port, last)
    with socket.create_connection(("127.0.0.1", servers.running.rest_port), timeout=10) as sock:
        sock.sendall(request * (requests - 1) + last)
        time.sleep(1)  # the server writes until the buffers are full
        raw = read_all(sock)
    closing = len(b"connection: close\r\n")
    assert raw.count(b"HTTP/1.1 200 OK\r\n") == requests
    assert len(raw) == requests * (len(one) - closing) + closing
    assert raw.endswith(one.partition(b"\r\n\r\n")[2])


@pytest.mark.parametrize("split", [1, 40], ids=["head then body", "within the body"])
def test_a_body_that_comes_in_pieces_is_served(servers: _Servers, split: int) -> None:
    # A body that does not end in the bytes its head came in is read as it
    # comes; the next request on the connection is served as usual.
    tracking_id = f"pieces-{uuid.uuid4()}"
    first = http_request(PATH, body(tracking_id))
    cut = first.index(b"\r\n\r\n") + 4 + split - 1
    with socket.create_connection(("127.0.0.1", servers.running.rest_port), timeout=10) as sock:
        sock.sendall(first[:cut])
        time.sleep(0.2)
        sock.sendall(first[cut:] + _log("Connection: close"))
        raw = read_all(sock)
    assert raw.count(b"HTTP/1.1 200 OK\r\n") == 2, raw

    async def logged() -> list[str]:
        request = emulator_pb2.ListInteractionsRequest(project_id="PROJECT_ID", page_size=1000)
        found = await servers.running.emulator.invoke(None, "ListInteractions", request)
        assert isinstance(found, emulator_pb2.ListInteractionsResponse)
        return [logged.interaction.treatment_tracking_id for logged in found.interactions]

    assert tracking_id in servers.run(logged)
