"""The REST load: keep-alive HTTP/1.1 connections, each sending one request after another."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable
from typing import Final, cast

from tools.loadgen._requests import DECIDE_PATH, REST_PATH, decide_body, rest_body
from tools.loadgen._tally import Tally, keep_connected

_SERVED: Final = b'"treatmentTrackingId"'


class HttpConnection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection sending requests one after the other."""

    def __init__(
        self,
        tally: Tally,
        head: bytes,
        body: Callable[[int], bytes],
        done: asyncio.Future[None],
        count_served: bool,
    ) -> None:
        self.tally = tally
        self.head = head
        self.body = body
        self.done = done
        self.count_served = count_served
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.index: int | None = None
        self.started_ns = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        self._send_next()

    def _send_next(self) -> None:
        assert self.transport is not None
        self.index = self.tally.take()
        if self.index is None:
            self.transport.close()
            return
        body = self.body(self.index)
        self.started_ns = time.perf_counter_ns()
        self.transport.write(self.head + b"%d\r\n\r\n" % len(body) + body)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.index is not None:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end]).lower()
            length = 0
            close = False
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name == b"content-length":
                    length = int(value)
                elif name == b"connection" and value.strip() == b"close":
                    close = True
            if len(self.buffer) < end + 4 + length:
                return
            status = head[9:12].decode()
            if self.count_served and status.startswith("2"):
                self.tally.served += self.buffer.count(_SERVED, end + 4, end + 4 + length)
            del self.buffer[: end + 4 + length]
            self.tally.record(
                status,
                ok=status.startswith("2"),
                index=self.index,
                started_ns=self.started_ns,
            )
            self.index = None
            if close:
                assert self.transport is not None
                self.transport.close()
                return
            self._send_next()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.index is not None:
            self.tally.lost(f"connection lost: {exc or 'closed by the server'}")
            self.index = None
        if not self.done.done():
            self.done.set_result(None)


async def _rest_worker(
    host: str,
    port: int,
    head: bytes,
    tally: Tally,
    *,
    body: Callable[[int], bytes],
    count_served: bool,
) -> None:
    loop = asyncio.get_running_loop()

    async def connect() -> asyncio.Future[None]:
        done: asyncio.Future[None] = loop.create_future()
        await loop.create_connection(
            functools.partial(HttpConnection, tally, head, body, done, count_served), host, port
        )
        return done

    await keep_connected(tally, connect)


async def run_rest(
    url: str,
    tally: Tally,
    connections: int,
    *,
    key: str,
    tag: str,
    workload: str,
    users: int,
    user_stride: int = 1,
) -> None:
    address = url.removeprefix("http://").rstrip("/")
    host, _, port = address.rpartition(":")
    path = DECIDE_PATH if workload == "decide" else REST_PATH
    head = (
        f"POST {path} HTTP/1.1\r\nhost: {address}\r\ncontent-type: application/json\r\n"
        f"x-api-key: {key}\r\ncontent-length: "
    ).encode()
    if workload == "decide":
        body: Callable[[int], bytes] = functools.partial(_decide_body_of, users, user_stride)
    else:
        body = functools.partial(rest_body, tag)
    await asyncio.gather(
        *(
            _rest_worker(host, int(port), head, tally, body=body, count_served=workload == "decide")
            for _ in range(connections)
        )
    )


def _decide_body_of(users: int, stride: int, index: int) -> bytes:
    return decide_body(index, users, stride)
