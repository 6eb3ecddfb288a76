"""The store's group commit of interactions, on real SQLite files.

The interactions one event loop logs in one pass of it are queued as one
batch; batches and operations queued while the database thread is busy are
committed together. These tests hold the database thread with an operation
that waits, so that what they queue meanwhile lands in one group.
"""

from __future__ import annotations

import asyncio
import pathlib
import sqlite3
import threading
from collections.abc import Iterator

import pytest

from auxia_decision import ApiError, Code
from auxia_decision.server._storage.database_thread import DatabaseThread
from auxia_decision.server._storage.old_files import ASIDE
from auxia_decision.server._storage.sqlite_store import SqliteStore, storage_error
from tests._stored import log_row, stored_interactions

# More than one INSERT statement holds (the store appends 256 rows per statement).
MANY = 600


@pytest.fixture
def store(tmp_path: pathlib.Path) -> Iterator[SqliteStore]:
    opened = SqliteStore(str(tmp_path / "store.db"))
    yield opened
    opened.close()


def _rows(store: SqliteStore) -> list[tuple[str, bytes]]:
    """Return the rows committed to the store's file, read by a connection of our own."""
    return stored_interactions(store.path)


def _failed_in_store(outcome: object) -> bool:
    """Whether a caller got the error of a write its store refused (INTERNAL, stored nothing)."""
    return isinstance(outcome, ApiError) and outcome.code is Code.INTERNAL


def _hold(store: SqliteStore) -> threading.Event:
    """Keep the database thread busy until the returned event is set."""
    release = threading.Event()
    started = threading.Event()

    def wait(connection: sqlite3.Connection) -> None:
        del connection
        started.set()
        release.wait(timeout=30)

    store.executor.submit(wait)
    assert started.wait(timeout=30)
    return release


async def _append(
    store: SqliteStore, rows: list[tuple[str | None, bytes]]
) -> list[BaseException | None]:
    waiters = [log_row(store, project, body) for project, body in rows]
    return await asyncio.gather(*waiters, return_exceptions=True)


def test_a_batch_larger_than_one_statement_is_stored_in_order(store: SqliteStore) -> None:
    rows: list[tuple[str | None, bytes]] = [("P", b"%d" % index) for index in range(MANY)]
    outcomes = asyncio.run(_append(store, rows))
    assert outcomes == [None] * MANY
    assert _rows(store) == rows


@pytest.mark.parametrize("size", [10, MANY], ids=["one statement", "several statements"])
def test_a_batch_is_stored_whole_or_not_at_all(store: SqliteStore, size: int) -> None:
    rows: list[tuple[str | None, bytes]] = [("P", b"%d" % index) for index in range(size)]
    rows[size // 2] = (None, b"no project")  # project_id is NOT NULL
    outcomes = asyncio.run(_append(store, rows))
    assert all(_failed_in_store(outcome) for outcome in outcomes)
    assert _rows(store) == []
    # The store goes on: the next batch is stored.
    assert asyncio.run(_append(store, [("P", b"after")])) == [None]
    assert _rows(store) == [("P", b"after")]


def test_operations_and_batches_of_one_group_succeed_or_fail_alone(
    store: SqliteStore,
) -> None:
    # Batches queued between two operations are appended by one statement,
    # and so succeed or fail together; each operation succeeds or fails alone.
    def failing(connection: sqlite3.Connection) -> object:
        connection.execute("INSERT INTO interactions (project_id, body) VALUES ('Q', x'00')")
        raise ValueError("the operation fails after writing")

    def succeeding(connection: sqlite3.Connection) -> object:
        return int(connection.execute("SELECT COUNT(*) FROM interactions").fetchone()[0])

    async def group() -> list[list[object]]:
        release = _hold(store)
        before = [log_row(store, "P", b"%d" % index) for index in range(MANY)]
        await asyncio.sleep(0)  # the pass ends: the batch is queued
        operations: list[asyncio.Future[object]] = [
            asyncio.wrap_future(store.executor.submit(failing))
        ]
        bad = [log_row(store, "P", b"x"), log_row(store, None, b"y")]
        await asyncio.sleep(0)
        operations.append(asyncio.wrap_future(store.executor.submit(succeeding)))
        after = [log_row(store, "P", b"after %d" % index) for index in range(3)]
        await asyncio.sleep(0)
        release.set()
        return [
            list(await asyncio.gather(*waiters, return_exceptions=True))
            for waiters in (before, operations, bad, after)
        ]

    before, operations, bad, after = asyncio.run(group())
    assert before == [None] * MANY
    assert isinstance(operations[0], ValueError)
    assert operations[1] == MANY  # it saw the first batch, not the failed writes
    assert all(_failed_in_store(outcome) for outcome in bad)
    assert after == [None] * 3
    expected = [("P", b"%d" % index) for index in range(MANY)]
    expected += [("P", b"after %d" % index) for index in range(3)]
    assert _rows(store) == expected


def test_a_waiter_whose_caller_gave_up_does_not_hold_back_the_others(
    store: SqliteStore,
) -> None:
    async def cancel_one() -> list[None]:
        release = _hold(store)
        waiters = [log_row(store, "P", b"%d" % index) for index in range(3)]
        waiters[1].cancel()
        release.set()
        return list(await asyncio.gather(waiters[0], waiters[2]))

    assert asyncio.run(cancel_one()) == [None, None]
    # Cancelling the wait does not unwrite the row: it was queued.
    assert [body for _, body in _rows(store)] == [b"0", b"1", b"2"]


def _locked_connection(path: str) -> sqlite3.Connection:
    """Open a connection that waits 50 ms for another one's lock, then fails."""
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    connection.execute("PRAGMA busy_timeout=50")
    connection.execute("CREATE TABLE IF NOT EXISTS t (x)")
    return connection


def test_a_transaction_that_cannot_begin_fails_its_callers_and_the_thread_goes_on(
    tmp_path: pathlib.Path,
) -> None:
    path = str(tmp_path / "locked.db")
    executor = DatabaseThread(lambda: _locked_connection(path), error_for=storage_error)
    try:
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        failed = executor.submit(lambda c: c.execute("INSERT INTO t VALUES (1)"))
        with pytest.raises(ApiError) as caught:
            failed.result(timeout=30)
        assert caught.value.code is Code.UNAVAILABLE
        assert caught.value.retry_delay == 1.0
        assert "locked" in caught.value.message
        holder.execute("ROLLBACK")
        holder.close()
        after = executor.submit(lambda c: c.execute("INSERT INTO t VALUES (2)").rowcount)
        assert after.result(timeout=30) == 1
    finally:
        executor.close()


@pytest.mark.parametrize(
    ("code", "status", "words"),
    [
        (sqlite3.SQLITE_BUSY, Code.UNAVAILABLE, "locked"),
        (sqlite3.SQLITE_LOCKED, Code.UNAVAILABLE, "locked"),
        (sqlite3.SQLITE_FULL, Code.UNAVAILABLE, "disk is full"),
        (sqlite3.SQLITE_IOERR | (3 << 8), Code.UNAVAILABLE, "cannot write"),
        (sqlite3.SQLITE_CONSTRAINT, Code.INTERNAL, "store failed"),
    ],
)
def test_sqlite_errors_become_errors_a_caller_can_act_on(
    code: int, status: Code, words: str
) -> None:
    error = sqlite3.OperationalError("from SQLite")
    error.sqlite_errorcode = code
    mapped = storage_error(error)
    assert mapped.code is status
    assert words in mapped.message
    assert (mapped.retry_delay is not None) is (status is Code.UNAVAILABLE)


def test_a_store_started_afresh_sets_its_old_files_aside_and_deletes_them(
    store: SqliteStore,
) -> None:
    async def scenario() -> None:
        await asyncio.gather(*(log_row(store, "P", b"{}") for _ in range(10)))
        await store.replace(None, lambda repository: repository.delete_everything())
        await log_row(store, "P", b"{}")

    asyncio.run(scenario())
    store.close()
    directory = pathlib.Path(store.path).parent
    assert sorted(path.name for path in directory.iterdir()) == ["store.db"]
    assert len(_rows(store)) == 1  # the new file's


def test_files_a_killed_server_set_aside_are_deleted_when_the_path_is_opened_again(
    tmp_path: pathlib.Path,
) -> None:
    path = tmp_path / "store.db"
    left = [tmp_path / f"store.db{ASIDE}0123456789ab{suffix}" for suffix in ("", "-wal")]
    others = [tmp_path / "store.db.backup", tmp_path / f"other.db{ASIDE}0123456789ab"]
    for file in left + others:
        file.write_bytes(b"x" * 4096)
    SqliteStore(str(path)).close()
    assert sorted(file.name for file in tmp_path.iterdir()) == sorted(
        ["store.db", *(file.name for file in others)]
    )
