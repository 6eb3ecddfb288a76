"""The proxy's HTTP side: calls forwarded unchanged, and the upstream's answers sent back.

Each exchange is handed on to be checked once its answer is sent.
"""

from __future__ import annotations

import datetime
import time
import urllib.parse
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any, Final

from auxia_decision._errors import ApiError, Code
from auxia_decision.server._proxy.findings import (
    UPSTREAM_BROKEN,
    UPSTREAM_TIMEOUT,
    UPSTREAM_UNREACHABLE,
)
from auxia_decision.server._proxy.recording import Exchange
from auxia_decision.server._proxy.upstream import (
    UpstreamPool,
    UpstreamTimeoutError,
    UpstreamUnreachableError,
)
from auxia_decision.server._transport.asgi import ANSWER, WHOLE_ANSWER

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
Inspect = Callable[[Exchange, str], None]
"""Told of each exchange once answered, with the words of an upstream failure (or "")."""

# Headers about one connection, not the message (RFC 9110 7.6.1): not forwarded.
_HOP_BY_HOP: Final = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authorization",  # the credentials of a proxy, not of the upstream
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
_JSON_HEADERS: Final = [(b"content-type", b"application/json")]
_NO_EXTENSIONS: Final[dict[str, Any]] = {}
_NO_BODY: Final = (204, 304)
"""Statuses whose answers have no body (nor do 1xx): they leave as two ASGI messages."""


class UpstreamUrlError(ValueError):
    """An --upstream that is not an http:// or https:// URL of a host."""


@dataclass(frozen=True)
class Upstream:
    """Where calls are forwarded: a scheme, a host, a port and a path prefix."""

    scheme: bytes
    host: bytes
    port: int
    prefix: bytes
    """Put before each request's path (empty, or a path without a trailing slash)."""
    authority: bytes
    """The Host header the upstream is sent."""
    url: str

    @classmethod
    def parse(cls, url: str) -> Upstream:
        """Read an upstream URL; raise UpstreamUrlError saying what is wrong with it."""
        if "@" in url:  # a user, and maybe a password, whatever else is malformed
            msg = (
                "the upstream has an @ in it, as a user would (the URL is not shown): "
                "give only the origin"
            )
            raise UpstreamUrlError(msg)
        try:
            parts = urllib.parse.urlsplit(url)
            port = parts.port
        except ValueError as error:
            msg = f"the upstream {url!r} is not a URL: {error}"
            raise UpstreamUrlError(msg) from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            msg = f"the upstream {url!r} is not an http:// or https:// URL of a host"
            raise UpstreamUrlError(msg)
        if parts.query or parts.fragment:
            msg = f"the upstream {url!r} has a query or a fragment: give only the origin"
            raise UpstreamUrlError(msg)
        default = 443 if parts.scheme == "https" else 80
        return cls(
            scheme=parts.scheme.encode(),
            host=parts.hostname.encode("idna"),
            port=port or default,
            prefix=parts.path.rstrip("/").encode(),
            authority=parts.netloc.encode("idna"),
            url=url,
        )


class ProxyApp:
    """An ASGI app that forwards every call to the upstream and answers what it answers.

    The request goes on unchanged (method, path, query, headers, body) but
    for its hop-by-hop headers and its Host, which names the upstream. The
    answer comes back unchanged (status, headers, body bytes) but for its
    hop-by-hop headers, with the Content-Length of the body (in one write,
    where the HTTP server offers the whole-answer extension). When the
    upstream cannot be reached, takes too long or answers what is not
    HTTP, the caller gets 502 or 504 with a ``google.rpc.Status`` saying so.
    Each exchange is handed to ``inspect`` once its answer is sent.

    Args:
        upstream: where calls go.
        inspect: told of each exchange once answered.
        timeout: the seconds the upstream has to answer a call.

    """

    def __init__(self, upstream: Upstream, inspect: Inspect, timeout: float) -> None:
        self.upstream = upstream
        self._inspect = inspect
        self.timeout = timeout
        self._clock = _UtcClock()
        self._pool = UpstreamPool(
            upstream.host.decode(),
            upstream.port,
            tls=upstream.scheme == b"https",
            timeout=timeout,
        )

    def close(self) -> None:
        """Close the connections to the upstream."""
        self._pool.close()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one ASGI scope: forward an HTTP call."""
        if scope["type"] != "http":
            return
        began = self._clock.now()
        body = await _body(receive)
        if body is None:  # the caller went away mid-request: nothing to forward
            return
        query: bytes = scope.get("query_string", b"")
        target = scope.get("raw_path") or scope["path"].encode()
        if query:
            target = b"%s?%s" % (target, query)
        request_headers: list[tuple[bytes, bytes]] = scope["headers"]
        failure, kind = "", ""
        try:
            status, headers, answer = await self._forward(
                scope["method"], target, request_headers, body
            )
        except UpstreamTimeoutError:
            kind = UPSTREAM_TIMEOUT
            failure = f"the upstream {self.upstream.url} did not answer within {self.timeout:g} s"
            error = ApiError(Code.DEADLINE_EXCEEDED, failure, http_status=504)
        except UpstreamUnreachableError as reason:
            kind = UPSTREAM_UNREACHABLE
            failure = f"the upstream {self.upstream.url} cannot be reached: {reason}"
            error = ApiError(Code.UNAVAILABLE, failure, http_status=502)
        except Exception as reason:  # whatever else the upstream did, it broke off
            kind = UPSTREAM_BROKEN
            failure = f"the upstream {self.upstream.url} broke off: {_words(reason)}"
            error = ApiError(Code.UNAVAILABLE, failure, http_status=502)
        if kind:
            status, headers, answer = error.http_status or 502, _JSON_HEADERS, error.to_json()
        whole = scope.get("extensions", _NO_EXTENSIONS).get(WHOLE_ANSWER)
        bodiless = status < 200 or status in _NO_BODY
        if whole is None or bodiless or not whole[ANSWER](status, headers, answer):
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [*headers, (b"content-length", b"%d" % len(answer))],
                }
            )
            await send({"type": "http.response.body", "body": answer})
        exchange = Exchange(
            time=began,
            method="",
            http_method=scope["method"],
            target=target.decode("latin-1"),
            request_headers=request_headers,
            request_body=body,
            status=status,
            response_headers=headers,
            response_body=answer,
            error=kind,
        )
        self._inspect(exchange, failure)

    async def _forward(
        self, method: str, target: bytes, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        upstream = self.upstream
        sent = [(b"host", upstream.authority)]
        has_length = False
        for name, value in headers:
            if name == b"host" or name in _HOP_BY_HOP:
                continue
            has_length = has_length or name == b"content-length"
            sent.append((name, value))
        if body and not has_length:  # it came chunked
            sent.append((b"content-length", b"%d" % len(body)))
        head = b"%s %s%s HTTP/1.1" % (method.encode(), upstream.prefix, target)
        answer = await self._pool.send(head, sent, body)
        kept = [
            (name, value)
            for name, value in answer.headers
            if name.lower() not in _HOP_BY_HOP and name.lower() != b"content-length"
        ]
        return answer.status, kept, answer.body


async def _body(receive: Receive) -> bytes | None:
    """Read a request's whole body; None when the caller disconnects first."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


class _UtcClock:
    """Tells the time as ``datetime.isoformat`` writes it in UTC, with microseconds.

    The text of the second is kept: formatting a datetime for every call
    costs more than the rest of noting when it came.
    """

    def __init__(self) -> None:
        self._second = -1
        self._text = ""

    def now(self) -> str:
        """Return the time now (``2026-12-06T12:00:00.123456+00:00``)."""
        second, micros = divmod(time.time_ns() // 1000, 1_000_000)
        if second != self._second:
            moment = datetime.datetime.fromtimestamp(second, datetime.UTC)
            self._second, self._text = second, moment.strftime("%Y-%m-%dT%H:%M:%S")
        return f"{self._text}.{micros:06d}+00:00"


def _words(error: BaseException) -> str:
    return str(error) or type(error).__name__
