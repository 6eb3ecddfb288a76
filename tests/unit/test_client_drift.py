"""Schema drift reports of the sync and async clients, against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import warnings
from collections.abc import Callable
from typing import Any

import pytest
from google.protobuf import json_format
from google.protobuf.message import Message

from auxia.decision.model import treatment_decision_service_pb2 as decisions
from auxia.decision.model import treatment_management_service_pb2 as management
from auxia_decision import (
    ApiError,
    AsyncClient,
    Client,
    Code,
    Drift,
    RestCodec,
    RetryPolicy,
    SchemaDriftWarning,
)
from tests._http_server import Answer, ScriptedServer

KEY = "sk-test-drift-7c1d"
NO_RETRY = RetryPolicy(max_attempts=1)

TREATMENTS = {
    "responseId": "r-1",
    "userTreatments": [
        {"treatmentId": "t-1", "rank": "1", "surface": "home", "newField": {"a": 1}},
        {"treatmentId": "t-2", "rank": "2", "surface": "home", "newField": {"a": 2}},
    ],
}
TREATMENT = {
    "treatment": {
        "treatmentId": "t-1",
        "name": "Spring sale",
        "status": "BRAND_NEW_STATUS",
        "versions": [{"status": "LIVE"}],
    }
}
KNOWN = {"treatment": {"treatmentId": "t-1", "status": "LIVE", "versions": [{"status": 3}]}}


def _answer(server: ScriptedServer, method: str, body: object) -> None:
    server.script(f"/v1/{method}", Answer(200, json.dumps(body).encode()))


Caller = Callable[..., Any]
"""Makes a client (sync or async) with the given options and calls one method on it, twice
if asked: ``caller(server, method, request, calls=1, **options) -> (results, client)``."""


def _sync(
    server: ScriptedServer, method: str, request: Message, calls: int = 1, **options: Any
) -> Any:
    with Client(api_key=KEY, base_url=server.url, retry=NO_RETRY, **options) as client:
        return [client.call(method, request) for _ in range(calls)], client


def _async(
    server: ScriptedServer, method: str, request: Message, calls: int = 1, **options: Any
) -> Any:
    async def run() -> Any:
        async with AsyncClient(
            api_key=KEY, base_url=server.url, retry=NO_RETRY, **options
        ) as client:
            return [await client.call(method, request) for _ in range(calls)], client

    return asyncio.run(run())


CALLERS = [pytest.param(_sync, id="sync"), pytest.param(_async, id="async")]
GET_TREATMENTS = decisions.GetTreatmentsRequest(project_id="p", user_id="u")
GET_TREATMENT = management.GetTreatmentRequest(project_id="p", treatment_id="t-1")


def _lenient(body: object, message_type: type[Message]) -> Message:
    return json_format.Parse(json.dumps(body), message_type(), ignore_unknown_fields=True)


@pytest.mark.parametrize("caller", CALLERS)
def test_drift_warns_once_per_method_and_place_and_the_result_is_unchanged(
    server: ScriptedServer, caller: Caller
) -> None:
    _answer(server, "GetTreatments", TREATMENTS)
    with pytest.warns(SchemaDriftWarning) as warned:
        results, client = caller(server, "GetTreatments", GET_TREATMENTS, calls=3)
    # Two items with the new field, three answers: one warning, of the first occurrence.
    assert [str(w.message) for w in warned] == [
        "GetTreatments answered what the schema does not know (unknown_field at "
        'userTreatments[0].newField): "newField" is not a field of UserTreatment; '
        "this package may be older than the API"
    ]
    warning = warned[0].message
    assert isinstance(warning, SchemaDriftWarning)
    assert (warning.method, warning.place) == ("GetTreatments", "userTreatments[*].newField")
    assert warning.drift == Drift(
        "userTreatments[0].newField",
        "unknown_field",
        '"newField" is not a field of UserTreatment',
    )
    assert warned[0].filename == __file__  # it points at the caller, not into the package
    assert results == [_lenient(TREATMENTS, decisions.GetTreatmentsResponse)] * 3
    assert dict(client.drift) == {("GetTreatments", "userTreatments[*].newField"): 3}


@pytest.mark.parametrize("caller", CALLERS)
def test_an_unknown_enum_value_reads_as_unset_and_is_reported_with_its_value(
    server: ScriptedServer, caller: Caller
) -> None:
    _answer(server, "GetTreatment", TREATMENT)
    with pytest.warns(SchemaDriftWarning, match=r'treatment.status="BRAND_NEW_STATUS"'):
        [result], client = caller(server, "GetTreatment", GET_TREATMENT)
    assert result.treatment.status == 0  # STATUS_UNSPECIFIED
    assert result == _lenient(TREATMENT, management.GetTreatmentResponse)
    assert dict(client.drift) == {("GetTreatment", "treatment.status"): 1}


@pytest.mark.parametrize("caller", CALLERS)
def test_each_client_warns_for_itself(server: ScriptedServer, caller: Caller) -> None:
    _answer(server, "GetTreatment", TREATMENT)
    for _ in range(2):
        with pytest.warns(SchemaDriftWarning) as warned:
            caller(server, "GetTreatment", GET_TREATMENT, calls=2)
        assert len(warned) == 1


@pytest.mark.parametrize("caller", CALLERS)
def test_the_callback_gets_every_drift_of_every_answer(
    server: ScriptedServer, caller: Caller
) -> None:
    _answer(server, "GetTreatments", TREATMENTS)
    seen: list[tuple[str, Drift]] = []
    with pytest.warns(SchemaDriftWarning):
        caller(
            server,
            "GetTreatments",
            GET_TREATMENTS,
            calls=2,
            on_drift=lambda method, drift: seen.append((method, drift)),
        )
    assert [(method, drift.path, drift.kind) for method, drift in seen] == [
        ("GetTreatments", "userTreatments[0].newField", "unknown_field"),
        ("GetTreatments", "userTreatments[1].newField", "unknown_field"),
    ] * 2


@pytest.mark.parametrize("caller", CALLERS)
def test_strict_responses_make_drift_an_error_naming_each_path(
    server: ScriptedServer, caller: Caller
) -> None:
    body = json.loads(json.dumps(TREATMENT))
    body["treatment"]["versions"][0]["rollout"] = 0.5
    _answer(server, "GetTreatment", body)
    seen: list[Drift] = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning: the error is the report
        with pytest.raises(ApiError) as caught:
            caller(
                server,
                "GetTreatment",
                GET_TREATMENT,
                strict_responses=True,
                on_drift=lambda _, drift: seen.append(drift),
            )
    error = caught.value
    assert error.code is Code.UNKNOWN
    assert error.http_status == 200
    assert error.message == (
        "the server's answer to GetTreatment holds what the schema does not know: "
        'unknown_enum_value at treatment.status: treatment.status="BRAND_NEW_STATUS" is not '
        "a value of Status (and 1 more)"
    )
    assert [(v.field, v.description) for v in error.field_violations] == [
        (
            "treatment.status",
            'unknown_enum_value: treatment.status="BRAND_NEW_STATUS" is not a value of Status',
        ),
        (
            "treatment.versions[0].rollout",
            'unknown_field: "rollout" is not a field of TreatmentVersionPb',
        ),
    ]
    assert [drift.path for drift in seen] == ["treatment.status", "treatment.versions[0].rollout"]


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("codec", [RestCodec(), RestCodec(fast=False)], ids=["fast", "generic"])
def test_an_answer_the_schema_knows_reports_nothing(
    server: ScriptedServer, caller: Caller, codec: RestCodec
) -> None:
    _answer(server, "GetTreatment", KNOWN)
    seen: list[Drift] = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        [result], client = caller(
            server,
            "GetTreatment",
            GET_TREATMENT,
            codec=codec,
            strict_responses=True,
            on_drift=lambda _, drift: seen.append(drift),
        )
    assert result == _lenient(KNOWN, management.GetTreatmentResponse)
    assert (seen, dict(client.drift)) == ([], {})


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("codec", [RestCodec(), RestCodec(fast=False)], ids=["fast", "generic"])
def test_a_number_an_open_enum_does_not_name_is_drift(
    server: ScriptedServer, caller: Caller, codec: RestCodec
) -> None:
    body = {"treatment": {"status": 1, "versions": [{"status": 9}]}}
    _answer(server, "GetTreatment", body)
    with pytest.warns(SchemaDriftWarning, match=r"treatment.versions\[0\].status=9 "):
        [result], client = caller(server, "GetTreatment", GET_TREATMENT, codec=codec)
    assert result.treatment.versions[0].status == 9  # kept, as json_format keeps it
    assert dict(client.drift) == {("GetTreatment", "treatment.versions[*].status"): 1}


@pytest.mark.parametrize("caller", CALLERS)
def test_a_json_type_the_schema_does_not_expect_is_counted_and_the_answer_malformed(
    server: ScriptedServer, caller: Caller
) -> None:
    body = {"responseId": 7, "userTreatments": [{"treatmentId": "t-1", "newField": 1}]}
    _answer(server, "GetTreatments", body)
    seen: list[Drift] = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the error says it: no warning
        with pytest.raises(ApiError, match="malformed") as caught:
            caller(server, "GetTreatments", GET_TREATMENTS, on_drift=lambda _, d: seen.append(d))
    assert caught.value.code is Code.UNKNOWN
    assert [(d.path, d.kind, d.detail) for d in seen] == [
        ("responseId", "wrong_json_type", "expected a string, got a number"),
        (
            "userTreatments[0].newField",
            "unknown_field",
            '"newField" is not a field of UserTreatment',
        ),
    ]


def test_the_counts_are_a_read_only_live_view(server: ScriptedServer) -> None:
    _answer(server, "GetTreatment", TREATMENT)
    with Client(api_key=KEY, base_url=server.url, retry=NO_RETRY) as client:
        counts = client.drift
        assert dict(counts) == {}
        with pytest.warns(SchemaDriftWarning):
            client.get_treatment(GET_TREATMENT)
        client.get_treatment(GET_TREATMENT)  # warned already: silent
        assert dict(counts) == {("GetTreatment", "treatment.status"): 2}
        with pytest.raises(TypeError):
            counts[("GetTreatment", "treatment.status")] = 0  # type: ignore[index]
