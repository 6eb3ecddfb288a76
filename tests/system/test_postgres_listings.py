"""The emulator's listings on a real PostgreSQL: what they return, and how they read.

The same model as on SQLite (``tests/_listings.py``): every page of
ListDecisions and ListInteractions, followed, is what was stored and matches,
with reads in sequence order cut short or not.
A listing by tracking id or response can be read by an index in sequence
order (asked with sequential scans and sorts priced out), and a project's
next record by its index by project; a database of schema 1 or 2 gets the
indexes it lacks at start, and says so.
"""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest

from auxia.decision.emulator.v1 import emulator_pb2
from auxia_decision.server._emulator.inspection import list_decisions
from auxia_decision.server._storage import filters
from auxia_decision.server._storage.filters import (
    POSTGRES,
    SERVED_SELECT,
    decisions_query,
    interactions_query,
    served_query,
)
from auxia_decision.server._storage.postgres_schema import SCHEMA_VERSION, lock_key
from auxia_decision.server._storage.postgres_store import PostgresStore
from auxia_decision.server._storage.seam import InteractionFilter, ServedFilter
from auxia_decision.server._transport.runtime import run_event_loop
from tests._listings import (
    INTERLEAVED,
    INTERLEAVED_LISTED,
    LISTED_DECISIONS,
    LISTED_INTERACTIONS,
    all_decisions,
    all_interactions,
    decisions_matching,
    fill,
    interactions_matching,
    seek_of_next,
)

PAGE_SIZES = (1, 3, 100)
SCAN_BOUNDS = (3, filters.SCAN_ROWS)
"""Sequence numbers a call steps over in sequence order: a page cut short by each, or none."""


@pytest.mark.parametrize("scan", SCAN_BOUNDS)
def test_decisions_and_interactions_are_listed_as_stored_page_by_page(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch, scan: int
) -> None:
    monkeypatch.setattr(filters, "SCAN_ROWS", scan)

    async def scenario() -> None:
        store = PostgresStore(postgres_url)
        try:
            stored = await fill(store)
            orders: tuple[dict[str, bool], ...] = ({}, {"newest_first": True})
            for asked in [{**given, **order} for given in LISTED_DECISIONS for order in orders]:
                expected = decisions_matching(stored, asked)
                for size in PAGE_SIZES:
                    assert await all_decisions(store, asked, size) == expected, (asked, size)
            for asked in [{**given, **o} for given in LISTED_INTERACTIONS for o in orders]:
                expected_logged = interactions_matching(stored, asked)
                for size in PAGE_SIZES:
                    listed = await all_interactions(store, asked, size)
                    assert listed == expected_logged, (asked, size)
        finally:
            await store.aclose()

    run_event_loop(scenario())


def _plan(url: str, query: tuple[str, list[object]]) -> str:
    text, values = query
    with psycopg.connect(url) as connection:
        connection.execute("SET enable_seqscan = off")
        connection.execute("SET enable_sort = off")
        rows = connection.execute(f"EXPLAIN {text}".encode(), values).fetchall()
    return "\n".join(str(row[0]) for row in rows)


@pytest.mark.parametrize(
    ("matching", "index"),
    [
        (InteractionFilter(tracking_id="k"), "interactions_by_tracking"),
        (
            InteractionFilter(tracking_id="k", treatment_id="t", interaction_type=1),
            "interactions_by_",
        ),
        (ServedFilter(response_id="r"), "served_by_response"),
        (ServedFilter(response_id="r", treatment_id="t", surface="s", end_micros=9), "served_by_"),
    ],
)
@pytest.mark.parametrize(
    ("newest_first", "scan", "bound"), [(False, "", ">"), (True, "Backward ", "<")]
)
def test_listings_by_tracking_id_or_response_can_be_read_by_index_in_sequence_order(
    postgres_url: str, matching: Any, index: str, *, newest_first: bool, scan: str, bound: str
) -> None:
    PostgresStore(postgres_url).close()
    # P's rows, each of its own tracking id and response, and the statistics that say so:
    # by them, the planner reads by tracking id or response, not by project.
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        _two_projects(connection, every=1)
    interactions = isinstance(matching, InteractionFilter)
    query = (
        interactions_query("body", "P", 5, matching, POSTGRES, newest_first=newest_first)
        if interactions
        else served_query(SERVED_SELECT, "P", 5, matching, POSTGRES, newest_first=newest_first)
    )
    plan = _plan(postgres_url, query)
    assert f"Index Scan {scan}using {index}" in plan, plan
    # The index holds the sequence after its keys: the page starts by a seek, unsorted.
    (seek,) = [line for line in plan.splitlines() if "Index Cond:" in line]
    sequence = "interaction_id" if interactions else "served_id"
    assert f"{sequence} {bound} " in seek, plan
    assert "Sort" not in plan, plan
    assert "Seq Scan" not in plan, plan


@pytest.mark.parametrize("table", ["interactions", "served"])
# Past `after` in the order asked lie many of P's rows: a plan that reads them all would show.
@pytest.mark.parametrize(("newest_first", "after"), [(False, 5), (True, 1900), (True, 0)])
def test_a_projects_next_record_is_found_by_its_index(
    postgres_url: str, table: str, *, newest_first: bool, after: int
) -> None:
    PostgresStore(postgres_url).close()
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        _two_projects(connection, every=100)  # a project of few rows among another's
    plan = _plan(postgres_url, seek_of_next(table, POSTGRES, after, newest_first=newest_first))
    # One seek: the first row the index gives, in the order asked.
    assert "Limit" in plan, plan
    assert f"Index Only Scan{' Backward' if newest_first else ''} using {table}_by_project" in plan


def _two_projects(connection: psycopg.Connection[tuple[Any, ...]], every: int) -> None:
    """Store 2,000 rows a table, P's one in ``every`` and Q's the rest, and their statistics."""
    project = f"CASE WHEN n % {every} = 0 THEN 'P' ELSE 'Q' END"
    connection.execute(
        f"INSERT INTO interactions (project_id, body, tracking_id) "
        f"SELECT {project}, '', 'k' || n FROM generate_series(1, 2000) AS n".encode()
    )
    connection.execute(
        f"INSERT INTO served (project_id, user_id, response_id, treatment_id, surface, "
        f"tracking_id, time_micros) SELECT {project}, 'u', 'r' || n, 't', 's', 'x', n "
        f"FROM generate_series(1, 2000) AS n".encode()
    )
    connection.execute("ANALYZE interactions, served")


def test_the_decisions_of_a_listings_rows_are_read_by_index(postgres_url: str) -> None:
    PostgresStore(postgres_url).close()
    plan = _plan(postgres_url, decisions_query("P", ["r1", "r2", "r3"], POSTGRES))
    assert "Index Scan using served_by_response" in plan, plan
    (seek,) = [line for line in plan.splitlines() if "Index Cond:" in line]
    assert "response_id = ANY" in seek, plan
    assert "Seq Scan" not in plan, plan


@pytest.mark.parametrize(
    ("version", "added"),
    [
        (
            1,
            (
                "interactions_by_project",
                "interactions_by_tracking",
                "served_by_project",
                "served_by_response",
            ),
        ),
        (2, ("interactions_by_project", "served_by_project")),
        (3, ()),
    ],
)
def test_a_database_of_an_earlier_schema_gets_todays_indexes_and_tables_at_start(
    postgres_url: str, version: int, added: tuple[str, ...]
) -> None:
    PostgresStore(postgres_url).close()
    listing_indexes = (
        "SELECT indexname FROM pg_indexes WHERE schemaname = 'public' "
        "AND indexname = ANY(%s) ORDER BY 1"
    )
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        made = [
            row[0]
            for row in connection.execute(listing_indexes.encode(), (list(added),)).fetchall()
        ]
        # Each schema was the next one without the indexes it added.
        for name in made:
            connection.execute(f"DROP INDEX {name}".encode())
        connection.execute(b"DROP TABLE record_floors")  # schema 4's
        connection.execute(f"UPDATE auxia_schema SET version = {version}".encode())
        connection.execute(
            "INSERT INTO served (project_id, user_id, response_id, treatment_id, surface, "
            "tracking_id, time_micros) VALUES ('P', 'u', 'r', 'A', 'S', 'A_r', 1)"
        )
    assert tuple(made) == added
    store = PostgresStore(postgres_url)
    migration = store.migration
    store.close()
    assert migration is not None
    assert (migration.from_version, migration.to_version, migration.rows) == (
        version,
        SCHEMA_VERSION,
        1,
    )
    with psycopg.connect(postgres_url) as connection:
        again_made = connection.execute(listing_indexes.encode(), (list(added),)).fetchall()
        assert [row[0] for row in again_made] == made
        assert connection.execute("SELECT count(*) FROM record_floors").fetchone() == (0,)
        assert connection.execute("SELECT version FROM auxia_schema").fetchone() == (
            SCHEMA_VERSION,
        )
    # Started again: nothing left to migrate.
    again = PostgresStore(postgres_url)
    assert again.migration is None
    again.close()


def test_a_listing_reads_while_another_replica_holds_the_stores_lock(postgres_url: str) -> None:
    # A unit of work of another replica (a Reset, say) holds the lock; a listing
    # reads a snapshot without it, where a unit of work of this one waits.
    async def scenario() -> None:
        store = PostgresStore(postgres_url)
        try:
            stored = await fill(store)
            asked = emulator_pb2.ListDecisionsRequest(treatment_id="C", page_size=1000)
            with psycopg.connect(postgres_url, autocommit=True) as holder:
                holder.execute("SELECT pg_advisory_lock(%s)", (lock_key(),))
                listed = await asyncio.wait_for(
                    store.read(lambda repository: list_decisions(repository, asked)), 10
                )
                waiting = asyncio.ensure_future(
                    store.run(lambda repository: list_decisions(repository, asked))
                )
                done, _ = await asyncio.wait([waiting], timeout=1)
                assert not done  # the same listing as a unit of work waits for the lock
                holder.execute("SELECT pg_advisory_unlock(%s)", (lock_key(),))
            assert list(listed.decisions) == decisions_matching(stored, {"treatment_id": "C"})
            assert await waiting == listed
        finally:
            await store.aclose()

    run_event_loop(scenario())


@pytest.mark.parametrize("scan", [1, 2, filters.SCAN_ROWS])
def test_decisions_interleaved_or_sharing_a_response_across_projects_are_listed_once(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch, scan: int
) -> None:
    # Two replicas appending at once can interleave the ids of their decisions' rows.
    monkeypatch.setattr(filters, "SCAN_ROWS", scan)
    PostgresStore(postgres_url).close()
    with psycopg.connect(postgres_url) as connection:
        connection.cursor().executemany(
            "INSERT INTO served (served_id, project_id, user_id, response_id, treatment_id, "
            "surface, tracking_id, time_micros) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            INTERLEAVED,
        )

    async def scenario() -> None:
        store = PostgresStore(postgres_url)
        try:
            for asked, expected in INTERLEAVED_LISTED:
                for size in PAGE_SIZES:
                    listed = await all_decisions(store, asked, size)
                    found = [(d.project_id, d.response_id) for d in listed]
                    assert found == expected, (asked, size)
                    assert all(len(d.served_treatments) == 2 for d in listed)
                    newest = await all_decisions(store, {**asked, "newest_first": True}, size)
                    assert newest == listed[::-1], (asked, size)
        finally:
            await store.aclose()

    run_event_loop(scenario())
