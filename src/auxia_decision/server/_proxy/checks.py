"""The checks of one exchange: the request against our server, the answer against the schema.

Every rule is read where the server and the client read it: the request is
decoded strictly by the codec and validated by ``_validation``; a success's
body is walked by ``find_drift``; an error's body must be a
``google.rpc.Status``; the statuses each method may answer are those of the
codes its documentation comment lists (``Returns INVALID_ARGUMENT when
...``), read from the installed descriptor set.
"""

from __future__ import annotations

import functools
import re
import zlib
from collections.abc import Callable
from typing import Final, NamedTuple, cast

from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import Descriptor
from google.rpc import status_pb2

from auxia_decision._codec import RestCodec
from auxia_decision._drift import INVALID_VALUE, find_drift
from auxia_decision._errors import ApiError, Code, FieldViolation, http_status_for
from auxia_decision._json import load_json
from auxia_decision._protos import descriptor_set_path
from auxia_decision._routes import Route, routes, services
from auxia_decision._validation import REQUIRED, validate
from auxia_decision._validation_quick import fields_check
from auxia_decision.server._proxy.findings import (
    INVALID_JSON,
    MISSING_REQUIRED,
    NOT_A_STATUS,
    OUTPUT_ONLY,
    REQUEST,
    RESPONSE,
    RULE_VIOLATION,
    UNKNOWN_METHOD,
    UNLISTED_STATUS,
    Finding,
)
from auxia_decision.server._proxy.recording import Exchange, Headers, scrubbed, secrets_of

_CODEC: Final = RestCodec()
_STATUS: Final = status_pb2.Status.DESCRIPTOR
_CODE_NAMES: Final = re.compile(r"\b(" + "|".join(code.name for code in Code) + r")\b")
_SERVICE_FIELD: Final = 6  # FileDescriptorProto.service
_METHOD_FIELD: Final = 2  # ServiceDescriptorProto.method


class Problem(NamedTuple):
    """What a check finds, before it is told the exchange's time and method."""

    side: str
    path: str
    kind: str
    detail: str


@functools.cache
def _routes_by_target() -> dict[tuple[str, str], Route]:
    return {(route.http_method, route.path): route for route in routes()}


def route_of(http_method: str, path: str) -> Route | None:
    """Return the route a request's HTTP method and path name, or None."""
    return _routes_by_target().get((http_method, path))


@functools.cache
def listed_codes() -> dict[str, frozenset[Code]]:
    """Return, by RPC short name, OK and the codes its documentation comment lists."""
    files = descriptor_pb2.FileDescriptorSet.FromString(descriptor_set_path().read_bytes())
    wanted = {service.full_name for service in services()}
    found: dict[str, frozenset[Code]] = {}
    for file in files.file:
        comments = {
            tuple(location.path): location.leading_comments
            for location in file.source_code_info.location
        }
        for service_index, service in enumerate(file.service):
            if f"{file.package}.{service.name}" not in wanted:
                continue
            for method_index, method in enumerate(service.method):
                where = (_SERVICE_FIELD, service_index, _METHOD_FIELD, method_index)
                names = _CODE_NAMES.findall(comments.get(where, ""))
                found[method.name] = frozenset({Code.OK, *(Code[name] for name in names)})
    return found


@functools.cache
def _quick_request_check(route: Route) -> Callable[[bytes], bool]:
    """Return the server's own quick path: True when a body is certainly a valid request.

    The fields decoding and its check (``fields_check``), held equal to the
    strict decoding and ``validate`` by their tests; False means unsure, and
    the full check words what is wrong, if anything.
    """
    decode = _CODEC.request_fields_decoder(route.request_type)
    check = fields_check(route.request_type)
    if decode is None:
        return lambda _: False

    def quick(body: bytes) -> bool:
        fields = decode(body)
        return fields is not None and check(fields)

    return quick


def check_request(route: Route | None, http_method: str, path: str, body: bytes) -> list[Problem]:
    """Return what our server would not accept in a request, each with its JSON path."""
    if route is None:
        return [Problem(REQUEST, "", UNKNOWN_METHOD, f"{http_method} {path} names no RPC")]
    if _quick_request_check(route)(body):
        return []
    try:
        message = _CODEC.decode_request(body, route.request_type)
    except ApiError as error:
        try:
            document = load_json(body)
        except ApiError as not_json:
            return [Problem(REQUEST, "", INVALID_JSON, _first(not_json.field_violations, not_json))]
        descriptor = cast(Descriptor, route.request_type.DESCRIPTOR)
        kinds = {drift.path: drift.kind for drift in find_drift(document, descriptor)}
        return [
            Problem(
                REQUEST,
                violation.field,
                kinds.get(violation.field) or _required_or(violation, INVALID_VALUE),
                violation.description,
            )
            for violation in error.field_violations
        ]
    result = validate(message)
    return [
        Problem(REQUEST, found.field, _required_or(found, RULE_VIOLATION), found.description)
        for found in result.errors
    ] + [Problem(REQUEST, found.field, OUTPUT_ONLY, found.description) for found in result.warnings]


def check_response(route: Route, status: int, body: bytes) -> list[Problem]:
    """Return what the schema does not describe in an answer, each with its JSON path."""
    problems: list[Problem] = []
    if 200 <= status < 300:  # first the client's check: as cheap as a strict decode when clean
        try:
            _, drifts = _CODEC.decode_response_drift(body, route.response_type)
        except ApiError:
            pass  # not JSON, or not readable at all: worded below
        else:
            problems += [Problem(RESPONSE, d.path, d.kind, d.detail) for d in drifts]
            return problems + _unlisted(route, status, Code.OK)
    try:
        document = load_json(body)
    except ApiError as error:
        document = None
        kind = INVALID_JSON if 200 <= status < 300 else NOT_A_STATUS
        problems.append(Problem(RESPONSE, "", kind, _first(error.field_violations, error)))
    code = Code.OK
    if 200 <= status < 300:
        if document is not None:
            descriptor = cast(Descriptor, route.response_type.DESCRIPTOR)
            problems += [
                Problem(RESPONSE, drift.path, drift.kind, drift.detail)
                for drift in find_drift(document, descriptor)
            ]
    elif document is not None:
        code, status_problems = _status_problems(document, status)
        problems += status_problems
    return problems + _unlisted(route, status, code)


@functools.cache
def _listed(method: str) -> tuple[frozenset[Code], frozenset[int]]:
    """Return the codes a method's comment lists (OK among them), and their HTTP statuses."""
    listed = listed_codes().get(method, frozenset({Code.OK}))
    return listed, frozenset(http_status_for(listed_code) for listed_code in listed)


def _unlisted(route: Route, status: int, code: Code) -> list[Problem]:
    """Return the finding of a status (or a Status code) the method's comment does not list."""
    listed, statuses = _listed(route.name)
    if status in statuses and code in listed:
        return []
    shown = ", ".join(f"{http_status_for(each)} {each.name}" for each in sorted(listed, key=int))
    answered = f"HTTP {status}" + ("" if code is Code.OK else f" {code.name}")
    detail = f"{answered}: the documentation of {route.name} lists {shown}"
    return [Problem(RESPONSE, "", UNLISTED_STATUS, detail)]


def _status_problems(document: object, status: int) -> tuple[Code, list[Problem]]:
    """Return the code of an error answer's Status body, and how it is not a Status."""
    problems = [
        Problem(RESPONSE, drift.path, NOT_A_STATUS, f"{drift.kind}: {drift.detail}")
        for drift in find_drift(document, _STATUS)
    ]
    raw = document.get("code") if isinstance(document, dict) else None
    if isinstance(raw, int) and not isinstance(raw, bool) and raw in Code._value2member_map_:
        code = Code(raw)
        if code is Code.OK:
            problems.append(
                Problem(RESPONSE, "code", NOT_A_STATUS, f"HTTP {status} with code 0 (OK)")
            )
        return code, problems
    if not problems:
        problems.append(
            Problem(RESPONSE, "code", NOT_A_STATUS, f"an HTTP {status} answer's Status has no code")
        )
    return Code.OK, problems


def _required_or(violation: FieldViolation, otherwise: str) -> str:
    description = violation.description
    if description == REQUIRED or description.startswith(f"{REQUIRED}:"):
        return MISSING_REQUIRED
    return otherwise


def _first(violations: list[FieldViolation], error: ApiError) -> str:
    return violations[0].description if violations else error.message


def method_of(exchange: Exchange) -> str:
    """Return the RPC an exchange called (its short name), or its path when it names none."""
    route = route_of(exchange.http_method, exchange.path)
    return route.name if route is not None else exchange.path


def check_exchange(exchange: Exchange, upstream_failure: str = "") -> list[Finding]:
    """Return the findings of one exchange, keys redacted from them.

    ``upstream_failure`` words an upstream failure the proxy answered
    (``exchange.error`` its kind): it is a finding of the response side, whose
    body is then the proxy's own and is not checked.
    """
    route = route_of(exchange.http_method, exchange.path)
    request_body = _decoded(exchange.request_body, exchange.request_headers)
    problems = check_request(route, exchange.http_method, exchange.path, request_body)
    if exchange.error:
        problems.append(Problem(RESPONSE, "", exchange.error, upstream_failure))
    elif route is not None:
        body = _decoded(exchange.response_body, exchange.response_headers)
        problems += check_response(route, exchange.status, body)
    if not problems:
        return []
    method = route.name if route is not None else exchange.path
    secrets = secrets_of(exchange)
    return [
        Finding(
            exchange.time,
            method,
            problem.side,
            scrubbed(problem.path, secrets),
            problem.kind,
            scrubbed(problem.detail, secrets),
        )
        for problem in problems
    ]


def _decoded(body: bytes, headers: Headers) -> bytes:
    """Return a body without its gzip or deflate Content-Encoding (as it is, if it has none)."""
    for name, value in headers:
        if name.lower() == b"content-encoding" and value.strip().lower() in (b"gzip", b"deflate"):
            try:
                return zlib.decompress(body, zlib.MAX_WBITS | 32)  # gzip or zlib, by its header
            except zlib.error:
                return body
    return body
