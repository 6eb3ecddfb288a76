"""The reference server over real sockets: curl, httpx, gRPC stubs and buf curl."""

from __future__ import annotations

import asyncio
import json
import pathlib
import signal
import subprocess

import grpc
import httpx
import pytest
from google.protobuf.message import Message
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from auxia.decision.model import treatment_interaction_service_pb2 as interactions
from auxia.decision.model import treatment_interaction_service_pb2_grpc as interactions_grpc
from auxia.decision.model import treatment_management_service_pb2 as management
from auxia.decision.model import treatment_management_service_pb2_grpc as management_grpc
from auxia.decision.model import treatment_pb2
from auxia_decision import ApiError, Code, RestCodec
from tests._fixtures import BROKEN, FIXTURES
from tests._repo import ROOT, VENV_BIN
from tests._served import Served, served, start
from tests._stored import stored_tracking_ids

CODEC = RestCodec()
KEY = "TEST_API_KEY"
LOG_BODY = (FIXTURES / "examples/log_treatment_interaction_request.json").read_text()


def _curl_doc_sample(url: str, method: str, body: str, key: str) -> tuple[int, str]:
    """Send a docs sample the way the docs' cURL command does, and return status and body."""
    result = subprocess.run(
        [
            "curl",
            "-sS",
            "--location",
            "--request",
            "POST",
            f"{url}/v1/{method}",
            "--header",
            "Content-Type: application/json",
            "--header",
            f"x-api-key: {key}",
            "--data-raw",
            body,
            "--write-out",
            "\n%{http_code}",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    text, _, status = result.stdout.rpartition("\n")
    return int(status), text


def test_docs_curl_samples_succeed_on_a_fresh_server(tmp_path: pathlib.Path) -> None:
    with served(tmp_path / "fresh.db") as running:
        url = running.rest_url
        status, text = _curl_doc_sample(
            url,
            "InsertTreatment",
            (FIXTURES / "docs/insert_treatment_request.json").read_text(),
            "TEST_API_KEY",
        )
        assert status == 200, text
        inserted = CODEC.decode_response(text, management.InsertTreatmentResponse).treatment
        assert inserted.name == "CCB treatment"
        assert inserted.mutual_exclusion_group.name == "MUTUAL_EXCLUSION_GROUP"

        status, text = _curl_doc_sample(
            url,
            "UpdateTreatment",
            (FIXTURES / "docs/update_treatment_request.json").read_text(),
            "TEST_API_KEY",
        )
        assert status == 200, text
        updated = CODEC.decode_response(text, management.UpdateTreatmentResponse).treatment
        assert updated.treatment_id == "TREATMENT_ID"
        assert updated.versions[-1].content.language_agnostic_content_fields[0].string_value == (
            "http://cta_link"
        )

        status, text = _curl_doc_sample(
            url, "GetDataFields", BROKEN["get_data_fields_request"].text(), "API_KEY"
        )
        assert status == 400
        error = json.loads(text)
        assert error["code"] == 3
        assert error["message"] == (
            "malformed JSON at line 25 column 1: Expecting property name enclosed in double quotes"
        )

        status, text = _curl_doc_sample(
            url,
            "GetDataFields",
            (FIXTURES / "docs/get_data_fields_request.corrected.json").read_text(),
            "API_KEY",
        )
        assert status == 200, text
        resolved = CODEC.decode_response(text, management.GetDataFieldsByParamsResponse)
        assert [f.data_field_type for f in resolved.data_fields] == [
            "INTEGER",
            "INTEGER",
            "TIMESTAMP_SECONDS",
        ]

        status, text = _curl_doc_sample(url, "LogTreatmentInteraction", LOG_BODY, "TEST_API_KEY")
        assert (status, json.loads(text)) == (200, {})


def _post(
    http: httpx.Client, server: Served, path: str, body: str | bytes, **headers: str
) -> httpx.Response:
    all_headers = {"content-type": "application/json", "x-api-key": KEY, **headers}
    return http.post(server.rest_url + path, content=body, headers=all_headers)


def _grpc_call(server: Served, method: str, request: Message, key: str = KEY) -> Message:
    with grpc.insecure_channel(server.grpc_target) as channel:
        stub: object
        if method == "LogTreatmentInteraction":
            stub = interactions_grpc.TreatmentInteractionServiceStub(channel)
        else:
            stub = management_grpc.TreatmentManagementServiceStub(channel)
        response: Message = getattr(stub, method)(request, metadata=(("x-api-key", key),))
        return response


def test_the_same_request_gets_the_same_answer_over_rest_and_grpc(
    http: httpx.Client, server: Served
) -> None:
    text = (FIXTURES / "docs/get_data_fields_request.corrected.json").read_text()
    rest = _post(http, server, "/v1/GetDataFields", text)
    assert rest.status_code == 200
    request = CODEC.decode_request(text, management.GetDataFieldsByParamsRequest)
    assert _grpc_call(server, "GetDataFields", request) == CODEC.decode_response(
        rest.content, management.GetDataFieldsByParamsResponse
    )

    update = management.UpdateTreatmentRequest(
        project_id="PROJECT_ID", treatment_id="TREATMENT_ID", last_modified_by="me", name="Both"
    )
    via_rest = CODEC.decode_response(
        _post(http, server, "/v1/UpdateTreatment", CODEC.encode(update)).content,
        management.UpdateTreatmentResponse,
    )
    via_grpc = _grpc_call(server, "UpdateTreatment", update)
    assert isinstance(via_grpc, management.UpdateTreatmentResponse)
    for response in (via_rest, via_grpc):
        response.treatment.ClearField("last_modified_timestamp")
    assert via_rest == via_grpc


def test_grpc_errors_carry_rich_details(server: Served) -> None:
    request = management.InsertTreatmentRequest(project_id="PROJECT_ID", name="x")
    with pytest.raises(grpc.RpcError) as caught:
        _grpc_call(server, "InsertTreatment", request)
    error = caught.value
    assert isinstance(error, grpc.Call)
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(error)
    assert status is not None
    bad_request = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad_request)
    assert [v.field for v in bad_request.field_violations] == [
        "description",
        "treatmentTypeName",
        "lastModifiedBy",
        "startTimestamp",
        "content",
    ]
    # Our decoding of the same trailer, without grpc_status, reads the same.
    api_error = ApiError.from_grpc_error(error)
    assert api_error.code is Code.INVALID_ARGUMENT
    assert api_error.message == status.message
    assert api_error.field_violations == list(bad_request.field_violations)


def test_a_grpc_error_without_details_keeps_its_code_and_message(server: Served) -> None:
    with grpc.insecure_channel(server.grpc_target) as channel:
        call = channel.unary_unary(
            "/io.auxia.decision.model.TreatmentManagementService/NoSuchMethod",
            request_serializer=None,
            response_deserializer=None,
        )
        with pytest.raises(grpc.RpcError) as caught:
            call(b"", timeout=30)
    assert isinstance(caught.value, grpc.Call)
    api_error = ApiError.from_grpc_error(caught.value)
    assert api_error.code is Code.UNIMPLEMENTED
    assert api_error.details == ()


@pytest.mark.parametrize(
    ("key", "code"),
    [
        ("", grpc.StatusCode.UNAUTHENTICATED),
        ("WRONG", grpc.StatusCode.UNAUTHENTICATED),
        ("OTHER_API_KEY", grpc.StatusCode.PERMISSION_DENIED),
    ],
)
def test_grpc_auth(server: Served, key: str, code: grpc.StatusCode) -> None:
    request = CODEC.decode_request(LOG_BODY, interactions.LogTreatmentInteractionRequest)
    with pytest.raises(grpc.RpcError) as caught:
        _grpc_call(server, "LogTreatmentInteraction", request, key)
    assert isinstance(caught.value, grpc.Call)
    assert caught.value.code() is code


def test_grpc_health_checking(server: Served) -> None:
    with grpc.insecure_channel(server.grpc_target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "io.auxia.decision.model.TreatmentInteractionService"):
            response = health.Check(health_pb2.HealthCheckRequest(service=service))
            assert response.status == health_pb2.HealthCheckResponse.SERVING


def _buf_curl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_BIN / "buf"), "curl", "--protocol", "grpc", "--http2-prior-knowledge", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_buf_curl_lists_methods_and_calls_through_reflection(server: Served) -> None:
    listing = _buf_curl("--list-methods", f"http://{server.grpc_target}")
    assert listing.returncode == 0, listing.stderr
    assert "io.auxia.decision.model.TreatmentManagementService/InsertTreatment" in listing.stdout
    assert "io.auxia.decision.model.TreatmentInteractionService/LogTreatmentInteraction" in (
        listing.stdout
    )
    call = _buf_curl(
        f"http://{server.grpc_target}/io.auxia.decision.model.TreatmentManagementService/GetDataFields",
        "-H",
        "x-api-key: API_KEY",
        "-d",
        '{"projectId": "PROJECT_ID", "dataFieldParams": '
        '[{"userAttributeDataFieldParams": {"propertyName": "country"}}]}',
    )
    assert call.returncode == 0, call.stderr
    assert json.loads(call.stdout)["dataFields"][0] == {
        "dataFieldId": "2",
        "dataFieldParams": {"userAttributeDataFieldParams": {"propertyName": "country"}},
        "dataFieldType": "STRING",
    }


def _status_of(response: httpx.Response) -> tuple[int, int, str]:
    document = response.json()
    return response.status_code, document["code"], document["message"]


def test_rest_errors_are_google_rpc_status_json(http: httpx.Client, server: Served) -> None:
    assert _status_of(_post(http, server, "/v1/Nothing", "{}"))[:2] == (404, 5)
    get = http.get(server.rest_url + "/v1/LogTreatmentInteraction")
    assert _status_of(get) == (
        405,
        12,
        "/v1/LogTreatmentInteraction accepts POST, not GET",
    )
    assert get.headers["allow"] == "POST"
    text = _post(
        http, server, "/v1/LogTreatmentInteraction", LOG_BODY, **{"content-type": "text/plain"}
    )
    assert _status_of(text) == (415, 3, "the body must be application/json, not text/plain")
    huge = _post(http, server, "/v1/LogTreatmentInteraction", b" " * (4 * 1024 * 1024 + 1))
    assert _status_of(huge) == (413, 3, "the body is larger than 4194304 bytes")
    unknown = _post(http, server, "/v1/LogTreatmentInteraction", LOG_BODY[:-2] + ', "colour": 1}')
    assert unknown.status_code == 400
    violations = unknown.json()["details"][0]["fieldViolations"]
    assert violations == [
        {
            "field": "colour",
            "description": 'unknown field "colour" in LogTreatmentInteractionRequest',
        }
    ]


@pytest.mark.parametrize(
    ("headers", "query", "status"),
    [
        ({"x-api-key": ""}, "", 401),
        ({"x-api-key": "WRONG"}, "", 401),
        ({"x-api-key": "OTHER_API_KEY"}, "", 403),
        ({"api-key": KEY}, "", 200),
        ({}, f"?api-key={KEY}", 200),
        ({}, "?api-key=WRONG", 401),
    ],
)
def test_rest_auth(
    http: httpx.Client, server: Served, headers: dict[str, str], query: str, status: int
) -> None:
    all_headers = {"content-type": "application/json", **headers}
    response = http.post(
        server.rest_url + "/v1/LogTreatmentInteraction" + query,
        content=LOG_BODY,
        headers=all_headers,
    )
    assert response.status_code == status, response.text
    for secret in (KEY, "WRONG", "OTHER_API_KEY"):
        assert secret not in response.text


def test_restart_keeps_the_data(http: httpx.Client, tmp_path: pathlib.Path) -> None:
    db = tmp_path / "kept.db"
    insert = management.InsertTreatmentRequest()
    insert.CopyFrom(
        CODEC.decode_request(
            (FIXTURES / "docs/insert_treatment_request.json").read_text(),
            management.InsertTreatmentRequest,
        )
    )
    insert.external_treatment_id = "KEPT"
    with served(db) as first:
        created = _post(http, first, "/v1/InsertTreatment", CODEC.encode(insert))
        assert created.status_code == 200, created.text
    with served(db) as second:
        update = management.UpdateTreatmentRequest(
            project_id="PROJECT_ID", external_treatment_id="KEPT", last_modified_by="me"
        )
        response = _post(http, second, "/v1/UpdateTreatment", CODEC.encode(update))
        assert response.status_code == 200, response.text
        treatment = CODEC.decode_response(response.content, management.UpdateTreatmentResponse)
        assert (
            treatment.treatment.treatment_id == json.loads(created.text)["treatment"]["treatmentId"]
        )
        assert treatment.treatment.status == treatment_pb2.TreatmentPb.LIVE


def test_concurrent_writers_over_both_transports_lose_nothing(tmp_path: pathlib.Path) -> None:
    db = tmp_path / "concurrent.db"
    base = json.loads(LOG_BODY)
    with served(db) as running:

        async def rest_writers() -> list[int]:
            limits = httpx.Limits(max_connections=32)
            async with httpx.AsyncClient(limits=limits, timeout=30) as client:

                async def one(index: int) -> int:
                    body = json.dumps({**base, "treatmentTrackingId": f"rest-{index}"})
                    response = await client.post(
                        running.rest_url + "/v1/LogTreatmentInteraction",
                        content=body,
                        headers={"content-type": "application/json", "x-api-key": KEY},
                    )
                    return response.status_code

                return await asyncio.gather(*(one(i) for i in range(200)))

        async def grpc_writers() -> None:
            async with grpc.aio.insecure_channel(running.grpc_target) as channel:
                stub = interactions_grpc.TreatmentInteractionServiceStub(channel)
                request = CODEC.decode_request(
                    LOG_BODY, interactions.LogTreatmentInteractionRequest
                )

                async def one(index: int) -> None:
                    copy = interactions.LogTreatmentInteractionRequest()
                    copy.CopyFrom(request)
                    copy.treatment_tracking_id = f"grpc-{index}"
                    await stub.LogTreatmentInteraction(copy, metadata=(("x-api-key", KEY),))

                await asyncio.gather(*(one(i) for i in range(100)))

        async def both() -> list[int]:
            statuses, _ = await asyncio.gather(rest_writers(), grpc_writers())
            return statuses

        statuses = asyncio.run(both())
        assert statuses == [200] * 200
        code, _ = running.stop()
        assert code == 0
    expected = {f"rest-{i}" for i in range(200)} | {f"grpc-{i}" for i in range(100)}
    stored = stored_tracking_ids(db)
    assert len(stored) == 300
    assert set(stored) == expected


def test_sigterm_and_sigint_stop_the_server_cleanly(tmp_path: pathlib.Path) -> None:
    for signum in (signal.SIGTERM, signal.SIGINT):
        running = start(tmp_path / "stop.db")
        code, output = running.stop(signum)
        assert code == 0, output
        assert "stopping" in output
        assert "Traceback" not in output


def test_serve_prints_a_ready_to_paste_curl_line(server: Served) -> None:
    lines = server.output.splitlines()
    assert lines[0] == f"auxia-decision: REST on {server.rest_url}"
    command = [line for line in lines if "curl -sS" in line]
    assert command, server.output


def test_server_serves_the_generated_openapi_description(
    http: httpx.Client, server: Served
) -> None:
    response = http.get(server.rest_url + "/openapi.json")
    assert response.status_code == 200
    spec = ROOT / "generated/auxia/decision/model/openapi.json"
    assert response.content == spec.read_bytes()
    assert "/v1/LogTreatmentInteraction" in response.json()["paths"]
