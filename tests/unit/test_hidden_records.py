"""A project's records hidden by its Reset at once, then deleted in turns (``purge_hidden``)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from typing import TypeVar

import pytest

from auxia.decision.model.treatment_interaction_service_pb2 import LogTreatmentInteractionRequest
from auxia_decision.server._storage import filters
from auxia_decision.server._storage.seam import (
    SENT,
    InteractionFilter,
    ServedFilter,
    ServedTreatment,
)
from auxia_decision.server._storage.sqlite_repository import SqliteRepository
from auxia_decision.server._storage.sqlite_store import SqliteStore

T = TypeVar("T")
TABLES = (("interactions", "interaction_id"), ("served", "served_id"))
LISTINGS = (
    "listing",
    "newest first",
    "by user",
    "by tracking id",
    "every project",
    "every project, newest first",
)
"""The interactions' listings ``_everything_read`` reads, by name."""


def _interaction(project: str, user: str, tracking: str) -> LogTreatmentInteractionRequest:
    return LogTreatmentInteractionRequest(
        project_id=project,
        user_id=user,
        treatment_id="T",
        surface="S",
        treatment_tracking_id=tracking,
        interaction_type=LogTreatmentInteractionRequest.InteractionType.VIEWED,
        interaction_time_micros=1,
    )


async def _log(store: SqliteStore, project: str, count: int, tracking: str = "t") -> None:
    await asyncio.gather(
        *[store.log_interaction(_interaction(project, "u", tracking), None) for _ in range(count)]
    )


async def _serve(store: SqliteStore, project: str, count: int, response: str = "r") -> None:
    served = [ServedTreatment(response, "T", "S", f"t{n}", n) for n in range(count)]
    await store.record_served(project, "u", served, None)


def _at_once(store: SqliteStore, work: Callable[[SqliteRepository], T]) -> T:
    """Run work on the store's database thread, in a transaction of its own."""
    return store.executor.submit(lambda connection: work(SqliteRepository(connection))).result()


def _rows(store: SqliteStore) -> list[list[tuple[int, str]]]:
    """Return each record table's rows as the file holds them: (row id, project)."""

    def read(connection: sqlite3.Connection) -> list[list[tuple[int, str]]]:
        return [
            connection.execute(f"SELECT {key}, project_id FROM {table} ORDER BY {key}").fetchall()
            for table, key in TABLES
        ]

    return store.executor.submit(read).result()


def _floors(store: SqliteStore) -> list[tuple[str, int, int]]:
    return store.executor.submit(
        lambda connection: connection.execute("SELECT * FROM record_floors").fetchall()
    ).result()


@pytest.fixture
def store() -> SqliteStore:
    """A store in memory with records of A and B, A's last of each table the table's last.

    Interactions 1-3 A, 4-5 B, 6-7 A; served rows 1-2 B, 3-5 A.
    """
    store = SqliteStore(":memory:")

    async def fill() -> None:
        await _log(store, "A", 3)
        await _log(store, "B", 2)
        await _log(store, "A", 2)
        await _serve(store, "B", 2, "rb")
        await _serve(store, "A", 3, "ra")

    asyncio.run(fill())
    return store


def _everything_read(repository: SqliteRepository, project: str) -> dict[str, list[int]]:
    """Return the row ids of the project's records every read gives (activity: counts)."""
    rows, _ = repository.user_activity(project, "u")
    reads = {
        "listing": repository.logged_interactions(project, 0, InteractionFilter()).rows,
        "newest first": repository.logged_interactions(
            project, 0, InteractionFilter(), newest_first=True
        ).rows,
        "by user": repository.logged_interactions(project, 0, InteractionFilter(user_id="u")).rows,
        "by tracking id": repository.logged_interactions(
            project, 0, InteractionFilter(tracking_id="t")
        ).rows,
        "every project": (
            row
            for row in repository.logged_interactions("", 0, InteractionFilter()).rows
            if row[1].project_id == project
        ),
        "every project, newest first": (
            row
            for row in repository.logged_interactions(
                "", 0, InteractionFilter(), newest_first=True
            ).rows
            if row[1].project_id == project
        ),
    }
    read = {name: sorted(row[0] for row in listed) for name, listed in reads.items()}
    read["interactions"] = [len(repository.interactions(project))]
    read["served"] = sorted(
        row.sequence for row in repository.served_rows(project, 0, ServedFilter()).rows
    )
    for newest_first in (False, True):
        read[f"served, every project{', newest first' * newest_first}"] = sorted(
            row.sequence
            for row in repository.served_rows("", 0, ServedFilter(), newest_first=newest_first).rows
            if row.project_id == project
        )
    read["decisions"] = sorted(
        row.sequence for row in repository.decisions_rows(project, ["ra", "rb"])
    )
    read["activity"] = [
        sum(row[4] for row in rows if row[0] != SENT),
        sum(row[4] for row in rows if row[0] == SENT),
    ]
    return read


def test_a_deleted_project_s_records_are_hidden_from_every_read_at_once(
    store: SqliteStore,
) -> None:
    try:
        _at_once(store, lambda repository: repository.delete_project("A"))
        hidden = _at_once(store, lambda repository: _everything_read(repository, "A"))
        others = _at_once(store, lambda repository: _everything_read(repository, "B"))
        rows = _rows(store)

        async def log_again() -> None:
            await _log(store, "A", 1)
            await _serve(store, "A", 1, "ra")

        asyncio.run(log_again())
        again = _at_once(store, lambda repository: _everything_read(repository, "A"))
    finally:
        store.close()
    assert hidden == {
        name: [0] if name in ("interactions",) else [0, 0] if name == "activity" else []
        for name in hidden
    }
    assert others == {
        **{name: [4, 5] for name in LISTINGS},
        "interactions": [2],
        "served": [1, 2],
        "served, every project": [1, 2],
        "served, every project, newest first": [1, 2],
        "decisions": [1, 2],
        "activity": [2, 2],
    }
    # Nothing is deleted yet: the Reset's transaction only set the floors.
    assert rows == [
        [(1, "A"), (2, "A"), (3, "A"), (4, "B"), (5, "B"), (6, "A"), (7, "A")],
        [(1, "B"), (2, "B"), (3, "A"), (4, "A"), (5, "A")],
    ]
    # What the project logs after its Reset is read as ever.
    assert again == {
        **{name: [8] for name in LISTINGS},
        "interactions": [1],
        "served": [6],
        "served, every project": [6],
        "served, every project, newest first": [6],
        "decisions": [6],
        "activity": [1, 1],
    }


def test_turns_delete_the_hidden_records_but_each_table_s_last_row(store: SqliteStore) -> None:
    try:
        _at_once(store, lambda repository: repository.delete_project("A"))
        assert _floors(store) == [("A", 7, 5)]
        turns = []
        while _at_once(store, lambda repository: repository.purge_hidden(2)):
            turns.append(_rows(store))
        left, floors = _rows(store), _floors(store)
        # A row after the hidden last ones: they go, and the floor with them.
        asyncio.run(_log(store, "B", 1))
        asyncio.run(_serve(store, "B", 1, "rb"))
        while _at_once(store, lambda repository: repository.purge_hidden(2)):
            pass
        after, floors_after = _rows(store), _floors(store)
    finally:
        store.close()
    # Turns of two at most, interactions first; never a table's last row, whose number
    # a new row would take (cached users count it already).
    assert [[len(table) for table in turn] for turn in turns] == [[5, 5], [3, 5], [3, 3]]
    assert left == [[(4, "B"), (5, "B"), (7, "A")], [(1, "B"), (2, "B"), (5, "A")]]
    assert floors == [("A", 7, 5)]  # kept while hidden rows are left
    assert after == [[(4, "B"), (5, "B"), (8, "B")], [(1, "B"), (2, "B"), (6, "B")]]
    assert floors_after == []


def test_a_second_reset_raises_the_floor_and_never_lowers_it(store: SqliteStore) -> None:
    try:
        _at_once(store, lambda repository: repository.delete_project("A"))
        while _at_once(store, lambda repository: repository.purge_hidden(100)):
            pass
        first = _floors(store)  # the tables' last rows are A's: kept, and the floor
        _at_once(store, lambda repository: repository.delete_project("A"))
        second = _floors(store)
        asyncio.run(_log(store, "A", 1))
        _at_once(store, lambda repository: repository.delete_project("A"))
        third = _floors(store)
        _at_once(store, lambda repository: repository.delete_project("B"))
    finally:
        store.close()
    assert first == second == [("A", 7, 5)]
    assert third == [("A", 8, 5)]


def test_a_project_without_records_leaves_no_floor() -> None:
    store = SqliteStore(":memory:")
    try:
        _at_once(store, lambda repository: repository.delete_project("A"))
        floors = _floors(store)
    finally:
        store.close()
    assert floors == []


@pytest.mark.parametrize("newest_first", [False, True], ids=["oldest-first", "newest-first"])
def test_a_listing_of_the_project_reads_no_hidden_record(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch, *, newest_first: bool
) -> None:
    # One sequence number a call: a listing that stepped over hidden records would come
    # back short with a token to go on from, once for each.
    monkeypatch.setattr(filters, "SCAN_ROWS", 1)

    def listed(repository: SqliteRepository) -> tuple[list[int], int, list[int], int]:
        interactions = repository.logged_interactions(
            "A", 0, InteractionFilter(), newest_first=newest_first
        )
        served = repository.served_rows("A", 0, ServedFilter(), newest_first=newest_first)
        return (
            [row[0] for row in interactions.rows],
            interactions.resume_after,
            [row.sequence for row in served.rows],
            served.resume_after,
        )

    try:
        _at_once(store, lambda repository: repository.delete_project("A"))

        async def log_again() -> None:
            await _log(store, "A", 1)
            await _serve(store, "A", 1, "ra")

        asyncio.run(log_again())
        found = _at_once(store, listed)
    finally:
        store.close()
    assert found == ([8], 0, [6], 0)


def test_a_hidden_last_row_of_either_table_keeps_the_floor() -> None:
    # The interactions end with A's row, the served rows with B's: A's served row goes,
    # its last interaction stays hidden, and so does the floor.
    store = SqliteStore(":memory:")
    try:

        async def fill() -> None:
            await _log(store, "A", 3)
            await _serve(store, "A", 1, "ra")
            await _serve(store, "B", 1, "rb")

        asyncio.run(fill())
        _at_once(store, lambda repository: repository.delete_project("A"))
        while _at_once(store, lambda repository: repository.purge_hidden(100)):
            pass
        rows, floors = _rows(store), _floors(store)
        read = _at_once(store, lambda repository: _everything_read(repository, "A"))
    finally:
        store.close()
    assert rows == [[(3, "A")], [(2, "B")]]
    assert floors == [("A", 3, 1)]
    assert read == {
        name: [0] if name == "interactions" else [0, 0] if name == "activity" else []
        for name in read
    }


def test_a_closed_store_starts_no_purge() -> None:
    # A Reset shielded from its caller may end after the server closed the store: a purge
    # then would wait for ever on the closed database thread.
    async def scenario() -> set[asyncio.Task[object]]:
        store = SqliteStore(":memory:")
        store.close()
        store.purge_hidden()
        return asyncio.all_tasks() - {asyncio.current_task()}

    assert asyncio.run(scenario()) == set()
