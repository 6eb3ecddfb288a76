"""The gRPC transport: the generated servicers, health checking and reflection."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Final

import grpc
from google.protobuf import message_factory
from google.protobuf.message import DecodeError, Message
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from auxia_decision._errors import GRPC_DETAILS_METADATA, ApiError, Code, FieldViolation
from auxia_decision._routes import services
from auxia_decision.server._servicer import DecisionServicer

_KEY_METADATA: Final = "x-api-key"

_log = logging.getLogger("auxia_decision.grpc")

RawHandler = Callable[[bytes, grpc.aio.ServicerContext[bytes, Message]], Awaitable[Message]]


def _api_key(context: grpc.aio.ServicerContext[bytes, Message]) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == _KEY_METADATA:
            return value if isinstance(value, str) else value.decode("latin-1")
    return None


def _handler(servicer: DecisionServicer, method: str, request_type: type[Message]) -> RawHandler:
    async def handle(request: bytes, context: grpc.aio.ServicerContext[bytes, Message]) -> Message:
        try:
            # As over REST, the key is checked first; then the request is
            # parsed here, not by grpc: a payload that is not the request
            # message is the caller's error (INVALID_ARGUMENT), not UNKNOWN.
            project = await servicer.authenticate(_api_key(context))
            try:
                message = request_type.FromString(request)
            except DecodeError as error:
                description = (
                    f"the request is not a valid {request_type.DESCRIPTOR.full_name} "
                    f"message: {error}"
                )
                raise ApiError.invalid_argument([FieldViolation(description=description)]) from None
            return await servicer.invoke_for(project, method, message)
        except ApiError as error:
            error_status = error.status
        except Exception:
            _log.exception("internal error answering %s", method)
            error_status = ApiError(Code.INTERNAL, "internal error").status
        # Rich details travel as a serialized google.rpc.Status in the trailers.
        await context.abort(
            grpc.StatusCode[Code(error_status.code).name],
            error_status.message,
            trailing_metadata=((GRPC_DETAILS_METADATA, error_status.SerializeToString()),),
        )
        raise AssertionError("abort returned")  # pragma: no cover

    return handle


def _serialize(message: Message) -> bytes:
    return message.SerializeToString()


async def add_to_server(servicer: DecisionServicer, server: grpc.aio.Server) -> list[str]:
    """Register every service of the schema, health checking and reflection on a server.

    Each RPC read from the service descriptors gets a handler that takes the
    request's bytes and parses them itself, registered under the same service
    and method names as the generated ``add_<Service>Servicer_to_server``
    would. Returns the full names of the registered services.
    """
    names: list[str] = []
    # grpc_health exposes its asyncio servicer as `health.aio`, unknown to its types.
    health_servicer = health.aio.HealthServicer()  # type: ignore[attr-defined]
    for service in services():
        handlers = {
            method.name: grpc.unary_unary_rpc_method_handler(
                _handler(servicer, method.name, message_factory.GetMessageClass(method.input_type)),
                request_deserializer=None,
                response_serializer=_serialize,
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
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ("", *names):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection(
        [*names, health.SERVICE_NAME, reflection.SERVICE_NAME], server
    )
    return names
