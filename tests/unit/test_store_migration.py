"""Database files of earlier versions keep working; a newer one is refused; reads go by index."""

from __future__ import annotations

import pathlib
import sqlite3

import pytest

from auxia.decision.model import treatment_interaction_service_pb2 as interactions
from auxia_decision.server._storage.seam import SENT, InteractionFilter
from auxia_decision.server._storage.sqlite_schema import SCHEMA_VERSION
from auxia_decision.server._storage.sqlite_store import SqliteStore

DAY = 86_400_000_000


def _read(path: pathlib.Path, query: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as connection:
        return connection.execute(query).fetchall()


def test_a_file_of_schema_0_is_migrated_and_everything_survives(v0: pathlib.Path) -> None:
    bodies = _read(v0, "SELECT interaction_id, project_id, body FROM interactions ORDER BY 1")
    served = _read(v0, "SELECT * FROM served ORDER BY served_id")
    treatments = _read(v0, "SELECT * FROM treatments ORDER BY project_id, treatment_id")
    assert (len(bodies), len(served), len(treatments)) == (40, 18, 7)
    store = SqliteStore(str(v0))
    try:
        migration = store.migration
        assert migration is not None
        assert (migration.from_version, migration.to_version, migration.rows) == (
            0,
            SCHEMA_VERSION,
            40 + 18,
        )
        listed = store.run_sync(
            lambda repository: list(repository.logged_interactions("", 0, InteractionFilter()))
        )
        stored_treatments = store.run_sync(lambda repository: repository.treatments("PROJECT_ID"))
    finally:
        store.close()
    assert [(sequence, request.SerializeToString()) for sequence, request in listed] == [
        (row_id, body) for row_id, _, body in bodies
    ]
    assert _read(v0, "SELECT * FROM served ORDER BY served_id") == served
    assert len(stored_treatments) == 7
    assert _read(v0, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    # The columns rules read hold what each request says.
    for row_id, user, kind, treatment, surface, time, tracking in _read(
        v0,
        "SELECT interaction_id, user_id, kind, treatment_id, surface, time_micros, tracking_id "
        "FROM interactions",
    ):
        request = interactions.LogTreatmentInteractionRequest.FromString(
            next(body for found, _, body in bodies if found == row_id)  # type: ignore[arg-type]
        )
        assert (user, kind, treatment, surface, time, tracking) == (
            request.user_id,
            request.interaction_type + 1,
            request.treatment_id,
            request.surface,
            request.interaction_time_micros,
            request.treatment_tracking_id,
        )


def _indexes(path: pathlib.Path) -> list[tuple[object, ...]]:
    """Return a file's tables by name, and its indexes as created."""
    return _read(
        path,
        "SELECT type, name, tbl_name, CASE type WHEN 'index' THEN sql END FROM sqlite_master "
        "WHERE type IN ('index', 'table') ORDER BY type, name",
    )


@pytest.mark.parametrize("version", [1, 2, 3])
def test_a_file_of_schema_1_to_3_gets_todays_tables_and_indexes_and_everything_survives(
    version: int, request: pytest.FixtureRequest, tmp_path: pathlib.Path
) -> None:
    stored: pathlib.Path = request.getfixturevalue(f"v{version}")
    tables = ("interactions", "served", "treatments", "projects", "api_keys")
    before = {table: _read(stored, f"SELECT * FROM {table} ORDER BY 1, 2") for table in tables}
    assert [len(before[table]) for table in ("interactions", "served", "treatments")] == [40, 14, 7]
    store = SqliteStore(str(stored))
    try:
        migration = store.migration
        listed = store.run_sync(
            lambda repository: list(repository.logged_interactions("", 0, InteractionFilter()))
        )
    finally:
        store.close()
    assert migration is not None
    assert (migration.from_version, migration.to_version, migration.rows) == (
        version,
        SCHEMA_VERSION,
        54,
    )
    assert {
        table: _read(stored, f"SELECT * FROM {table} ORDER BY 1, 2") for table in tables
    } == before
    assert [sequence for sequence, _ in listed] == [row[0] for row in before["interactions"]]
    assert _read(stored, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    # The migrated file has every table and index a new file has.
    SqliteStore(str(tmp_path / "new.db")).close()
    assert _indexes(stored) == _indexes(tmp_path / "new.db")


def test_a_migrated_file_answers_a_users_activity_from_both_tables(v0: pathlib.Path) -> None:
    store = SqliteStore(str(v0))
    try:
        rows, watermark = store.run_sync(
            lambda repository: repository.user_activity("PROJECT_ID", "user-1")
        )
    finally:
        store.close()
    [(interactions_of_user,)] = _read(
        v0, "SELECT count(*) FROM interactions WHERE user_id = 'user-1'"
    )
    [(served_to_user,)] = _read(v0, "SELECT count(*) FROM served WHERE user_id = 'user-1'")
    assert sum(row[4] for row in rows if row[0] != SENT) == interactions_of_user
    assert sum(row[4] for row in rows if row[0] == SENT) == served_to_user
    assert served_to_user != 0
    assert watermark == (40, 18)


@pytest.mark.parametrize(
    ("query", "index"),
    [
        (
            "SELECT interaction_id, body FROM interactions WHERE interaction_id > 0 "
            "AND project_id = 'P' AND user_id = 'u' ORDER BY interaction_id",
            "interactions_by_user",
        ),
        (
            "SELECT kind FROM interactions WHERE project_id = 'P' AND user_id = 'u'",
            "interactions_by_user",
        ),
        (
            "SELECT served_id FROM served WHERE served_id > 0 AND project_id = 'P' "
            "AND user_id = 'u' ORDER BY served_id",
            "served_by_user",
        ),
        (
            "SELECT interaction_id FROM interactions WHERE interaction_id > 5 "
            "ORDER BY interaction_id",
            "INTEGER PRIMARY KEY",
        ),
    ],
)
def test_reads_by_user_and_pages_go_by_index(
    tmp_path: pathlib.Path, query: str, index: str
) -> None:
    store = SqliteStore(str(tmp_path / "store.db"))
    store.close()
    plan = " ".join(
        str(row[-1]) for row in _read(tmp_path / "store.db", f"EXPLAIN QUERY PLAN {query}")
    )
    assert index in plan
    assert "SCAN" not in plan.replace("SCAN CONSTANT ROW", "")
