"""Hand-written companions of the generated ``auxia.decision.model`` package.

A REST JSON codec with JSON-path errors, request validation read from the
descriptors and one error type, on protobuf alone; the clients (``Client``,
``AsyncClient``) come with the ``[client]`` extra and load on first use; the
reference server, ``auxia_decision.server``, comes with the ``[server]`` extra.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from auxia_decision._codec import PROTO3_JSON, JsonProfile, RestCodec
from auxia_decision._drift import Drift
from auxia_decision._drift_reports import SchemaDriftWarning
from auxia_decision._errors import ApiError, Code
from auxia_decision._extras import MissingExtraError
from auxia_decision._protos import descriptor_set_path, proto_include_path
from auxia_decision._retry import RetryPolicy
from auxia_decision._validation import (
    ValidationResult,
    check_request,
    clear_output_only,
    validate,
)
from auxia_decision._version import __version__

if TYPE_CHECKING:
    from auxia_decision._client import AsyncClient, Client

__all__ = [
    "PROTO3_JSON",
    "ApiError",
    "AsyncClient",
    "Client",
    "Code",
    "Drift",
    "JsonProfile",
    "MissingExtraError",
    "RestCodec",
    "RetryPolicy",
    "SchemaDriftWarning",
    "ValidationResult",
    "__version__",
    "check_request",
    "clear_output_only",
    "descriptor_set_path",
    "proto_include_path",
    "validate",
]

# Names loaded on first use, by the module that needs an extra.
_LAZY = {"Client": "client", "AsyncClient": "client"}


def __getattr__(name: str) -> Any:  # noqa: ANN401 - a class, whichever is asked for
    extra = _LAZY.get(name)
    if extra is None:
        msg = f"module {__name__!r} has no attribute {name!r}"
        raise AttributeError(msg)
    from auxia_decision._extras import import_optional  # noqa: PLC0415

    value = getattr(import_optional(extra, "auxia_decision._client"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
