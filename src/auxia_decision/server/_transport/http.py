"""The HTTP/1.1 connections of the REST gateway: uvicorn's httptools protocol, with limits.

What it adds to uvicorn, so that no client can hold more than its share:

- a request head (request line and headers) larger than ``max_head_bytes``
  is refused as soon as it is seen, with 414 if its URL alone is larger than
  ``max_url_bytes`` and 431 otherwise; the connection is closed and nothing
  of it reaches the parser's buffers;
- a connection that sends nothing within ``idle_timeout`` seconds of being
  opened, or of its last answer, is closed; a request that is not complete
  ``request_timeout`` seconds after its first byte gets 408 and the
  connection is closed;
- beyond ``max_connections`` open connections, a new one is answered 503 and
  closed at once, so that the file descriptors of the process are never all
  taken by one transport;
- an ``Upgrade`` to anything but a WebSocket (``h2c``, as ``curl --http2``
  asks for) is ignored, as RFC 9110 allows: the request, body included, is
  answered over HTTP/1.1 and the connection goes on as HTTP/1.1. llhttp stops
  at the end of the head of such a request; its body is read here (a
  ``Content-Length`` body; a chunked one is refused with 400 and the
  connection closed), and the bytes after it go to a fresh parser. The body
  of a request is never parsed as a request.

Each request's scope offers the whole-answer extension (``asgi``): the
gateway's answer (status line, headers and body) leaves in one write (one
``send`` system call with uvloop), where uvicorn's two ASGI messages write
the head and the body apart. A request whose head began a read and ended in
it also gets the raw-request extension: the bytes of that read.
"""

from __future__ import annotations

import asyncio
import json
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Final

import httptools
from uvicorn.protocols.http.httptools_impl import (
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)

from auxia_decision._errors import Code
from auxia_decision.server._transport.asgi import ANSWER, RAW_REQUEST, RECEIVED, WHOLE_ANSWER

_RESERVED_DESCRIPTORS: Final = 1024


@dataclass(frozen=True)
class HttpLimits:
    """What one HTTP connection may take of the server.

    Args:
        max_url_bytes: the longest request target (path and query).
        max_head_bytes: the largest request line and headers together.
        idle_timeout: seconds a connection may stay silent before its first
            request and between requests.
        request_timeout: seconds from a request's first byte to its last.
        max_connections: open connections at most; None: the process's limit
            of file descriptors less 1,024 for everything else.

    """

    max_url_bytes: int = 8 * 1024
    max_head_bytes: int = 64 * 1024
    idle_timeout: float = 5.0
    request_timeout: float = 30.0
    max_connections: int | None = None


def _status_json(code: Code, message: str) -> bytes:
    return json.dumps({"code": int(code), "message": message}).encode()


class _LimitExceededError(Exception):
    """A parser callback found the request over a limit; the answer's status and message."""

    def __init__(self, status: int, code: Code, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class LimitedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the limits of ``HttpLimits`` (see the module).

    Timeouts cost a request no timer of its own: each connection keeps a
    deadline (a float), and one sweep a fraction of a second apart closes the
    connections past theirs.
    """

    limits: ClassVar[HttpLimits] = HttpLimits()
    max_connections: ClassVar[int] = 1024
    _sweeps: ClassVar[dict[asyncio.AbstractEventLoop, asyncio.TimerHandle]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # noqa: ANN401 - uvicorn's arguments
        super().__init__(*args, **kwargs)
        self._in_head = True
        self._head_bytes = 0
        self._line_length = -1
        """How long the request line is, once its end is seen; -1 before."""
        self._heads = 0
        """How many request heads the connection has read whole."""
        self._deadline = 0.0
        """When the connection times out (the event loop's clock), or 0.0: never."""
        self._on_deadline = self._on_idle
        self._body_to_read = 0
        """Bytes of the body of an upgrade request still to be read here."""
        self._received: bytes | None = None
        """The read the request's head began, while no other read has come; or None."""

    # Connections and timeouts.

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Take a connection, or answer 503 and close it when there are too many."""
        if len(self.connections) >= self.max_connections:
            transport.write(
                self._answer(
                    503,
                    Code.UNAVAILABLE,
                    f"the server has {len(self.connections)} connections open: try again later",
                )
            )
            transport.close()
            return
        super().connection_made(transport)
        self._idle()
        self._start_sweeping()

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget a connection (one refused in ``connection_made`` was never taken)."""
        self._deadline = 0.0
        if self.transport is not None:
            super().connection_lost(exc)

    def _idle(self) -> None:
        self._deadline = self.loop.time() + self.limits.idle_timeout
        self._on_deadline = self._on_idle

    def _start_sweeping(self) -> None:
        sweeps = type(self).__dict__.get("_sweeps")
        if sweeps is None:
            sweeps = {}
            type(self)._sweeps = sweeps
        if self.loop not in sweeps:
            sweeps[self.loop] = self.loop.call_later(self._sweep_interval(), self._sweep)

    @classmethod
    def _sweep_interval(cls) -> float:
        return min(cls.limits.idle_timeout, cls.limits.request_timeout) / 4

    def _sweep(self) -> None:
        """Close the connections past their deadline; sweep again while any is open."""
        sweeps = type(self)._sweeps
        now = self.loop.time()
        for connection in list(self.connections):
            if isinstance(connection, LimitedHttpProtocol) and 0.0 < connection._deadline <= now:
                connection._deadline = 0.0
                connection._on_deadline()
        if self.connections:
            sweeps[self.loop] = self.loop.call_later(self._sweep_interval(), self._sweep)
        else:
            del sweeps[self.loop]

    def _on_idle(self) -> None:
        if not self.transport.is_closing():
            self.transport.close()

    def _on_request_timeout(self) -> None:
        self._refuse(
            408,
            Code.DEADLINE_EXCEEDED,
            f"the request was not complete within {self.limits.request_timeout:g} s",
        )

    def on_response_complete(self) -> None:
        """Start a pipelined request, or let the connection idle (no timer)."""
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self._unset_keepalive_if_required()
        self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
        else:
            self._idle()

    # Reading.

    def data_received(self, data: bytes) -> None:
        """Feed the parser, within the limits."""
        if self._body_to_read:
            data = self._read_upgrade_body(data)
            if not data:
                return
        if self._in_head:
            self._received = data if self._head_bytes == 0 else None
            room = self.limits.max_head_bytes - self._head_bytes
            if len(data) > room:
                # Only what fits is read as the head; if the head does not end
                # within it, the request is refused. What follows a head that
                # did end (a body, the next request) is read on its own.
                heads = self._heads
                self._count_head(data[:room])
                self._feed(data[:room])
                if self._heads == heads:
                    if not self.transport.is_closing():
                        self._refuse_head()
                    return
                self.data_received(data[room:])
                return
            self._count_head(data)
        self._feed(data)

    def _feed(self, data: bytes) -> None:
        """Feed bytes to the parser, answering what it refuses."""
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except _LimitExceededError as error:
            self._refuse(error.status, error.code, str(error))
        except httptools.HttpParserUpgrade as upgrade:
            self._upgrade(data, int(upgrade.args[0]))
        except httptools.HttpParserCallbackError as error:
            cause = error.__context__
            if isinstance(cause, _LimitExceededError):
                self._refuse(cause.status, cause.code, str(cause))
            else:
                self._refuse(400, Code.INVALID_ARGUMENT, "invalid HTTP request")
        except httptools.HttpParserError:
            self._refuse(400, Code.INVALID_ARGUMENT, "invalid HTTP request")

    def _count_head(self, data: bytes) -> None:
        """Count bytes of a request's head (and start its timer with its first byte)."""
        if self._head_bytes == 0:  # a request starts: it must be complete in time
            self._deadline = self.loop.time() + self.limits.request_timeout
            self._on_deadline = self._on_request_timeout
            self._line_length = -1
        if self._line_length < 0:
            end = data.find(b"\n")
            if end >= 0:  # the request line is complete: the rest are headers
                self._line_length = self._head_bytes + end
        self._head_bytes += len(data)

    def _refuse_head(self) -> None:
        if self._line_length < 0 or self._line_length > self.limits.max_url_bytes:
            self._refuse(
                414,
                Code.INVALID_ARGUMENT,
                f"the request target is longer than {self.limits.max_url_bytes} bytes",
            )
        else:
            self._refuse(
                431,
                Code.INVALID_ARGUMENT,
                f"the request line and headers are larger than {self.limits.max_head_bytes} bytes",
            )

    def on_message_begin(self) -> None:
        """Start counting the head of a new request."""
        super().on_message_begin()
        self._in_head = True

    def on_url(self, url: bytes) -> None:
        """Take a piece of the request target, refusing one longer than the limit."""
        super().on_url(url)
        if len(self.url) > self.limits.max_url_bytes:
            raise _LimitExceededError(
                414,
                Code.INVALID_ARGUMENT,
                f"the request target is longer than {self.limits.max_url_bytes} bytes",
            )

    def on_headers_complete(self) -> None:
        """Stop counting the head (the body is not counted); offer the extensions."""
        self._in_head = False
        self._heads += 1
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None and cycle.scope is self.scope:  # not a WebSocket upgrade
            extensions: dict[str, Any] = {WHOLE_ANSWER: {ANSWER: _WholeAnswer(cycle)}}
            if self._received is not None:
                extensions[RAW_REQUEST] = {RECEIVED: self._received}
            self.scope["extensions"] = extensions

    def on_message_complete(self) -> None:
        """Stop the request's timer; the next bytes are the next request's head."""
        super().on_message_complete()
        self._deadline = 0.0  # the application answers; then the connection idles
        self._in_head = True
        self._head_bytes = 0
        self._received = None  # a request after this one in the same read did not begin it

    # Upgrades other than to a WebSocket.

    def _upgrade(self, data: bytes, offset: int) -> None:
        """Go on as HTTP/1.1 after llhttp stopped at the head of an upgrade request."""
        if self._should_upgrade():
            self.handle_websocket_upgrade()
            return
        headers = dict(self.headers)
        if b"transfer-encoding" in headers:
            self._refuse(
                400,
                Code.INVALID_ARGUMENT,
                "an Upgrade request with a chunked body is not supported: send it without Upgrade",
            )
            return
        try:
            length = int(headers.get(b"content-length", b"0"))
        except ValueError:
            self._refuse(400, Code.INVALID_ARGUMENT, "invalid Content-Length")
            return
        self.parser = httptools.HttpRequestParser(self)
        self.parser.set_dangerous_leniencies(lenient_data_after_close=True)
        self._head_bytes = 0
        self._in_head = True
        cycle = self.cycle
        if length > 0 and cycle is not None and not cycle.response_complete:
            # llhttp delivered no body and said the message was complete: the
            # body is read here instead, and the request is complete after it.
            cycle.more_body = True
            self._body_to_read = length
            self._deadline = self.loop.time() + self.limits.request_timeout
            self._on_deadline = self._on_request_timeout
        rest = data[offset:]
        if rest:
            self.data_received(rest)

    def _read_upgrade_body(self, data: bytes) -> bytes:
        """Give the body of an upgrade request to its cycle; return the bytes after it."""
        taken, rest = data[: self._body_to_read], data[self._body_to_read :]
        self._body_to_read -= len(taken)
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            cycle.body += taken
            if not self._body_to_read:
                cycle.more_body = False
                self._deadline = 0.0
            cycle.message_event.set()
        return rest

    # Answers the application does not give.

    @staticmethod
    def _answer(status: int, code: Code, message: str) -> bytes:
        body = _status_json(code, message)
        return b"".join(
            [
                STATUS_LINE[status],
                b"content-type: application/json\r\n",
                b"content-length: %d\r\n" % len(body),
                b"connection: close\r\n\r\n",
                body,
            ]
        )

    def _refuse(self, status: int, code: Code, message: str) -> None:
        """Answer an error the application never sees, and close the connection."""
        self._deadline = 0.0
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if cycle is None or cycle.response_complete or not cycle.response_started:
            if cycle is not None and not cycle.response_complete:
                cycle.response_complete = True  # the application's answer is not sent
                cycle.disconnected = True
                cycle.message_event.set()
            self.transport.write(self._answer(status, code, message))
        self.transport.close()


class _WholeAnswer:
    """The whole-answer extension of one request (see ``_asgi.WholeAnswer``).

    What uvicorn's two ``send`` calls would write, in one write: the status
    line, uvicorn's default headers, the app's, ``content-length`` and, when
    the connection is not kept alive, ``connection: close``; then the body
    (not for HEAD). The connection then goes on as after uvicorn's.

    It holds its cycle weakly: the cycle holds the scope, which holds this,
    and a strong reference would leave every request's objects to the
    garbage collector instead of freeing them when the request is done.
    """

    __slots__ = ("_cycle",)

    def __init__(self, cycle: RequestResponseCycle) -> None:
        self._cycle = weakref.ref(cycle)

    def __call__(self, status: int, headers: Sequence[tuple[bytes, bytes]], body: bytes) -> bool:
        """Answer the request; False: the client is not reading, send the ASGI messages."""
        cycle = self._cycle()
        if cycle is None or cycle.disconnected:
            return True  # as uvicorn's send: nobody to answer
        if cycle.response_started or cycle.flow.write_paused:
            return False
        cycle.response_started = True
        cycle.waiting_for_100_continue = False
        parts = [
            _head(status, cycle.default_headers, headers),
            b"content-length: %d\r\n" % len(body),
        ]
        if not cycle.keep_alive:
            parts.append(b"connection: close\r\n")
        parts.append(b"\r\n")
        if cycle.scope["method"] != "HEAD":
            parts.append(body)
        cycle.transport.write(b"".join(parts))
        cycle.response_complete = True
        cycle.message_event.set()
        if not cycle.keep_alive:
            cycle.transport.close()
        cycle.on_response()
        return True


# The heads written lately: by status, and by the identity of the default
# headers (uvicorn's, a new list each second for the date) and of the app's
# (the gateway's constants); each entry holds both lists, so that their ids
# are not reused while it is kept.
_HEADS: dict[tuple[int, int, int], tuple[object, object, bytes]] = {}
_MAX_HEADS: Final = 64


def _head(
    status: int,
    default_headers: Sequence[tuple[bytes, bytes]],
    headers: Sequence[tuple[bytes, bytes]],
) -> bytes:
    """Return the status line and the headers of an answer, as uvicorn writes them."""
    key = (status, id(default_headers), id(headers))
    found = _HEADS.get(key)
    if found is not None and found[0] is default_headers and found[1] is headers:
        return found[2]
    parts = [STATUS_LINE[status]]
    for name, value in (*default_headers, *headers):
        parts += (name, b": ", value, b"\r\n")
    head = b"".join(parts)
    if len(_HEADS) >= _MAX_HEADS:
        _HEADS.clear()
    _HEADS[key] = (default_headers, headers, head)
    return head


def protocol_with(limits: HttpLimits, descriptor_limit: int) -> type[LimitedHttpProtocol]:
    """Return the protocol class of a server with these limits.

    ``descriptor_limit`` is the process's limit of open files, of which the
    connections take at most all but 1,024 when ``limits.max_connections``
    is None.
    """
    default = max(64, descriptor_limit - _RESERVED_DESCRIPTORS)
    return type(
        "LimitedHttpProtocol",
        (LimitedHttpProtocol,),
        {"limits": limits, "max_connections": limits.max_connections or default},
    )
