"""Two ``auxia-decision serve`` processes on one PostgreSQL database decide as one.

Whatever goes through one replica holds for the next call through the other:
a dismissal, views counted by a frequency cap, a treatment inserted or
updated, a data field's id, a frozen clock, a fault and how many calls it
fails (a count, or a fraction's draws), a Reset and the clock it restores;
inspection, explanations and the projects listed through either show what
both stored. Then both are loaded at once, and the
properties are checked again under the load, and nothing is lost.
"""

from __future__ import annotations

import asyncio
import json
import pathlib
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import grpc
import httpx
import psycopg
import pytest

from auxia.decision.model import treatment_decision_service_pb2 as decisions
from auxia.decision.server import seed_pb2
from auxia_decision.server._domain.auth import key_digest, seed_key_digest
from auxia_decision.server._domain.seed import default_seed_text
from auxia_decision.server._storage.postgres_schema import lock_key
from tests._served import Served, start
from tests._stored import stored_tracking_ids
from tools.loadgen import collect, is_server_error, reconcile, spawn
from tools.postgres import Postgres

KEY = "TEST_API_KEY"
ADMIN = "EMULATOR_ADMIN_KEY"
NOW = "2030-01-01T00:00:00Z"
NOW_MICROS = 1_893_456_000_000_000
HOUR = 3_600_000_000


_HTTP = httpx.Client(timeout=60)
"""The module's calls' client: ``httpx.post`` makes a client (its TLS context: ~50 ms) a call."""


@pytest.fixture(scope="module", autouse=True)
def _http_closed() -> Iterator[None]:
    """Close the module's client once its tests are done."""
    yield
    _HTTP.close()


@pytest.fixture(scope="module")
def replicas(postgres: Postgres) -> Iterator[tuple[Served, Served]]:
    """Two servers on one database of their own."""
    url = postgres.create_database("replicas")
    first = start(url)
    try:
        second = start(url)
    except BaseException:
        first.stop()
        raise
    try:
        yield first, second
    finally:
        first.stop()
        second.stop()
        postgres.drop_database("replicas")


@pytest.fixture
def reset(replicas: tuple[Served, Served]) -> tuple[Served, Served]:
    """Both replicas after a Reset through the first, with the clock frozen through the second."""
    first, second = replicas
    _admin(first, "Reset", {})
    _admin(second, "SetClock", {"freezeTime": NOW})
    return first, second


def _post(server: Served, method: str, document: dict[str, Any]) -> httpx.Response:
    return _HTTP.post(
        f"{server.rest_url}/v1/{method}",
        content=json.dumps(document),
        headers={"content-type": "application/json", "x-api-key": KEY},
        timeout=30,
    )


def _admin(
    server: Served, method: str, document: dict[str, Any], key: str = ADMIN
) -> dict[str, Any]:
    response = _HTTP.post(
        f"{server.rest_url}/emulator/v1/{method}",
        json=document,
        headers={"x-admin-key": key},
    )
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def _user_treatments(
    server: Served, user: str, surface: str, *, up_to: int = 5
) -> list[dict[str, Any]]:
    """Return what one page view of a user is served on a surface, up to ``up_to`` treatments."""
    response = _post(
        server,
        "GetTreatments",
        {
            "projectId": "PROJECT_ID",
            "userId": user,
            "surfaces": [{"surface": surface, "maximumTreatmentCount": up_to}],
        },
    )
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json().get("userTreatments", [])
    return found


def _served(server: Served, user: str, surface: str) -> list[str]:
    """Return the treatment one page view of a user is served on a surface (if any)."""
    return [found["treatmentId"] for found in _user_treatments(server, user, surface, up_to=1)]


def _log(server: Served, user: str, treatment: str, surface: str, kind: str, *, tag: str) -> None:
    response = _post(
        server,
        "LogTreatmentInteraction",
        {
            "projectId": "PROJECT_ID",
            "userId": user,
            "treatmentTrackingId": tag,
            "treatmentId": treatment,
            "surface": surface,
            "interactionType": kind,
            "interactionTimeMicros": NOW_MICROS - HOUR,
        },
    )
    assert response.status_code == 200, response.text


def test_a_frozen_clock_set_through_one_replica_is_the_others(
    replicas: tuple[Served, Served],
) -> None:
    first, second = replicas
    _admin(first, "SetClock", {"freezeTime": "2031-05-06T07:08:09Z"})
    assert _admin(second, "GetClock", {})["clock"] == {
        "now": "2031-05-06T07:08:09Z",
        "frozen": True,
    }
    _admin(second, "SetClock", {"advance": "3600s"})
    assert _admin(first, "GetClock", {})["clock"]["now"] == "2031-05-06T08:08:09Z"
    _admin(first, "SetClock", {"realTime": True})
    assert "frozen" not in _admin(second, "GetClock", {})["clock"]


def test_a_dismissal_through_one_replica_holds_on_the_other(
    reset: tuple[Served, Served],
) -> None:
    first, second = reset
    user = "dismisser"
    assert _served(second, user, "CART_SCREEN") == ["CART_REMINDER"]
    assert _served(first, user, "CART_SCREEN") == ["CART_REMINDER"]
    _log(first, user, "CART_REMINDER", "CART_SCREEN", "DISMISSED", tag="dismissed-1")
    for _ in range(3):
        assert _served(second, user, "CART_SCREEN") == []
        assert _served(first, user, "CART_SCREEN") == []


def test_at_most_three_views_in_seven_days_with_views_through_both(
    reset: tuple[Served, Served],
) -> None:
    first, second = reset
    user = "viewer"
    servers = [first, second]
    for view in range(3):
        # The replica that did not take the last view decides.
        assert _served(servers[(view + 1) % 2], user, "HOME_SCREEN") == ["WELCOME_BACK"]
        _log(servers[view % 2], user, "WELCOME_BACK", "HOME_SCREEN", "VIEWED", tag=f"view-{view}")
    assert _served(first, user, "HOME_SCREEN") == []
    assert _served(second, user, "HOME_SCREEN") == []
    # Eight days on (the clock moved through one replica), the views are out of the window.
    _admin(first, "SetClock", {"advance": f"{8 * 86400}s"})
    assert _served(second, user, "HOME_SCREEN") == ["WELCOME_BACK"]


def test_a_treatment_updated_through_one_replica_is_decided_by_the_other(
    reset: tuple[Served, Served],
) -> None:
    first, second = reset
    assert _served(second, "reader", "CART_SCREEN") == ["CART_REMINDER"]
    treatment = _post(
        first, "GetTreatment", {"projectId": "PROJECT_ID", "treatmentId": "CART_REMINDER"}
    ).json()["treatment"]
    moved = _post(
        first,
        "UpdateTreatment",
        {
            "projectId": "PROJECT_ID",
            "treatmentId": "CART_REMINDER",
            "lastModifiedBy": "replica-test",
            "tags": treatment.get("tags", []),
            "removedSurfaces": {"surfaces": [{"name": "CART_SCREEN"}]},
            "shouldPublish": True,
        },
    )
    assert moved.status_code == 200, moved.text
    assert _served(second, "reader", "CART_SCREEN") == []
    assert _served(first, "reader", "CART_SCREEN") == []


CLICKS_IN_2_DAYS = {
    "treatmentDataFieldParams": {
        "treatmentId": "CART_REMINDER",
        "treatmentInteractionType": "CLICKED",
        "dailyCountAggregation": {"windowName": "LAST_2D"},
    }
}
"""Data field parameters the seed lacks (its fields are 1 to 9)."""

DISMISSALS_IN_3_DAYS = {
    "treatmentDataFieldParams": {
        "treatmentId": "CART_REMINDER",
        "treatmentInteractionType": "DISMISSED",
        "dailyCountAggregation": {"windowName": "LAST_3D"},
    }
}
"""Other data field parameters the seed lacks."""


def _data_field_id(server: Served, params: dict[str, Any]) -> int:
    """Return the id GetDataFields resolves one data field's parameters to."""
    response = _post(
        server, "GetDataFields", {"projectId": "PROJECT_ID", "dataFieldParams": [params]}
    )
    assert response.status_code == 200, response.text
    (field,) = response.json()["dataFields"]
    return int(field["dataFieldId"])


def _insert(
    server: Served, name: str, rules_on: list[int], *, start: str = "2024-01-01T00:00:00Z"
) -> str:
    """Insert and publish a treatment on CART_SCREEN alone, each rule "the field is below 1".

    Return its id.
    """
    response = _post(
        server,
        "InsertTreatment",
        {
            "projectId": "PROJECT_ID",
            "name": name,
            "description": f"{name}, inserted through one replica",
            "treatmentTypeName": "IN_APP_CONTENT",
            "lastModifiedBy": "replica-test",
            "startTimestamp": start,
            "removedSurfaces": {
                "surfaces": [
                    {"name": surface} for surface in ("SURFACE", "HOME_SCREEN", "ARTICLE_PAGE")
                ]
            },
            "content": {
                "contentByLanguage": [
                    {
                        "languageCode": {"languageCode": "en"},
                        "contentFields": [{"fieldName": "title", "stringValue": name}],
                    }
                ]
            },
            "eligibilityRules": {
                "rules": [
                    {"dataFieldId": str(field), "condition": "LESS_THAN", "rhsValue": "1"}
                    for field in rules_on
                ]
            },
            "shouldPublish": True,
        },
    )
    assert response.status_code == 200, response.text
    treatment_id: str = response.json()["treatment"]["treatmentId"]
    return treatment_id


def test_data_fields_and_a_treatment_made_through_one_replica_are_the_others(
    reset: tuple[Served, Served],
) -> None:
    """Data field ids are numbered once for both replicas, and either decides what the other wrote.

    GetDataFields through the second resolves the parameters the first created to the same
    id, and new ones to the next; a treatment inserted through the first, with rules on
    both fields, is served by the second (and its rules read there); one updated through
    the second is served by the first as updated.
    """
    first, second = reset
    clicks = _data_field_id(first, CLICKS_IN_2_DAYS)
    assert clicks == 10  # the seed's are 1 to 9, and a whole Reset numbers them again
    assert _data_field_id(second, CLICKS_IN_2_DAYS) == clicks
    dismissals = _data_field_id(second, DISMISSALS_IN_3_DAYS)
    assert dismissals == 11
    assert _data_field_id(first, DISMISSALS_IN_3_DAYS) == dismissals
    user = "shopper"
    assert [found["treatmentId"] for found in _user_treatments(second, user, "CART_SCREEN")] == [
        "CART_REMINDER"
    ]
    inserted = _insert(first, "Cart bonus", [clicks, dismissals])
    served = _user_treatments(second, user, "CART_SCREEN")
    assert sorted(found["treatmentId"] for found in served) == sorted([inserted, "CART_REMINDER"])
    (bonus,) = [found for found in served if found["treatmentId"] == inserted]
    assert json.loads(bonus["treatmentContent"])["title"] == "Cart bonus"
    updated = _post(
        second,
        "UpdateTreatment",
        {
            "projectId": "PROJECT_ID",
            "treatmentId": inserted,
            "lastModifiedBy": "replica-test",
            "content": {
                "contentByLanguage": [
                    {
                        "languageCode": {"languageCode": "en"},
                        "contentFields": [{"fieldName": "title", "stringValue": "Cart bonus 2"}],
                    }
                ]
            },
            "shouldPublish": True,
        },
    )
    assert updated.status_code == 200, updated.text
    (bonus,) = [
        found
        for found in _user_treatments(first, user, "CART_SCREEN")
        if found["treatmentId"] == inserted
    ]
    assert json.loads(bonus["treatmentContent"])["title"] == "Cart bonus 2"
    # A click logged through the first breaks the rule on the field it created: the second
    # reads the field's value for this user as the first's call left it.
    _log(first, user, "CART_REMINDER", "CART_SCREEN", "CLICKED", tag="clicked-1")
    assert [found["treatmentId"] for found in _user_treatments(second, user, "CART_SCREEN")] == [
        "CART_REMINDER"
    ]


def test_what_reads_the_treatments_waits_for_no_replicas_unit_of_work(
    reset: tuple[Served, Served],
) -> None:
    """A decision that compiles the treatments again, ExplainDecision and ListProjects read a
    snapshot: a unit of work of another replica holding the store's lock holds none of them up.
    """
    first, second = reset
    inserted = _insert(first, "Read without the lock", [])  # the second's catalog is stale
    with psycopg.connect(str(first.db), autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (lock_key(),))
        try:
            began = time.monotonic()
            served = [
                found["treatmentId"] for found in _user_treatments(second, "shopper", "CART_SCREEN")
            ]
            asked = {
                "projectId": "PROJECT_ID",
                "userId": "shopper",
                "surfaces": [{"surface": "CART_SCREEN"}],
            }
            explained = _admin(second, "ExplainDecision", {"request": asked})
            listed = _admin(second, "ListProjects", {})
            waited = time.monotonic() - began
        finally:
            holder.execute("SELECT pg_advisory_unlock(%s)", (lock_key(),))
    assert inserted in served
    assert any(verdict["treatmentId"] == inserted for verdict in explained["verdicts"])
    (project,) = [found for found in listed["projects"] if found["projectId"] == "PROJECT_ID"]
    assert inserted in [treatment["treatmentId"] for treatment in project["treatments"]]
    assert waited < 5, waited


def test_a_reset_waiting_for_a_long_read_holds_up_no_replicas_calls(
    reset: tuple[Served, Served],
) -> None:
    """A Reset empties the tables, so it waits for the reads of them in progress; meanwhile
    the other replica logs and decides, and once the read ends the Reset is made.
    """
    first, second = reset
    with psycopg.connect(str(first.db)) as holder, ThreadPoolExecutor(1) as pool:
        holder.execute("SELECT count(*) FROM interactions").fetchone()  # a read, still open
        resetting = pool.submit(
            httpx.post,
            f"{first.rest_url}/emulator/v1/Reset",
            json={},
            headers={"x-admin-key": ADMIN},
            timeout=60,
        )
        try:
            time.sleep(0.5)
            assert not resetting.done()  # it waits for the read
            began = time.monotonic()
            for index in range(5):
                _log(second, "reader", "CART_REMINDER", "CART_SCREEN", "VIEWED", tag=f"d-{index}")
                _served(second, "reader", "CART_SCREEN")
            waited = time.monotonic() - began
        finally:
            holder.rollback()  # the read ends
        answer = resetting.result(timeout=60)
    assert answer.status_code == 200, answer.text
    assert waited < 5, waited
    assert _admin(second, "ListInteractions", {}) == {}


def test_a_fault_armed_through_one_replica_fails_that_many_calls_of_both(
    reset: tuple[Served, Served],
) -> None:
    first, second = reset
    _admin(first, "CreateFault", {"fault": {"method": "GetTreatments", "count": 3, "code": 14}})
    statuses = [
        _post(
            server,
            "GetTreatments",
            {
                "projectId": "PROJECT_ID",
                "userId": "u",
                "surfaces": [{"surface": "HOME_SCREEN", "maximumTreatmentCount": 1}],
            },
        ).status_code
        for server in [second, first] * 3
    ]
    assert statuses == [503, 503, 503, 200, 200, 200]
    assert _admin(second, "ListFaults", {}) == {}


def test_a_fault_on_logging_armed_through_one_replica_fails_the_others_next_call(
    reset: tuple[Served, Served],
) -> None:
    # The second replica logs without a sync while the shared state is what it last saw;
    # the fault armed through the first changes it, which its next call must find out.
    first, second = reset
    _log(second, "u", "T", "HOME_SCREEN", "VIEWED", tag="before-the-fault")
    _admin(
        first,
        "CreateFault",
        {"fault": {"method": "LogTreatmentInteraction", "count": 2, "code": 14}},
    )
    document = {
        "projectId": "PROJECT_ID",
        "userId": "u",
        "treatmentTrackingId": "during-the-fault",
        "interactionType": "VIEWED",
        "interactionTimeMicros": NOW_MICROS - HOUR,
    }
    statuses = [
        _post(server, "LogTreatmentInteraction", document).status_code
        for server in [second, first, second]
    ]
    assert statuses == [503, 503, 200]
    stored = [
        row["interaction"]["treatmentTrackingId"]
        for row in _admin(first, "ListInteractions", {"userId": "u"}).get("interactions", [])
    ]
    assert sorted(stored) == ["before-the-fault", "during-the-fault"]


FRACTION_CALLS = 12


def _call(server: Served, method: str, tag: str) -> int:
    """Make one call of the Auxia API's ``method`` (tagged ``tag``); return its HTTP status."""
    if method == "LogTreatmentInteraction":
        document: dict[str, Any] = {
            "projectId": "PROJECT_ID",
            "userId": "drawn",
            "treatmentTrackingId": tag,
            "interactionType": "VIEWED",
            "interactionTimeMicros": NOW_MICROS - HOUR,
        }
    else:
        document = {
            "projectId": "PROJECT_ID",
            "userId": tag,
            "surfaces": [{"surface": "CART_SCREEN", "maximumTreatmentCount": 1}],
        }
    return _post(server, method, document).status_code


@pytest.mark.parametrize("method", ["GetTreatments", "LogTreatmentInteraction"])
def test_a_fraction_fault_armed_through_one_replica_draws_once_for_both(
    reset: tuple[Served, Served], method: str
) -> None:
    """A fault of a fraction selects the calls of both replicas from its one sequence of draws.

    Calls taken by the replicas in turn fail exactly where the same calls through one
    replica fail, with the same ``randomSeed`` after a Reset (emulator.md: "the same calls
    are selected on every run"): each call takes the next draw of the shared plan, whichever
    replica takes it. The seed is one whose draws, taken by each replica on its own, would
    select other calls. A failed call stores nothing.
    """
    first, second = reset
    fault = {"method": method, "fraction": 0.5, "randomSeed": 7, "code": 14}

    def statuses(servers: list[Served], label: str) -> list[int]:
        _admin(first, "CreateFault", {"fault": fault})
        return [_call(server, method, f"{label}-{index}") for index, server in enumerate(servers)]

    across = statuses([second, first] * (FRACTION_CALLS // 2), "across")
    assert set(across) == {200, 503}
    (listed,) = _admin(second, "ListFaults", {})["faults"]
    assert int(listed["selectedCount"]) == across.count(503)
    if method == "LogTreatmentInteraction":
        stored = _admin(first, "ListInteractions", {"userId": "drawn"}).get("interactions", [])
        assert [entry["interaction"]["treatmentTrackingId"] for entry in stored] == [
            f"across-{index}" for index, status in enumerate(across) if status == 200
        ]
    _admin(second, "Reset", {})
    alone = statuses([first] * FRACTION_CALLS, "alone")
    assert across == alone


def test_inspection_through_either_replica_lists_what_both_stored(
    reset: tuple[Served, Served],
) -> None:
    first, second = reset
    _log(first, "inspected", "CART_REMINDER", "CART_SCREEN", "VIEWED", tag="through-first")
    _log(second, "inspected", "CART_REMINDER", "CART_SCREEN", "CLICKED", tag="through-second")
    _served(first, "inspected", "HOME_SCREEN")
    _served(second, "inspected", "CART_SCREEN")
    for server in (first, second):
        listed = _admin(server, "ListInteractions", {"userId": "inspected"})
        assert [item["interaction"]["treatmentTrackingId"] for item in listed["interactions"]] == [
            "through-first",
            "through-second",
        ]
        decided = _admin(server, "ListDecisions", {"userId": "inspected"})["decisions"]
        assert len(decided) == 2
        recent = _admin(server, "ListRecentDecisions", {"userId": "inspected"})["decisions"]
        assert [entry["response"]["responseId"] for entry in recent] == [
            entry["responseId"] for entry in reversed(decided)
        ]


def test_a_decision_of_one_replica_is_explained_by_the_other(
    reset: tuple[Served, Served],
) -> None:
    """ExplainDecision through the replica that did not decide explains what the other did.

    The decision the first made is listed by the second (ListRecentDecisions), which
    explains it at its time as served; after a dismissal logged through the first, the
    second explains it as suppressed (the user's activity read as it is now), having read
    the user's activity once already.
    """
    first, second = reset
    user = "explained"
    assert _served(first, user, "CART_SCREEN") == ["CART_REMINDER"]
    (recent,) = _admin(second, "ListRecentDecisions", {"userId": user})["decisions"]
    asked = {"request": recent["request"], "decideTime": recent["decideTime"]}

    def outcome() -> tuple[str, str]:
        explained = _admin(second, "ExplainDecision", asked)
        assert explained["decideTime"] == recent["decideTime"] == NOW
        (verdict,) = [
            found for found in explained["verdicts"] if found["treatmentId"] == "CART_REMINDER"
        ]
        return verdict["outcome"], verdict.get("detail", "")

    assert outcome()[0] == "SERVED"
    _log(first, user, "CART_REMINDER", "CART_SCREEN", "DISMISSED", tag="dismissed-after")
    found, detail = outcome()
    assert found == "SUPPRESSED"
    assert detail.startswith("rule failed: DISMISSED count of CART_REMINDER"), detail


def test_the_projects_listed_by_one_replica_hold_what_the_other_wrote(
    reset: tuple[Served, Served],
) -> None:
    """ListProjects through the second lists the data field and treatment made through the first.

    The treatment starts a day after the frozen clock: SCHEDULED, until the clock is
    advanced through the first; then the second lists it LIVE.
    """
    first, second = reset
    clicks = _data_field_id(first, CLICKS_IN_2_DAYS)
    inserted = _insert(first, "Tomorrow", [clicks], start="2030-01-02T00:00:00Z")

    def listed() -> tuple[list[int], dict[str, str]]:
        (project,) = [
            found
            for found in _admin(second, "ListProjects", {})["projects"]
            if found["projectId"] == "PROJECT_ID"
        ]
        fields = [int(field["dataFieldId"]) for field in project["dataFields"]]
        statuses = {found["treatmentId"]: found["status"] for found in project["treatments"]}
        return fields, statuses

    fields, statuses = listed()
    assert fields == list(range(1, clicks + 1))
    assert statuses[inserted] == "SCHEDULED"
    _admin(first, "SetClock", {"advance": f"{2 * 86400}s"})
    assert listed()[1][inserted] == "LIVE"


def test_a_reset_through_one_replica_resets_the_other(reset: tuple[Served, Served]) -> None:
    first, second = reset
    user = "forgotten"
    _log(first, user, "CART_REMINDER", "CART_SCREEN", "DISMISSED", tag="before-reset")
    assert _served(second, user, "CART_SCREEN") == []  # cached by the second replica
    _admin(second, "CreateFault", {"fault": {"method": "GetTreatment", "count": 5, "code": 14}})
    clock = _admin(first, "Reset", {})["clock"]
    assert "frozen" not in clock
    assert _admin(second, "ListFaults", {}) == {}
    assert "frozen" not in _admin(second, "GetClock", {})["clock"]
    assert _admin(second, "ListInteractions", {}) == {}
    assert _admin(second, "ListRecentDecisions", {}) == {}
    assert _served(second, user, "CART_SCREEN") == ["CART_REMINDER"]


def _journaled_methods(server: Served) -> list[str]:
    """Return the methods of the calls a replica's journal holds, oldest first."""
    entries = _admin(server, "ListJournal", {"pageSize": 200}).get("entries", [])
    return [entry["method"] for entry in entries]


def test_a_project_reset_leaves_each_replicas_journal_and_a_whole_one_empties_them(
    reset: tuple[Served, Served],
) -> None:
    first, second = reset
    _served(second, "journaled", "CART_SCREEN")
    assert "GetTreatments" in _journaled_methods(second)
    _admin(first, "Reset", {"projectId": "PROJECT_ID"})
    # emulator.md: a project's reset leaves the journal, through whichever replica it went.
    assert "GetTreatments" in _journaled_methods(second)
    assert "GetTreatments" not in _journaled_methods(first)  # never had it
    assert "Reset" in _journaled_methods(first)
    _admin(first, "Reset", {})
    assert "GetTreatments" not in _journaled_methods(second)


def test_the_seed_they_share_holds_no_key_in_clear(postgres_url: str) -> None:
    server = start(postgres_url)
    try:
        with psycopg.connect(postgres_url) as connection:
            found = connection.execute(
                "SELECT value FROM emulator_state WHERE key = 'seed'"
            ).fetchone()
    finally:
        server.stop()
    assert found is not None
    shared = bytes(found[0])
    for key in (KEY, "API_KEY", ADMIN):
        assert key.encode() not in shared
    seed = seed_pb2.Seed.FromString(shared)
    assert [seed_key_digest(key) for key in seed.admin_keys] == [key_digest(ADMIN)]
    assert [seed_key_digest(key) for key in seed.projects[0].api_keys] == [
        key_digest(KEY),
        key_digest("API_KEY"),
    ]


def _clock(server: Served) -> dict[str, Any]:
    """Return a replica's clock as GetClock answers it."""
    clock: dict[str, Any] = _admin(server, "GetClock", {})["clock"]
    return clock


def test_a_whole_reset_restores_the_clock_start_of_the_replica_it_went_through(
    postgres_url: str,
) -> None:
    """The first replica on an empty database sets the clock; a whole Reset, its own replica's.

    A replica started later takes the clock as it is (a day on from the first's start),
    not its own ``--clock``; a whole Reset through it puts the clock back to its own
    ``--clock`` for both, and one through the first to the first's (replicas.md, the
    ``--clock`` row; a Reset through a replica without ``--clock`` gives real time:
    ``test_a_reset_through_one_replica_resets_the_other``).
    """
    first = start(postgres_url, "--clock", "2030-01-01T00:00:00Z")
    try:
        _admin(first, "SetClock", {"advance": "86400s"})
        second = start(postgres_url, "--clock", "2035-06-01T00:00:00Z")
        try:
            assert _clock(second) == {"now": "2030-01-02T00:00:00Z", "frozen": True}
            assert _admin(second, "Reset", {})["clock"] == {
                "now": "2035-06-01T00:00:00Z",
                "frozen": True,
            }
            assert _clock(first) == {"now": "2035-06-01T00:00:00Z", "frozen": True}
            assert _admin(first, "Reset", {})["clock"] == {
                "now": "2030-01-01T00:00:00Z",
                "frozen": True,
            }
            assert _clock(second) == {"now": "2030-01-01T00:00:00Z", "frozen": True}
        finally:
            second.stop()
    finally:
        first.stop()


def _decide(server: Served, key: str) -> httpx.Response:
    return httpx.post(
        f"{server.rest_url}/v1/GetTreatments",
        json={"projectId": "PROJECT_ID", "userId": "u", "surfaces": [{"surface": "CART_SCREEN"}]},
        headers={"x-api-key": key},
        timeout=30,
    )


def _grpc_decide(server: Served, key: str) -> grpc.StatusCode:
    request = decisions.GetTreatmentsRequest(
        project_id="PROJECT_ID",
        user_id="u",
        surfaces=[decisions.SurfaceRequest(surface="CART_SCREEN")],
    )
    with grpc.insecure_channel(server.grpc_target) as channel:
        call = channel.unary_unary(
            "/io.auxia.decision.model.TreatmentDecisionService/GetTreatments",
            request_serializer=lambda message: message.SerializeToString(),
            response_deserializer=decisions.GetTreatmentsResponse.FromString,
        )
        try:
            call(request, metadata=(("x-api-key", key),), timeout=30)
        except grpc.RpcError as error:
            return cast(grpc.Call, error).code()
    return grpc.StatusCode.OK


def test_the_seed_of_the_last_started_is_every_replicas_keys_and_all(
    postgres_url: str, tmp_path: pathlib.Path
) -> None:
    seed = json.loads(default_seed_text())
    seed["adminKeys"] = ["SECOND_ADMIN_KEY"]
    seed["projects"][0]["apiKeys"] = ["SECOND_API_KEY"]
    path = tmp_path / "second.json"
    path.write_text(json.dumps(seed))
    first = start(postgres_url)
    try:
        assert _decide(first, KEY).status_code == 200  # the first has read the keys
        second = start(postgres_url, "--seed", str(path))
        try:
            # The first's next calls, with nothing between, take the second's keys: a key
            # it has not read is looked for in the database, an admin key checked after a sync.
            assert _decide(first, "SECOND_API_KEY").status_code == 200
            assert _grpc_decide(first, "SECOND_API_KEY") is grpc.StatusCode.OK
            refused = _decide(first, "NO_SEED_HAS_THIS_KEY")
            assert refused.status_code == 401, refused.text
            assert refused.json()["message"] == "the API key is not valid"
            assert _grpc_decide(first, "NO_SEED_HAS_THIS_KEY") is grpc.StatusCode.UNAUTHENTICATED
            for admin, status in (("SECOND_ADMIN_KEY", 200), (ADMIN, 401)):
                answer = httpx.post(
                    f"{first.rest_url}/emulator/v1/GetClock",
                    json={},
                    headers={"x-admin-key": admin},
                    timeout=30,
                )
                assert answer.status_code == status, (admin, answer.text)
            _admin(first, "Reset", {}, "SECOND_ADMIN_KEY")
            # The keys a Reset through the first wrote are the second's seed's alone (the
            # second reads them again after its next sync: replicas.md, "Limits").
            for replica, key, status in (
                (first, KEY, 401),
                (first, "SECOND_API_KEY", 200),
                (second, "SECOND_API_KEY", 200),
            ):
                response = _decide(replica, key)
                assert response.status_code == status, (replica.rest_url, key, response.text)
        finally:
            second.stop()
    finally:
        first.stop()


def test_unknown_keys_at_once_are_refused_by_a_reading_at_a_time(
    replicas: tuple[Served, Served],
) -> None:
    first, _ = replicas

    async def flood() -> list[int]:
        async with httpx.AsyncClient(base_url=first.rest_url, timeout=30) as client:
            answers = await asyncio.gather(
                *(
                    client.post(
                        "/v1/GetTreatments",
                        json={"projectId": "PROJECT_ID", "userId": "u", "surfaces": []},
                        headers={"x-api-key": f"UNKNOWN_{index}"},
                    )
                    for index in range(200)
                )
            )
        return [answer.status_code for answer in answers]

    assert asyncio.run(flood()) == [401] * 200
    assert _decide(first, KEY).status_code == 200
    # The key is still checked before the request is read.
    malformed = httpx.post(
        f"{first.rest_url}/v1/GetTreatments",
        content=b"{not json",
        headers={"content-type": "application/json", "x-api-key": "UNKNOWN"},
        timeout=30,
    )
    assert malformed.status_code == 401, malformed.text


REQUESTS = 6_000
TIME_LIMIT = 60.0


def test_two_replicas_under_load_lose_nothing_and_keep_the_properties(
    reset: tuple[Served, Served], postgres: Postgres
) -> None:
    first, second = reset
    loads = {
        "on-first": spawn(
            "rest",
            first.rest_url,
            requests=REQUESTS,
            connections=16,
            time_limit=TIME_LIMIT,
            tag="on-first",
        ),
        "on-second": spawn(
            "rest",
            second.rest_url,
            requests=REQUESTS,
            connections=16,
            time_limit=TIME_LIMIT,
            tag="on-second",
        ),
    }
    try:
        started = time.monotonic()
        # The cross-replica properties, while both replicas are loaded.
        user = "under-load"
        _log(second, user, "CART_REMINDER", "CART_SCREEN", "DISMISSED", tag="dismissed-under-load")
        assert _served(first, user, "CART_SCREEN") == []
        for view in range(3):
            assert _served([first, second][(view + 1) % 2], user, "HOME_SCREEN") == ["WELCOME_BACK"]
            _log(
                [first, second][view % 2],
                user,
                "WELCOME_BACK",
                "HOME_SCREEN",
                "VIEWED",
                tag=f"v{view}",
            )
        assert _served(first, user, "HOME_SCREEN") == []
        assert _served(second, user, "HOME_SCREEN") == []
        assert time.monotonic() - started < TIME_LIMIT
        results = {tag: collect(process, timeout=TIME_LIMIT + 60) for tag, process in loads.items()}
    finally:
        for process in loads.values():
            if process.returncode is None:
                process.kill()
                process.communicate()
    url = postgres.url("replicas")
    stored = stored_tracking_ids(url)
    for tag, result in results.items():
        assert result.statuses == {"200": REQUESTS}, result
        assert not result.count(is_server_error)
        found = reconcile(result, stored, tag)
        assert found.acknowledged == REQUESTS
        assert found.lost == 0, found
        assert found.duplicated == 0, found
