"""The store's activity cache never lets a decision miss an acknowledged event.

Random runs against a real store (in memory through the database thread; on a
file through the writer process, with users read on the event loop's thread or
by the reader process) with a cache of two users among six (three in each of two
projects): events are logged and served, users are read cold, read again warm,
evicted between an event and the next decision, read while their events are
being committed, and the kinds each project's compiled catalogs count change
(``fold_kinds``: at first every kind, then those told so far for the project).
After every acknowledgement, what the store answers for a user is what a plain
reading of every acknowledged event gives, for every kind told of for the
user's project.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import pathlib
import random
import sqlite3
from typing import Any

import httpx
import pytest

from auxia.decision.model import treatment_interaction_service_pb2 as interactions
from auxia_decision import ApiError
from auxia_decision.server import LocalServer
from auxia_decision.server._storage.seam import SENT, Event, ServedTreatment
from auxia_decision.server._storage.sqlite_store import SqliteStore
from auxia_decision.server._transport.runtime import run_event_loop
from tests._activity_model import questions
from tests._repo import ROOT

PROJECT = "P"
PROJECTS = [PROJECT, "Q"]  # each told its own kinds
USERS = [f"u{n}" for n in range(3)]
TREATMENTS = ["A", "B"]
SURFACES = ["S1", "S2"]
DAY = 86_400_000_000
TODAY = 20_000
KINDS = [SENT, 2, 5]  # SENT, VIEWED, DISMISSED
QUESTIONS = questions(KINDS, TREATMENTS, SURFACES, TODAY)
STEPS = 120
DEFAULT_SEED = ROOT / "src" / "auxia_decision" / "server" / "_domain" / "default_seed.json"


def _interaction(
    rng: random.Random, project: str, user: str, number: int
) -> interactions.LogTreatmentInteractionRequest:
    kind = rng.choice(
        [
            interactions.LogTreatmentInteractionRequest.VIEWED,
            interactions.LogTreatmentInteractionRequest.DISMISSED,
        ]
    )
    return interactions.LogTreatmentInteractionRequest(
        project_id=project,
        user_id=user,
        treatment_tracking_id=f"t{number}",
        treatment_id=rng.choice(TREATMENTS),
        surface=rng.choice(SURFACES),
        interaction_type=kind,
        interaction_time_micros=(TODAY - rng.randrange(40)) * DAY + rng.randrange(DAY),
    )


class _Run:
    """One random run: the store, what was acknowledged per project and user, and the checks."""

    def __init__(self, store: SqliteStore, seed: int) -> None:
        self.store = store
        self.rng = random.Random(seed)
        self.acknowledged: dict[tuple[str, str], list[Event]] = {
            (project, user): [] for project in PROJECTS for user in USERS
        }
        self.number = 0
        self.checked = 0
        self.counted: dict[str, set[int]] = {}
        """The kinds each project's catalogs count, as told the store (absent: every kind)."""

    def log(self, user: str, project: str = PROJECT) -> asyncio.Future[None]:
        self.number += 1
        request = _interaction(self.rng, project, user, self.number)
        event = (
            request.interaction_type + 1,
            request.treatment_id,
            request.surface,
            request.interaction_time_micros,
        )
        waiter = self.store.log_interaction(request, None)
        waiter.add_done_callback(lambda _: self.acknowledged[project, user].append(event))
        return waiter

    def serve(self, user: str, project: str = PROJECT) -> asyncio.Future[None]:
        self.number += 1
        time = (TODAY - self.rng.randrange(40)) * DAY
        served = [
            ServedTreatment(f"r{self.number}", treatment, self.rng.choice(SURFACES), "x", time)
            for treatment in self.rng.sample(TREATMENTS, self.rng.randint(1, 2))
        ]
        waiter = self.store.record_served(project, user, served, None)
        events = [(SENT, s.treatment_id, s.surface, s.time_micros) for s in served]
        waiter.add_done_callback(lambda _: self.acknowledged[project, user].extend(events))
        return waiter

    async def check(self, user: str, project: str = PROJECT) -> None:
        activity = await self.store.activity(project, user)
        counted = self.counted.get(project)
        for question in QUESTIONS:
            if counted is not None and question.kind not in counted:
                continue  # behind, by design: none of the project's catalogs counts it
            expected = question.answered_by(self.acknowledged[project, user])
            assert question.asked_of(activity) == expected, (project, user, question)
        self.checked += 1

    def fold(self, project: str) -> None:
        """Tell the store a catalog of a project was compiled: the kinds its rules count, at random.

        A kind none of the project's catalogs counted until now (say SENT) is
        exact from this moment on; the other project's kinds are its own.
        """
        kinds = set(self.rng.sample(KINDS, self.rng.randint(0, 2)))
        self.store.fold_kinds(project, frozenset(kinds))
        self.counted[project] = self.counted.get(project, set()) | kinds

    async def step(self) -> None:
        rng = self.rng
        project, user = rng.choice(PROJECTS), rng.choice(USERS)
        what = rng.choice(["log", "serve", "check", "race", "evict", "fold"])
        if what == "log":
            await asyncio.gather(
                *(
                    self.log(rng.choice(USERS), rng.choice(PROJECTS))
                    for _ in range(rng.randint(1, 4))
                )
            )
        elif what == "serve":
            await self.serve(user, project)
        elif what == "check":
            await self.check(user, project)
        elif what == "race":
            # A read of the user and their events in one pass of the loop: which
            # the read sees depends on the committer; the answer after both must
            # hold them all.
            # A catalog may be compiled meanwhile, with the read and the rows in flight.
            reading = asyncio.ensure_future(self.store.activity(project, user))
            writes = [self.log(user, project) for _ in range(rng.randint(1, 3))]
            if rng.random() < 0.5:
                writes.append(self.serve(user, project))
            if rng.random() < 0.5:
                self.fold(rng.choice(PROJECTS))
            await asyncio.gather(reading, *writes)
            await self.check(user, project)
        elif what == "fold":
            self.fold(project)
        else:
            for other in rng.sample(list(self.acknowledged), 3):
                await self.store.activity(*other)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize(
    "db",
    [":memory:", "file", "file, reader"],
    ids=["database thread", "writer process", "writer and reader processes"],
)
def test_every_acknowledged_event_is_seen_by_the_next_read(
    tmp_path: pathlib.Path, db: str, seed: int
) -> None:
    path = db if db == ":memory:" else str(tmp_path / "store.db")

    async def scenario() -> int:
        store = SqliteStore(path, activity_cache_users=2)
        try:
            await store.start_writer()
            if db == "file, reader":
                await store.start_reader()
                assert store.reader_pid is not None
            run = _Run(store, seed)
            for _ in range(STEPS):
                await run.step()
                assert store.cached_users <= 2
            for project, user in run.acknowledged:
                await run.check(user, project)
            return run.checked
        finally:
            store.close()

    assert run_event_loop(scenario()) >= len(PROJECTS) * len(USERS)


def test_a_store_without_a_cache_reads_every_time(tmp_path: pathlib.Path) -> None:
    async def scenario() -> None:
        store = SqliteStore(":memory:", activity_cache_users=0)
        try:
            run = _Run(store, 0)
            await run.log("u0")
            await run.check("u0")
            await run.log("u0")
            await run.check("u0")
            assert store.cached_users == 0
        finally:
            store.close()

    run_event_loop(scenario())


def test_a_replaced_store_forgets_what_it_had_cached() -> None:
    async def scenario() -> None:
        store = SqliteStore(":memory:")
        try:
            run = _Run(store, 1)
            await run.log("u0")
            await run.check("u0")
            assert store.cached_users == 1
            await store.replace(None, lambda repository: repository.delete_everything())
            assert store.cached_users == 0
            run.acknowledged[PROJECT, "u0"].clear()
            await run.check("u0")
        finally:
            store.close()

    run_event_loop(scenario())


def test_a_caller_that_gives_up_stops_nobody_elses_read(tmp_path: pathlib.Path) -> None:
    async def scenario() -> None:
        store = SqliteStore(str(tmp_path / "store.db"))
        try:
            run = _Run(store, 2)
            await run.log("u0")
            first = asyncio.ensure_future(store.activity(PROJECT, "u0"))
            second = asyncio.ensure_future(store.activity(PROJECT, "u0"))
            first.cancel()  # before the read is made into the user's activity
            activity = await second
            assert (
                activity.count(2, first_day=0, last_day=TODAY + 1)
                + activity.count(5, first_day=0, last_day=TODAY + 1)
                == 1
            )
            assert first.cancelled()
        finally:
            store.close()

    run_event_loop(scenario())


def test_a_failed_read_fails_its_callers_and_the_next_read_tries_again(
    tmp_path: pathlib.Path,
) -> None:
    async def scenario() -> None:
        path = tmp_path / "store.db"
        store = SqliteStore(str(path))
        try:
            run = _Run(store, 3)
            await run.log("u0")
            with sqlite3.connect(path) as connection:
                connection.execute("ALTER TABLE interactions RENAME TO hidden")
            with pytest.raises(ApiError):
                await store.activity(PROJECT, "u0")
            with sqlite3.connect(path) as connection:
                connection.execute("ALTER TABLE hidden RENAME TO interactions")
            await run.check("u0")
        finally:
            store.close()

    run_event_loop(scenario())


def test_a_rule_on_a_kind_no_rule_counted_sees_every_one_already_served(http: httpx.Client) -> None:
    # The seed's rules count views and dismissals, so the cache passes over treatments served
    # (SENT); a treatment inserted with a rule on SENT must see the two served just before.
    # The clock is frozen at noon: "today" is one day however long the test takes.
    seeded = json.loads(DEFAULT_SEED.read_text())
    assert '"SENT"' not in json.dumps(seeded["projects"][0]["dataFields"])  # what this tests
    noon = datetime.datetime(2030, 1, 1, 12, tzinfo=datetime.UTC)
    with LocalServer(frozen_at=noon) as server:
        key = {"x-api-key": server.api_key}

        def post(method: str, body: dict[str, Any]) -> Any:
            answer = http.post(f"{server.rest_url}/v1/{method}", json=body, headers=key)
            assert answer.status_code == 200, answer.text
            return answer.json()

        def served(user: str) -> list[str]:
            asked: dict[str, Any] = {"projectId": "PROJECT_ID", "userId": user}
            asked["surfaces"] = [{"surface": "CART_SCREEN", "maximumTreatmentCount": 5}]
            found = post("GetTreatments", asked).get("userTreatments", [])
            return [treatment["treatmentId"] for treatment in found]

        assert served("frequent") == ["CART_REMINDER"]
        assert served("frequent") == ["CART_REMINDER"]  # cached now, with its SENT passed over
        sent_today = {
            "treatmentDataFieldParams": {
                "treatmentId": "CART_REMINDER",
                "treatmentInteractionType": "SENT",
                "dailyCountAggregation": {"windowName": "LAST_1D"},
            }
        }
        fields = post("GetDataFields", {"projectId": "PROJECT_ID", "dataFieldParams": [sent_today]})
        (field,) = fields["dataFields"]
        inserted = post(
            "InsertTreatment",
            {
                "projectId": "PROJECT_ID",
                "name": "Cart, for who saw the reminder at most once today",
                "description": "a rule on SENT",
                "treatmentTypeName": "IN_APP_CONTENT",
                "lastModifiedBy": "activity-cache-test",
                "startTimestamp": "2024-01-01T00:00:00Z",
                "content": {
                    "contentByLanguage": [
                        {
                            "languageCode": {"languageCode": "en"},
                            "contentFields": [{"fieldName": "title", "stringValue": "Hi"}],
                        }
                    ]
                },
                "eligibilityRules": {
                    "rules": [
                        {
                            "dataFieldId": field["dataFieldId"],
                            "condition": "LESS_THAN",
                            "rhsValue": "2",
                        }
                    ]
                },
                "shouldPublish": True,
            },
        )["treatment"]["treatmentId"]
        assert inserted not in served("frequent")  # served CART_REMINDER twice today
        assert inserted in served("newcomer")


def test_treatments_served_as_a_kind_is_first_counted_are_all_counted(
    tmp_path: pathlib.Path,
) -> None:
    # A user cached while SENT was passed over, a treatment served then, one whose rows are
    # being written as a catalog starts counting SENT, and a read of the user at that moment
    # (at once, on the event loop's thread, before the rows commit): both count.
    def served(number: int) -> list[ServedTreatment]:
        return [ServedTreatment(f"r{number}", "A", "S1", f"A_r{number}", TODAY * DAY + number)]

    async def scenario() -> int:
        store = SqliteStore(str(tmp_path / "store.db"))
        try:
            await store.start_writer()
            store.fold_kinds(PROJECT, frozenset({2}))  # views
            await store.activity(PROJECT, "u")
            await store.record_served(PROJECT, "u", served(1), None)
            in_flight = store.record_served(PROJECT, "u", served(2), None)
            store.fold_kinds(PROJECT, frozenset({SENT}))
            reading = store.activity(PROJECT, "u")
            await asyncio.gather(in_flight, reading)
            activity = await store.activity(PROJECT, "u")
            return activity.count_of(SENT, "A", TODAY, TODAY)
        finally:
            store.close()

    assert run_event_loop(scenario()) == 2
