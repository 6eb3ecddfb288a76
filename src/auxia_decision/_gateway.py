"""The REST gateway: an ASGI app whose routes are the services' ``google.api.http`` rules."""

from __future__ import annotations

import logging
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any, Final

from auxia_decision._codec import RestCodec
from auxia_decision._errors import ApiError, Code
from auxia_decision._routes import Route, routes
from auxia_decision._servicer import DecisionServicer

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

MAX_BODY_BYTES: Final = 4 * 1024 * 1024
_JSON_HEADERS: Final = [(b"content-type", b"application/json")]
_KEY_HEADERS: Final = (b"x-api-key", b"api-key")
_KEY_QUERY: Final = "api-key"

_log = logging.getLogger("auxia_decision.gateway")


def _is_json(content_type: bytes) -> bool:
    media_type = content_type.split(b";", 1)[0].strip().lower()
    return media_type == b"application/json" or (
        media_type.startswith(b"application/") and media_type.endswith(b"+json")
    )


class _RequestHeaders:
    """What the gateway reads from a request's headers, found in one pass over them."""

    __slots__ = ("api_key", "content_length", "content_type")

    def __init__(self, scope: Scope) -> None:
        self.api_key: str | None = None
        self.content_type = b""
        self.content_length: bytes | None = None
        keys: dict[bytes, bytes] = {}
        for name, value in scope["headers"]:
            if name in _KEY_HEADERS:
                keys.setdefault(name, value)
            elif name == b"content-type":
                self.content_type = value
            elif name == b"content-length":
                self.content_length = value
        for wanted in _KEY_HEADERS:
            if wanted in keys:
                self.api_key = keys[wanted].decode("latin-1")
                return
        query = scope.get("query_string", b"")
        if query:
            values = urllib.parse.parse_qs(query.decode("latin-1")).get(_KEY_QUERY)
            if values:
                self.api_key = str(values[0])


def api_key_of(scope: Scope) -> str | None:
    """Return the API key of a request: x-api-key or api-key header, else the api-key query."""
    return _RequestHeaders(scope).api_key


class RestGateway:
    """Serves the API as JSON over HTTP, calling the DecisionServicer.

    Every error answer is a ``google.rpc.Status`` JSON body with the HTTP status
    of the shared code table: unknown path 404, wrong method 405, missing or
    unknown key 401, wrong Content-Type 415, body over the limit 413, malformed
    or invalid JSON 400 naming each bad field. ``documents`` maps extra GET
    paths (such as ``/openapi.json``) to static JSON bodies.
    """

    def __init__(
        self,
        servicer: DecisionServicer,
        codec: RestCodec | None = None,
        *,
        max_body_bytes: int = MAX_BODY_BYTES,
        documents: Mapping[str, bytes] | None = None,
    ) -> None:
        self.servicer = servicer
        self.codec = codec or RestCodec()
        self.max_body_bytes = max_body_bytes
        self.documents = dict(documents or {})
        self._routes: dict[str, Route] = {route.path: route for route in routes()}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one ASGI connection scope."""
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await _lifespan(receive, send)
            return
        if not _log.isEnabledFor(logging.INFO):
            await self._answer(scope, receive, send)
            return
        started = time.perf_counter()
        status = await self._answer(scope, receive, send)
        # The query string may hold an API key: only the path is logged.
        _log.info(
            "%s %s %d %.1fms",
            scope["method"],
            scope["path"],
            status,
            (time.perf_counter() - started) * 1000,
        )

    async def _answer(self, scope: Scope, receive: Receive, send: Send) -> int:
        try:
            status, body = await self._handle(scope, receive)
        except ApiError as error:
            status, body = error.http_status, error.to_json()
            headers = list(_JSON_HEADERS)
            if status == 405:
                route = self._routes[scope["path"]]
                headers.append((b"allow", route.http_method.encode()))
            await _respond(send, status, body, headers)
            return status
        except Exception:
            _log.exception("internal error answering %s %s", scope["method"], scope["path"])
            internal = ApiError(Code.INTERNAL, "internal error")
            await _respond(send, 500, internal.to_json(), _JSON_HEADERS)
            return 500
        await _respond(send, status, body, _JSON_HEADERS)
        return status

    async def _handle(self, scope: Scope, receive: Receive) -> tuple[int, bytes]:
        path: str = scope["path"]
        method: str = scope["method"]
        route = self._routes.get(path)
        if route is None:
            if method == "GET" and path in self.documents:
                return 200, self.documents[path]
            known = ", ".join(sorted(self._routes))
            raise ApiError(Code.NOT_FOUND, f"no route for {path}; the API serves {known}")
        if method != route.http_method:
            raise ApiError(
                Code.UNIMPLEMENTED,
                f"{path} accepts {route.http_method}, not {method}",
                http_status=405,
            )
        headers = _RequestHeaders(scope)
        # The key is checked before the body is read, and once per request.
        project = await self.servicer.authenticate(headers.api_key)
        if not _is_json(headers.content_type):
            shown = headers.content_type.decode("latin-1") or "none"
            raise ApiError(
                Code.INVALID_ARGUMENT,
                f"the body must be application/json, not {shown}",
                http_status=415,
            )
        body = await self._read_body(headers.content_length, receive)
        request = self.codec.decode_request(body, route.request_type)
        response = await self.servicer.invoke_for(project, route.name, request)
        return 200, self.codec.encode(response)

    def _too_large(self) -> ApiError:
        return ApiError(
            Code.INVALID_ARGUMENT,
            f"the body is larger than {self.max_body_bytes} bytes",
            http_status=413,
        )

    async def _read_body(self, declared: bytes | None, receive: Receive) -> bytes:
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            raise self._too_large()
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ApiError(Code.CANCELLED, "the client disconnected")
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise self._too_large()
            if not message.get("more_body", False):
                if not chunks:
                    return chunk  # the whole body came in one piece
                chunks.append(chunk)
                return b"".join(chunks)
            chunks.append(chunk)


async def _respond(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", b"%d" % len(body))],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
