"""Hostile input at every endpoint: the answer is a 4xx google.rpc.Status, never a 5xx.

One ``auxia-decision serve`` process on loopback takes random bytes,
truncated JSON, 100,000-level nesting, huge strings and numbers, a value of
the wrong type at every field of the docs' samples, duplicate keys and
invalid UTF-8, on each REST route, and random bytes on each gRPC method. It
must answer every one, with a 4xx ``google.rpc.Status`` JSON body (gRPC: a
client-error code), and still serve afterwards.

The random parts are bounded: ``AUXIA_FUZZ_EXAMPLES`` examples per property
(default 50); ``make fuzz`` raises it.
"""

from __future__ import annotations

import collections
import copy
import json
import os
import random
from collections.abc import Iterator
from typing import Any, Final, cast

import grpc
import httpx
import pytest
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auxia_decision._routes import Route, routes
from tests._fixtures import REQUESTS
from tests._served import Served

KEY: Final = "TEST_API_KEY"
EXAMPLES: Final = int(os.environ.get("AUXIA_FUZZ_EXAMPLES", "50"))
DEPTH: Final = 100_000
ROUTES: Final = routes()
SAMPLES: Final = {method: sample.path for method, sample in REQUESTS.items()}
# gRPC codes that say the server failed, rather than the request.
SERVER_FAILURES: Final = {
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.DATA_LOSS,
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
}
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.fixture(scope="module")
def client(server: Served) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.rest_url, timeout=60) as opened:
        yield opened


def _post(client: httpx.Client, path: str, body: bytes) -> httpx.Response:
    return client.post(
        path, content=body, headers={"content-type": "application/json", "x-api-key": KEY}
    )


def _assert_status_json(response: httpx.Response) -> dict[str, Any]:
    """Assert the body is a google.rpc.Status JSON with a client-error code, and return it."""
    document = response.json()
    assert isinstance(document, dict), response.text[:300]
    assert isinstance(document.get("code"), int), response.text[:300]
    assert document["code"] != 0, response.text[:300]
    assert isinstance(document.get("message"), str), response.text[:300]
    return cast(dict[str, Any], document)


def _assert_client_error(response: httpx.Response) -> dict[str, Any]:
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    return _assert_status_json(response)


def _assert_no_server_error(response: httpx.Response) -> None:
    assert response.status_code < 500, (response.status_code, response.text[:300])
    if response.status_code >= 400:
        _assert_status_json(response)


def _malformed_bodies() -> dict[str, bytes]:
    sample = SAMPLES["LogTreatmentInteraction"].read_bytes()
    return {
        "empty": b"",
        "whitespace": b" \n\t ",
        "null": b"null",
        "array": b"[]",
        "string": b'"PROJECT_ID"',
        "number": b"1e999999",
        "NaN": b'{"interactionTimeMicros": NaN}',
        "nested arrays": b"[" * DEPTH + b"]" * DEPTH,
        "nested objects": b'{"a":' * DEPTH + b"1" + b"}" * DEPTH,
        "nested arrays in a field": b'{"projectId":' + b"[" * DEPTH + b"]" * DEPTH + b"}",
        "nested objects in a field": (
            b'{"treatmentId":' + b'{"a":' * DEPTH + b"1" + b"}" * DEPTH + b"}"
        ),
        "unclosed nesting": b"[" * DEPTH,
        "huge number": b'{"interactionTimeMicros": ' + b"9" * 1_000_000 + b"}",
        "huge negative exponent": b'{"interactionTimeMicros": 1e-' + b"9" * 100_000 + b"}",
        "huge float": b'{"interactionTimeMicros": 1.5e308}',
        "huge string key": b'{"' + b"k" * 3_000_000 + b'": 1}',
        "duplicate keys": b'{"projectId": "PROJECT_ID", "projectId": "PROJECT_ID"}',
        "same field twice": b'{"projectId": "PROJECT_ID", "project_id": "PROJECT_ID"}',
        "invalid UTF-8 in a value": b'{"projectId": "\xff\xfe"}',
        "invalid UTF-8 in a key": b'{"\xc3\x28": 1}',
        "overlong UTF-8": b'{"projectId": "\xc0\xaf"}',
        "lone surrogate": b'{"projectId": "\\ud800"}',
        "byte order mark": b"\xef\xbb\xbf" + sample,
        "UTF-16": sample.decode().encode("utf-16"),
        "trailing garbage": sample + b"}",
        "two documents": sample + sample,
        "NUL bytes": b"\x00" * 1000,
    }


@pytest.mark.parametrize("route", ROUTES, ids=[route.name for route in ROUTES])
@pytest.mark.parametrize("case", sorted(_malformed_bodies()))
def test_malformed_json_is_a_400_status(client: httpx.Client, route: Route, case: str) -> None:
    response = _post(client, route.path, _malformed_bodies()[case])
    document = _assert_client_error(response)
    assert response.status_code == 400, case
    assert document["code"] == 3


@pytest.mark.parametrize("route", ROUTES, ids=[route.name for route in ROUTES])
@pytest.mark.parametrize(
    "body",
    [
        b'{"projectId": "' + b"\\u0000" * 500_000 + b'"}',
        b'{"projectId": "PROJECT_ID", "treatmentId": "' + b"\\ud83d\\ude00" * 200_000 + b'"}',
        b'{"projectId": "' + "\u00e9".encode() * 1_000_000 + b'"}',
    ],
    ids=["escaped NULs", "escaped surrogate pairs", "two-byte characters"],
)
def test_huge_strings_are_a_4xx_status(client: httpx.Client, route: Route, body: bytes) -> None:
    _assert_client_error(_post(client, route.path, body))


@pytest.mark.parametrize("route", ROUTES, ids=[route.name for route in ROUTES])
def test_truncated_json_is_a_400_status(client: httpx.Client, route: Route) -> None:
    sample = SAMPLES[route.name].read_bytes().rstrip()
    cuts = sorted({*range(0, len(sample), max(1, len(sample) // 40)), len(sample) - 1})
    for cut in cuts:
        response = _post(client, route.path, sample[:cut])
        assert response.status_code == 400, (cut, response.text[:300])
        _assert_status_json(response)


@pytest.mark.parametrize("route", ROUTES, ids=[route.name for route in ROUTES])
def test_a_body_over_the_limit_is_a_413_status(client: httpx.Client, route: Route) -> None:
    response = _post(client, route.path, b'{"projectId": "' + b"x" * (4 * 1024 * 1024) + b'"}')
    assert response.status_code == 413
    _assert_status_json(response)


# A value of the wrong JSON type for each kind of field.
_NOT_A_STRING: Final = [True, 1, 1.5, [], {}]
_WRONG: Final[dict[str, list[object]]] = {
    "string": _NOT_A_STRING,
    "bytes": [True, 1, [], {}, "not base64 !"],
    "integer": [True, 1.5, [], {}, "twelve", 1e30],
    "float": [True, [], {}, "fast"],
    "bool": [1, "yes", [], {}],
    "enum": [True, 1.5, [], {}, "NOT_A_VALUE"],
    "message": [True, 1, "x", []],
    "timestamp": [True, 1, [], {}, "yesterday"],
    "repeated": [True, 1, "x", {}],
    "map": [True, 1, "x", []],
}


_KIND_BY_CPP_TYPE: Final = {
    FieldDescriptor.CPPTYPE_ENUM: "enum",
    FieldDescriptor.CPPTYPE_BOOL: "bool",
    FieldDescriptor.CPPTYPE_DOUBLE: "float",
    FieldDescriptor.CPPTYPE_FLOAT: "float",
    FieldDescriptor.CPPTYPE_STRING: "string",
}


def _kind(field: FieldDescriptor) -> str:
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        return "map"
    if field.is_repeated:
        return "repeated"
    if field.message_type is not None:
        is_timestamp = field.message_type.full_name == "google.protobuf.Timestamp"
        return "timestamp" if is_timestamp else "message"
    if field.type == FieldDescriptor.TYPE_BYTES:
        return "bytes"
    return _KIND_BY_CPP_TYPE.get(field.cpp_type, "integer")


def _fields(
    document: object, descriptor: Descriptor, path: tuple[str | int, ...] = ()
) -> Iterator[tuple[tuple[str | int, ...], FieldDescriptor]]:
    """Yield every field of every message the sample holds, with the JSON path of its parent."""
    if not isinstance(document, dict):
        return
    for field in descriptor.fields:
        yield path, field
        key = field.name if field.name in document else field.json_name
        value = document.get(key)
        if field.message_type is None or field.message_type.GetOptions().map_entry:
            continue
        if field.is_repeated and isinstance(value, list):
            for index, item in enumerate(value):
                yield from _fields(item, field.message_type, (*path, key, index))
        elif isinstance(value, dict) and _kind(field) == "message":
            yield from _fields(value, field.message_type, (*path, key))


def _wrong_type_cases() -> list[tuple[str, str, FieldDescriptor, object]]:
    cases = []
    for route in ROUTES:
        sample = json.loads(SAMPLES[route.name].read_text())
        descriptor = cast(Descriptor, route.request_type.DESCRIPTOR)
        for parent, field in _fields(sample, descriptor):
            for value in _WRONG[_kind(field)]:
                cases.append((route.name, json.dumps(parent), field, value))
    return cases


def test_a_wrong_type_at_every_field_is_a_400_naming_it(client: httpx.Client) -> None:
    by_name = {route.name: route for route in ROUTES}
    cases = _wrong_type_cases()
    assert len(cases) > 100
    for method, parent_json, field, value in cases:
        document = json.loads(SAMPLES[method].read_text())
        target = document
        for token in json.loads(parent_json):
            target = target[token]
        # The sample may spell the field either way; the wrong value replaces it.
        target.pop(field.name, None)
        name = field.json_name
        target[name] = copy.deepcopy(value)
        response = _post(client, by_name[method].path, json.dumps(document).encode())
        assert response.status_code == 400, (method, parent_json, name, value, response.text)
        violations = _assert_status_json(response)["details"][0]["fieldViolations"]
        assert any(name in violation["field"] for violation in violations), violations


_JSON: Final = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@FUZZ
@given(route=st.sampled_from(ROUTES), body=st.binary(max_size=1024))
def test_random_bytes_never_get_a_5xx(client: httpx.Client, route: Route, body: bytes) -> None:
    _assert_no_server_error(_post(client, route.path, body))


@FUZZ
@given(route=st.sampled_from(ROUTES), document=_JSON)
def test_random_json_never_gets_a_5xx(client: httpx.Client, route: Route, document: object) -> None:
    _assert_no_server_error(_post(client, route.path, json.dumps(document).encode()))


@FUZZ
@given(data=st.data(), route=st.sampled_from(ROUTES))
def test_random_values_of_the_request_fields_never_get_a_5xx(
    client: httpx.Client, data: st.DataObject, route: Route
) -> None:
    descriptor = cast(Descriptor, route.request_type.DESCRIPTOR)
    names = [field.json_name for field in descriptor.fields] + [f.name for f in descriptor.fields]
    document = data.draw(st.dictionaries(st.sampled_from(names), _JSON, max_size=6))
    _assert_no_server_error(_post(client, route.path, json.dumps(document).encode()))


@FUZZ
@given(route=st.sampled_from(ROUTES), payload=st.binary(max_size=512))
def test_random_bytes_over_grpc_never_get_a_server_error(
    server: Served, route: Route, payload: bytes
) -> None:
    with grpc.insecure_channel(server.grpc_target) as channel:
        call = channel.unary_unary(
            route.grpc_path, request_serializer=None, response_deserializer=None
        )
        code = grpc.StatusCode.OK
        try:
            call(payload, metadata=(("x-api-key", KEY),), timeout=30)
        except grpc.RpcError as error:
            code = error.code() if isinstance(error, grpc.Call) else grpc.StatusCode.UNKNOWN
    assert code not in SERVER_FAILURES, code


def test_the_server_still_serves_after_all_that(server: Served, client: httpx.Client) -> None:
    assert server.process.poll() is None
    body = SAMPLES["LogTreatmentInteraction"].read_bytes()
    response = _post(client, "/v1/LogTreatmentInteraction", body)
    assert (response.status_code, response.json()) == (200, {})


MUTATED_BODIES: Final = int(os.environ.get("AUXIA_MUTATED_BODIES", "2000"))
# What a mutation may put into a body: lone and paired surrogates, escapes,
# control characters, JSON punctuation and other types.
_INSERTS: Final = [
    b"\\ud800", b"\\udfff", b"\\ud83d\\ude00", b"\\u0000", b"\\", b'"', b"\xff", b"\xed\xa0\x80",
    b"{", b"}", b"[", b"]", b",", b":", b"null", b"true", b"-0", b"1e999", b"NaN", b"\x00",
]  # fmt: skip


def _mutate(sample: bytes, rng: random.Random) -> bytes:
    """Return a sample with one to four random edits: inserts, deletions and replacements."""
    data = bytearray(sample)
    for _ in range(rng.randint(1, 4)):
        position = rng.randrange(len(data) + 1)
        edit = rng.random()
        if edit < 0.5:
            data[position:position] = rng.choice(_INSERTS)
        elif edit < 0.75 and data:
            del data[position : position + rng.randint(1, 8)]
        else:
            data[position : position + 1] = rng.choice(_INSERTS)
    return bytes(data)


@pytest.mark.parametrize("route", ROUTES, ids=[route.name for route in ROUTES])
def test_mutated_bodies_never_get_a_5xx(client: httpx.Client, route: Route) -> None:
    """``AUXIA_MUTATED_BODIES`` per route: 2,000 in ``make test``, 25,000 in ``make fuzz``."""
    rng = random.Random(f"{route.name}-{MUTATED_BODIES}")  # the same bodies every run
    sample = SAMPLES[route.name].read_bytes()
    statuses: collections.Counter[int] = collections.Counter()
    for _ in range(MUTATED_BODIES):
        body = _mutate(sample, rng)
        response = _post(client, route.path, body)
        statuses[response.status_code] += 1
        assert response.status_code < 500, (body, response.text[:300])
        if response.status_code >= 400:
            _assert_status_json(response)
    assert sum(statuses.values()) == MUTATED_BODIES
