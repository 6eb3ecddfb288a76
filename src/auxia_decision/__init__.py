"""Hand-written companions of the generated ``auxia.decision.model`` package.

A REST JSON codec with JSON-path errors, request validation read from the
descriptors, one error type, and sync and async clients of the Auxia API.
"""

from __future__ import annotations

from auxia_decision._client import AsyncClient, Client, RetryPolicy
from auxia_decision._codec import PROTO3_JSON, JsonProfile, RestCodec
from auxia_decision._errors import ApiError, Code
from auxia_decision._protos import descriptor_set_path, proto_include_path
from auxia_decision._validation import ValidationResult, check_request, validate

__all__ = [
    "PROTO3_JSON",
    "ApiError",
    "AsyncClient",
    "Client",
    "Code",
    "JsonProfile",
    "RestCodec",
    "RetryPolicy",
    "ValidationResult",
    "check_request",
    "descriptor_set_path",
    "proto_include_path",
    "validate",
]
