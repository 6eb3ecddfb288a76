"""The loop a production client closes, over REST and gRPC against a real server.

As the news publisher's service does: GetTreatments once per page view
(camelCase JSON, ``integerValue`` as a JSON number, one surface, at most one
treatment), show the first treatment, then LogTreatmentInteraction with the
tracking id, treatment id and surface it returned, the time as a JSON number.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
import uuid
from typing import Any

import grpc
import httpx
import pytest

from auxia.decision.model import treatment_decision_service_pb2 as decisions
from auxia.decision.model import treatment_decision_service_pb2_grpc as decisions_grpc
from auxia.decision.model import treatment_interaction_service_pb2 as interactions
from auxia.decision.model import treatment_interaction_service_pb2_grpc as interactions_grpc
from auxia.decision.model import treatment_management_service_pb2 as management
from auxia.decision.model import treatment_management_service_pb2_grpc as management_grpc
from tests._served import Served

KEY = "TEST_API_KEY"


def _post(server: Served, method: str, document: dict[str, Any]) -> httpx.Response:
    return httpx.post(
        f"{server.rest_url}/v1/{method}",
        content=json.dumps(document),
        headers={"content-type": "application/json", "x-api-key": KEY},
        timeout=30,
    )


def _page_view(server: Served, user: str, surface: str) -> dict[str, Any]:
    response = _post(
        server,
        "GetTreatments",
        {
            "projectId": "PROJECT_ID",
            "userId": user,
            "contextualAttributes": [
                {"key": "daily_article_count", "integerValue": 3},
                {"key": "current_screen", "stringValue": "cart"},
                {"key": "subscriber", "boolValue": True},
            ],
            "surfaces": [{"surface": surface, "maximumTreatmentCount": 1}],
            "languageCode": "en",
        },
    )
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


def _log(server: Served, user: str, treatment: dict[str, Any], kind: str) -> None:
    response = _post(
        server,
        "LogTreatmentInteraction",
        {
            "projectId": "PROJECT_ID",
            "userId": user,
            "treatmentTrackingId": treatment["treatmentTrackingId"],
            "treatmentId": treatment["treatmentId"],
            "surface": treatment["surface"],
            "interactionType": kind,
            "interactionTimeMicros": time.time_ns() // 1000,
            "actionName": "",
        },
    )
    assert response.status_code == 200, response.text
    assert response.json() == {}


def _served_rows(server: Served) -> list[tuple[str, str, str]]:
    uri = f"file:{server.db}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as connection:
        rows = connection.execute(
            "SELECT user_id, treatment_id, tracking_id FROM served ORDER BY served_id"
        ).fetchall()
    return [(str(a), str(b), str(c)) for a, b, c in rows]


def test_dismissed_once_then_not_shown_again_over_rest(server: Served) -> None:
    user = f"rest-{uuid.uuid4()}"
    first = _page_view(server, user, "CART_SCREEN")
    (reminder,) = first["userTreatments"]
    assert reminder["treatmentId"] == "CART_REMINDER"
    assert reminder["rank"] == "1"  # int64 in proto3 JSON: a string
    assert reminder["treatmentTrackingId"] == f"CART_REMINDER_{first['responseId']}"
    assert json.loads(reminder["treatmentContent"])["title"] == "Still thinking it over?"
    _log(server, user, reminder, "VIEWED")
    second = _page_view(server, user, "CART_SCREEN")
    assert [t["treatmentId"] for t in second["userTreatments"]] == ["CART_REMINDER"]
    _log(server, user, second["userTreatments"][0], "DISMISSED")
    third = _page_view(server, user, "CART_SCREEN")
    assert "userTreatments" not in third  # omitted when empty, as the client expects
    # Every served treatment is stored, with the tracking id the client got.
    rows = [row for row in _served_rows(server) if row[0] == user]
    assert rows == [
        (user, "CART_REMINDER", first["userTreatments"][0]["treatmentTrackingId"]),
        (user, "CART_REMINDER", second["userTreatments"][0]["treatmentTrackingId"]),
    ]


def test_at_most_three_views_a_week_over_grpc(server: Served) -> None:
    user = f"grpc-{uuid.uuid4()}"
    metadata = (("x-api-key", KEY),)
    request = decisions.GetTreatmentsRequest(
        project_id="PROJECT_ID",
        user_id=user,
        surfaces=[decisions.SurfaceRequest(surface="HOME_SCREEN", maximum_treatment_count=1)],
    )
    with grpc.insecure_channel(server.grpc_target) as channel:
        decide = decisions_grpc.TreatmentDecisionServiceStub(channel).GetTreatments
        log = interactions_grpc.TreatmentInteractionServiceStub(channel).LogTreatmentInteraction
        for _ in range(3):
            (welcome,) = decide(request, metadata=metadata).user_treatments
            assert welcome.treatment_id == "WELCOME_BACK"
            log(
                interactions.LogTreatmentInteractionRequest(
                    project_id="PROJECT_ID",
                    user_id=user,
                    treatment_tracking_id=welcome.treatment_tracking_id,
                    treatment_id=welcome.treatment_id,
                    surface=welcome.surface,
                    interaction_type=interactions.LogTreatmentInteractionRequest.VIEWED,
                    interaction_time_micros=time.time_ns() // 1000,
                ),
                metadata=metadata,
            )
        assert list(decide(request, metadata=metadata).user_treatments) == []


def test_rest_and_grpc_decide_alike(server: Served) -> None:
    user = f"both-{uuid.uuid4()}"
    document = {
        "projectId": "PROJECT_ID",
        "userId": user,
        "contextualAttributes": [{"key": "age", "integerValue": 40}],
        "surfaces": [{"surface": "ARTICLE_PAGE", "maximumTreatmentCount": 3}],
    }
    over_rest = _post(server, "GetTreatments", document).json()
    request = decisions.GetTreatmentsRequest(
        project_id="PROJECT_ID",
        user_id=user,
        contextual_attributes=[decisions.ContextualAttribute(key="age", integer_value=40)],
        surfaces=[decisions.SurfaceRequest(surface="ARTICLE_PAGE", maximum_treatment_count=3)],
    )
    with grpc.insecure_channel(server.grpc_target) as channel:
        over_grpc = decisions_grpc.TreatmentDecisionServiceStub(channel).GetTreatments(
            request, metadata=(("x-api-key", KEY),)
        )
    assert [t["treatmentId"] for t in over_rest["userTreatments"]] == [
        t.treatment_id for t in over_grpc.user_treatments
    ]


def test_bad_requests_are_400_over_rest_and_invalid_argument_over_grpc(server: Served) -> None:
    document = {
        "projectId": "PROJECT_ID",
        "userId": "u",
        "surfaces": [{"surface": "NOWHERE", "maximumTreatmentCount": -1}],
    }
    response = _post(server, "GetTreatments", document)
    assert response.status_code == 400
    fields = [v["field"] for v in response.json()["details"][0]["fieldViolations"]]
    # The field's rule (a count is not negative) is checked with the request's
    # form, before the project's surfaces are looked at.
    assert fields == ["surfaces[0].maximumTreatmentCount"]
    document["surfaces"] = [{"surface": "NOWHERE"}]
    response = _post(server, "GetTreatments", document)
    fields = [v["field"] for v in response.json()["details"][0]["fieldViolations"]]
    assert fields == ["surfaces[0].surface"]
    with grpc.insecure_channel(server.grpc_target) as channel:
        stub = decisions_grpc.TreatmentDecisionServiceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            stub.GetTreatments(
                decisions.GetTreatmentsRequest(project_id="PROJECT_ID", user_id="u"),
                metadata=(("x-api-key", KEY),),
            )
    assert isinstance(caught.value, grpc.Call)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT


def test_get_treatment_and_get_all_treatments_over_both_transports(server: Served) -> None:
    missing = _post(server, "GetTreatment", {"projectId": "PROJECT_ID", "treatmentId": "NOPE"})
    assert missing.status_code == 404
    found = _post(
        server, "GetTreatment", {"projectId": "PROJECT_ID", "treatmentId": "CART_REMINDER"}
    )
    assert found.json()["treatment"]["status"] == "LIVE"
    listed = _post(
        server,
        "GetAllTreatments",
        {
            "projectId": "PROJECT_ID",
            "treatmentVersionFilter": {"surface": {"surfaceNames": ["CART_SCREEN"]}},
        },
    )
    assert [t["treatmentId"] for t in listed.json()["treatments"]] == ["CART_REMINDER"]
    with grpc.insecure_channel(server.grpc_target) as channel:
        stub = management_grpc.TreatmentManagementServiceStub(channel)
        page = stub.GetAllTreatments(
            management.GetAllTreatmentsRequest(project_id="PROJECT_ID", page_size=2),
            metadata=(("x-api-key", KEY),),
        )
    assert len(page.treatments) == 2
    assert page.next_page_token
