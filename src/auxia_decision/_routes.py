"""The API's HTTP routes, read from the services' ``google.api.http`` rules."""

from __future__ import annotations

import functools
import importlib
import pkgutil
from dataclasses import dataclass
from typing import Final

from google.api import annotations_pb2
from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.protobuf.message import Message

import auxia.decision.model

DEFAULT_BASE_URL: Final = "https://apis.auxia.io"
"""Where the Auxia API is served; each route's path is appended to it."""

_HTTP_METHODS = ("get", "put", "post", "delete", "patch")


@dataclass(frozen=True)
class Route:
    """One RPC and the HTTP rule that exposes it over REST."""

    method: MethodDescriptor
    http_method: str
    """The HTTP method, upper case (``POST``)."""
    path: str
    """The URL path (``/v1/InsertTreatment``)."""
    body: str
    """The rule's ``body``: ``*`` when the whole request is the JSON body."""
    request_type: type[Message]
    response_type: type[Message]

    @property
    def name(self) -> str:
        """Return the RPC's short name (``InsertTreatment``)."""
        return str(self.method.name)

    @property
    def grpc_path(self) -> str:
        """Return the gRPC method path (``/io.auxia.decision.model.Service/Method``)."""
        return f"/{self.method.containing_service.full_name}/{self.method.name}"


def _route(method: MethodDescriptor) -> Route | None:
    rule = method.GetOptions().Extensions[annotations_pb2.http]
    pattern = rule.WhichOneof("pattern")
    if pattern not in _HTTP_METHODS:
        return None
    return Route(
        method=method,
        http_method=pattern.upper(),
        path=getattr(rule, pattern),
        body=rule.body,
        request_type=message_factory.GetMessageClass(method.input_type),
        response_type=message_factory.GetMessageClass(method.output_type),
    )


@functools.cache
def services() -> tuple[ServiceDescriptor, ...]:
    """Return every service of the generated ``auxia.decision.model`` package."""
    found: dict[str, ServiceDescriptor] = {}
    for module_info in pkgutil.iter_modules(auxia.decision.model.__path__):
        if not module_info.name.endswith("_pb2"):
            continue
        module = importlib.import_module(f"auxia.decision.model.{module_info.name}")
        for service in module.DESCRIPTOR.services_by_name.values():
            found[service.full_name] = service
    return tuple(found[name] for name in sorted(found))


def service_routes(*services: ServiceDescriptor) -> tuple[Route, ...]:
    """Return the route of every RPC of the services that has an HTTP rule, sorted by path."""
    found = [
        route
        for service in services
        for method in service.methods
        if (route := _route(method)) is not None
    ]
    return tuple(sorted(found, key=lambda route: route.path))


@functools.cache
def routes() -> tuple[Route, ...]:
    """Return the route of every RPC of the API that has an HTTP rule, sorted by path."""
    return service_routes(*services())


def route_for(method_name: str) -> Route:
    """Return the route of an RPC by short name (``InsertTreatment``) or URL path."""
    for route in routes():
        if method_name in (route.name, route.path, route.method.full_name):
            return route
    known = ", ".join(route.name for route in routes())
    msg = f"unknown method {method_name!r}; the API has {known}"
    raise KeyError(msg)
