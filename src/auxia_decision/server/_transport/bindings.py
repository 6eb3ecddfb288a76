"""What a transport is given to serve: services bound to how their calls are admitted and run.

The REST gateway and the gRPC server know no servicer. They are given
bindings (:class:`Binding`): some services of the descriptors, with the function that
admits a call from the keys it carries and the function that runs it. The
Auxia API and the emulator admin API are two bindings of the same kind; the
transports treat them alike.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import Message

from auxia_decision._errors import ApiError

API_KEY_HEADERS: Final = ("x-api-key", "api-key")
"""The headers (REST) and metadata keys (gRPC) of an API key, preferred first."""
ADMIN_KEY_HEADER: Final = "x-admin-key"
"""The header (REST) or metadata key (gRPC) that carries an admin key."""

Fields = dict[str, Any]
"""A request or a response as its message constructor's keyword arguments."""


class JsonAnswer(bytes):
    """A response given as the JSON text REST answers as it is, with the message gRPC answers.

    What an ``Invoke`` may answer in place of a message (the emulator's
    evolution faults answer REST with what the schema lacks).

    Args:
        text: the JSON text.
        message: the response message.

    """

    message: Message

    def __new__(cls, text: bytes, message: Message) -> JsonAnswer:
        answer = super().__new__(cls, text)
        answer.message = message
        return answer


class Admit(Protocol):
    """Admits a call from the keys it carries; raises ApiError (UNAUTHENTICATED...) otherwise."""

    def __call__(self, api_key: str | None, admin_key: str | None, /) -> Any:  # noqa: ANN401
        """Return the caller, handed to ``Invoke`` as it is, or a coroutine of it.

        A coroutine (``types.CoroutineType``) is for keys that cannot be told
        at once: a server sharing its store with others learns their keys at
        a sync. The transport awaits it before it reads the request, so that
        the key is still checked first; it raises ApiError as this does.
        """
        ...


class Invoke(Protocol):
    """Runs an admitted call; the awaitable raises ApiError when the call fails."""

    def __call__(self, caller: Any, method: str, request: Message, /) -> Awaitable[Message | bytes]:  # noqa: ANN401
        """Start the call of ``method`` (its short name); return its response's awaitable.

        The response is a message, or a ``JsonAnswer`` (its JSON text for
        REST, its message for gRPC).
        """
        ...


class InvokeFields(Protocol):
    """Runs an admitted call whose request is given as its constructor's arguments."""

    def __call__(
        self,
        caller: Any,  # noqa: ANN401
        method: str,
        request_type: type[Message],
        fields: Fields,
        source: bytes,
        /,
    ) -> Awaitable[Message | Mapping[str, Any] | bytes]:
        """Start the call; its response is a message, its constructor's arguments or JSON text."""
        ...


def _no_method(method: str) -> bool:
    del method
    return False


@dataclass(frozen=True, slots=True)
class Binding:
    """Some services, and how a transport admits and runs their calls."""

    services: Sequence[ServiceDescriptor]
    admit: Admit
    invoke: Invoke
    listed: bool = True
    """Whether a REST answer to an unknown path lists these services' paths."""
    takes_fields: Callable[[str], bool] = _no_method
    """Whether a method may run from its request's plain values (``invoke_fields``)."""
    invoke_fields: InvokeFields | None = None
    """The plain-values path of the methods that ``takes_fields``: REST decodes such a
    request into its constructor's arguments, and encodes a response given as its
    constructor's arguments."""


class CallObserver(Protocol):
    """Told of every call a transport answered (the emulator's request journal is one).

    A transport reads ``time.perf_counter_ns()`` as a call arrives and once it
    has answered, and hands over what it received and answered as it holds
    them (the ASGI scope, bytes, metadata), so that observing costs a call no
    decoding and no clock but the monotonic one: whoever keeps them decodes
    them later, if ever. REST requests to a path that names no RPC are
    observed when they fail (404, 405, 403); the static documents served on
    GET are not.
    """

    def rest(  # noqa: PLR0917 - positional: a call observed builds no object
        self,
        began_ns: int,
        ended_ns: int,
        scope: Mapping[str, Any],
        received: bytes | None,
        request: bytes,
        status: int,
        answer: bytes,
        /,
    ) -> None:
        """Observe a REST call: its scope (method, path, query, headers), body and answer.

        ``began_ns`` and ``ended_ns`` are ``time.perf_counter_ns()`` as it
        arrived and once answered; ``received`` the bytes of the read that
        began with the request's head, when the server offers them (``asgi``'s
        raw-request extension): the head, then what came with it; ``request``
        the body read (empty when the call was refused before); ``answer`` the
        body answered with the HTTP ``status``.
        """
        ...

    def grpc(  # noqa: PLR0917 - positional: a call observed builds no object
        self,
        began_ns: int,
        ended_ns: int,
        service: str,
        method: str,
        metadata: Sequence[tuple[str, str | bytes]],
        request: bytes,
        answer: bytes | None,
        error: ApiError | None,
        /,
    ) -> None:
        """Observe a gRPC call of ``service`` (its full name) and ``method`` (its short name).

        ``request`` is the request message's bytes as received; ``answer`` the
        response message's bytes, or None when the call failed with ``error``.
        """
        ...


@dataclass(frozen=True)
class Document:
    """A static answer to a GET: its body, content type, status and any other headers."""

    body: bytes
    content_type: bytes = b"application/json"
    status: int = 200
    headers: tuple[tuple[bytes, bytes], ...] = ()
