"""The error model shared by the codec, the client, the servicer and the gateways."""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final, Protocol

from google.protobuf import any_pb2, json_format
from google.protobuf.message import DecodeError, Message
from google.rpc import error_details_pb2, status_pb2

# Importing error_details_pb2 registers the google.rpc detail types, so the
# `details` of a Status decode from JSON and from the wire.
FieldViolation = error_details_pb2.BadRequest.FieldViolation

_MAX_BODY_EXCERPT = 200
_MAX_CODE = 2**31 - 1  # a google.rpc.Status code is an int32

GRPC_DETAILS_METADATA: Final = "grpc-status-details-bin"
"""The gRPC trailer that carries the serialized ``google.rpc.Status`` of an error."""


class GrpcCall(Protocol):
    """What ``from_grpc_error`` reads of a failed gRPC call (a ``grpc.Call``)."""

    def code(self) -> Any:  # noqa: ANN401 - a grpc.StatusCode, without importing grpc
        """Return the call's status code."""
        ...

    def details(self) -> str | None:
        """Return the call's status message."""
        ...

    def trailing_metadata(self) -> Any:  # noqa: ANN401 - grpc's metadata type
        """Return the call's trailing metadata: (key, value) pairs."""
        ...


class Code(enum.IntEnum):
    """The canonical gRPC status codes (``google.rpc.Code``)."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16


# The one table from status code to HTTP status, used by the client to
# describe errors and by the REST gateway to answer them (the mapping of
# google.rpc.Code's documentation and grpc-gateway).
HTTP_STATUS_BY_CODE: Mapping[Code, int] = {
    Code.OK: 200,
    Code.CANCELLED: 499,
    Code.UNKNOWN: 500,
    Code.INVALID_ARGUMENT: 400,
    Code.DEADLINE_EXCEEDED: 504,
    Code.NOT_FOUND: 404,
    Code.ALREADY_EXISTS: 409,
    Code.PERMISSION_DENIED: 403,
    Code.RESOURCE_EXHAUSTED: 429,
    Code.FAILED_PRECONDITION: 400,
    Code.ABORTED: 409,
    Code.OUT_OF_RANGE: 400,
    Code.UNIMPLEMENTED: 501,
    Code.INTERNAL: 500,
    Code.UNAVAILABLE: 503,
    Code.DATA_LOSS: 500,
    Code.UNAUTHENTICATED: 401,
}

# For HTTP answers that carry no google.rpc.Status (a proxy's error page):
# the code an HTTP status most likely stands for.
_CODE_BY_HTTP_STATUS: Mapping[int, Code] = {
    400: Code.INVALID_ARGUMENT,
    401: Code.UNAUTHENTICATED,
    403: Code.PERMISSION_DENIED,
    404: Code.NOT_FOUND,
    405: Code.UNIMPLEMENTED,
    409: Code.ABORTED,
    412: Code.FAILED_PRECONDITION,
    413: Code.INVALID_ARGUMENT,
    415: Code.INVALID_ARGUMENT,
    429: Code.RESOURCE_EXHAUSTED,
    499: Code.CANCELLED,
    501: Code.UNIMPLEMENTED,
    502: Code.UNAVAILABLE,
    503: Code.UNAVAILABLE,
    504: Code.DEADLINE_EXCEEDED,
}


def http_status_for(code: Code) -> int:
    """Return the HTTP status that answers a status code."""
    return HTTP_STATUS_BY_CODE[code]


def code_for_http_status(http_status: int) -> Code:
    """Return the status code an HTTP status without a Status body stands for."""
    if http_status in _CODE_BY_HTTP_STATUS:
        return _CODE_BY_HTTP_STATUS[http_status]
    if 200 <= http_status < 300:
        return Code.OK
    if 400 <= http_status < 500:
        return Code.FAILED_PRECONDITION
    return Code.UNKNOWN


class ApiError(Exception):
    """An error of the Auxia API: a status code, its HTTP status, a message and details.

    ``details`` are the decoded ``google.rpc.Status`` details (for example a
    ``google.rpc.BadRequest`` whose field violations name each bad field by
    its JSON path). ``str(error)`` lists every violation; it names the HTTP
    status only of an error that came in an HTTP answer.

    Args:
        code: the status code.
        message: what went wrong, for a developer.
        details: ``google.rpc`` detail messages (``BadRequest``, ``RetryInfo``, ...).
        http_status: the HTTP status that carries the error; by default the
            one the shared table gives its code.

    """

    code: Code
    http_status: int | None
    """The HTTP status that carries the error, or None when no HTTP answer came at all."""
    message: str
    details: tuple[Message, ...]

    def __init__(
        self,
        code: Code,
        message: str,
        *,
        details: Iterable[Message] = (),
        http_status: int | None = None,
    ) -> None:
        self.code = code
        self.message = message
        self.details = tuple(details)
        self.http_status = http_status_for(code) if http_status is None else http_status
        self._answered = False
        super().__init__(self._describe())

    @classmethod
    def without_answer(
        cls, code: Code, message: str, *, details: Iterable[Message] = ()
    ) -> ApiError:
        """Return an error for a call that got no HTTP answer (nothing sent, or no answer came)."""
        error = cls(code, message, details=details)
        error.http_status = None
        error.args = (error._describe(),)
        return error

    @classmethod
    def answered(
        cls, code: Code, message: str, http_status: int, *, details: Iterable[Message] = ()
    ) -> ApiError:
        """Return an error that came in an HTTP answer of a given status (``str`` names it)."""
        return cls(code, message, details=details, http_status=http_status)._answered_over_http()

    def _answered_over_http(self) -> ApiError:
        self._answered = True
        self.args = (self._describe(),)
        return self

    @classmethod
    def invalid_argument(
        cls, violations: Sequence[FieldViolation], message: str | None = None
    ) -> ApiError:
        """Return an INVALID_ARGUMENT error carrying the violations as a BadRequest."""
        if message is None:
            if len(violations) == 1:
                only = violations[0]
                message = f"{only.field}: {only.description}" if only.field else only.description
            else:
                message = f"the request has {len(violations)} invalid fields"
        return cls(
            Code.INVALID_ARGUMENT,
            message,
            details=[error_details_pb2.BadRequest(field_violations=violations)],
        )

    @classmethod
    def from_status(cls, status: status_pb2.Status, *, http_status: int | None = None) -> ApiError:
        """Return the error a ``google.rpc.Status`` describes, unpacking known details."""
        try:
            code = Code(status.code)
        except ValueError:
            code = Code.UNKNOWN
        return cls(code, status.message, details=_unpack(status.details), http_status=http_status)

    @classmethod
    def from_http_response(cls, http_status: int, content_type: str, body: bytes) -> ApiError:
        """Return the error an HTTP error response describes.

        A ``google.rpc.Status`` JSON body is decoded, details included; any other
        body (a proxy's HTML error page, plain text) still gives an error whose
        code follows the HTTP status and whose message quotes the start of the body.
        """
        status = _status_from_json(body)
        if status is not None and status.code != Code.OK:
            return cls.from_status(status, http_status=http_status)._answered_over_http()
        code = code_for_http_status(http_status)
        text = body.decode("utf-8", errors="replace").strip()
        excerpt = " ".join(text.split())[:_MAX_BODY_EXCERPT]
        kind = content_type.split(";", maxsplit=1)[0].strip() or "no content type"
        message = f"HTTP {http_status} with a non-Status body ({kind})"
        if excerpt:
            message += f": {excerpt}"
        return cls(code, message, http_status=http_status)._answered_over_http()

    @classmethod
    def from_grpc_error(cls, error: GrpcCall) -> ApiError:
        """Return the error a failed gRPC call describes, with its rich details.

        ``error`` is what a stub raises (a ``grpc.RpcError`` that is also a
        ``grpc.Call``). The ``google.rpc.Status`` in its
        ``grpc-status-details-bin`` trailer is decoded, details included,
        when the server sent one whose code matches the call's.
        """
        code_value = error.code().value
        number = code_value[0] if isinstance(code_value, tuple) else int(code_value)
        for key, value in error.trailing_metadata() or ():
            if key == GRPC_DETAILS_METADATA and isinstance(value, bytes):
                try:
                    status = status_pb2.Status.FromString(value)
                except DecodeError:
                    break
                if status.code == number:
                    return cls.from_status(status)
                break
        try:
            code = Code(number)
        except ValueError:
            code = Code.UNKNOWN
        return cls(code, error.details() or "")

    @property
    def status(self) -> status_pb2.Status:
        """Return the error as a ``google.rpc.Status`` with packed details."""
        status = status_pb2.Status(code=int(self.code), message=self.message)
        for detail in self.details:
            packed = any_pb2.Any()
            packed.Pack(detail)
            status.details.append(packed)
        return status

    @property
    def field_violations(self) -> list[FieldViolation]:
        """Return the field violations of every BadRequest detail."""
        return [
            violation
            for detail in self.details
            if isinstance(detail, error_details_pb2.BadRequest)
            for violation in detail.field_violations
        ]

    @property
    def retry_delay(self) -> float | None:
        """Return how many seconds the error asks to wait before trying again, if it says."""
        for detail in self.details:
            if isinstance(detail, error_details_pb2.RetryInfo) and detail.HasField("retry_delay"):
                return detail.retry_delay.ToTimedelta().total_seconds()
        return None

    def to_json(self) -> bytes:
        """Return the error as ``google.rpc.Status`` proto3 JSON."""
        return json_format.MessageToJson(self.status, indent=None).encode()

    def _describe(self) -> str:
        if self.http_status is None:
            where = " (no HTTP answer)"
        elif self._answered:
            where = f" (HTTP {self.http_status})"
        else:
            where = ""
        lines = [f"{self.code.name}{where}: {self.message}"]
        violations = self.field_violations
        if len(violations) == 1 and self.message in _violation_lines(violations):
            return lines[0]  # the message is the one violation: say it once
        lines += [f"  {line}" for line in _violation_lines(violations)]
        return "\n".join(lines)


def printable(text: str) -> str:
    r"""Return text that protobuf and JSON can carry: lone surrogates as ``\udXXX`` escapes.

    A request's JSON may hold unpaired surrogates (``"\ud800"``); quoted in an
    error as they are, they would make the error itself unencodable.
    """
    if text.isascii():
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def violation(field: str, description: str) -> FieldViolation:
    """Return a field violation whose path and description may quote the request's text."""
    return FieldViolation(field=printable(field), description=printable(description))


def invalid_field(path: str, description: str) -> ApiError:
    """Return an INVALID_ARGUMENT error naming one field by its JSON path."""
    return ApiError.invalid_argument([violation(path, description)])


def _violation_lines(violations: Sequence[FieldViolation]) -> list[str]:
    return [
        f"{violation.field}: {violation.description}" if violation.field else violation.description
        for violation in violations
    ]


def _unpack(details: Iterable[any_pb2.Any]) -> list[Message]:
    unpacked: list[Message] = []
    for packed in details:
        for detail_type in (
            error_details_pb2.BadRequest,
            error_details_pb2.ErrorInfo,
            error_details_pb2.RetryInfo,
            error_details_pb2.DebugInfo,
            error_details_pb2.QuotaFailure,
            error_details_pb2.PreconditionFailure,
            error_details_pb2.ResourceInfo,
            error_details_pb2.Help,
            error_details_pb2.LocalizedMessage,
        ):
            if packed.Is(detail_type.DESCRIPTOR):
                detail = detail_type()
                packed.Unpack(detail)
                unpacked.append(detail)
                break
        else:
            unpacked.append(packed)
    return unpacked


def _status_from_json(body: bytes) -> status_pb2.Status | None:
    """Return the ``google.rpc.Status`` an error body holds, or None (whatever the bytes)."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(document, dict):
        return None
    code = document.get("code")
    if not isinstance(code, int) or isinstance(code, bool) or not 0 <= code <= _MAX_CODE:
        return None
    status = status_pb2.Status()
    try:
        json_format.ParseDict(document, status, ignore_unknown_fields=True)
    except Exception:  # a detail of an unknown type, or any value protobuf refuses
        # Keep what can be read: the code, and the message if it is text.
        message = document.get("message")
        text = printable(message) if isinstance(message, str) else ""
        return status_pb2.Status(code=code, message=text)
    return status
