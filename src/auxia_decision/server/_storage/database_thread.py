"""The database thread: units of work and row batches run in grouped transactions."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from auxia_decision.server._storage.rows import (
    INTERACTION_COLUMNS,
    ROWS_PER_STATEMENT,
    RowBatch,
    RowKind,
    commit_rows,
    first_ids,
    insert_rows,
    linger,
    split_by_kind,
)

T = TypeVar("T")

# How many queued operations one transaction may group before it commits.
_MAX_GROUP: Final = 512

_Waiter = concurrent.futures.Future[Any] | asyncio.Future[Any]
_Outcome = tuple[bool, object]
ErrorFor = Callable[[sqlite3.Error], BaseException]
"""Turns a SQLite error into the error its callers get."""


@dataclass(slots=True)
class _Job:
    """One queued operation, or a batch of rows, and who waits for the outcome."""

    operation: Callable[[sqlite3.Connection], Any] | None
    waiter: _Waiter | None
    """The operation's waiter (a batch of rows has a waiter per row)."""
    loop: asyncio.AbstractEventLoop | None = None
    """The event loop of asyncio waiters, which only that loop's thread may settle."""
    batch: RowBatch | None = None


def _size(job: _Job) -> int:
    """Return how many writes a job holds: an operation, or the rows of a batch."""
    return 1 if job.batch is None else len(job.batch.waiters)


def _resolve(waiter: _Waiter, ok: bool, value: object) -> None:
    if waiter.cancelled():
        return  # its caller gave up
    if ok:
        waiter.set_result(value)
    else:
        assert isinstance(value, BaseException)
        waiter.set_exception(value)


def _settle(settled: list[tuple[_Job, _Outcome]]) -> None:
    """Give the waiters of each job their outcome (a waiter whose caller gave up is skipped).

    A batch of rows that was committed resolves each waiter to its own
    result (its outcome's value is the id of its first row); one that failed
    gives each the error.
    """
    for job, (ok, value) in settled:
        batch = job.batch
        if batch is None:
            assert job.waiter is not None
            _resolve(job.waiter, ok, value)
        elif ok:
            assert isinstance(value, int)
            batch.resolve(None, value)
        else:
            assert isinstance(value, BaseException)
            batch.resolve(value)


def _append_batches(
    connection: sqlite3.Connection,
    group: list[_Job],
    pending: list[int],
    outcomes: list[_Outcome],
    error_for: ErrorFor,
) -> None:
    """Append the pending batches of a group in the order queued, inside its transaction.

    Each batch's outcome becomes the id of its first row, or the error that
    kept all of them out.
    """
    if not pending:
        return
    jobs = [group[position] for position in pending]
    rows, served = _split(jobs)
    several = len(rows) > len(INTERACTION_COLUMNS) * ROWS_PER_STATEMENT or bool(served)
    try:
        if several:
            connection.execute("SAVEPOINT batches")
        last = insert_rows(connection, RowKind.INTERACTIONS, rows) if rows else 0
        last_served = insert_rows(connection, RowKind.SERVED, served) if served else 0
        if several:
            connection.execute("RELEASE batches")
    except sqlite3.Error as error:
        # All of them or none: one statement is atomic, several share a savepoint.
        if several:
            connection.execute("ROLLBACK TO batches")
            connection.execute("RELEASE batches")
        for position in pending:
            outcomes[position] = (False, error_for(error))
    else:
        for position, first in zip(pending, _first_ids(jobs, (last, last_served)), strict=True):
            outcomes[position] = (True, first)
    pending.clear()


def _batches(jobs: list[_Job]) -> list[RowBatch]:
    return [job.batch for job in jobs if job.batch is not None]


def _split(jobs: list[_Job]) -> tuple[list[Any], list[Any]]:
    """Return the interaction values and the served values of some batches, in order."""
    return split_by_kind([(batch.kind, batch.values) for batch in _batches(jobs)])


def _first_ids(jobs: list[_Job], last: tuple[int, int]) -> list[int]:
    """Return the id of the first row of each batch, appended in order up to ``last``."""
    return first_ids([(batch.kind, len(batch.values)) for batch in _batches(jobs)], last)


def _append_only(
    connection: sqlite3.Connection, group: list[_Job], error_for: ErrorFor
) -> list[_Outcome]:
    """Append a group of batches, committed before it returns."""
    rows, served = _split(group)
    try:
        last = commit_rows(connection, rows, served)
    except sqlite3.Error as error:
        return [(False, error_for(error))] * len(group)
    return [(True, first) for first in _first_ids(group, last)]


class DatabaseThread:
    """Runs operations on one SQLite connection, in one thread, with group commit.

    Every operation runs inside its own savepoint; the thread groups the
    operations and interaction batches queued meanwhile into one transaction
    and commits it before any of them is answered, so a write is durable
    before it is acknowledged and a failing operation undoes only itself.
    The waiters of one event loop are woken together, once per transaction.

    A group whose transaction cannot begin or commit (the database locked by
    another process beyond the busy timeout, a full disk) fails each of its
    callers with ``error_for`` of the SQLite error; the thread goes on with the
    next group.

    Args:
        connect: opens the connection, in the database thread; what it raises
            is raised by the constructor.
        error_for: what callers get for a SQLite error (the error itself by
            default); errors an operation raises itself reach its caller as they are.
        name: the thread's name.

    """

    def __init__(
        self,
        connect: Callable[[], sqlite3.Connection],
        *,
        error_for: ErrorFor = lambda error: error,
        name: str = "treatment-store",
    ) -> None:
        self._connect = connect
        self._error_for = error_for
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._ready = threading.Event()
        self._open_error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._open_error is not None:
            raise self._open_error

    def _run(self) -> None:
        try:
            connection = self._connect()
        except BaseException as error:
            self._open_error = error
            self._ready.set()
            return
        self._ready.set()
        stopping = False
        while not stopping:
            try:
                first = self._jobs.get_nowait()
                busy = True  # it came while the last group was being committed
            except queue.Empty:
                first = self._jobs.get()
                busy = False
            if first is None:
                break
            group = [first]
            stopping = self._take_queued(group)
            if busy and not stopping:
                stopping = self._linger(group)
            self._finish(group, self._outcomes(connection, group))
        connection.close()

    def _linger(self, group: list[_Job]) -> bool:
        """Let a small group wait a little for more jobs; return whether to stop after it.

        Under load more jobs are on their way, and waiting for them costs less
        than a commit (an fsync) each. The wait ends as soon as a pause brings
        no new job, so a few clients are not held back; an idle store, which
        found no job waiting, commits a lone job at once. A group's size counts
        each interaction of a batch.
        """
        stopping = False

        def take_more() -> int:
            nonlocal stopping
            jobs = len(group)
            stopping = self._take_queued(group)
            return 0 if stopping else sum(_size(job) for job in group[jobs:])

        linger(sum(_size(job) for job in group), take_more)
        return stopping

    def _take_queued(self, group: list[_Job]) -> bool:
        """Move the queued jobs into ``group`` (up to its limit); return whether to stop."""
        while len(group) < _MAX_GROUP:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                return False
            if job is None:
                return True
            group.append(job)
        return False

    def _outcomes(self, connection: sqlite3.Connection, group: list[_Job]) -> list[_Outcome]:
        """Run a group of jobs; return each one's outcome, never raising (the thread goes on)."""
        try:
            return self._run_group(connection, group)
        except BaseException as error:
            with contextlib.suppress(sqlite3.Error):
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
            failure = self._error_for(error) if isinstance(error, sqlite3.Error) else error
            return [(False, failure)] * len(group)

    def _run_group(self, connection: sqlite3.Connection, group: list[_Job]) -> list[_Outcome]:
        """Run a group of jobs in one transaction and return each one's outcome once committed.

        A SQLite error of the transaction itself (begin, savepoints, commit)
        is raised: no job of the group is stored.
        """
        error_for = self._error_for
        if all(job.batch is not None for job in group):
            return _append_only(connection, group, error_for)
        outcomes: list[_Outcome] = []
        pending: list[int] = []  # the positions of the interactions not yet appended
        connection.execute("BEGIN IMMEDIATE")
        for job in group:
            if job.batch is not None:
                pending.append(len(outcomes))
                outcomes.append((True, None))
                continue
            _append_batches(connection, group, pending, outcomes, error_for)
            assert job.operation is not None
            connection.execute("SAVEPOINT job")
            try:
                result = job.operation(connection)
            except BaseException as error:
                connection.execute("ROLLBACK TO job")
                connection.execute("RELEASE job")
                failure = error_for(error) if isinstance(error, sqlite3.Error) else error
                outcomes.append((False, failure))
            else:
                connection.execute("RELEASE job")
                outcomes.append((True, result))
        _append_batches(connection, group, pending, outcomes, error_for)
        connection.execute("COMMIT")
        return outcomes

    @staticmethod
    def _finish(group: list[_Job], outcomes: list[_Outcome]) -> None:
        """Hand the outcomes to their waiters: one wake-up per event loop, not per job."""
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Job, _Outcome]]] = {}
        direct: list[tuple[_Job, _Outcome]] = []
        for job, outcome in zip(group, outcomes, strict=True):
            settled = direct if job.loop is None else by_loop.setdefault(job.loop, [])
            settled.append((job, outcome))
        _settle(direct)
        for loop, settled in by_loop.items():
            # A closed loop has nobody left waiting.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle, settled)

    def submit(self, operation: Callable[[sqlite3.Connection], T]) -> concurrent.futures.Future[T]:
        """Queue an operation; its future resolves after its transaction commits."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._jobs.put(_Job(operation, future))
        return future

    async def run(self, operation: Callable[[sqlite3.Connection], T]) -> T:
        """Run an operation from the running event loop; return its result once committed."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[T] = loop.create_future()
        self._jobs.put(_Job(operation, waiter, loop))
        return await waiter

    def queue_batch(self, batch: RowBatch, loop: asyncio.AbstractEventLoop) -> None:
        """Queue a batch of rows whose waiters belong to ``loop``."""
        self._jobs.put(_Job(None, None, loop, batch))

    def close(self) -> None:
        """Finish the queued jobs, close the connection and end the thread."""
        if self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join()
