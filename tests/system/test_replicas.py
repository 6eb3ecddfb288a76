"""Two ``auxia-decision serve`` processes on one PostgreSQL database decide as one.

Whatever goes through one replica holds for the next call through the other:
a dismissal, views counted by a frequency cap, a treatment updated, a frozen
clock, a fault and how many calls it fails, a Reset; inspection through
either lists what both stored. Then both are loaded at once, and the
properties are checked again under the load, and nothing is lost.
"""

from __future__ import annotations

import asyncio
import json
import pathlib
import time
from collections.abc import Iterator
from typing import Any, cast

import grpc
import httpx
import psycopg
import pytest

from auxia.decision.model import treatment_decision_service_pb2 as decisions
from auxia.decision.server import seed_pb2
from auxia_decision.server._domain.auth import key_digest, seed_key_digest
from auxia_decision.server._domain.seed import default_seed_text
from tests._served import Served, start
from tests._stored import stored_tracking_ids
from tools.loadgen import collect, is_server_error, reconcile, spawn
from tools.postgres import Postgres

KEY = "TEST_API_KEY"
ADMIN = "EMULATOR_ADMIN_KEY"
NOW = "2030-01-01T00:00:00Z"
NOW_MICROS = 1_893_456_000_000_000
HOUR = 3_600_000_000


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
    return httpx.post(
        f"{server.rest_url}/v1/{method}",
        content=json.dumps(document),
        headers={"content-type": "application/json", "x-api-key": KEY},
        timeout=30,
    )


def _admin(
    server: Served, method: str, document: dict[str, Any], key: str = ADMIN
) -> dict[str, Any]:
    response = httpx.post(
        f"{server.rest_url}/emulator/v1/{method}",
        json=document,
        headers={"x-admin-key": key},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def _served(server: Served, user: str, surface: str) -> list[str]:
    """Return the treatments one page view of a user is served on a surface."""
    response = _post(
        server,
        "GetTreatments",
        {
            "projectId": "PROJECT_ID",
            "userId": user,
            "surfaces": [{"surface": surface, "maximumTreatmentCount": 1}],
        },
    )
    assert response.status_code == 200, response.text
    return [treatment["treatmentId"] for treatment in response.json().get("userTreatments", [])]


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
