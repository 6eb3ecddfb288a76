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
from collections.abc import Awaitable, Callable, Iterator

import pytest

from auxia_decision import ApiError, Code
from auxia_decision.server._storage import purging, rows, sqlite_store
from auxia_decision.server._storage.seam import SENT, ProjectRecord, Repository, ServedTreatment
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
    monkeypatch: pytest.MonkeyPatch, before: Callable[[int], object] = lambda _n: None
) -> list[bool]:
    """Return the list to which each turn of deleting hidden records adds whether it deleted any.

    ``before`` is called with the turn's number before it runs; turns are of 50 records.
    """
    turns: list[bool] = []
    purge_hidden = SqliteRepository.purge_hidden

    def turn(repository: SqliteRepository, limit: int) -> bool:
        before(len(turns))
        turns.append(purge_hidden(repository, limit))
        return turns[-1]

    monkeypatch.setattr(sqlite_store, "RESET_TURN_ROWS", 50)
    monkeypatch.setattr(SqliteRepository, "purge_hidden", turn)
    return turns


async def _fill(store: SqliteStore, project: str, served: int = 100) -> None:
    """Log ``2 * MANY`` interactions of a project and serve ``served`` treatments to its user u.

    Then one interaction (body ``B``) and one served row of project B: no table ends
    with the project's rows (a table's last row stays, ``purge_hidden``).
    """
    rows = [log_row(store, project, b"%s-before" % project.encode()) for _ in range(2 * MANY)]
    await asyncio.gather(*rows)
    treatments = [ServedTreatment(f"r{n}", "T", "S", f"t{n}", n) for n in range(served)]
    await store.record_served(project, "u", treatments, None)
    await log_row(store, "B", b"B")
    await store.record_served("B", "u", treatments[:1], None)


def _floors(path: str) -> list[tuple[object, ...]]:
    with contextlib.closing(sqlite3.connect(path)) as connection:
        return connection.execute("SELECT * FROM record_floors").fetchall()


def test_a_project_reset_beside_others_hides_at_once_and_deletes_in_turns_as_writes_go_on(
    path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 1,200 interactions and 100 served treatments of A: turns of 50 rows after the
    # Reset, while both projects keep logging.
    read = threading.Event()  # the first turn waits until the records were read once hidden
    turns = _spy_turns(monkeypatch, lambda turn: turn or read.wait(30))
    logged = {"A": 0, "B": 0}
    logging, during = True, 0

    async def log(store: SqliteStore, project: str) -> None:
        nonlocal during
        while logging:
            await log_row(store, project, b"%s%d" % (project.encode(), logged[project]))
            logged[project] += 1
            during += project == "B" and len(turns) > 0

    async def scenario() -> tuple[int | None, int, int]:
        nonlocal logging
        store = SqliteStore(path)
        try:
            await store.start_writer()
            await _put_projects(store, "AB")
            await log_row(store, "B", b"B-before")
            await _fill(store, "A")
            await store.activity("B", "u")
            loggers = [asyncio.create_task(log(store, project)) for project in "AB"]
            await asyncio.sleep(0)  # their first rows are on their way
            await asyncio.wait_for(store.replace("A", functools.partial(_delete_project, "A")), 30)
            # The Reset's transaction hid A's records: read as gone, deleted afterwards.
            served_to_u = (await store.activity("A", "u")).latest(SENT)
            left = len([row for row in stored_interactions(path) if row[1] == b"A-before"])
            read.set()
            await asyncio.wait_for(store.purged(), 30)
            logging = False
            await asyncio.gather(*loggers)
            return (
                served_to_u,
                left,
                len(
                    [project for project in "AB" if store.cached_activity(project, "u") is not None]
                ),
            )
        finally:
            store.close()

    served_to_u, left, cached = asyncio.run(scenario())
    assert served_to_u is None
    assert left == 2 * MANY, left  # all there, hidden: no turn went before the first read
    assert cached == 2  # B's user stayed cached through A's Reset; A's was read again
    assert turns.count(False) == 1
    assert turns[-1] is False
    # B's rows logged so far are committed after each turn: its writes go on.
    assert during >= 26, during
    rows = stored_interactions(path)
    assert [body for project, body in rows if project == "B"] == [b"B-before", b"B"] + [
        b"B%d" % n for n in range(logged["B"])
    ]
    # A's rows logged after the Reset's transaction are kept: the last ones it logged.
    kept = [body for project, body in rows if project == "A"]
    assert kept == [b"A%d" % n for n in range(logged["A"] - len(kept), logged["A"])]
    # Turns of 50 of A's hidden interactions (its 1,200 and those it logged before the
    # Reset's transaction: as many as the machine's pace allowed), 2 of 50 served rows, one
    # dropping the floor, a last one finding nothing.
    hidden = 2 * MANY + logged["A"] - len(kept)
    assert len(turns) == -(-hidden // 50) + 2 + 1 + 1, (hidden, turns)
    with contextlib.closing(sqlite3.connect(path)) as connection:
        assert connection.execute("SELECT project_id FROM served").fetchall() == [("B",)]
        assert connection.execute("SELECT project_id FROM projects").fetchall() == [("B",)]
    assert _floors(path) == []


@pytest.mark.parametrize("fails", [False, True], ids=["succeeds", "fails"])
def test_a_reset_its_caller_gave_up_on_goes_on_and_forgets_the_cache(
    path: str, caplog: pytest.LogCaptureFixture, fails: bool
) -> None:
    give_up: list[Callable[[], object]] = []

    def reset_a(repository: Repository) -> None:
        repository.delete_project("A")
        give_up.pop()()  # the caller gives up during the Reset's transaction
        time.sleep(0.1)
        if fails:
            raise sqlite3.OperationalError("disk I/O error")

    async def scenario() -> tuple[int, int, list[tuple[object, ...]]]:
        store = SqliteStore(path)
        try:
            await store.start_writer()
            await _put_projects(store, "AB")
            await _fill(store, "A")
            await store.activity("A", "u")
            cached = store.cached_users
            reset = asyncio.create_task(store.replace("A", reset_a))
            loop = asyncio.get_running_loop()
            give_up.append(lambda: loop.call_soon_threadsafe(reset.cancel))
            with pytest.raises(asyncio.CancelledError):
                await reset
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and store.cached_users:
                await asyncio.sleep(0.01)
            await asyncio.wait_for(store.purged(), 30)
            return cached, store.cached_users, _floors(path)
        finally:
            store.close()

    cached, after, floors = asyncio.run(scenario())
    assert (cached, after) == (1, 0)  # forgotten however the Reset ended
    assert floors == []
    logged = [r.getMessage() for r in caplog.records if "caller stopped waiting" in r.message]
    if fails:
        # The Reset's transaction is undone whole; the failure, which no caller hears of,
        # is logged.
        assert len(stored_interactions(path)) == 2 * MANY + 1
        assert logged == [
            'a Reset of project "A" whose caller stopped waiting failed (INTERNAL: the store '
            "failed; nothing was written): reset it again"
        ]
    else:
        assert stored_interactions(path) == [("B", b"B")]
        assert not logged


def test_two_resets_at_once_hide_and_delete_both(
    path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
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
            await asyncio.wait_for(store.purged(), 30)
        finally:
            store.close()

    asyncio.run(scenario())
    # Four turns of 50 rows each project, and a turn dropping each floor; one purge.
    assert turns.count(True) == 10, turns
    assert stored_interactions(path) == [("C", b"C")]
    assert _floors(path) == []


@pytest.mark.parametrize("stop", ["fails", "closed"])
def test_hidden_records_left_by_a_stopped_purge_stay_hidden_and_go_at_the_next_start(
    path: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, stop: str
) -> None:
    def before(turn: int) -> None:
        if stop == "fails" and turn == 3:
            raise sqlite3.OperationalError("disk I/O error")

    spied = _spy_turns(monkeypatch, before)

    async def first_run() -> int:
        store = SqliteStore(path)
        try:
            await store.start_writer()
            await _put_projects(store, "AB")
            await _fill(store, "A")
            await store.replace("A", functools.partial(_delete_project, "A"))
            if stop == "fails":
                await asyncio.wait_for(store.purged(), 30)
            return len(spied)
        finally:
            store.close()  # closed, a purge under way stops after its turn

    async def second_run() -> tuple[int | None, int, list[tuple[str, bytes]]]:
        store = SqliteStore(path)
        try:
            served_to_u = (await store.activity("A", "u")).latest(SENT)
            await store.start_helpers()
            await asyncio.wait_for(store.purged(), 30)
            return served_to_u, store.cached_users, stored_interactions(path)
        finally:
            store.close()

    turns_then = asyncio.run(first_run())
    left = stored_interactions(path)
    monkeypatch.undo()  # turns of the next start as they are
    served_to_u, _, rows = asyncio.run(second_run())
    failures = [r.getMessage() for r in caplog.records if "a Reset hid failed" in r.message]
    if stop == "fails":
        assert turns_then == 3
        assert len(left) == 2 * MANY + 1 - 150
        assert failures == [
            "deleting the records a Reset hid failed (INTERNAL: the store failed; nothing was "
            "written): they stay hidden"
        ]
    else:
        assert not failures
        assert len([row for row in left if row[0] == "A"]) > 100  # hidden, not yet deleted
    assert served_to_u is None
    assert rows == [("B", b"B")]
    assert _floors(path) == []


def _waits(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Return what the purge logged of the turns it could not make for now."""
    return [r.getMessage() for r in caplog.records if "a Reset hid waits" in r.getMessage()]


def test_a_purge_kept_out_by_another_connection_s_lock_waits_and_goes_on(
    path: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Another program holds the file's write lock past the busy timeout: the turn fails
    # with UNAVAILABLE, and the purge tries again until the lock is let go.
    monkeypatch.setattr(rows, "BUSY_TIMEOUT_MS", 100)
    monkeypatch.setattr(purging, "RETRY_SECONDS", (0.05, 0.2))
    turns = _spy_turns(monkeypatch)

    async def scenario() -> list[tuple[str, bytes]]:
        store = SqliteStore(path)
        try:
            await _put_projects(store, "AB")
            await _fill(store, "A", served=0)
            await store.replace("A", functools.partial(_delete_project, "A"))
            with _write_lock(path):  # between two turns
                for _ in range(3_000):  # until turns were kept out twice (30 s at most)
                    if len(_waits(caplog)) >= 2:
                        break
                    await asyncio.sleep(0.01)
                kept_out = len(turns)
            assert kept_out < 24  # 1,200 rows, 50 a turn: the lock came before the last
            await asyncio.wait_for(store.purged(), 30)
            return stored_interactions(path)
        finally:
            store.close()

    assert asyncio.run(scenario()) == [("B", b"B")]
    waits = _waits(caplog)
    assert len(waits) >= 2, waits
    assert all("locked by another connection" in wait for wait in waits)
    assert not [r for r in caplog.records if "a Reset hid failed" in r.getMessage()]


def test_a_long_read_holds_up_no_write_and_reads_the_file_of_its_time(path: str) -> None:
    # A listing a rare filter makes read the whole table: it took the write lock on the
    # database thread, and every write waited for it (past the busy timeout, 503).
    async def scenario() -> tuple[list[str], list[str], list[str]]:
        store = SqliteStore(path)
        try:
            await store.start_writer()
            project = ProjectRecord("P", 1, frozenset())
            await store.run(lambda repository: repository.put_project(project, []))
            begun, release = threading.Event(), threading.Event()

            def long_read(repository: Repository) -> list[str]:
                first = repository.project_ids()  # its snapshot begins
                begun.set()
                release.wait(30)  # until the writes meanwhile are done
                assert repository.project_ids() == first
                return first

            async def write() -> None:
                await log_row(store, "P", b"while it reads")
                other = ProjectRecord("Q", 2, frozenset())
                await store.run(lambda repository: repository.put_project(other, []))

            async def while_it_reads(work: Awaitable[object]) -> list[str]:
                """Run ``work`` while a long read is under way (it fails if the read holds it)."""
                reading = asyncio.ensure_future(store.read(long_read))
                try:
                    assert await asyncio.to_thread(begun.wait, 10)
                    await asyncio.wait_for(work, 10)
                    assert not reading.done()
                finally:
                    release.set()
                return await reading

            during = await while_it_reads(write())
            # A Reset while a read is under way: the read keeps its file, later reads the new one.
            begun.clear()
            release.clear()
            before_reset = await while_it_reads(
                store.replace(None, lambda repository: repository.delete_everything())
            )
            after_reset = await store.read(lambda repository: repository.project_ids())
            return during, before_reset, after_reset
        finally:
            store.close()

    during, before_reset, after_reset = asyncio.run(scenario())
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
            old_files, reads = store._old_files, store._reads
            assert old_files is not None
            assert reads is not None
            set_aside, taken = old_files.set_aside, reads._taken
            asked = threading.Event()

            def taken_noted() -> tuple[sqlite3.Connection, int]:
                asked.set()
                return taken()

            reads._taken = taken_noted  # type: ignore[method-assign]

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
                assert asked.wait(10)  # it asks for a connection while the file is set aside
                reading.join(0.5)  # it waits for the new file (it read the empty one before)

            old_files.set_aside = set_aside_then_read  # type: ignore[method-assign]
            await store.replace(None, lambda repository: repository.delete_everything())
        finally:
            store.close()

    asyncio.run(scenario())
    (reading,) = readers
    reading.join(10)
    assert found == [[]]
