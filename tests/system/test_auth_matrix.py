"""Who may call what: every RPC, over REST and gRPC, with every way of sending a key.

The default seed has keys TEST_API_KEY and API_KEY for PROJECT_ID and
OTHER_API_KEY for OTHER_PROJECT_ID. A missing or unknown key is 401 /
UNAUTHENTICATED whatever the body, a key of another project 403 /
PERMISSION_DENIED, and a valid key in the x-api-key or api-key header, or in
the api-key query parameter (REST), is let through. No answer repeats a key.
"""

from __future__ import annotations

import json
from typing import Final, cast

import grpc
import httpx
import pytest
from google.protobuf.message import Message
from grpc_status import rpc_status

from auxia_decision import RestCodec
from auxia_decision._routes import Route, routes
from tests._fixtures import REQUESTS
from tests._served import Served

KEYS: Final = ("TEST_API_KEY", "API_KEY", "OTHER_API_KEY", "WRONG_KEY")
ROUTES: Final = routes()
CODEC: Final = RestCodec()


def _body(route: Route) -> bytes:
    """Return a request of the method that the holder of TEST_API_KEY may send."""
    document = json.loads(REQUESTS[route.name].text())
    # Each accepted InsertTreatment creates a treatment: no external id to clash.
    document.pop("external_treatment_id", None)
    return json.dumps(document).encode()


def _message(route: Route) -> Message:
    return CODEC.decode_request(_body(route), route.request_type)


# (case, headers, query, expected HTTP status)
REST_CASES: Final = [
    ("no key", {}, "", 401),
    ("empty key", {"x-api-key": ""}, "", 401),
    ("wrong key", {"x-api-key": "WRONG_KEY"}, "", 401),
    ("key of another project", {"x-api-key": "OTHER_API_KEY"}, "", 403),
    ("x-api-key header", {"x-api-key": "TEST_API_KEY"}, "", 200),
    ("api-key header", {"api-key": "API_KEY"}, "", 200),
    ("query", {}, "?api-key=TEST_API_KEY", 200),
    ("query with an underscore", {}, "?api_key=TEST_API_KEY", 200),
    ("wrong key in the query", {}, "?api-key=WRONG_KEY", 401),
    ("other project's key in the query", {}, "?api-key=OTHER_API_KEY", 403),
    ("the header wins over the query", {"x-api-key": "WRONG_KEY"}, "?api-key=TEST_API_KEY", 401),
    ("x-api-key wins over api-key", {"x-api-key": "WRONG_KEY", "api-key": "API_KEY"}, "", 401),
]


@pytest.mark.parametrize("route", ROUTES, ids=[route.name for route in ROUTES])
@pytest.mark.parametrize(
    ("headers", "query", "status"),
    [case[1:] for case in REST_CASES],
    ids=[case[0] for case in REST_CASES],
)
def test_rest_auth(
    server: Served,
    http: httpx.Client,
    route: Route,
    *,
    headers: dict[str, str],
    query: str,
    status: int,
) -> None:
    response = http.post(
        server.rest_url + route.path + query,
        content=_body(route),
        headers={"content-type": "application/json", **headers},
    )
    assert response.status_code == status, response.text
    if status != 200:
        assert response.json()["code"] == {401: 16, 403: 7}[status]
    for key in KEYS:
        assert key not in response.text


@pytest.mark.parametrize("route", ROUTES, ids=[route.name for route in ROUTES])
@pytest.mark.parametrize("body", [b"", b"not json", b"{}"], ids=["empty", "garbage", "{}"])
def test_rest_checks_the_key_before_the_body(
    server: Served, http: httpx.Client, route: Route, body: bytes
) -> None:
    for headers, status in (({}, 401), ({"x-api-key": "WRONG_KEY"}, 401)):
        response = http.post(
            server.rest_url + route.path,
            content=body,
            headers={"content-type": "application/json", **headers},
        )
        assert response.status_code == status, response.text
    # A key of another project is refused once the body names the project.
    response = http.post(
        server.rest_url + route.path,
        content=_body(route),
        headers={"content-type": "text/plain", "x-api-key": "OTHER_API_KEY"},
    )
    assert response.status_code == 415, "the body is read only after the key is accepted"


# (case, metadata, expected code)
GRPC_CASES: Final = [
    ("no key", (), grpc.StatusCode.UNAUTHENTICATED),
    ("empty key", (("x-api-key", ""),), grpc.StatusCode.UNAUTHENTICATED),
    ("wrong key", (("x-api-key", "WRONG_KEY"),), grpc.StatusCode.UNAUTHENTICATED),
    (
        "key of another project",
        (("x-api-key", "OTHER_API_KEY"),),
        grpc.StatusCode.PERMISSION_DENIED,
    ),
    ("x-api-key metadata", (("x-api-key", "TEST_API_KEY"),), grpc.StatusCode.OK),
    ("second key of the project", (("x-api-key", "API_KEY"),), grpc.StatusCode.OK),
]


@pytest.mark.parametrize("route", ROUTES, ids=[route.name for route in ROUTES])
@pytest.mark.parametrize(
    ("metadata", "code"),
    [case[1:] for case in GRPC_CASES],
    ids=[case[0] for case in GRPC_CASES],
)
def test_grpc_auth(
    server: Served,
    route: Route,
    metadata: tuple[tuple[str, str], ...],
    code: grpc.StatusCode,
) -> None:
    with grpc.insecure_channel(server.grpc_target) as channel:
        call = channel.unary_unary(
            route.grpc_path,
            request_serializer=lambda message: message.SerializeToString(),
            response_deserializer=route.response_type.FromString,
        )
        failure: grpc.Call | None = None
        try:
            call(_message(route), metadata=metadata, timeout=30)
        except grpc.RpcError as error:
            failure = cast(grpc.Call, error)  # what a call raises is both
    if code is grpc.StatusCode.OK:
        assert failure is None, failure
        return
    assert failure is not None
    assert failure.code() is code, failure.details()
    status = rpc_status.from_call(failure)
    assert status is not None
    assert status.code == code.value[0]
    for key in KEYS:
        assert key not in (failure.details() or "")
        assert key not in status.message


@pytest.mark.parametrize("route", ROUTES, ids=[route.name for route in ROUTES])
def test_grpc_checks_the_key_before_the_request(server: Served, route: Route) -> None:
    with grpc.insecure_channel(server.grpc_target) as channel:
        call = channel.unary_unary(
            route.grpc_path, request_serializer=None, response_deserializer=None
        )
        with pytest.raises(grpc.RpcError) as caught:
            call(b"\xff not a message", metadata=(("x-api-key", "WRONG_KEY"),), timeout=30)
    assert isinstance(caught.value, grpc.Call)
    assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED
