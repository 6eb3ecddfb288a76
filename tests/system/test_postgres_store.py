"""The PostgreSQL store on a real PostgreSQL: two stores on one database answer as one.

Random runs with two ``PostgresStore`` (two replicas, in one process, on one
database of the session's PostgreSQL), each with a cache of two users among
five: events are logged and served through either store, users are read
through either, cold and warm, evicted between an event and the next read,
and read while the other store commits their events. After every
acknowledgement, what either store answers for a user is what a plain reading
of every acknowledged event gives: the activity cache stays exact across
processes, whatever order the two stores' transactions commit in.
"""

from __future__ import annotations

import asyncio
import gc
import os
import pathlib
import random
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
from google.rpc import code_pb2

from auxia.decision.emulator.v1 import emulator_pb2
from auxia.decision.model import treatment_interaction_service_pb2 as interactions
from auxia_decision._errors import ApiError, Code
from auxia_decision.server import LocalServer
from auxia_decision.server._emulator.faults import FaultPlan
from auxia_decision.server._startup import StartupError, open_store
from auxia_decision.server._storage import postgres_connections, postgres_store
from auxia_decision.server._storage.activity import DailyActivity
from auxia_decision.server._storage.postgres_connections import (
    IDLE_IN_TRANSACTION_SECONDS,
    Link,
    connect,
)
from auxia_decision.server._storage.postgres_store import PostgresStore
from auxia_decision.server._storage.seam import (
    SENT,
    Event,
    InteractionFilter,
    ProjectRecord,
    Repository,
    ServedFilter,
    ServedTreatment,
    StaleKnowledgeError,
)
from auxia_decision.server._transport.runtime import run_event_loop
from tests._activity_model import questions
from tools.postgres import Postgres, settings_for_tests
from tools.processes import process_tree

PROJECT = "P"
USERS = [f"u{n}" for n in range(5)]
TREATMENTS = ["A", "B"]
SURFACES = ["S1", "S2"]
DAY = 86_400_000_000
TODAY = 20_000
KINDS = [SENT, 2, 5]  # SENT, VIEWED, DISMISSED
QUESTIONS = questions(KINDS, TREATMENTS, SURFACES, TODAY)
STEPS = 100


class _Run:
    """One random run over two stores: what was acknowledged per user, and the checks."""

    def __init__(self, stores: list[PostgresStore], seed: int) -> None:
        self.stores = stores
        self.rng = random.Random(seed)
        self.acknowledged: dict[str, list[Event]] = {user: [] for user in USERS}
        self.number = 0
        self.checked = 0

    def store(self) -> PostgresStore:
        return self.rng.choice(self.stores)

    def log(self, user: str) -> asyncio.Future[None]:
        self.number += 1
        rng = self.rng
        request = interactions.LogTreatmentInteractionRequest(
            project_id=PROJECT,
            user_id=user,
            treatment_tracking_id=f"t{self.number}",
            treatment_id=rng.choice(TREATMENTS),
            surface=rng.choice(SURFACES),
            interaction_type=rng.choice(
                [
                    interactions.LogTreatmentInteractionRequest.VIEWED,
                    interactions.LogTreatmentInteractionRequest.DISMISSED,
                ]
            ),
            interaction_time_micros=(TODAY - rng.randrange(40)) * DAY + rng.randrange(DAY),
        )
        event = (
            request.interaction_type + 1,
            request.treatment_id,
            request.surface,
            request.interaction_time_micros,
        )
        waiter = self.store().log_interaction(request, None)
        waiter.add_done_callback(lambda _: self.acknowledged[user].append(event))
        return waiter

    def serve(self, user: str) -> asyncio.Future[None]:
        self.number += 1
        time = (TODAY - self.rng.randrange(40)) * DAY
        served = [
            ServedTreatment(f"r{self.number}", treatment, self.rng.choice(SURFACES), "x", time)
            for treatment in self.rng.sample(TREATMENTS, self.rng.randint(1, 2))
        ]
        waiter = self.store().record_served(PROJECT, user, served, None)
        events = [(SENT, s.treatment_id, s.surface, s.time_micros) for s in served]
        waiter.add_done_callback(lambda _: self.acknowledged[user].extend(events))
        return waiter

    async def check(self, user: str, store: PostgresStore | None = None) -> None:
        store = store or self.store()
        if self.rng.random() < 0.5:
            await store.synchronize(PROJECT, user)
            activity = store.cached_activity(PROJECT, user) or await store.activity(PROJECT, user)
        else:
            activity = await store.activity(PROJECT, user)
        for question in QUESTIONS:
            expected = question.answered_by(self.acknowledged[user])
            assert question.asked_of(activity) == expected, (user, question)
        self.checked += 1

    async def step(self) -> None:
        rng = self.rng
        user = rng.choice(USERS)
        what = rng.choice(["log", "serve", "check", "race", "evict", "log", "serve", "reset"])
        if what == "log":
            await asyncio.gather(*(self.log(rng.choice(USERS)) for _ in range(rng.randint(1, 4))))
        elif what == "serve":
            await self.serve(user)
        elif what == "check":
            await self.check(user)
        elif what == "race":
            # A read through one store while the other commits the user's events:
            # which the read sees depends on the commits; the next read sees all.
            reader = self.stores[0]
            reading = asyncio.ensure_future(reader.activity(PROJECT, user))
            writes = [self.log(user) for _ in range(rng.randint(1, 3))]
            if rng.random() < 0.5:
                writes.append(self.serve(user))
            await asyncio.gather(reading, *writes)
            await self.check(user, reader)
        elif what == "reset":
            # The project's records hidden at once and deleted in turns after, while the
            # next steps go on through either store.
            await self.store().replace(PROJECT, _delete_project)
            for events in self.acknowledged.values():
                events.clear()
        else:
            store = self.store()
            for other in rng.sample(USERS, 3):
                await store.activity(PROJECT, other)


def _delete_project(repository: Repository) -> None:
    repository.delete_project(PROJECT)


@pytest.mark.parametrize("seed", range(4))
def test_two_stores_see_every_event_either_acknowledged(postgres_url: str, seed: int) -> None:
    async def scenario() -> int:
        stores = [PostgresStore(postgres_url, activity_cache_users=2) for _ in range(2)]
        try:
            run = _Run(stores, seed)
            for _ in range(STEPS):
                await run.step()
                assert all(store.cached_users <= 2 for store in stores)
            for user in USERS:
                for store in stores:
                    await run.check(user, store)
            return run.checked
        finally:
            for store in stores:
                await store.aclose()

    assert run_event_loop(scenario()) >= len(USERS) * 2


def test_rows_committed_out_of_id_order_are_not_missed(postgres_url: str) -> None:
    # Two transactions: the first takes the smaller id and commits last. A
    # watermark of ids would skip its row; a snapshot does not.
    async def scenario() -> None:
        store = PostgresStore(postgres_url)
        try:
            await store.activity(PROJECT, "u")
            insert = (
                "INSERT INTO served (project_id, user_id, response_id, treatment_id, surface, "
                "tracking_id, time_micros) VALUES ('P', 'u', 'r', 'A', 'S1', %s, 1)"
            )
            with psycopg.connect(postgres_url) as first, psycopg.connect(postgres_url) as second:
                first.execute(insert, ("first",))
                second.execute(insert, ("second",))
                second.commit()
                seen = await store.activity(PROJECT, "u")
                assert seen.count(SENT, first_day=0, last_day=1) == 1
                first.commit()
            seen = await store.activity(PROJECT, "u")
            assert seen.count(SENT, first_day=0, last_day=1) == 2
        finally:
            await store.aclose()

    run_event_loop(scenario())


def test_cached_users_add_no_objects_the_garbage_collector_tracks(postgres_url: str) -> None:
    users = 2_000

    async def scenario() -> None:
        store = PostgresStore(postgres_url, activity_cache_users=users + 1)

        async def read_all() -> list[int]:
            """Read every user at once (one sync); return their counts, keeping nothing read."""
            reads = [store.activity(PROJECT, f"gc{n}") for n in range(1, users + 1)]
            return [(await read).count(SENT, first_day=0, last_day=10) for read in reads]

        try:
            with psycopg.connect(postgres_url) as connection:
                connection.execute(
                    "INSERT INTO served (project_id, user_id, response_id, treatment_id, "
                    "surface, tracking_id, time_micros) SELECT 'P', 'gc' || n, 'r', 'A', 'S1', "
                    "'gc' || n || '-' || day, day * %s FROM generate_series(1, %s) AS n, "
                    "generate_series(1, 5) AS day",
                    (DAY, users),
                )
            await store.activity(PROJECT, "warm-up")  # the connection and its statement
            gc.collect()
            before = len(gc.get_objects())
            assert await read_all() == [5] * users
            # A tuple leaves the collector's lists once a collection finds all it
            # holds untracked: a nested one, at the next.
            gc.collect()
            gc.collect()
            assert store.cached_users == users + 1
            # Five tracked objects a user before (an entry, the activity, its three arrays).
            assert len(gc.get_objects()) - before < users / 10
        finally:
            await store.aclose()

    run_event_loop(scenario())


def _count(url: str, query: str) -> tuple[Any, ...] | None:
    with psycopg.connect(url) as connection:
        return connection.execute(query.encode()).fetchone()


@pytest.mark.parametrize("stop", [False, True], ids=["purged", "stopped, then started"])
def test_a_project_reset_hides_its_records_from_every_replica_and_deletes_them_after(
    postgres_url: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    *,
    stop: bool,
) -> None:
    monkeypatch.setattr(postgres_store, "RESET_TURN_ROWS", 50)
    turns = threading.Event()
    purge_turn = postgres_store._purge_turn

    def held_turn(connection: Any, **given: Any) -> bool:
        turns.wait(30)  # the first turn waits for the test
        return purge_turn(connection, **given)

    monkeypatch.setattr(postgres_store, "_purge_turn", held_turn)
    counts = "SELECT count(*) FILTER (WHERE project_id = 'P'), count(*) FROM {}"

    async def scenario() -> list[object]:
        stores = [PostgresStore(postgres_url) for _ in range(2)]
        seen: list[object] = []
        try:
            run = _Run(stores, 11)
            await asyncio.gather(*(run.log(user) for user in USERS for _ in range(40)))
            await asyncio.gather(*(run.serve(user) for user in USERS for _ in range(6)))
            other = ServedTreatment("other", "A", "S1", "x", TODAY * DAY)
            await stores[1].record_served("OTHER", "u0", [other], None)
            await run.check("u0", stores[1])  # cached by the other replica
            await stores[0].replace(PROJECT, _delete_project)
            # Nothing deleted yet, yet every replica reads nothing of the project.
            seen.append(_count(postgres_url, counts.format("interactions")))
            for events in run.acknowledged.values():
                events.clear()
            for store in stores:
                for user in USERS:
                    await run.check(user, store)
                listed = await store.read(
                    lambda repository: (
                        list(repository.logged_interactions(PROJECT, 0, InteractionFilter()).rows),
                        list(repository.logged_interactions("", 0, InteractionFilter()).rows),
                        [
                            row.project_id
                            for row in repository.served_rows("", 0, ServedFilter()).rows
                        ],
                        repository.decisions_rows(PROJECT, ["r201"]),
                    )
                )
                seen.append(listed)
            await run.log("u0")  # logged after the Reset: read as ever
            await run.check("u0", stores[1])
            if stop:
                # Closed during the first turn: it ends, no other begins; the next start goes on.
                threading.Timer(0.5, turns.set).start()
                await stores[0].aclose()
                seen.append(_count(postgres_url, counts.format("interactions")))
                stores[0] = PostgresStore(postgres_url)
                await stores[0].start_helpers()
            else:
                turns.set()
            await asyncio.wait_for(stores[0].purged(), 30)
            for user in USERS:
                await run.check(user, stores[1])
        finally:
            for store in stores:
                await store.aclose()
        return seen

    seen = run_event_loop(scenario())
    hidden = [(200, 200), *[([], [], ["OTHER"], [])] * 2]
    assert seen == ([*hidden, (151, 151)] if stop else hidden)
    assert not [
        r for r in caplog.records if "a Reset hid failed" in r.message
    ]  # stopped, not failed
    assert _count(postgres_url, counts.format("interactions")) == (1, 1)
    assert _count(postgres_url, counts.format("served")) == (0, 1)
    # The floor stays: a row numbered below it might still commit.
    assert _count(postgres_url, "SELECT project_id, interactions FROM record_floors") == ("P", 200)


def test_a_row_numbered_below_the_floor_and_committed_after_the_reset_stays_hidden(
    postgres_url: str,
) -> None:
    # Its id taken before the Reset read the project's last one: hidden on every replica,
    # cached or listed, and deleted by a purge after a start.
    async def scenario() -> list[object]:
        stores = [PostgresStore(postgres_url) for _ in range(2)]
        seen: list[object] = []
        try:
            run = _Run(stores, 5)
            await run.log("u0")
            with psycopg.connect(postgres_url) as late:
                late.execute(
                    "INSERT INTO interactions (project_id, body, user_id, kind, treatment_id, "
                    "surface, time_micros) VALUES ('P', '', 'u0', 2, 'A', 'S1', %s)",
                    (TODAY * DAY,),
                )
                await run.log("u0")  # numbered after the late row, committed before it
                await stores[0].replace(PROJECT, _delete_project)
                await stores[0].purged()
                for events in run.acknowledged.values():
                    events.clear()
                for store in stores:
                    await run.check("u0", store)  # cached before the late row commits
            await run.log("u0")
            for store in stores:
                await run.check("u0", store)
                listed = await store.read(
                    lambda repository: len(
                        list(repository.logged_interactions(PROJECT, 0, InteractionFilter()).rows)
                    )
                )
                seen.append(listed)
            seen.append(_count(postgres_url, "SELECT count(*) FROM interactions"))
            restarted = PostgresStore(postgres_url)
            await restarted.start_helpers()
            await restarted.purged()
            await restarted.aclose()
            seen.append(_count(postgres_url, "SELECT count(*) FROM interactions"))
        finally:
            for store in stores:
                await store.aclose()
        return seen

    assert run_event_loop(scenario()) == [1, 1, (2,), (1,)]


def test_a_project_reset_its_caller_gave_up_on_goes_on_and_deletes_what_it_hid(
    postgres_url: str,
) -> None:
    def slow_reset(repository: Repository) -> None:
        repository.delete_project(PROJECT)
        time.sleep(0.3)  # the caller gives up meanwhile

    async def scenario() -> tuple[int, tuple[Any, ...] | None]:
        store = PostgresStore(postgres_url)
        try:
            run = _Run([store], 9)
            await asyncio.gather(*(run.log("u0") for _ in range(5)))
            await run.check("u0", store)
            cached = store.cached_users
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(store.replace(PROJECT, slow_reset), 0.1)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and _count(
                postgres_url, "SELECT count(*) FROM interactions"
            ) != (0,):
                await asyncio.sleep(0.05)
            return cached - store.cached_users, _count(
                postgres_url, "SELECT count(*) FROM interactions"
            )
        finally:
            await store.aclose()

    assert run_event_loop(scenario()) == (1, (0,))


def test_a_project_reset_forgets_that_project_s_cached_users_on_every_replica(
    postgres_url: str,
) -> None:
    def logged(project: str, tracking_id: str) -> interactions.LogTreatmentInteractionRequest:
        return interactions.LogTreatmentInteractionRequest(
            project_id=project,
            user_id="u",
            treatment_tracking_id=tracking_id,
            treatment_id="A",
            surface="S1",
            interaction_type=interactions.LogTreatmentInteractionRequest.VIEWED,
            interaction_time_micros=TODAY * DAY,
        )

    viewed = interactions.LogTreatmentInteractionRequest.VIEWED + 1  # its kind (``_Run.log``)

    def views(activity: DailyActivity | None) -> int | None:
        return None if activity is None else activity.count(viewed, first_day=0, last_day=TODAY)

    async def scenario() -> list[tuple[int | None, ...]]:
        stores = [PostgresStore(postgres_url) for _ in range(2)]
        try:
            for number, project in enumerate([PROJECT, "Q", PROJECT]):
                await stores[number % 2].log_interaction(logged(project, f"t{number}"), None)
            for store in stores:
                for project in (PROJECT, "Q"):
                    await store.activity(project, "u")
            await stores[0].replace(PROJECT, _delete_project)
            seen: list[tuple[int | None, ...]] = []
            for store in stores:
                await store.synchronize("Q")  # no user: it reads none again
                seen.append(
                    (
                        views(store.cached_activity(PROJECT, "u")),
                        views(store.cached_activity("Q", "u")),
                        views(await store.activity(PROJECT, "u")),
                    )
                )
            return seen
        finally:
            for store in stores:
                await store.aclose()

    # P's user forgotten and read again (nothing left), Q's still cached, on both.
    assert run_event_loop(scenario()) == [(None, 1, 0), (None, 1, 0)]


@pytest.mark.parametrize("through", ["itself", "another"])
def test_a_purge_after_a_whole_reset_deletes_the_rows_numbered_again(
    postgres_url: str, through: str
) -> None:
    # A whole Reset starts the row ids again: what the purge before it reached (row 5)
    # must not make the next one pass over rows 1 to 3.
    async def scenario() -> tuple[int, ...] | None:
        store, other = PostgresStore(postgres_url), PostgresStore(postgres_url)
        try:
            run = _Run([store], 1)
            await asyncio.gather(*(run.log("u0") for _ in range(5)))
            await store.replace(PROJECT, _delete_project)
            await store.purged()
            resetting = store if through == "itself" else other
            await resetting.replace(None, lambda repository: repository.delete_everything())
            await asyncio.gather(*(run.log("u0") for _ in range(3)))
            await store.replace(PROJECT, _delete_project)
            await store.purged()
            return _count(postgres_url, "SELECT count(*) FROM interactions")
        finally:
            await store.aclose()
            await other.aclose()

    assert run_event_loop(scenario()) == (0,)


class _PausedAfterFirstStatement:
    """A connection whose first ``execute`` returns only once the test has done its part."""

    def __init__(self, connection: Any, paused: threading.Event, resume: threading.Event) -> None:
        self._connection = connection
        self._paused, self._resume = paused, resume
        self._first = True

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        result = self._connection.execute(*args, **kwargs)
        if self._first:
            self._first = False
            self._paused.set()
            assert self._resume.wait(30), "the test did not let the turn go on"
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)


def test_a_whole_reset_during_a_purge_turn_makes_the_next_turn_start_over(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A turn reads the reset generation, then deletes from where the last turn of that
    # generation stopped (row 5). A whole Reset and a project's Reset committed between the
    # two number the rows again and hide rows 1 to 3: the turn must not be the last.
    paused, resume, others = threading.Event(), threading.Event(), threading.Event()
    purge_turn = postgres_store._purge_turn
    purging: list[PostgresStore] = []
    armed: list[bool] = []

    def turn(connection: Any, *, progress: Any) -> bool:
        if progress is not purging[0]._purge_progress:
            assert others.wait(30)  # the other replica's purge waits: it would hide the bug
        elif armed:
            armed.clear()
            connection = _PausedAfterFirstStatement(connection, paused, resume)
        return bool(purge_turn(connection, progress=progress))

    monkeypatch.setattr(postgres_store, "_purge_turn", turn)

    async def scenario() -> tuple[int, ...] | None:
        store, other = PostgresStore(postgres_url), PostgresStore(postgres_url)
        purging.append(store)
        try:
            run = _Run([store], 1)
            await asyncio.gather(*(run.log("u0") for _ in range(5)))
            await store.replace(PROJECT, _delete_project)
            await store.purged()  # progress: row 5 of this generation
            armed.append(True)
            await store.replace(PROJECT, _delete_project)  # hides nothing; a turn begins
            assert await asyncio.to_thread(paused.wait, 30)
            await other.replace(None, lambda repository: repository.delete_everything())
            await asyncio.gather(*(_Run([other], 1).log("u0") for _ in range(3)))
            await other.replace(PROJECT, _delete_project)
            resume.set()
            await asyncio.wait_for(store.purged(), 30)
            return _count(postgres_url, "SELECT count(*) FROM interactions")
        finally:
            resume.set()
            others.set()
            await store.aclose()
            await other.aclose()

    assert run_event_loop(scenario()) == (0,)


def _every_event(activity: DailyActivity) -> int:
    """Return how many events of the runs' kinds a user's activity counts."""
    return sum(activity.count(kind, first_day=0, last_day=TODAY) for kind in KINDS)


class _HeldAfterStatement:
    """An async connection whose statements answer only once the test lets them."""

    def __init__(self, connection: Any, ran: asyncio.Event, go_on: asyncio.Event) -> None:
        self._connection = connection
        self._ran, self._go_on = ran, go_on

    async def execute(self, *args: Any, **kwargs: Any) -> Any:
        cursor = await self._connection.execute(*args, **kwargs)
        rows = await cursor.fetchall()  # the statement's snapshot: taken, and read
        self._ran.set()
        await self._go_on.wait()
        return _Fetched(rows)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)


class _Fetched:
    """What a cursor gives that has been read already."""

    def __init__(self, rows: list[Any]) -> None:
        self._rows = rows

    async def fetchall(self) -> list[Any]:
        return self._rows


def test_a_sync_in_flight_across_another_replica_s_project_reset_is_not_what_later_calls_see(
    postgres_url: str,
) -> None:
    # The other replica's sync reads the user's rows before the Reset commits, and takes them
    # in after it: the call it serves started before the Reset and may count them; a call
    # started after the Reset's answer must not (nor may the cache keep them).
    async def scenario() -> tuple[int | None, ...]:
        resetting, syncing = PostgresStore(postgres_url), PostgresStore(postgres_url)
        try:
            run = _Run([resetting], 3)
            await asyncio.gather(*(run.log("u0") for _ in range(6)))
            await syncing.activity(PROJECT, "u0")  # cached, with its connection open
            ran, go_on = asyncio.Event(), asyncio.Event()
            reader = syncing._reader
            connected = reader.connected

            async def held() -> Any:
                return _HeldAfterStatement(await connected(), ran, go_on)

            reader.connected = held  # type: ignore[method-assign]
            await asyncio.gather(*(run.log("u0") for _ in range(2)))
            before = asyncio.ensure_future(syncing.activity(PROJECT, "u0"))
            await asyncio.wait_for(ran.wait(), 10)
            reader.connected = connected  # type: ignore[method-assign]
            await resetting.replace(PROJECT, _delete_project)
            after = asyncio.ensure_future(syncing.activity(PROJECT, "u0"))
            go_on.set()
            counts = [_every_event(await asyncio.wait_for(call, 10)) for call in (before, after)]
            cached = syncing.cached_activity(PROJECT, "u0")
            return (
                *counts,
                None if cached is None else _every_event(cached),
                _every_event(await resetting.activity(PROJECT, "u0")),
            )
        finally:
            await resetting.aclose()
            await syncing.aclose()

    before, after, cached, through_the_other = run_event_loop(scenario())
    assert before == 8  # read before the Reset committed
    assert (after, cached, through_the_other) == (0, 0, 0)


def test_a_project_reset_that_hid_nothing_leaves_the_other_replica_s_cache(
    postgres_url: str,
) -> None:
    async def scenario() -> tuple[bool, bool]:
        stores = [PostgresStore(postgres_url) for _ in range(2)]
        try:
            await stores[1].activity(PROJECT, "u")  # a user of no record
            await stores[0].replace(PROJECT, _delete_project)  # no record: no floor
            await stores[1].synchronize(PROJECT)
            kept = stores[1].cached_activity(PROJECT, "u") is not None
            await stores[0].log_interaction(
                interactions.LogTreatmentInteractionRequest(project_id=PROJECT, user_id="u"),
                None,
            )
            await stores[0].replace(PROJECT, _delete_project)  # a floor now
            await stores[1].synchronize(PROJECT)
            return kept, stores[1].cached_activity(PROJECT, "u") is not None
        finally:
            for store in stores:
                await store.aclose()

    assert run_event_loop(scenario()) == (True, False)


def test_a_whole_reset_after_a_project_s_leaves_no_floor(postgres_url: str) -> None:
    # Numbering starts again after a whole Reset: a floor left would hide the new records.
    async def scenario() -> int:
        store = PostgresStore(postgres_url)
        try:
            run = _Run([store], 3)
            await asyncio.gather(*(run.log("u0") for _ in range(5)))
            await store.replace(PROJECT, _delete_project)
            await store.purged()
            await store.replace(None, lambda repository: repository.delete_everything())
            await asyncio.gather(*(run.log("u0") for _ in range(3)))
            return await store.read(
                lambda repository: len(
                    list(repository.logged_interactions(PROJECT, 0, InteractionFilter()).rows)
                )
            )
        finally:
            await store.aclose()

    assert run_event_loop(scenario()) == 3


def test_a_replaced_store_is_forgotten_by_the_other(postgres_url: str) -> None:
    async def scenario() -> None:
        stores = [PostgresStore(postgres_url) for _ in range(2)]
        try:
            run = _Run(stores, 7)
            for _ in range(5):
                run.rng.choice([run.log, run.serve])("u0")
            await stores[0].drain()
            await stores[1].drain()
            await run.check("u0", stores[1])
            assert stores[1].cached_users == 1
            await stores[0].replace(None, lambda repository: repository.delete_everything())
            run.acknowledged["u0"].clear()
            await run.check("u0", stores[1])
        finally:
            for store in stores:
                await store.aclose()

    run_event_loop(scenario())


def test_a_replica_frozen_inside_a_unit_of_work_frees_the_lock_for_the_others(
    postgres_url: str,
) -> None:
    idle, thawed = threading.Event(), threading.Event()
    idle_since: list[float] = []

    def frozen(repository: Repository) -> None:
        # Inside the unit's transaction, the store's advisory lock held, no statement running:
        # what a paused VM or a stopped process leaves behind.
        repository.projects_by_key_digest()
        idle_since.append(time.monotonic())
        idle.set()
        thawed.wait(IDLE_IN_TRANSACTION_SECONDS * 4)

    async def scenario() -> tuple[float, BaseException | None]:
        stores = [PostgresStore(postgres_url) for _ in range(2)]
        try:
            stuck = asyncio.ensure_future(stores[0].run(frozen))
            assert await asyncio.to_thread(idle.wait, 30)  # the first holds the lock
            await stores[1].run(lambda repository: repository.projects_by_key_digest())
            waited = time.monotonic() - idle_since[0]
            thawed.set()
            failure = (await asyncio.gather(stuck, return_exceptions=True))[0]
            return waited, failure if isinstance(failure, BaseException) else None
        finally:
            thawed.set()
            for store in stores:
                await store.aclose()

    waited, failure = run_event_loop(scenario())
    # PostgreSQL ended the frozen session IDLE_IN_TRANSACTION_SECONDS after it went idle, and
    # the other replica's unit ran then, not when the first thawed; the first's unit failed,
    # unwritten.
    assert IDLE_IN_TRANSACTION_SECONDS - 0.5 < waited < IDLE_IN_TRANSACTION_SECONDS * 2
    assert isinstance(failure, ApiError), failure
    assert failure.code is Code.UNAVAILABLE, failure


def test_a_steady_stream_of_decisions_holds_back_neither_a_log_nor_a_drain(
    postgres_url: str,
) -> None:
    async def scenario() -> tuple[bool, bool]:
        store = PostgresStore(postgres_url)
        try:
            await store.synchronize("")  # the store knows the shared state
            streaming = True

            async def decisions() -> None:  # what GetTreatments appends, without a pause
                while streaming:
                    store.record_decision(1, "P", "u", b"", b"")
                    await asyncio.sleep(0.0002)

            stream = asyncio.ensure_future(decisions())
            await asyncio.sleep(0.3)
            logged = store.log_interaction_if_current(
                interactions.LogTreatmentInteractionRequest(
                    project_id="P",
                    user_id="u",
                    treatment_tracking_id="during-the-stream",
                    interaction_type=interactions.LogTreatmentInteractionRequest.VIEWED,
                    interaction_time_micros=1,
                ),
                "logged",
            )
            assert logged is not None
            drained = asyncio.ensure_future(store.drain())
            both: set[asyncio.Future[Any]] = {logged, drained}
            done, _ = await asyncio.wait(both, timeout=10)
            streaming = False
            await stream
            await asyncio.wait(both, timeout=10)
            return logged in done, drained in done
        finally:
            await store.aclose()

    # Both end while the stream goes on: the batches of either kind take turns, and a drain
    # waits for what was appended before it, not for the sender to fall idle.
    assert run_event_loop(scenario()) == (True, True)


def test_a_database_of_a_newer_schema_is_refused_in_one_line(postgres_url: str) -> None:
    PostgresStore(postgres_url).close()
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute("UPDATE auxia_schema SET version = version + 1")
    with pytest.raises(StartupError) as raised:
        open_store(postgres_url, 10)
    assert "newer auxia-decision" in str(raised.value)
    assert "\n" not in str(raised.value)


def test_an_unreachable_database_is_one_line_without_its_password(postgres: Postgres) -> None:
    url = f"postgresql://someone:s3cret@127.0.0.1:{postgres.port}/no_such_database"
    with pytest.raises(StartupError) as raised:
        open_store(url, 10)
    message = str(raised.value)
    assert message.startswith("the database postgresql://someone:***@127.0.0.1:"), message
    assert "s3cret" not in message
    assert "\n" not in message


def test_a_read_only_database_refuses_writes_saying_nothing_was_written(
    postgres: Postgres, postgres_url: str
) -> None:
    name = postgres_url.rsplit("/", 1)[1]

    async def log(store: PostgresStore) -> None:
        request = interactions.LogTreatmentInteractionRequest(
            project_id=PROJECT, user_id="u", treatment_tracking_id="t", interaction_time_micros=1
        )
        await store.log_interaction(request, None)

    async def scenario() -> None:
        store = PostgresStore(postgres_url)
        try:
            await log(store)
            postgres.psql(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
            postgres.psql(
                "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
                f"WHERE datname = '{name}'"  # each gone before it answers
            )
            with pytest.raises(ApiError) as raised:
                await log(store)
            assert raised.value.code == Code.UNAVAILABLE
            assert "read-only" in raised.value.message
            assert "nothing was written" in raised.value.message
            postgres.psql(f'ALTER DATABASE "{name}" RESET default_transaction_read_only')
            postgres.psql(
                "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
                f"WHERE datname = '{name}'"  # each gone before it answers
            )
            await log(store)
        finally:
            await store.aclose()

    run_event_loop(scenario())
    with psycopg.connect(postgres_url) as connection:
        row = connection.execute("SELECT count(*) FROM interactions").fetchone()
    assert row == (2,)


def test_dropping_a_failed_connection_leaves_its_successor_and_its_statement(
    postgres_url: str,
) -> None:
    async def scenario() -> None:
        link = Link(postgres_url)
        failed = await link.connected()
        link.drop()
        successor = await link.connected()
        sleeping = asyncio.ensure_future(successor.execute("SELECT pg_sleep(0.3)"))
        await asyncio.sleep(0.05)
        link.drop(failed)  # as a caller of the failed connection finds out late
        # A connection opened now would take the socket number of one closed under the
        # statement, which would then wait on that socket forever.
        other = await connect(postgres_url)
        assert link.connection is successor
        await asyncio.wait_for(sleeping, timeout=5)
        assert not successor.closed
        await other.close()
        await link.close()

    run_event_loop(scenario())


def test_a_batch_lost_mid_commit_and_not_stored_is_stored_once_with_those_after(
    postgres: Postgres, postgres_url: str
) -> None:
    name = postgres_url.rsplit("/", 1)[1]

    async def log(store: PostgresStore, tracking_id: str) -> None:
        request = interactions.LogTreatmentInteractionRequest(
            project_id=PROJECT,
            user_id="u",
            treatment_tracking_id=tracking_id,
            interaction_time_micros=1,
        )
        await store.log_interaction(request, None)

    async def blocked_backends() -> str:
        return await asyncio.to_thread(
            postgres.psql,
            "SELECT pid FROM pg_stat_activity "
            f"WHERE datname = '{name}' AND wait_event_type = 'Lock'",
        )

    async def scenario() -> None:
        store = PostgresStore(postgres_url)
        locker = await psycopg.AsyncConnection.connect(postgres_url)
        try:
            await log(store, "before")
            await locker.execute("LOCK TABLE interactions IN ACCESS EXCLUSIVE MODE")
            first = asyncio.ensure_future(log(store, "lost"))
            while not (await blocked_backends()).strip():
                await asyncio.sleep(0.02)
            # The commit in flight loses its connection; it is found not stored.
            await asyncio.to_thread(
                postgres.psql,
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                f"WHERE datname = '{name}' AND wait_event_type = 'Lock'",
            )
            after = [asyncio.ensure_future(log(store, f"after-{n}")) for n in range(5)]
            await asyncio.sleep(0.3)
            await locker.rollback()
            await asyncio.wait_for(asyncio.gather(first, *after), timeout=15)
        finally:
            await locker.close()
            await store.aclose()

    run_event_loop(scenario())
    with psycopg.connect(postgres_url) as connection:
        rows = connection.execute(
            "SELECT tracking_id, count(*) FROM interactions GROUP BY tracking_id"
        ).fetchall()
    assert dict(rows) == {"before": 1, "lost": 1, **{f"after-{n}": 1 for n in range(5)}}


async def _arm_a_fault(store: PostgresStore) -> None:
    await store.change_state("faults", lambda _: (b"armed", None))


async def _reset_the_project(store: PostgresStore) -> None:
    # Nothing a logged interaction reads: written without a sync, after the Reset.
    await store.replace(PROJECT, _delete_project)


async def _reset_everything(store: PostgresStore) -> None:
    await store.replace(None, lambda repository: repository.delete_everything())


@pytest.mark.parametrize("change", [_arm_a_fault, _reset_the_project, _reset_everything])
def test_logging_without_a_sync_writes_only_while_the_shared_state_is_known(
    postgres_url: str, change: Callable[[PostgresStore], Awaitable[None]]
) -> None:
    def request(tracking_id: str) -> interactions.LogTreatmentInteractionRequest:
        return interactions.LogTreatmentInteractionRequest(
            project_id=PROJECT, user_id="u", treatment_tracking_id=tracking_id
        )

    async def scenario() -> None:
        first, second = PostgresStore(postgres_url), PostgresStore(postgres_url)
        try:
            assert second.log_interaction_if_current(request("unknown"), None) is None
            await second.synchronize(PROJECT)
            written = second.log_interaction_if_current(request("current"), "done")
            assert written is not None
            assert await written == "done"
            await change(first)
            stale = second.log_interaction_if_current(request("stale"), "done")
            assert stale is not None
            if change is _reset_the_project:
                assert await stale == "done"
            else:
                with pytest.raises(StaleKnowledgeError):
                    await stale
            await second.synchronize(PROJECT)
            again = second.log_interaction_if_current(request("synced"), "done")
            assert again is not None
            assert await again == "done"
        finally:
            await first.aclose()
            await second.aclose()

    run_event_loop(scenario())
    with psycopg.connect(postgres_url) as connection:
        rows = connection.execute(
            "SELECT tracking_id FROM interactions i WHERE interaction_id > coalesce("
            "(SELECT interactions FROM record_floors f WHERE f.project_id = i.project_id), 0)"
        ).fetchall()
    # A Reset took "current" with it (hidden, or gone).
    expected: dict[Callable[[PostgresStore], Awaitable[None]], list[str]] = {
        _arm_a_fault: ["current", "synced"],
        _reset_the_project: ["stale", "synced"],
        _reset_everything: ["synced"],
    }
    assert sorted(row[0] for row in rows) == expected[change]


def test_changes_of_the_shared_state_asked_at_once_are_made_in_groups_in_order(
    postgres_url: str,
) -> None:
    # Each change counts in the entry; two stores (replicas) ask 30 each at once, and one
    # change raises: it fails alone. Atomic across both: every count seen once.
    per_store = 30

    def counted(value: bytes | None) -> tuple[bytes, int]:
        seen = int(value or b"0")
        return str(seen + 1).encode(), seen

    def refused(value: bytes | None) -> tuple[bytes, int]:
        msg = "a change that raises"
        raise ValueError(msg)

    def state_version() -> int:
        with psycopg.connect(postgres_url) as connection:
            row = connection.execute("SELECT state_version FROM replica_state").fetchone()
        assert row is not None
        return int(row[0])

    async def scenario() -> tuple[list[int], list[int]]:
        first, second = PostgresStore(postgres_url), PostgresStore(postgres_url)
        try:
            await first.change_state("count", lambda _: (b"0", None))
            before = state_version()
            changes = [
                store.change_state("count", counted)
                for _ in range(per_store)
                for store in (first, second)
            ]
            # Among the others, in the groups they make: it fails alone.
            changes.insert(per_store, first.change_state("count", refused))
            found = await asyncio.gather(*changes, return_exceptions=True)
            failure = found.pop(per_store)
            assert isinstance(failure, ValueError), failure
            await first.synchronize(PROJECT)
            assert first.state()["count"] == str(2 * per_store).encode()
            assert state_version() - before < per_store  # grouped: fewer transactions
            seen = [value for value in found if isinstance(value, int)]
            assert len(seen) == len(found), found
            return seen[::2], seen[1::2]
        finally:
            await first.aclose()
            await second.aclose()

    through_first, through_second = run_event_loop(scenario())
    assert sorted(through_first + through_second) == list(range(2 * per_store))
    assert through_first == sorted(through_first)  # in the order each store asked
    assert through_second == sorted(through_second)


def test_counted_changes_are_atomic_and_told_to_the_replicas_only_when_they_say_so(
    postgres_url: str,
) -> None:
    # A fault's draws: every replica counts in one sequence, yet no replica's sync reads
    # the state again for each (the version stays), until a change says to tell them.
    per_store = 20

    def counted(value: bytes | None) -> tuple[bytes, int, bool]:
        seen = int(value or b"0")
        return str(seen + 1).encode(), seen, False

    def told(value: bytes | None) -> tuple[bytes, str, bool]:
        return b"told", "made", True

    def state_version() -> int:
        with psycopg.connect(postgres_url) as connection:
            row = connection.execute("SELECT state_version FROM replica_state").fetchone()
        assert row is not None
        return int(row[0])

    async def scenario() -> list[int]:
        first, second = PostgresStore(postgres_url), PostgresStore(postgres_url)
        try:
            await first.change_state("count", lambda _: (b"0", None))
            await second.synchronize(PROJECT)
            before = state_version()
            found = await asyncio.gather(
                *[
                    store.count_state("count", counted)
                    for _ in range(per_store)
                    for store in (first, second)
                ]
            )
            assert state_version() == before
            await second.synchronize(PROJECT)
            assert first.state()["count"] == second.state()["count"] == b"0"  # as last told
            assert await second.current_state("count") == str(2 * per_store).encode()
            assert await first.count_state("count", told) == "made"
            assert state_version() > before
            await second.synchronize(PROJECT)
            assert second.state()["count"] == b"told"
            return list(found)
        finally:
            await first.aclose()
            await second.aclose()

    assert sorted(run_event_loop(scenario())) == list(range(2 * per_store))


def test_a_fault_plan_tells_every_replica_of_a_fault_used_up_and_of_no_draw(
    postgres_url: str,
) -> None:
    # Selections through one replica count in the shared plan; the other's plan, as of its
    # syncs, changes only when a fault is used up, and then it is disarmed there too.
    def state_version() -> int:
        with psycopg.connect(postgres_url) as connection:
            row = connection.execute("SELECT state_version FROM replica_state").fetchone()
        assert row is not None
        return int(row[0])

    async def scenario() -> None:
        first, second = PostgresStore(postgres_url), PostgresStore(postgres_url)
        plans = FaultPlan(), FaultPlan()
        try:
            for plan, store in zip(plans, (first, second), strict=True):
                plan.share(store)
            fraction = emulator_pb2.Fault(
                method="GetTreatments", fraction=0.5, random_seed=7, code=code_pb2.UNAVAILABLE
            )
            await plans[0].arm_shared(fraction, {})
            count = emulator_pb2.Fault(
                method="LogTreatmentInteraction", count=2, code=code_pb2.UNAVAILABLE
            )
            await plans[0].arm_shared(count, {})
            await second.synchronize(PROJECT)
            before = state_version()
            drawn = [await plans[1].select_shared("GetTreatments") for _ in range(10)]
            assert state_version() == before  # draws: nobody told
            (listed, _) = await plans[0].current_faults()
            assert listed.draws == 10
            assert listed.selected == sum(fault is not None for fault in drawn)
            assert await plans[1].select_shared("LogTreatmentInteraction") is not None
            assert state_version() == before
            assert await plans[1].select_shared("LogTreatmentInteraction") is not None
            assert state_version() > before  # used up: told
            await first.synchronize(PROJECT)
            assert [fault.method for fault in plans[0].faults()] == ["GetTreatments"]
        finally:
            await first.aclose()
            await second.aclose()

    run_event_loop(scenario())


def test_a_reset_kept_waiting_by_a_read_past_its_time_is_unavailable_and_changes_nothing(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(postgres_store, "REPLACE_SECONDS", 0.5)

    async def scenario() -> tuple[ApiError, float, list[str]]:
        store = PostgresStore(postgres_url)
        try:
            project = ProjectRecord(PROJECT, 1, frozenset())
            await store.run(lambda repository: repository.put_project(project, []))
            with psycopg.connect(postgres_url) as holder:
                holder.execute("SELECT count(*) FROM projects").fetchone()  # a read, open
                began = time.monotonic()
                with pytest.raises(ApiError) as refused:
                    await store.replace(None, lambda repository: repository.delete_everything())
                took = time.monotonic() - began
                assert await store.read(lambda repository: repository.project_ids()) == [PROJECT]
            await store.replace(None, lambda repository: repository.delete_everything())
            return refused.value, took, await store.read(lambda r: r.project_ids())
        finally:
            await store.aclose()

    refused, took, left = run_event_loop(scenario())
    assert refused.code == Code.UNAVAILABLE
    assert "lock timeout" in refused.message
    assert refused.message.endswith("nothing was written: try again")
    assert 0.5 <= took < 5, took
    assert left == []


def test_a_long_read_holds_up_none_of_its_replicas_writes(postgres_url: str) -> None:
    # A listing a rare filter makes read a whole table, through one replica: its units of
    # work and changes of the shared state (a fault's count) go on meanwhile.
    async def scenario() -> list[str]:
        store = PostgresStore(postgres_url)
        try:
            begun, release = threading.Event(), threading.Event()

            def long_read(repository: Repository) -> list[str]:
                found = repository.project_ids()
                begun.set()
                release.wait(30)  # until the writes meanwhile are done
                return found

            async def write() -> None:
                project = ProjectRecord(PROJECT, 1, frozenset())
                await store.run(lambda repository: repository.put_project(project, []))
                await store.change_state("n", lambda _: (b"1", None))

            reading = asyncio.ensure_future(store.read(long_read))
            try:
                assert await asyncio.to_thread(begun.wait, 10)
                await asyncio.wait_for(write(), 10)  # a write the read held up fails here
                assert not reading.done()
            finally:
                release.set()
            return await reading
        finally:
            await store.aclose()

    assert run_event_loop(scenario()) == []  # its snapshot, from before


def test_a_reset_past_its_time_leaves_the_faults_armed(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A Reset that is UNAVAILABLE ("try again") had already disarmed the faults.
    monkeypatch.setattr(postgres_store, "REPLACE_SECONDS", 0.5)
    with LocalServer(db=postgres_url) as server:
        server.faults.fail_next("GetTreatments", Code.UNAVAILABLE, count=2)
        with psycopg.connect(postgres_url) as holder:
            holder.execute("SELECT count(*) FROM interactions").fetchone()  # a read, open
            with pytest.raises(ApiError) as refused:
                server.reset()
        assert refused.value.code == Code.UNAVAILABLE
        (fault,) = server.faults.list()
        assert fault.remaining_count == 2
        server.reset()
        assert server.faults.list() == []


def test_a_sync_under_way_as_the_store_closes_leaves_no_connection(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Its connection was being opened as aclose() closed the others: it was kept, open.
    opened = postgres_connections.connect

    async def slowly(url: str) -> Any:
        await asyncio.sleep(0.3)
        return await opened(url)

    monkeypatch.setattr(postgres_connections, "connect", slowly)

    async def scenario() -> BaseException | None:
        store = PostgresStore(postgres_url)
        syncing: asyncio.Future[object] = asyncio.ensure_future(store.synchronize(PROJECT))
        await asyncio.sleep(0.05)
        await store.aclose()
        await asyncio.wait([syncing])
        return syncing.exception()

    failure = run_event_loop(scenario())
    assert isinstance(failure, ApiError), failure
    assert failure.code == Code.UNAVAILABLE
    assert _sessions_left(postgres_url) == 0


def test_a_listener_that_cannot_read_the_state_is_logged_and_the_callers_get_their_results(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # A replica of another version could write state this one cannot read. The changes
    # are committed: their callers are told so (a retry would make them twice), the other
    # listeners take the state, and the log says what could not.
    taken: list[dict[str, bytes]] = []

    def unreadable(state: dict[str, bytes]) -> None:
        if state.get("n") == b"unreadable":
            msg = "cannot read this state"
            raise ValueError(msg)

    def stopping(_: bytes | None) -> tuple[bytes, str]:
        raise StopIteration

    async def scenario() -> tuple[object, ...]:
        store = PostgresStore(postgres_url)
        store.watch_state(unreadable)
        store.watch_state(taken.append)
        try:
            return await asyncio.wait_for(
                asyncio.gather(
                    store.change_state("n", lambda _: (b"unreadable", "made")),
                    store.change_state("s", stopping),
                    store.change_state("m", lambda _: (b"1", "after")),
                    return_exceptions=True,
                ),
                timeout=10,
            )
        finally:
            await store.aclose()

    made, stopped, after = run_event_loop(scenario())
    assert (made, after) == ("made", "after")
    assert isinstance(stopped, RuntimeError), stopped  # not a StopIteration, which stops
    assert taken[-1]["n"] == b"unreadable"
    assert taken[-1]["m"] == b"1"
    assert "a listener could not take the emulator's shared state" in caplog.text


def test_a_change_of_the_shared_state_whose_caller_gave_up_before_it_was_made_is_not_made(
    postgres_url: str,
) -> None:
    # As a fault's count is not used up by a call whose client gave up while it waited.
    async def scenario() -> bytes:
        store = PostgresStore(postgres_url)
        try:
            await store.change_state("n", lambda _: (b"0", None))
            started, release = threading.Event(), threading.Event()

            def busy_unit(_: Repository) -> None:
                started.set()
                release.wait(30)

            busy = asyncio.ensure_future(store.run(busy_unit))
            try:
                assert await asyncio.to_thread(started.wait, 10)  # the connection is busy
                given_up = asyncio.ensure_future(store.change_state("n", lambda _: (b"1", None)))
                await asyncio.sleep(0.05)  # it waits for the connection
                given_up.cancel()
            finally:
                release.set()
            await busy
            return await store.change_state("n", lambda value: (value or b"", value or b""))
        finally:
            await store.aclose()

    assert run_event_loop(scenario()) == b"0"


def test_closing_makes_the_changes_asked_for_and_refuses_later_ones_saying_why(
    postgres_url: str,
) -> None:
    # A server stopping with calls in flight: the changes they asked for are made (a group
    # under way, and the one queued behind it); a change asked for once closing has begun
    # is UNAVAILABLE, saying why (it was a bare RuntimeError, as was the queued group's).
    def counted(value: bytes | None) -> tuple[bytes, int]:
        seen = int(value or b"0")
        return str(seen + 1).encode(), seen

    async def scenario() -> tuple[list[int], ApiError]:
        store = PostgresStore(postgres_url)
        closing = None
        try:
            await store.change_state("n", lambda _: (b"0", None))
            first = asyncio.ensure_future(store.change_state("n", counted))
            await asyncio.sleep(0.01)  # its group's transaction is under way
            queued = [asyncio.ensure_future(store.change_state("n", counted)) for _ in range(4)]
            await asyncio.sleep(0)
            closing = asyncio.ensure_future(store.aclose())
            await asyncio.sleep(0)
            with pytest.raises(ApiError) as late:
                await store.change_state("n", counted)
            return list(await asyncio.gather(first, *queued)), late.value
        finally:
            await (closing or store.aclose())

    async def sync_after_closing() -> ApiError:
        store = PostgresStore(postgres_url)
        await store.synchronize(PROJECT)
        await store.aclose()
        with pytest.raises(ApiError) as refused:
            await store.synchronize(PROJECT)
        return refused.value

    made, late = run_event_loop(scenario())
    assert run_event_loop(sync_after_closing()).message == late.message
    assert _sessions_left(postgres_url) == 0  # nothing opened again after closing
    assert made == [0, 1, 2, 3, 4]
    assert late.code == Code.UNAVAILABLE
    assert late.message == "the server is stopping; nothing was written: try again"
    with psycopg.connect(postgres_url) as connection:
        row = connection.execute("SELECT value FROM emulator_state WHERE key = 'n'").fetchone()
    assert row is not None
    assert bytes(row[0]) == b"5"


def _sessions_left(url: str, within: float = 5.0) -> int:
    """Return how many of the server's sessions the database still has, once they had time to go.

    A session a client closed leaves ``pg_stat_activity`` when its backend
    has exited, a moment later; one left open stays.
    """
    deadline = time.monotonic() + within
    with psycopg.connect(url, autocommit=True) as connection:
        while True:
            row = connection.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE application_name = 'auxia-decision' AND datname = current_database()"
            ).fetchone()
            assert row is not None
            if row[0] == 0 or time.monotonic() > deadline:
                return int(row[0])
            time.sleep(0.05)


_PASSWORD = "p@ss/w#rd"


def test_a_local_server_process_gets_the_password_in_its_environment_not_its_command_line() -> None:
    # A server that asks for a password over TCP (trusting its own superuser, who makes the
    # role); the URL's password is escaped as a URL's userinfo must be.
    server = Postgres({**settings_for_tests(), "hba_file": "PLACEHOLDER"})
    try:
        hba = server.folder / "pg_hba.conf"
        hba.write_text(
            "host all postgres 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 scram-sha-256\n"
        )
        hba.chmod(0o644)
        server.settings["hba_file"] = str(hba)
        server.start()
        server.psql(f"CREATE ROLE auxia LOGIN PASSWORD '{_PASSWORD}'")
        server.psql("CREATE DATABASE local_server OWNER auxia")
        address = f"127.0.0.1:{server.port}/local_server"
        with pytest.raises(psycopg.OperationalError, match="password"):
            psycopg.connect(f"postgresql://auxia@{address}", connect_timeout=5).close()
        url = f"postgresql://auxia:{quote(_PASSWORD, safe='')}@{address}"
        with LocalServer(db=url, in_process=False) as local:
            children = process_tree(os.getpid())[1:]
            command_lines = [pathlib.Path(f"/proc/{pid}/cmdline").read_bytes() for pid in children]
            served = [line for line in command_lines if b"serve" in line]
            assert len(served) == 1, command_lines
            assert b"postgresql://auxia@" in served[0]
            assert quote(_PASSWORD, safe="").encode() not in served[0]
            assert _PASSWORD.encode() not in served[0]
            with local.client() as client:
                answer = client.log_treatment_interaction(
                    interactions.LogTreatmentInteractionRequest(
                        project_id="PROJECT_ID",
                        treatment_tracking_id="password-apart",
                        interaction_type=interactions.LogTreatmentInteractionRequest.CLICKED,
                        interaction_time_micros=1_732_312_345_123_456,
                    )
                )
            assert answer == interactions.LogTreatmentInteractionResponse()
    finally:
        server.close()
