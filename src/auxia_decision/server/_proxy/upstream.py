"""The proxy's client of the upstream: keep-alive HTTP/1.1 connections, one call at a time each.

Its own rather than a general client's: the proxy adds every microsecond it
spends per call to the caller's latency and takes it from the upstream's
cores, and under concurrency a general pool cost it many times more
(bench/NOTES.md, "The proxy's upstream client"). Responses are read by
httptools' parser (the server's own), whole: with a Content-Length,
chunked, or up to the close of the connection. A call the upstream does not
answer in time fails when a sweep of the calls in flight (a few times per
timeout) finds it late, rather than with a timer of its own: asyncio's
timeouts cost several microseconds per call (bench/NOTES.md, "The proxy's
upstream client").
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Sequence
from typing import Final, cast

import httptools

_HEADERS_SEEN: Final = "headers"
_SWEEPS_PER_TIMEOUT: Final = 10


class UpstreamUnreachableError(Exception):
    """No connection to the upstream could be made."""


class UpstreamBrokenError(Exception):
    """The upstream answered what is not HTTP/1.1, or closed before its answer ended."""


class UpstreamTimeoutError(Exception):
    """The upstream did not answer (or let itself be connected to) within the timeout."""


class Answer:
    """An upstream's answer: its status, headers (as received) and whole body."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body


class _Connection(asyncio.Protocol):
    """One connection to the upstream; ``exchange`` sends a request and reads its answer."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._parser: httptools.HttpResponseParser | None = None
        self._answer: asyncio.Future[Answer] | None = None
        self._headers: list[tuple[bytes, bytes]] = []
        self._body: list[bytes] = []
        self._state = ""
        self._reads_to_close = False
        self.received = False
        """Whether the current request has had any byte of an answer."""
        self._bodiless = False
        """Whether the current answer has no body whatever its headers say (HEAD's)."""

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.received = True
        if self._parser is None:  # nothing asked: the upstream talks out of turn
            self.fail(UpstreamBrokenError("it sent bytes no request asked for"))
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as error:
            self.fail(UpstreamBrokenError(f"its answer is not HTTP/1.1 ({error})"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        answer = self._answer
        if answer is None or answer.done():
            return
        if self._state == _HEADERS_SEEN and self._reads_to_close:
            self.on_message_complete()  # an answer without a length ends with its connection
            return
        reason = f"({exc})" if exc is not None else "by the upstream"
        answer.set_exception(UpstreamBrokenError(f"the connection closed mid-answer {reason}"))

    # httptools' callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        self._state = _HEADERS_SEEN
        lengths = {b"content-length", b"transfer-encoding"}
        self._reads_to_close = not any(name.lower() in lengths for name, _ in self._headers)
        if self._bodiless:  # the parser would wait for the body the headers announce
            self._reads_to_close = True  # and the connection is not reused after it
            self.on_message_complete()

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        answer, parser = self._answer, self._parser
        if answer is None or parser is None or answer.done():
            return
        keep = parser.should_keep_alive() and not self._reads_to_close
        answer.set_result(Answer(parser.get_status_code(), self._headers, b"".join(self._body)))
        self._parser = None
        if not keep:
            self.close()

    # Used by the pool

    def exchange(self, request: bytes, *, bodiless: bool = False) -> asyncio.Future[Answer]:
        """Send one request's bytes; return its answer's future (``bodiless``: a HEAD's)."""
        assert self.transport is not None
        self._answer = asyncio.get_running_loop().create_future()
        self._parser = httptools.HttpResponseParser(self)
        self._headers, self._body, self._state = [], [], ""
        self.received = False
        self._bodiless = bodiless
        self.transport.write(request)
        return self._answer

    def fail(self, error: Exception) -> None:
        """Fail the call in flight with ``error`` and close the connection."""
        if self._answer is not None and not self._answer.done():
            self._answer.set_exception(error)
        self.close()

    def close(self) -> None:
        """Close the connection."""
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class UpstreamPool:
    """Keep-alive connections to one upstream, each carrying one call at a time.

    Args:
        host: the host to connect to.
        port: its port.
        tls: whether to speak TLS (https), verifying the host's certificate.
        timeout: the seconds a call has to be answered, connecting included (an
            unanswered call fails ``timeout`` to ``timeout * 1.1`` seconds after it began).

    """

    def __init__(self, host: str, port: int, *, tls: bool, timeout: float) -> None:
        self._host = host
        self._port = port
        self._ssl = ssl.create_default_context() if tls else None
        self._idle: list[_Connection] = []
        self.timeout = timeout
        self._busy: dict[_Connection, float] = {}
        """The connections with a call in flight, and when (``loop.time()``) it is late."""
        self._sweep_every = timeout / _SWEEPS_PER_TIMEOUT
        self._sweeping: asyncio.TimerHandle | None = None

    async def send(
        self, head: bytes, headers: Sequence[tuple[bytes, bytes]], body: bytes
    ) -> Answer:
        """Send a request (its request line and headers, without the blank line) and its body.

        Raises UpstreamUnreachableError, UpstreamBrokenError or
        UpstreamTimeoutError.
        """
        request = b"".join(
            [head, b"\r\n", *(b"%s: %s\r\n" % pair for pair in headers), b"\r\n", body]
        )
        bodiless = head.startswith(b"HEAD ")
        deadline = asyncio.get_running_loop().time() + self.timeout
        connection, reused = await self._connection(deadline)
        try:
            answer = await self._exchange(connection, request, bodiless, deadline)
        except UpstreamBrokenError:
            connection.close()
            if not reused or connection.received:
                raise
            # A kept-alive connection the upstream closed as the request left: once more,
            # on a new connection (nothing of the request was answered).
            connection = await self._connect(deadline)
            answer = await self._exchange(connection, request, bodiless, deadline)
        except BaseException:
            connection.close()
            raise
        if not connection.closed:
            self._idle.append(connection)
        return answer

    async def _exchange(
        self, connection: _Connection, request: bytes, bodiless: bool, deadline: float
    ) -> Answer:
        answer = connection.exchange(request, bodiless=bodiless)
        self._busy[connection] = deadline
        if self._sweeping is None:
            self._sweeping = asyncio.get_running_loop().call_later(self._sweep_every, self._sweep)
        try:
            return await answer
        finally:
            self._busy.pop(connection, None)

    def _sweep(self) -> None:
        """Fail the calls in flight that are late; sweep again while any is in flight."""
        self._sweeping = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        late = [connection for connection, deadline in self._busy.items() if deadline <= now]
        for connection in late:
            del self._busy[connection]
            connection.fail(UpstreamTimeoutError(f"no answer within {self.timeout:g} s"))
        if self._busy:
            self._sweeping = loop.call_later(self._sweep_every, self._sweep)

    async def _connection(self, deadline: float) -> tuple[_Connection, bool]:
        """Return an idle connection (and True), or a new one (and False)."""
        while self._idle:
            connection = self._idle.pop()
            if not connection.closed:
                return connection, True
        return await self._connect(deadline), False

    async def _connect(self, deadline: float) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout_at(deadline):
                _, protocol = await loop.create_connection(
                    _Connection,
                    self._host,
                    self._port,
                    ssl=self._ssl,
                    server_hostname=self._host if self._ssl is not None else None,
                )
        except TimeoutError:
            msg = f"no connection within {self.timeout:g} s"
            raise UpstreamTimeoutError(msg) from None
        except OSError as error:
            raise UpstreamUnreachableError(error.strerror or str(error)) from None
        return protocol

    def close(self) -> None:
        """Close every idle connection, and stop sweeping."""
        for connection in self._idle:
            connection.close()
        self._idle.clear()
        if self._sweeping is not None:
            self._sweeping.cancel()
            self._sweeping = None
