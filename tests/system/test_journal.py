"""The request journal: every call answered, on both transports, listed by ListJournal.

Calls are made as clients make them (httpx and ``Client`` over REST, the
generated stubs over gRPC) against the session's ``auxia_server``, reset
before every test; the journal is read through the admin API's helpers.
"""

from __future__ import annotations

import datetime
import json
from typing import Final

import grpc
import httpx
import pytest
from google.rpc import code_pb2

from auxia.decision.emulator.v1 import emulator_pb2
from auxia.decision.model import treatment_decision_service_pb2 as decisions
from auxia.decision.model import treatment_decision_service_pb2_grpc as decisions_grpc
from auxia.decision.model import treatment_interaction_service_pb2 as interactions
from auxia_decision import ApiError, Code
from auxia_decision.server import LocalServer
from auxia_decision.server._emulator.journal import DEFAULT_SIZE
from tests._served import served

Entry = emulator_pb2.JournalEntry
Interaction = interactions.LogTreatmentInteractionRequest
DECISIONS: Final = "io.auxia.decision.model.TreatmentDecisionService"


def _post(
    http: httpx.Client, server: LocalServer, path: str, body: object, **headers: str
) -> httpx.Response:
    sent = {"content-type": "application/json", "x-api-key": server.api_key, **headers}
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return http.post(f"{server.rest_url}{path}", content=content, headers=sent)


def _cart(user_id: str, **fields: object) -> dict[str, object]:
    return {
        "projectId": "PROJECT_ID",
        "userId": user_id,
        "surfaces": [{"surface": "CART_SCREEN"}],
        **fields,
    }


def _api_calls(server: LocalServer, **filters: object) -> list[Entry]:
    return server.journal(api_calls_only=True, **filters)


def test_a_rest_call_is_kept_as_received_with_its_answer(
    http: httpx.Client, auxia_server: LocalServer
) -> None:
    answer = _post(http, auxia_server, "/v1/GetTreatments", _cart("shopper-1"))
    assert answer.status_code == 200
    (entry,) = _api_calls(auxia_server)
    assert (entry.transport, entry.method, entry.service) == (
        Entry.REST,
        "GetTreatments",
        DECISIONS,
    )
    assert (entry.target, entry.http_status, entry.code) == (
        "POST /v1/GetTreatments",
        200,
        code_pb2.OK,
    )
    assert json.loads(entry.request) == _cart("shopper-1")
    assert json.loads(entry.response) == answer.json()
    assert (entry.project_id, entry.user_id) == ("PROJECT_ID", "shopper-1")
    assert not entry.HasField("error")
    assert entry.duration.ToNanoseconds() > 0
    assert {"name": "x-api-key", "value": "<redacted>"} in [
        {"name": h.name, "value": h.value} for h in entry.headers
    ]


def test_a_rejected_call_says_why_in_the_words_of_its_error(
    http: httpx.Client, auxia_server: LocalServer
) -> None:
    answer = _post(http, auxia_server, "/v1/GetTreatments", _cart("shopper-1", languageCode=7))
    assert answer.status_code == 400
    (entry,) = auxia_server.journal(failed_only=True)
    assert entry.code == code_pb2.INVALID_ARGUMENT
    assert entry.http_status == 400
    assert entry.error.message == answer.json()["message"]
    assert ApiError.from_status(entry.error).field_violations[0].field == "languageCode"
    assert '"languageCode": 7' in entry.request


@pytest.mark.parametrize(
    ("path", "body", "headers", "status", "words"),
    [
        ("/v1/GetTreatments", _cart("u"), {"x-api-key": ""}, 401, "API key"),
        ("/v1/GetTreatments", _cart("u", projectId="OTHER"), {}, 403, "does not belong"),
        ("/v1/GetTreatments", b"{not json", {}, 400, "malformed JSON"),
        ("/v1/GetTreatmentz", {}, {}, 404, "no route for /v1/GetTreatmentz"),
        ("/v1/GetTreatments", _cart("u"), {"content-type": "text/plain"}, 415, "text/plain"),
    ],
    ids=["no-key", "other-project", "malformed", "unknown-path", "content-type"],
)
def test_every_refusal_is_kept(  # noqa: PLR0917 - the parameters of the cases
    http: httpx.Client,
    auxia_server: LocalServer,
    path: str,
    body: object,
    headers: dict[str, str],
    status: int,
    words: str,
) -> None:
    answer = _post(http, auxia_server, path, body, **headers)
    assert answer.status_code == status
    (entry,) = _api_calls(auxia_server)
    assert (entry.http_status, entry.error.message) == (status, answer.json()["message"])
    assert words in entry.error.message


def test_a_grpc_call_and_a_fault_are_kept(auxia_server: LocalServer) -> None:
    auxia_server.faults.fail_next("GetTreatments", Code.UNAVAILABLE, message="the fault's words")
    request = decisions.GetTreatmentsRequest(
        project_id="PROJECT_ID",
        user_id="shopper-2",
        surfaces=[decisions.SurfaceRequest(surface="CART_SCREEN")],
    )
    metadata = (("x-api-key", auxia_server.api_key),)
    with auxia_server.grpc_channel() as channel:
        stub = decisions_grpc.TreatmentDecisionServiceStub(channel)
        with pytest.raises(grpc.RpcError):
            stub.GetTreatments(request, metadata=metadata)
        served = stub.GetTreatments(request, metadata=metadata)
    failed, answered = auxia_server.journal(method=f"{DECISIONS}.GetTreatments")
    assert (failed.transport, failed.code, failed.error.message) == (
        Entry.GRPC,
        code_pb2.UNAVAILABLE,
        "the fault's words",
    )
    assert failed.target == f"/{DECISIONS}/GetTreatments"
    assert json.loads(failed.request)["userId"] == "shopper-2"
    assert answered.code == code_pb2.OK
    assert json.loads(answered.response)["responseId"] == served.response_id
    assert [h.value for h in answered.headers if h.name == "x-api-key"] == ["<redacted>"]
    # The admin call that armed the fault is kept too (after the fixture's reset).
    assert [e.method for e in auxia_server.journal()][:2] == ["Reset", "CreateFault"]


def test_keys_are_redacted_wherever_they_are(http: httpx.Client, auxia_server: LocalServer) -> None:
    _post(
        http,
        auxia_server,
        f"/v1/GetTreatments?api-key={auxia_server.api_key}&x=1",
        _cart(auxia_server.api_key),
    )
    (entry,) = _api_calls(auxia_server)
    shown = entry.SerializeToString()
    assert auxia_server.api_key.encode() not in shown
    assert auxia_server.admin_key.encode() not in shown
    assert entry.target == "POST /v1/GetTreatments?api-key=<redacted>&x=1"
    assert json.loads(entry.request)["userId"] == "<redacted>"


def test_a_key_is_redacted_in_the_target_headers_and_errors_too(
    http: httpx.Client,
    auxia_server: LocalServer,
) -> None:
    key = auxia_server.api_key
    _post(http, auxia_server, f"/v1/GetTreatments?apikey={key}", _cart("shopper-9"), referer=key)
    _post(http, auxia_server, f"/v1/{key}", _cart("shopper-9"))
    entries = _api_calls(auxia_server)
    assert len(entries) == 2
    assert not [entry for entry in entries if key.encode() in entry.SerializeToString()]
    assert entries[0].target == "POST /v1/GetTreatments?apikey=<redacted>"
    assert {h.name: h.value for h in entries[0].headers}["referer"] == "<redacted>"
    assert entries[1].http_status == 404
    assert "<redacted>" in entries[1].error.message


def test_a_key_cut_short_by_the_kept_bytes_is_redacted(
    http: httpx.Client, auxia_server: LocalServer
) -> None:
    key = auxia_server.api_key
    filler = "x" * (16 * 1024 - len('{"projectId": "PROJECT_ID", "userId": "') - 3)
    body = f'{{"projectId": "PROJECT_ID", "userId": "{filler}{key}"}}'.encode()
    _post(http, auxia_server, "/v1/GetTreatments", body)
    (entry,) = _api_calls(auxia_server)
    assert entry.request_truncated
    assert entry.request.endswith(f"{filler[-5:]}<redacted>")
    assert key[:3] not in entry.request[-20:]


def test_a_decision_that_served_nothing_keeps_its_near_miss(
    http: httpx.Client, auxia_server: LocalServer
) -> None:
    auxia_server.clock.freeze(datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC))
    # CART_REMINDER is suppressed once the user dismissed it.
    with auxia_server.client() as client:
        client.log_treatment_interaction(
            Interaction(
                project_id="PROJECT_ID",
                user_id="shopper-3",
                treatment_id="CART_REMINDER",
                treatment_tracking_id="T",
                interaction_type=Interaction.DISMISSED,
                interaction_time_micros=1_893_456_000_000_000,
            )
        )
    answer = _post(http, auxia_server, "/v1/GetTreatments", _cart("shopper-3"))
    assert "userTreatments" not in answer.json()
    (entry,) = auxia_server.journal(method="GetTreatments")
    verdicts = {v.treatment_id: v for v in entry.verdicts}
    assert verdicts["CART_REMINDER"].outcome == emulator_pb2.Verdict.SUPPRESSED
    assert "DISMISSED" in verdicts["CART_REMINDER"].detail
    # The same verdicts of that moment are on the recent decision.
    recent = auxia_server.admin.call(
        auxia_server.admin.stub.ListRecentDecisions, emulator_pb2.ListRecentDecisionsRequest()
    )
    assert list(recent.decisions[0].verdicts) == list(entry.verdicts)
    # A decision that served something has none.
    _post(http, auxia_server, "/v1/GetTreatments", _cart("shopper-4"))
    assert not auxia_server.journal(user_id="shopper-4")[0].verdicts


def test_the_filters_and_the_pages(http: httpx.Client, auxia_server: LocalServer) -> None:
    start = datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC)
    auxia_server.clock.freeze(start)
    for user in ("a", "b", "c"):
        _post(http, auxia_server, "/v1/GetTreatments", _cart(user))
        auxia_server.clock.advance(datetime.timedelta(hours=1))
    _post(http, auxia_server, "/v1/GetTreatments", _cart("a", languageCode=1))
    assert [e.user_id for e in _api_calls(auxia_server, user_id="a")] == ["a", "a"]
    assert [e.user_id for e in _api_calls(auxia_server, code=Code.OK)] == ["a", "b", "c"]
    assert [e.http_status for e in _api_calls(auxia_server, http_status=400)] == [400]
    after = start + datetime.timedelta(minutes=30)
    window = _api_calls(
        auxia_server, start_time=after, end_time=after + datetime.timedelta(hours=1)
    )
    assert [e.user_id for e in window] == ["b"]
    assert {e.receive_time.ToDatetime(datetime.UTC) for e in window} == {
        start + datetime.timedelta(hours=1)
    }
    assert [e.method for e in auxia_server.journal(method="SetClock")] == ["SetClock"] * 4
    # Pages, both ways.
    request = emulator_pb2.ListJournalRequest(api_calls_only=True, page_size=3, newest_first=True)
    first = auxia_server.admin.call(auxia_server.admin.stub.ListJournal, request)
    request.page_token = first.next_page_token
    second = auxia_server.admin.call(auxia_server.admin.stub.ListJournal, request)
    newest = [e.user_id for e in [*first.entries, *second.entries]]
    assert newest == ["a", "c", "b", "a"]
    assert not second.next_page_token
    request.page_token = "nonsense"
    with pytest.raises(ApiError, match="pageToken"):
        auxia_server.admin.call(auxia_server.admin.stub.ListJournal, request)


def test_a_reset_empties_it_and_documents_are_not_calls(
    http: httpx.Client, auxia_server: LocalServer
) -> None:
    _post(http, auxia_server, "/v1/GetTreatments", _cart("x"))
    assert http.get(f"{auxia_server.rest_url}/console/").status_code == 200
    assert http.get(f"{auxia_server.rest_url}/healthz").status_code == 200
    auxia_server.reset()
    assert [(e.sequence, e.method) for e in auxia_server.journal()] == [(1, "Reset")]


def test_it_keeps_the_last_calls_and_counts_the_dropped(http: httpx.Client) -> None:
    with LocalServer(journal_size=2) as server:
        for user in ("a", "b", "c", "d"):
            _post(http, server, "/v1/GetTreatments", _cart(user))
        page = server.admin.call(server.admin.stub.ListJournal, emulator_pb2.ListJournalRequest())
        assert [e.user_id for e in page.entries] == ["c", "d"]
        assert [e.sequence for e in page.entries] == [3, 4]
        assert (page.dropped_count, page.capacity) == (2, 2)


def test_a_server_without_a_journal_says_so(http: httpx.Client) -> None:
    with LocalServer(journal_size=0) as server:
        assert _post(http, server, "/v1/GetTreatments", _cart("a")).status_code == 200
        with pytest.raises(ApiError, match="--journal-size 0") as raised:
            server.journal()
        assert raised.value.code == Code.FAILED_PRECONDITION


def test_calls_are_timed_by_the_servers_clock_as_it_ran(
    http: httpx.Client, auxia_server: LocalServer
) -> None:
    day = datetime.timedelta(days=1)
    auxia_server.clock.advance(day)  # running, a day ahead
    _post(http, auxia_server, "/v1/GetTreatments", _cart("ahead"))
    auxia_server.clock.freeze(datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC))
    _post(http, auxia_server, "/v1/GetTreatments", _cart("frozen"))
    auxia_server.clock.use_real_time()
    _post(http, auxia_server, "/v1/GetTreatments", _cart("real"))
    ahead, frozen, real = (
        e.receive_time.ToDatetime(datetime.UTC) for e in _api_calls(auxia_server)
    )
    now = datetime.datetime.now(datetime.UTC)
    assert abs(ahead - (now + day)) < datetime.timedelta(minutes=1)
    assert frozen == datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC)
    assert abs(real - now) < datetime.timedelta(minutes=1)


@pytest.mark.parametrize(("flags", "capacity"), [((), DEFAULT_SIZE), (("--journal-size", "3"), 3)])
def test_serve_keeps_its_default_number_of_calls_unless_told(
    http: httpx.Client, flags: tuple[str, ...], capacity: int
) -> None:
    with served(":memory:", *flags) as running:
        answer = http.post(
            f"{running.rest_url}/emulator/v1/ListJournal",
            headers={"x-admin-key": "EMULATOR_ADMIN_KEY"},
            json={},
        )
    assert answer.status_code == 200, answer.text
    assert answer.json()["capacity"] == capacity
