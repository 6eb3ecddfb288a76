"""The interactions writer process of a file-backed store, on real SQLite files.

Each test runs in one event loop (the writer is bound to the loop that starts
it) and checks what reached the file through a connection of its own. A
connection holding the write lock (``BEGIN IMMEDIATE``) keeps the writer
waiting, so that batches are sent and not yet committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from auxia_decision import ApiError, Code
from auxia_decision.server._storage import sqlite_store
from auxia_decision.server._storage.seam import ProjectRecord, Repository, ServedTreatment
from auxia_decision.server._storage.sqlite_repository import SqliteRepository
from auxia_decision.server._storage.sqlite_store import SqliteStore
from tests._processes import exists
from tests._stored import log_row, stored_interactions

# More rows in one pass than one INSERT statement holds (256).
MANY = 600


@contextlib.contextmanager
def _write_lock(path: str) -> Iterator[sqlite3.Connection]:
    """Hold the database's write lock until the block ends or the connection rolls back."""
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield connection
    finally:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        connection.close()


def test_each_row_is_committed_before_it_is_answered(path: str) -> None:
    async def scenario() -> tuple[int, list[int], list[None]]:
        store = SqliteStore(path)
        try:
            await store.start_writer()
            pid = store.writer_pid
            assert pid is not None
            seen = []
            for index in range(20):
                await log_row(store, "P", b"%d" % index)
                seen.append(len(stored_interactions(path)))
            # Many rows in one pass: one batch, appended by several statements.
            many = await asyncio.gather(
                *[log_row(store, "P", b"m%d" % index) for index in range(MANY)]
            )
            return pid, seen, list(many)
        finally:
            store.close()

    pid, seen, many = asyncio.run(scenario())
    assert pid != os.getpid()
    assert seen == list(range(1, 21))  # answered only once another connection sees it
    assert many == [None] * MANY
    expected = [("P", b"%d" % index) for index in range(20)]
    expected += [("P", b"m%d" % index) for index in range(MANY)]
    assert stored_interactions(path) == expected
    assert not exists(pid)  # closing the store stopped and reaped the writer


def test_a_batch_larger_than_the_socket_buffer_is_sent_whole(path: str) -> None:
    # About 2 MiB in one pass: the socket takes part of it, the rest waits
    # for the event loop to find the socket writable again.
    body = bytes(range(256)) * 16

    async def scenario() -> list[None]:
        store = SqliteStore(path)
        try:
            await store.start_writer()
            waiters = [log_row(store, "P", b"%d " % i + body) for i in range(500)]
            return list(await asyncio.gather(*waiters))
        finally:
            store.close()

    assert asyncio.run(scenario()) == [None] * 500
    assert stored_interactions(path) == [("P", b"%d " % i + body) for i in range(500)]


def test_batches_sent_while_the_writer_waits_are_committed_together_in_order(
    path: str,
) -> None:
    async def scenario() -> list[object]:
        store = SqliteStore(path)
        try:
            await store.start_writer()
            with _write_lock(path):
                waiters = []
                for batch in range(5):  # five passes of the loop: five batches
                    waiters += [log_row(store, "P", b"%d.%d" % (batch, i)) for i in range(3)]
                    await asyncio.sleep(0.01)
                assert not any(waiter.done() for waiter in waiters)
                assert stored_interactions(path) == []
            return list(await asyncio.gather(*waiters))
        finally:
            store.close()

    assert asyncio.run(scenario()) == [None] * 15
    assert stored_interactions(path) == [
        ("P", b"%d.%d" % (b, i)) for b in range(5) for i in range(3)
    ]


def test_a_batch_the_database_refuses_gets_the_error_and_the_writer_goes_on(
    path: str, caplog: pytest.LogCaptureFixture
) -> None:
    def refuse(connection: sqlite3.Connection) -> None:
        connection.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON interactions "
            "WHEN NEW.project_id = 'refused' BEGIN SELECT RAISE(ABORT, 'refused here'); END"
        )

    async def scenario() -> tuple[list[BaseException | None], list[None]]:
        store = SqliteStore(path)
        try:
            await store.executor.run(refuse)
            await store.start_writer()
            refused = [
                log_row(store, "refused", b"x"),
                log_row(store, "P", b"y"),
            ]
            outcomes = await asyncio.gather(*refused, return_exceptions=True)
            after = await asyncio.gather(log_row(store, "P", b"after"))
            return list(outcomes), list(after)
        finally:
            store.close()

    outcomes, after = asyncio.run(scenario())
    # The rows of one batch are stored all or none.
    for outcome in outcomes:
        assert isinstance(outcome, ApiError)
        assert outcome.code is Code.INTERNAL  # the caller is told the store failed
    assert "refused here" in caplog.text  # and the log says why
    assert after == [None]
    assert stored_interactions(path) == [("P", b"after")]


def test_when_the_writer_dies_its_batches_fail_and_the_store_goes_on(path: str) -> None:
    async def scenario() -> tuple[list[BaseException | None], int | None]:
        store = SqliteStore(path)
        try:
            await store.start_writer()
            pid = store.writer_pid
            assert pid is not None
            with _write_lock(path):
                waiters = [log_row(store, "P", b"lost %d" % i) for i in range(3)]
                await asyncio.sleep(0.05)  # sent: the writer waits for the lock
                os.kill(pid, signal.SIGKILL)
                outcomes = await asyncio.wait_for(
                    asyncio.gather(*waiters, return_exceptions=True), timeout=30
                )
            # Interactions go through the database thread from now on.
            await log_row(store, "P", b"after")
            return list(outcomes), store.writer_pid
        finally:
            store.close()

    outcomes, pid_after = asyncio.run(scenario())
    for outcome in outcomes:
        assert isinstance(outcome, ApiError), outcomes
        assert outcome.code is Code.INTERNAL
        assert "the interactions writer stopped" in outcome.message
    assert pid_after is None
    assert stored_interactions(path) == [("P", b"after")]


def test_closing_commits_and_answers_what_the_writer_was_sent(path: str) -> None:
    async def scenario() -> list[object]:
        store = SqliteStore(path)
        await store.start_writer()
        with _write_lock(path) as lock:
            waiters = [log_row(store, "P", b"%d" % i) for i in range(5)]
            await asyncio.sleep(0.05)  # sent: the writer waits for the lock
            threading.Timer(0.2, lock.rollback).start()
            store.close()  # returns once the writer committed and answered
        return [waiter.result() for waiter in waiters]

    assert asyncio.run(scenario()) == [None] * 5
    assert stored_interactions(path) == [("P", b"%d" % i) for i in range(5)]


def test_a_store_in_memory_appends_without_a_writer() -> None:
    async def scenario() -> tuple[int | None, list[None]]:
        store = SqliteStore(":memory:")
        try:
            await store.start_writer()  # another process cannot open it: nothing to start
            answers = await asyncio.gather(log_row(store, "P", b"x"))
            return store.writer_pid, list(answers)
        finally:
            store.close()

    assert asyncio.run(scenario()) == (None, [None])


@pytest.mark.parametrize("project_id", [None, "P"], ids=["everything", "the only project"])
def test_replacing_everything_starts_a_new_file_with_a_new_writer(
    path: str, project_id: str | None
) -> None:
    async def scenario() -> tuple[int | None, int | None]:
        store = SqliteStore(path)
        try:
            await store.start_writer()
            await store.run(
                lambda repository: repository.put_project(ProjectRecord("P", 1, frozenset()), [])
            )
            await asyncio.gather(*[log_row(store, "P", b"%d" % index) for index in range(MANY)])
            writer = store.writer_pid
            # Rows logged in the same pass as the replacement: committed before it, so replaced.
            late = log_row(store, "P", b"late")
            await store.replace(project_id, lambda repository: repository.delete_everything())
            await late
            await asyncio.gather(*[log_row(store, "P", b"after %d" % n) for n in range(3)])
            return writer, store.writer_pid
        finally:
            store.close()

    writer, new_writer = asyncio.run(scenario())
    # A new file: no pages freed by deleting rows.
    with contextlib.closing(sqlite3.connect(path)) as connection:
        assert connection.execute("PRAGMA freelist_count").fetchone() == (0,)
    assert new_writer is not None
    assert new_writer != writer
    assert writer is not None
    assert not exists(writer)
    assert stored_interactions(path) == [("P", b"after %d" % n) for n in range(3)]


def _put_project(record: ProjectRecord, repository: Repository) -> None:
    repository.put_project(record, [])


def _delete_project(project_id: str, repository: Repository) -> None:
    repository.delete_project(project_id)


async def _put_projects(store: SqliteStore, names: str) -> None:
    """Put a project of each of these one-letter names, numbered in their order."""
    for number, project in enumerate(names):
        await store.run(
            functools.partial(_put_project, ProjectRecord(project, number, frozenset()))
        )


def _spy_turns(
    monkeypatch: pytest.MonkeyPatch, before: Callable[[int, str], None] = lambda _n, _p: None
) -> list[tuple[str, int]]:
    """Return the list to which each turn of a Reset adds its project and how many it deleted.

    ``before`` is called with the turn's number and project before it runs.
    """
    turns: list[tuple[str, int]] = []
    delete_records = SqliteRepository.delete_records

    def turn(repository: SqliteRepository, project_id: str, *args: Any) -> int:
        before(len(turns), project_id)
        turns.append((project_id, delete_records(repository, project_id, *args)))
        return turns[-1][1]

    monkeypatch.setattr(sqlite_store, "RESET_TURN_ROWS", 50)
    monkeypatch.setattr(SqliteRepository, "delete_records", turn)
    return turns


def test_a_project_reset_beside_others_deletes_in_turns_and_their_writes_go_on(
    path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 1,200 interactions and 100 served treatments of A: about 26 turns of 50 rows, while
    # both projects keep logging (the turns of tests/unit/test_reset_turns.py, on a file).
    spied = _spy_turns(monkeypatch)
    logged = {"A": 0, "B": 0}
    resetting, during = True, 0

    async def log(store: SqliteStore, project: str) -> None:
        nonlocal during
        while resetting:
            await log_row(store, project, b"%s%d" % (project.encode(), logged[project]))
            logged[project] += 1
            during += resetting and project == "B"

    async def scenario() -> None:
        nonlocal resetting
        store = SqliteStore(path)
        try:
            await store.start_writer()
            await _put_projects(store, "AB")
            await log_row(store, "B", b"B-before")
            await asyncio.gather(*[log_row(store, "A", b"A-before") for _ in range(2 * MANY)])
            served = [ServedTreatment(f"r{n}", "T", "S", f"t{n}", n) for n in range(100)]
            await store.record_served("A", "u", served, None)
            loggers = [asyncio.create_task(log(store, project)) for project in "AB"]
            await asyncio.sleep(0)  # their first rows are on their way
            await asyncio.wait_for(store.replace("A", functools.partial(_delete_project, "A")), 30)
            resetting = False
            await asyncio.gather(*loggers)
        finally:
            store.close()

    asyncio.run(scenario())
    turns = [deleted for _, deleted in spied]
    # Whole turns of 50 but the last of each table: A's rows logged meanwhile are left
    # to the replacing work. Without that bound, a turn took the rows A logged since
    # the one before, one or two at a time, as long as A was logging (1,308 turns).
    assert turns[-1] == 0
    assert len([deleted for deleted in turns[:-1] if deleted < 50]) <= 2, turns
    # In one transaction, B's rows waited for the whole delete (or, on a big
    # store, failed past the busy timeout); in turns, B's rows logged so far
    # are committed after each turn.
    assert during >= 26, during
    rows = stored_interactions(path)
    assert [body for project, body in rows if project == "B"] == [b"B-before"] + [
        b"B%d" % n for n in range(logged["B"])
    ]
    # A's rows committed after the replacing work are kept: the last ones it logged.
    kept = [body for project, body in rows if project == "A"]
    assert kept == [b"A%d" % n for n in range(logged["A"] - len(kept), logged["A"])]
    with contextlib.closing(sqlite3.connect(path)) as connection:
        assert connection.execute("SELECT count(*) FROM served").fetchone() == (0,)
        assert connection.execute("SELECT project_id FROM projects").fetchall() == [("B",)]


@pytest.mark.parametrize("fails", [False, True], ids=["succeeds", "fails"])
def test_a_reset_its_caller_gave_up_on_goes_on_and_forgets_the_cache(
    path: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, fails: bool
) -> None:
    give_up: list[Callable[[], object]] = []

    def before(turn: int, _project: str) -> None:
        if turn == 0:
            give_up.pop()()  # the caller gives up during the first turn
        if fails and turn == 3:
            raise sqlite3.OperationalError("disk I/O error")

    turns = _spy_turns(monkeypatch, before)

    async def scenario() -> tuple[int, int]:
        store = SqliteStore(path)
        try:
            await store.start_writer()
            await _put_projects(store, "AB")
            await asyncio.gather(*[log_row(store, "A", b"A") for _ in range(2 * MANY)])
            await log_row(store, "B", b"B")
            await store.activity("A", "u")
            cached = store.cached_users
            reset = asyncio.create_task(store.replace("A", functools.partial(_delete_project, "A")))
            loop = asyncio.get_running_loop()
            give_up.append(lambda: loop.call_soon_threadsafe(reset.cancel))
            with pytest.raises(asyncio.CancelledError):
                await reset
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and (
                store.cached_users or (not fails and len(stored_interactions(path)) > 1)
            ):
                await asyncio.sleep(0.01)
            return cached, store.cached_users
        finally:
            store.close()

    cached, after = asyncio.run(scenario())
    assert (cached, after) == (1, 0)  # forgotten however the Reset ended
    logged = [r.getMessage() for r in caplog.records if "caller stopped waiting" in r.message]
    if fails:
        # Three turns of 50 went, and the failure, which no caller hears of, is logged.
        assert len(stored_interactions(path)) == 2 * MANY + 1 - 150
        assert logged == [
            'a Reset of project "A" whose caller stopped waiting failed (INTERNAL: the store '
            "failed; nothing was written): part of its records may be deleted: reset it again"
        ]
    else:
        # Every turn and the replacing work went on without the caller.
        assert turns[-1] == ("A", 0)
        assert stored_interactions(path) == [("B", b"B")]
        assert not logged


def test_a_reset_waits_for_the_one_before(path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Turns of two Resets interleaved: the one that ended first deleted the tables' last
    # rows below the other's bound, whose turns could then delete the rows after them.
    turns = _spy_turns(monkeypatch)

    async def scenario() -> None:
        store = SqliteStore(path)
        try:
            await store.start_writer()
            await _put_projects(store, "ABC")
            for project in "AB":
                await asyncio.gather(*[log_row(store, project, b"x") for _ in range(200)])
            await log_row(store, "C", b"C")
            await asyncio.gather(
                *[
                    store.replace(project, functools.partial(_delete_project, project))
                    for project in "AB"
                ]
            )
        finally:
            store.close()

    asyncio.run(scenario())
    assert [project for project, _ in turns] == ["A"] * 5 + ["B"] * 5
    assert stored_interactions(path) == [("C", b"C")]


def test_a_long_read_holds_up_no_write_and_reads_the_file_of_its_time(path: str) -> None:
    # A listing a rare filter makes read the whole table: it took the write lock on the
    # database thread, and every write waited for it (past the busy timeout, 503).
    async def scenario() -> tuple[float, list[str], list[str], list[str]]:
        store = SqliteStore(path)
        try:
            await store.start_writer()
            project = ProjectRecord("P", 1, frozenset())
            await store.run(lambda repository: repository.put_project(project, []))
            begun = threading.Event()

            def long_read(repository: Repository) -> list[str]:
                first = repository.project_ids()  # its snapshot begins
                begun.set()
                time.sleep(1.5)
                assert repository.project_ids() == first
                return first

            reading = asyncio.ensure_future(store.read(long_read))
            await asyncio.to_thread(begun.wait, 10)
            started = time.monotonic()
            await log_row(store, "P", b"while it reads")
            other = ProjectRecord("Q", 2, frozenset())
            await store.run(lambda repository: repository.put_project(other, []))
            wrote = time.monotonic() - started
            assert not reading.done()
            during = await reading
            # A Reset while a read is under way: the read keeps its file, later reads the new one.
            begun.clear()
            reading = asyncio.ensure_future(store.read(long_read))
            await asyncio.to_thread(begun.wait, 10)
            await store.replace(None, lambda repository: repository.delete_everything())
            before_reset = await reading
            after_reset = await store.read(lambda repository: repository.project_ids())
            return wrote, during, before_reset, after_reset
        finally:
            store.close()

    wrote, during, before_reset, after_reset = asyncio.run(scenario())
    assert wrote < 1.0, wrote
    assert during == ["P"]  # one snapshot throughout
    assert before_reset == ["P", "Q"]
    assert after_reset == []
    assert stored_interactions(path) == []


def test_a_read_begun_as_a_reset_sets_the_file_aside_reads_the_new_file(path: str) -> None:
    # A read opening its connection just after the old file is renamed, before the new one
    # has its tables, found an empty file ("no such table": a 500).
    found: list[object] = []
    readers: list[threading.Thread] = []

    async def scenario() -> None:
        store = SqliteStore(path)
        try:
            await store.run(
                lambda repository: repository.put_project(ProjectRecord("P", 1, frozenset()), [])
            )
            old_files = store._old_files
            assert old_files is not None
            set_aside = old_files.set_aside

            def read() -> None:
                try:
                    found.append(asyncio.run(store.read(lambda r: r.project_ids())))
                except Exception as error:
                    found.append(error)

            def set_aside_then_read() -> None:
                set_aside()
                reading = threading.Thread(target=read)
                readers.append(reading)
                reading.start()
                reading.join(0.5)  # it waits for the new file (it read the empty one before)

            old_files.set_aside = set_aside_then_read  # type: ignore[method-assign]
            await store.replace(None, lambda repository: repository.delete_everything())
        finally:
            store.close()

    asyncio.run(scenario())
    (reading,) = readers
    reading.join(10)
    assert found == [[]]
