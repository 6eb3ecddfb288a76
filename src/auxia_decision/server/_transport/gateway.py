"""The REST gateway: an ASGI app whose routes are the services' ``google.api.http`` rules."""

from __future__ import annotations

import logging
import math
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from types import CoroutineType
from typing import Any, Final

from google.protobuf.message import Message

from auxia_decision._codec import RestCodec
from auxia_decision._errors import ApiError, Code
from auxia_decision._routes import Route, service_routes
from auxia_decision.server._transport.asgi import (
    ANSWER,
    RAW_REQUEST,
    RECEIVED,
    WHOLE_ANSWER,
    Receive,
    Scope,
    Send,
    WholeAnswer,
)
from auxia_decision.server._transport.bindings import (
    ADMIN_KEY_HEADER,
    API_KEY_HEADERS,
    Binding,
    CallObserver,
    Document,
)
from auxia_decision.server._transport.hosts import HostCheck

MAX_BODY_BYTES: Final = 4 * 1024 * 1024
_JSON_HEADERS: Final = [(b"content-type", b"application/json")]
# The key's query parameters, preferred first: `api-key` (LogTreatmentInteraction's
# documentation), `api_key` (decisioning.md's "api_key request parameter").
_KEY_QUERY: Final = ("api-key", "api_key")

_API_KEY_HEADER, _OTHER_API_KEY_HEADER = (name.encode() for name in API_KEY_HEADERS)
_ADMIN_KEY_HEADER: Final = ADMIN_KEY_HEADER.encode()
_NO_EXTENSIONS: Final[Mapping[str, Any]] = {}

_log = logging.getLogger("auxia_decision.gateway")


def _is_json(content_type: bytes) -> bool:
    if content_type == b"application/json":
        return True
    media_type = content_type.split(b";", 1)[0].strip().lower()
    return media_type == b"application/json" or (
        media_type.startswith(b"application/") and media_type.endswith(b"+json")
    )


@dataclass(slots=True)
class _Headers:
    """What the gateway reads of a request's headers, found in one pass."""

    api_key: str | None
    """The first x-api-key header, else the first api-key header, else the
    api-key query parameter; without surrounding white space (RFC 9110)."""
    admin_key: str | None
    """The first x-admin-key header, without surrounding white space."""
    content_type: bytes
    content_length: bytes | None
    content_encoding: bytes | None
    host: bytes | None
    """The Host header; None without one."""
    origin: bytes | None
    """The Origin header (a browser's request); None without one."""
    missing_host: bool
    """An HTTP/1.1 request without a Host header (RFC 9112 says: answer 400)."""


def _read_headers(scope: Scope) -> _Headers:  # noqa: PLR0912 - one pass over the headers
    """Return what the gateway reads of a request's headers."""
    key: bytes | None = None
    other_key: bytes | None = None
    admin_key: bytes | None = None
    content_type = b""
    content_length: bytes | None = None
    content_encoding: bytes | None = None
    host: bytes | None = None
    origin: bytes | None = None
    for name, value in scope["headers"]:
        if name == _API_KEY_HEADER:
            if key is None:
                key = value
        elif name == b"content-type":
            content_type = value
        elif name == b"content-length":
            content_length = value
        elif name == b"host":
            host = value
        elif name == _OTHER_API_KEY_HEADER:
            if other_key is None:
                other_key = value
        elif name == b"content-encoding":
            content_encoding = value
        elif name == _ADMIN_KEY_HEADER:
            if admin_key is None:
                admin_key = value
        elif name == b"origin":
            origin = value
    if key is None:
        key = other_key
    api_key = _query_key(scope) if key is None else key.strip(b" \t").decode("latin-1")
    missing_host = host is None and scope["http_version"] == "1.1"
    return _Headers(
        api_key,
        None if admin_key is None else admin_key.strip(b" \t").decode("latin-1"),
        content_type,
        content_length,
        content_encoding,
        host,
        origin,
        missing_host,
    )


def _header(scope: Scope, wanted: bytes) -> bytes | None:
    """Return the first value of a header of a request, or None."""
    for name, value in scope["headers"]:
        if name == wanted:
            return bytes(value)
    return None


def _query_key(scope: Scope) -> str | None:
    """Return the api-key query parameter, without surrounding white space, or None."""
    query = scope.get("query_string", b"")
    if query:
        parameters = urllib.parse.parse_qs(query.decode("latin-1"))
        for name in _KEY_QUERY:
            values = parameters.get(name)
            if values:
                return str(values[0]).strip(" \t")
    return None


@dataclass(frozen=True, slots=True)
class _Endpoint:
    """What the gateway needs of a route on every request, read once."""

    http_method: str
    name: str
    request_type: type[Message]
    binding: Binding
    decode: Callable[[bytes], Message]
    """The codec's ``decode_request`` for the route's request type."""
    encode: Callable[[Message], bytes]
    """The codec's ``encode`` for the route's response type."""
    decode_fields: Callable[[bytes], dict[str, Any] | None] | None = None
    """For an RPC its binding runs from plain values: the codec's decoding of
    the request into its constructor's arguments (None: not sure)."""
    encode_fields: Callable[[Mapping[str, Any]], bytes] | None = None
    """With ``decode_fields``: the codec's encoding of a response given as its
    constructor's arguments, as the binding answers such an RPC."""


class RestGateway:
    """Serves services as JSON over HTTP, at the paths of their ``google.api.http`` rules.

    Each call is admitted and run by the binding of its service. Every error
    answer is a ``google.rpc.Status`` JSON body with the HTTP status of the
    shared code table: unknown path 404, wrong method 405, missing or unknown
    key 401, wrong Content-Type 415, body over the limit 413, malformed or
    invalid JSON 400 naming each bad field.

    Args:
        bindings: the services served, with how their calls are admitted and run.
        codec: the JSON codec (a new ``RestCodec`` by default).
        max_body_bytes: the largest request body taken.
        documents: static answers to GET by path (``/openapi.json``, the console's pages).
        hosts: the ``Host`` values answered and the origins given CORS headers;
            None: every host, and no CORS headers.
        observer: told of every call answered (the emulator's journal); None: nobody.

    """

    def __init__(
        self,
        bindings: Sequence[Binding],
        codec: RestCodec | None = None,
        *,
        max_body_bytes: int = MAX_BODY_BYTES,
        documents: Mapping[str, Document] | None = None,
        hosts: HostCheck | None = None,
        observer: CallObserver | None = None,
    ) -> None:
        self.codec = codec or RestCodec()
        self.max_body_bytes = max_body_bytes
        self.documents = dict(documents or {})
        self._hosts = hosts if hosts is not None and hosts.policy.checks_hosts else None
        self._cors = hosts if hosts is not None and hosts.gives_cors else None
        self._observer = observer
        # A Content-Length of fewer digits than the limit is within it.
        self._length_digits = len(str(max_body_bytes))
        self._endpoints: dict[str, _Endpoint] = {}
        self._listed: list[str] = []
        for binding in bindings:
            for service in binding.services:
                for route in service_routes(service):
                    self._endpoints[route.path] = self._endpoint(route, binding)
                    if binding.listed:
                        self._listed.append(route.path)

    def _endpoint(self, route: Route, binding: Binding) -> _Endpoint:
        takes_fields = binding.invoke_fields is not None and binding.takes_fields(route.name)
        return _Endpoint(
            route.http_method,
            route.name,
            route.request_type,
            binding,
            self.codec.request_decoder(route.request_type),
            self.codec.encoder(route.response_type),
            self.codec.request_fields_decoder(route.request_type) if takes_fields else None,
            self.codec.fields_encoder(route.response_type) if takes_fields else None,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:  # noqa: PLR0912, PLR0915 - the hot path, kept in one frame
        """Answer one ASGI connection scope."""
        if scope["type"] != "http":
            await _not_http(scope, receive, send)
            return
        started = time.perf_counter() if _log.isEnabledFor(logging.INFO) else None
        observer = self._observer
        began = 0 if observer is None else time.perf_counter_ns()
        headers = _JSON_HEADERS
        received = b""
        endpoint = None
        try:
            endpoint = self._endpoints.get(scope["path"])
            if endpoint is None or scope["method"] != endpoint.http_method:
                status, body, headers = self._off_route(scope, endpoint)
            else:
                # The RPC is run here rather than in a helper coroutine: while it
                # waits for the store, every frame between the task and the wait
                # is crossed again on waking.
                request_headers = _read_headers(scope)
                if request_headers.missing_host:
                    raise ApiError(
                        Code.INVALID_ARGUMENT, "an HTTP/1.1 request must have a Host header"
                    )
                hosts = self._hosts
                if (
                    hosts is not None
                    and request_headers.host not in hosts.known
                    and not hosts.allows(request_headers.host)
                ):
                    raise hosts.refusal(request_headers.host)
                if self._cors is not None:
                    headers = self._cors.cors_headers(request_headers.origin, headers)
                # The key is checked before the body is read, and once per request.
                caller = endpoint.binding.admit(request_headers.api_key, request_headers.admin_key)
                if type(caller) is CoroutineType:
                    caller = await caller
                content_length = request_headers.content_length
                if (
                    request_headers.content_type != b"application/json"
                    or content_length is None
                    or len(content_length) >= self._length_digits
                    or request_headers.content_encoding is not None
                ):
                    self._check_body_headers(request_headers)
                message = await receive()
                if message["type"] == "http.request" and not message.get("more_body", False):
                    body = message.get("body", b"")  # the whole body came in one piece
                    if len(body) > self.max_body_bytes:
                        raise self._too_large()
                else:
                    body = await self._read_rest(message, receive)
                received = body
                response = await self._invoke(caller, endpoint, body)
                if isinstance(response, Message):
                    status, body = 200, endpoint.encode(response)
                elif isinstance(response, bytes):  # already JSON text
                    status, body = 200, response
                else:
                    status, body = 200, self._encode_fields(endpoint, response)
        except ApiError as error:
            status, body = error.http_status or 500, error.to_json()
            headers = self._error_headers(scope, error, headers)
        except Exception:
            _log.exception("internal error answering %s %s", scope["method"], scope["path"])
            status, body = 500, ApiError(Code.INTERNAL, "internal error").to_json()
        extensions = scope.get("extensions", _NO_EXTENSIONS)
        whole = extensions.get(WHOLE_ANSWER)
        answer: WholeAnswer | None = None if whole is None else whole[ANSWER]
        if status == 204:
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
        elif answer is None or not answer(status, headers, body):
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [*headers, (b"content-length", b"%d" % len(body))],
                }
            )
            await send({"type": "http.response.body", "body": body})
        if observer is not None and (endpoint is not None or status >= 400):
            raw = extensions.get(RAW_REQUEST)
            read = None if raw is None else raw[RECEIVED]
            observer.rest(began, time.perf_counter_ns(), scope, read, received, status, body)
        if started is not None:
            # The query string may hold an API key: only the path is logged.
            _log.info(
                "%s %s %d %.1fms",
                scope["method"],
                scope["path"],
                status,
                (time.perf_counter() - started) * 1000,
            )

    @staticmethod
    def _encode_fields(endpoint: _Endpoint, response: Mapping[str, Any]) -> bytes:
        """Encode a response its binding gave as its constructor's arguments."""
        assert endpoint.encode_fields is not None, "only an RPC run from its fields answers them"
        return endpoint.encode_fields(response)

    @staticmethod
    def _invoke(
        caller: object, endpoint: _Endpoint, body: bytes
    ) -> Awaitable[Message | Mapping[str, Any] | bytes]:
        """Start the RPC of a request body: from its plain values where the binding takes them.

        A plain function returning the binding's awaitable: no frame of its
        own to cross again when the store wakes the request.
        """
        decode_fields = endpoint.decode_fields
        fields = None if decode_fields is None else decode_fields(body)
        if fields is not None:
            invoke_fields = endpoint.binding.invoke_fields
            assert invoke_fields is not None, "only a binding with invoke_fields decodes fields"
            return invoke_fields(caller, endpoint.name, endpoint.request_type, fields, body)
        return endpoint.binding.invoke(caller, endpoint.name, endpoint.decode(body))

    def _error_headers(
        self, scope: Scope, error: ApiError, headers: list[tuple[bytes, bytes]]
    ) -> list[tuple[bytes, bytes]]:
        """Return the headers of an error answer, from those of the answer (CORS's, if any).

        A 405 says which method the path allows; an error that says when to
        try again (a ``google.rpc.RetryInfo``) says it in ``Retry-After`` too.
        """
        if error.http_status == 405:
            allowed = self._endpoints[scope["path"]].http_method
            headers = [*headers, (b"allow", allowed.encode())]
        delay = error.retry_delay
        if delay is not None:
            headers = [*headers, (b"retry-after", b"%d" % math.ceil(delay))]
        return headers

    def _off_route(
        self, scope: Scope, endpoint: _Endpoint | None
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        """Answer a request that names no RPC: a document, a CORS preflight, or 404 or 405."""
        path: str = scope["path"]
        method: str = scope["method"]
        hosts = self._hosts
        if hosts is not None:
            host = _header(scope, b"host")
            if not hosts.allows(host):
                raise hosts.refusal(host)
        cors = self._cors
        if cors is not None and method == "OPTIONS" and endpoint is not None:
            preflight = cors.preflight_headers(_header(scope, b"origin"))
            if preflight is not None:
                return 204, b"", preflight
        if endpoint is not None:
            raise ApiError(
                Code.UNIMPLEMENTED,
                f"{path} accepts {endpoint.http_method}, not {method}",
                http_status=405,
            )
        document = self.documents.get(path) if method in ("GET", "HEAD") else None
        if document is not None:
            headers = [(b"content-type", document.content_type), *document.headers]
            return document.status, document.body, headers
        known = ", ".join(sorted(self._listed))
        raise ApiError(Code.NOT_FOUND, f"no route for {path}; the API serves {known}")

    def _check_body_headers(self, headers: _Headers) -> None:
        """Refuse a body that is not plain JSON (415) or declares more than the limit (413)."""
        content_type = headers.content_type
        if not _is_json(content_type):
            shown = content_type.decode("latin-1") or "none"
            raise ApiError(
                Code.INVALID_ARGUMENT,
                f"the body must be application/json, not {shown}",
                http_status=415,
            )
        encoding = headers.content_encoding
        if encoding is not None and encoding.strip().lower() not in (b"", b"identity"):
            raise ApiError(
                Code.INVALID_ARGUMENT,
                f"the body must not be encoded (Content-Encoding: "
                f"{encoding.decode('latin-1')}): send it as plain JSON",
                http_status=415,
            )
        content_length = headers.content_length
        if (
            content_length is not None
            and content_length.isdigit()
            and int(content_length) > self.max_body_bytes
        ):
            raise self._too_large()

    def _too_large(self) -> ApiError:
        return ApiError(
            Code.INVALID_ARGUMENT,
            f"the body is larger than {self.max_body_bytes} bytes",
            http_status=413,
        )

    async def _read_rest(self, message: MutableMapping[str, Any], receive: Receive) -> bytes:
        """Read a body that did not come in one piece, starting from its first message."""
        chunks: list[bytes] = []
        size = 0
        while True:
            if message["type"] == "http.disconnect":
                raise ApiError(Code.CANCELLED, "the client disconnected")
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise self._too_large()
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)
            message = await receive()


async def _not_http(scope: Scope, receive: Receive, send: Send) -> None:
    """Answer a scope other than HTTP: the lifespan protocol; nothing else is served."""
    if scope["type"] != "lifespan":
        return
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
