"""The gRPC transport: a handler per method of the bindings' services, health and reflection."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from types import CoroutineType
from typing import Any, NoReturn, TypeVar, cast

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import DecodeError, Message
from grpc_health.v1 import health, health_pb2
from grpc_reflection.v1alpha import reflection, reflection_pb2

from auxia_decision._codec import RestCodec
from auxia_decision._errors import GRPC_DETAILS_METADATA, ApiError, Code, FieldViolation
from auxia_decision.server._transport.bindings import (
    ADMIN_KEY_HEADER,
    API_KEY_HEADERS,
    Binding,
    CallObserver,
    JsonAnswer,
)

_log = logging.getLogger("auxia_decision.grpc")
_CODEC = RestCodec()
M = TypeVar("M", bound=Message)

RawHandler = Callable[[bytes, grpc.aio.ServicerContext[bytes, bytes]], Awaitable[bytes]]
Metadata = Sequence[tuple[str, str | bytes]]


def _metadata(context: grpc.aio.ServicerContext[bytes, bytes]) -> Metadata:
    """Return a call's metadata: (key, value) pairs, a value text or bytes (``-bin`` keys)."""
    return cast(Metadata, context.invocation_metadata() or ())


def _keys(metadata: Metadata) -> tuple[str | None, str | None]:
    """Return the API key and the admin key of a call's metadata, without surrounding white space.

    The API key is the first ``x-api-key`` value, else the first ``api-key``
    one, as the REST gateway reads its headers; the admin key the first
    ``x-admin-key`` value.
    """
    found: dict[str, str] = {}
    for key, value in metadata:
        if key not in found and (key in API_KEY_HEADERS or key == ADMIN_KEY_HEADER):
            text = value if isinstance(value, str) else value.decode("latin-1")
            found[key] = text.strip(" \t")
    api_key = next((found[name] for name in API_KEY_HEADERS if name in found), None)
    return api_key, found.get(ADMIN_KEY_HEADER)


def _parse(request_type: type[M], request: bytes) -> M:
    """Parse a request's bytes; a payload that is not the message is INVALID_ARGUMENT."""
    try:
        return request_type.FromString(request)
    except DecodeError as error:
        description = (
            f"the request is not a valid {request_type.DESCRIPTOR.full_name} message: {error}"
        )
        raise ApiError.invalid_argument([FieldViolation(description=description)]) from None


async def _abort(context: grpc.aio.ServicerContext[Any, Any], error: ApiError) -> NoReturn:
    """End a call with an error; its rich details travel as a google.rpc.Status trailer."""
    status = error.status
    await context.abort(
        grpc.StatusCode[Code(status.code).name],
        status.message,
        trailing_metadata=((GRPC_DETAILS_METADATA, status.SerializeToString()),),
    )
    raise AssertionError("abort returned")  # pragma: no cover


def _handler(  # noqa: PLR0917 - called once per method, where the service is read
    binding: Binding,
    service: str,
    method: str,
    request_type: type[Message],
    response_type: type[Message],
    observer: CallObserver | None,
) -> RawHandler:
    """Return the handler of one method: it admits, parses and runs a call, and answers bytes."""
    admit, invoke = binding.admit, binding.invoke

    def serialized(response: Message | bytes) -> bytes:
        if isinstance(response, JsonAnswer):  # JSON text for REST, and its message
            return response.message.SerializeToString()
        if isinstance(response, bytes):
            return _CODEC.decode_response(response, response_type).SerializeToString()
        return response.SerializeToString()

    async def handle(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        started = time.perf_counter() if _log.isEnabledFor(logging.INFO) else None
        try:
            # As over REST, the key is checked first; then the request is
            # parsed here, not by grpc: a payload that is not the request
            # message is the caller's error (INVALID_ARGUMENT), not UNKNOWN.
            caller = admit(*_keys(_metadata(context)))
            if type(caller) is CoroutineType:
                caller = await caller
            response = await invoke(caller, method, _parse(request_type, request))
        except Exception as error:  # every failure ends the call with a status
            return await _fail(context, method, _api_error(method, error), started)
        if started is not None:
            _log_call(method, Code.OK, started)
        return serialized(response)

    if observer is None:
        return handle

    async def observed(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        # The same call, told to the observer once answered.
        began = time.perf_counter_ns()
        started = time.perf_counter() if _log.isEnabledFor(logging.INFO) else None
        metadata = _metadata(context)
        try:
            caller = admit(*_keys(metadata))
            if type(caller) is CoroutineType:
                caller = await caller
            response = await invoke(caller, method, _parse(request_type, request))
            answer = serialized(response)
        except Exception as error:  # every failure ends the call with a status
            failure = _api_error(method, error)
            ended = time.perf_counter_ns()
            observer.grpc(began, ended, service, method, metadata, request, None, failure)
            return await _fail(context, method, failure, started)
        ended = time.perf_counter_ns()
        observer.grpc(began, ended, service, method, metadata, request, answer, None)
        if started is not None:
            _log_call(method, Code.OK, started)
        return answer

    return observed


def _api_error(method: str, error: Exception) -> ApiError:
    """Return a call's failure as an ApiError: anything else is INTERNAL (and logged)."""
    if isinstance(error, ApiError):
        return error
    _log.error("internal error answering %s", method, exc_info=error)
    return ApiError(Code.INTERNAL, "internal error")


async def _fail(
    context: grpc.aio.ServicerContext[bytes, bytes],
    method: str,
    error: ApiError,
    started: float | None,
) -> NoReturn:
    """End a failed call with its error as its status."""
    if started is not None:
        _log_call(method, error.code, started)
    await _abort(context, error)


def _log_call(method: str, code: Code, started: float) -> None:
    """Log one gRPC call as the gateway logs a REST call: what, how it ended, how long."""
    _log.info("gRPC %s %s %.1fms", method, code.name, (time.perf_counter() - started) * 1000)


def _serialize(message: Message) -> bytes:
    return message.SerializeToString()


async def add_to_server(
    server: grpc.aio.Server,
    bindings: Sequence[Binding],
    observer: CallObserver | None = None,
) -> list[str]:
    """Register the bindings' services, health checking and reflection on a server.

    Each method read from the service descriptors gets a handler that takes
    the request's bytes and parses them itself, registered under the same
    service and method names as the generated ``add_<Service>Servicer_to_server``
    would; its binding admits the call from the ``x-api-key`` (or ``api-key``)
    and ``x-admin-key`` metadata and runs it, and ``observer``, if any, is
    told of it once answered. Returns the full names of the registered services.
    """
    names: list[str] = []
    # grpc_health exposes its asyncio servicer as `health.aio`, unknown to its types.
    health_servicer = health.aio.HealthServicer()  # type: ignore[attr-defined]
    bound = [(service, binding) for binding in bindings for service in binding.services]
    for service, binding in bound:
        handlers = {
            method.name: grpc.unary_unary_rpc_method_handler(
                _handler(
                    binding,
                    service.full_name,
                    method.name,
                    message_factory.GetMessageClass(method.input_type),
                    message_factory.GetMessageClass(method.output_type),
                    observer,
                ),
                request_deserializer=None,
                response_serializer=None,
            )
            for method in service.methods
        }
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(service.full_name, handlers),)
        )
        # Registered methods are dispatched without a lookup by name (grpcio 1.62+,
        # newer than the grpc-stubs types).
        server.add_registered_method_handlers(service.full_name, handlers)  # type: ignore[attr-defined]
        names.append(service.full_name)
    # grpc_reflection's asyncio servicer is `reflection.aio`, unknown to its types too.
    reflection_servicer = reflection.aio.ReflectionServicer(  # type: ignore[attr-defined]
        [*names, health.SERVICE_NAME, reflection.SERVICE_NAME]
    )
    server.add_generic_rpc_handlers(
        (
            _parsing_handlers(health_pb2.DESCRIPTOR.services_by_name["Health"], health_servicer),
            _parsing_handlers(
                reflection_pb2.DESCRIPTOR.services_by_name["ServerReflection"],
                reflection_servicer,
            ),
        )
    )
    for name in ("", *names):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return names


def _parsing_handlers(
    service: ServiceDescriptor,
    implementation: Any,  # noqa: ANN401 - grpc_health's and grpc_reflection's untyped servicers
) -> grpc.GenericRpcHandler[Any, Any]:
    """Return a service's handlers that parse each request message themselves.

    ``implementation`` is a servicer of the service (grpc_health's, grpc_reflection's).
    Bytes that are not a request message end the call with INVALID_ARGUMENT,
    as for the API's own methods, rather than with grpc's UNKNOWN and a
    traceback in the log.
    """
    handlers = {}
    for method in service.methods:
        request_type = message_factory.GetMessageClass(method.input_type)
        behavior = getattr(implementation, method.name)
        if method.client_streaming:
            handler = grpc.stream_stream_rpc_method_handler(
                _streaming_requests(behavior, request_type),
                request_deserializer=None,
                response_serializer=_serialize,
            )
        elif method.server_streaming:
            handler = grpc.unary_stream_rpc_method_handler(
                _written_responses(behavior, request_type),
                request_deserializer=None,
                response_serializer=_serialize,
            )
        else:
            handler = grpc.unary_unary_rpc_method_handler(
                _one_response(behavior, request_type),
                request_deserializer=None,
                response_serializer=_serialize,
            )
        handlers[method.name] = handler
    return grpc.method_handlers_generic_handler(service.full_name, handlers)


Context = grpc.aio.ServicerContext[Any, Any]


async def _parsed(request_type: type[M], request: bytes, context: Context) -> M:
    try:
        return _parse(request_type, request)
    except ApiError as error:
        return await _abort(context, error)


def _one_response(
    behavior: Callable[[Message, Context], Awaitable[Message]], request_type: type[Message]
) -> Callable[[bytes, Context], Awaitable[Message]]:
    async def handle(request: bytes, context: Context) -> Message:
        return await behavior(await _parsed(request_type, request, context), context)

    return handle


def _written_responses(
    behavior: Callable[[Message, Context], Awaitable[None]], request_type: type[Message]
) -> Callable[[bytes, Context], Awaitable[None]]:
    # A server-streaming servicer that writes its responses with context.write.
    async def handle(request: bytes, context: Context) -> None:
        await behavior(await _parsed(request_type, request, context), context)

    return handle


def _streaming_requests(
    behavior: Callable[[AsyncIterator[Message], Context], AsyncIterator[Message]],
    request_type: type[Message],
) -> Callable[[AsyncIterator[bytes], Context], AsyncIterator[Message]]:
    async def handle(requests: AsyncIterator[bytes], context: Context) -> AsyncIterator[Message]:
        async def parsed() -> AsyncIterator[Message]:
            async for request in requests:
                yield await _parsed(request_type, request, context)

        async for response in behavior(parsed(), context):
            yield response

    return handle
