"""The activity reader process of a file-backed store, on real SQLite files.

Each test runs in one event loop (the reader is bound to the loop that starts
it). Whether every acknowledged event is read is the activity cache's property
test (``test_activity_cache``); these are the reader's own ways to fail.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal

import pytest

from auxia.decision.model import treatment_interaction_service_pb2 as interactions
from auxia_decision.server._storage.seam import UserActivity
from auxia_decision.server._storage.sqlite_store import SqliteStore
from auxia_decision.server._transport.runtime import run_event_loop
from tests._processes import exists

PROJECT = "P"
DAY = 86_400_000_000
TODAY = 20_000
VIEWED = interactions.LogTreatmentInteractionRequest.VIEWED
USERS = [f"u{n}" for n in range(40)]


def _views(user: str) -> int:
    """How many views the tests log for a user: a different count for each."""
    return 1 + int(user[1:]) % 7


async def _log_views(store: SqliteStore) -> None:
    await asyncio.gather(
        *(
            store.log_interaction(
                interactions.LogTreatmentInteractionRequest(
                    project_id=PROJECT,
                    user_id=user,
                    treatment_tracking_id=f"{user}-{view}",
                    treatment_id="A",
                    surface="S",
                    interaction_type=VIEWED,
                    interaction_time_micros=(TODAY - view) * DAY,
                ),
                None,
            )
            for user in USERS
            for view in range(_views(user))
        )
    )


async def _viewed_and_read(store: SqliteStore) -> int:
    """Log the users' views, start the store's reader; return its process id."""
    await store.start_writer()
    await _log_views(store)
    await store.start_reader()
    pid = store.reader_pid
    assert pid is not None
    return pid


def _viewed(activity: UserActivity) -> int:
    return activity.count(VIEWED + 1, first_day=0, last_day=TODAY)


def test_users_asked_for_in_one_pass_are_read_by_the_process(path: str) -> None:
    async def scenario() -> tuple[int, list[int]]:
        store = SqliteStore(path, activity_cache_users=0)
        try:
            pid = await _viewed_and_read(store)
            found = await asyncio.gather(*(store.activity(PROJECT, user) for user in USERS))
            return pid, [_viewed(activity) for activity in found]
        finally:
            store.close()

    pid, viewed = run_event_loop(scenario())
    assert pid != os.getpid()
    assert viewed == [_views(user) for user in USERS]
    assert not exists(pid)  # closing the store stopped and reaped the reader


def test_reads_a_dead_reader_had_not_answered_are_read_on_the_event_loop(
    path: str, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> tuple[list[int], list[int], int | None]:
        store = SqliteStore(path, activity_cache_users=0)
        try:
            pid = await _viewed_and_read(store)
            os.kill(pid, signal.SIGSTOP)  # it takes the users, and answers none
            reads = [asyncio.ensure_future(store.activity(PROJECT, user)) for user in USERS]
            await asyncio.sleep(0.05)
            assert not any(read.done() for read in reads)
            os.kill(pid, signal.SIGKILL)
            in_flight = [_viewed(activity) for activity in await asyncio.gather(*reads)]
            after = [_viewed(await store.activity(PROJECT, user)) for user in USERS]
            return in_flight, after, store.reader_pid
        finally:
            store.close()

    with caplog.at_level(logging.ERROR, logger="auxia_decision.store"):
        in_flight, after, pid = run_event_loop(scenario())
    expected = [_views(user) for user in USERS]
    assert (in_flight, after, pid) == (expected, expected, None)
    # Killed with users unread in its socket: the kernel resets the connection.
    (record,) = caplog.records
    assert re.fullmatch(
        r"the activity reader (is gone \(.*\)|stopped before answering); "
        r"activity is read on the event loop's thread from now on",
        record.getMessage(),
    )


def test_a_store_started_afresh_is_read_from_its_new_file(path: str) -> None:
    async def scenario() -> tuple[int, int, int, int | None, int | None]:
        store = SqliteStore(path)
        try:
            await store.start_writer()
            await _log_views(store)
            await store.start_reader()
            before = store.reader_pid
            viewed = _viewed(await store.activity(PROJECT, "u3"))
            await store.replace(None, lambda repository: repository.delete_everything())
            after = store.reader_pid
            # Not cached any more: read by the new process, from the new file.
            again = _viewed(await store.activity(PROJECT, "u3"))
            await _log_views(store)
            logged = _viewed(await store.activity(PROJECT, "u4"))
            return viewed, again, logged, before, after
        finally:
            store.close()

    viewed, again, logged, before, after = run_event_loop(scenario())
    assert (viewed, again, logged) == (_views("u3"), 0, _views("u4"))
    assert None not in (before, after)
    assert before != after


def test_reads_in_flight_when_the_store_starts_afresh_are_answered(path: str) -> None:
    async def scenario() -> list[int]:
        store = SqliteStore(path, activity_cache_users=0)
        try:
            await _viewed_and_read(store)
            reads = [asyncio.ensure_future(store.activity(PROJECT, user)) for user in USERS]
            await store.replace(None, lambda repository: repository.delete_everything())
            return [_viewed(activity) for activity in await asyncio.gather(*reads)]
        finally:
            store.close()

    # Asked for before the Reset: answered from the file they were asked of.
    assert run_event_loop(scenario()) == [_views(user) for user in USERS]
