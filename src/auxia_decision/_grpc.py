"""The gRPC transport: the generated servicers, health checking and reflection."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import Final

import grpc
from google.protobuf.message import Message
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from auxia_decision._errors import ApiError, Code
from auxia_decision._routes import services
from auxia_decision._servicer import DecisionServicer

_KEY_METADATA: Final = "x-api-key"
_DETAILS_METADATA: Final = "grpc-status-details-bin"
_log = logging.getLogger("auxia_decision.grpc")

Handler = Callable[[Message, grpc.aio.ServicerContext[Message, Message]], Awaitable[Message]]


def _api_key(context: grpc.aio.ServicerContext[Message, Message]) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == _KEY_METADATA:
            return value if isinstance(value, str) else value.decode("latin-1")
    return None


def _handler(servicer: DecisionServicer, method: str) -> Handler:
    async def handle(
        request: Message, context: grpc.aio.ServicerContext[Message, Message]
    ) -> Message:
        try:
            return await servicer.invoke(method, request, _api_key(context))
        except ApiError as error:
            error_status = error.status
        except Exception:
            _log.exception("internal error answering %s", method)
            error_status = ApiError(Code.INTERNAL, "internal error").status
        # Rich details travel as a serialized google.rpc.Status in the trailers.
        await context.abort(
            grpc.StatusCode[Code(error_status.code).name],
            error_status.message,
            trailing_metadata=((_DETAILS_METADATA, error_status.SerializeToString()),),
        )
        raise AssertionError("abort returned")  # pragma: no cover

    return handle


async def add_to_server(servicer: DecisionServicer, server: grpc.aio.Server) -> list[str]:
    """Register every service of the schema, health checking and reflection on a server.

    Each service goes through its generated ``add_<Service>Servicer_to_server``
    with one handler per RPC read from the service descriptor. Returns the full
    names of the registered services.
    """
    names: list[str] = []
    # grpc_health exposes its asyncio servicer as `health.aio`, unknown to its types.
    health_servicer = health.aio.HealthServicer()  # type: ignore[attr-defined]
    for service in services():
        module = importlib.import_module(
            service.file.name.removesuffix(".proto").replace("/", ".") + "_pb2_grpc"
        )
        adapter = SimpleNamespace(
            **{method.name: _handler(servicer, method.name) for method in service.methods}
        )
        getattr(module, f"add_{service.name}Servicer_to_server")(adapter, server)
        names.append(service.full_name)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ("", *names):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection(
        [*names, health.SERVICE_NAME, reflection.SERVICE_NAME], server
    )
    return names
