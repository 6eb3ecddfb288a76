"""The embedded SQLite store of the reference server (a ``Store``), with group commit.

Units of work run on the database thread (``database_thread``); the rows that
an event loop appends (logged interactions, served treatments) are batched
per pass of the loop (``rows.RowBatch``) and committed by the writer process
(``writer_client``) or the database thread. SQLite's errors reach callers as
the API's (``storage_error``).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from google.protobuf import duration_pb2
from google.rpc import error_details_pb2

from auxia_decision._errors import ApiError, Code
from auxia_decision.server._storage.activity import (
    DEFAULT_CAPACITY,
    INTERACTIONS,
    SERVED,
    ActivityCache,
)
from auxia_decision.server._storage.daily import PackedActivity, Watermark, packed
from auxia_decision.server._storage.database_thread import DatabaseThread
from auxia_decision.server._storage.old_files import OldFiles
from auxia_decision.server._storage.purging import Purge
from auxia_decision.server._storage.read_threads import ReadThreads
from auxia_decision.server._storage.reader_client import Read, ReaderClient
from auxia_decision.server._storage.rows import (
    INTERACTION_COLUMNS,
    SERVED_COLUMNS,
    RowBatch,
    RowKind,
    interaction_values,
)
from auxia_decision.server._storage.seam import (
    SENT,
    Event,
    LoggedRow,
    Migration,
    Repository,
    ServedTreatment,
    UserActivity,
    replaced_to_its_end,
)
from auxia_decision.server._storage.sqlite_repository import SqliteRepository, connect
from auxia_decision.server._storage.writer_client import WriterClient, WriterStopped

T = TypeVar("T")
R = TypeVar("R")

_log = logging.getLogger("auxia_decision.store")
_INTERACTION_WIDTH: Final = len(INTERACTION_COLUMNS)
_USER: Final = INTERACTION_COLUMNS.index("user_id")
_SERVED_WIDTH: Final = len(SERVED_COLUMNS)
_RETRY_AFTER: Final = duration_pb2.Duration(seconds=1)
RESET_TURN_ROWS: Final = 10_000
"""How many of the records a project's Reset hid are deleted a transaction, after it."""
# SQLite's primary result codes (the low byte of an extended code).
_BUSY: Final = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})


def storage_error(error: sqlite3.Error) -> ApiError:
    """Return the error a caller gets when the store's SQLite fails under it.

    What the caller can wait out is UNAVAILABLE (HTTP 503) with a retry delay:
    the database locked by another connection beyond the busy timeout, a full
    disk, a failed write. Nothing of the failed transaction is stored.
    """
    if isinstance(error, WriterStopped):
        return ApiError(Code.INTERNAL, f"the interaction was not stored: {error}")
    code = int(getattr(error, "sqlite_errorcode", sqlite3.SQLITE_ERROR)) & 0xFF
    retry = [error_details_pb2.RetryInfo(retry_delay=_RETRY_AFTER)]
    if code in _BUSY:
        message = "the store is locked by another connection; nothing was written: try again"
    elif code == sqlite3.SQLITE_FULL:
        message = "the server's disk is full; nothing was written: try again once there is room"
    elif code in (sqlite3.SQLITE_IOERR, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN):
        message = f"the store cannot write to its file ({error}); nothing was written"
    else:
        _log.error("the store failed: %s: %s", type(error).__name__, error)
        return ApiError(Code.INTERNAL, "the store failed; nothing was written")
    return ApiError(Code.UNAVAILABLE, message, details=retry)


@dataclass(slots=True)
class _OpenBatch:
    """The rows of one kind an event loop appends in one pass of it, before they are queued."""

    kind: RowKind
    loop: asyncio.AbstractEventLoop
    values: list[Any]
    waiters: list[asyncio.Future[Any]]
    results: list[object]
    events: list[tuple[int, str, str, Event]]
    """The activity the rows add, applied once they are committed: for each row
    that names a user, its position in the batch, its project, user and event."""


class SqliteStore:
    """The server's state in one SQLite database, file-backed (WAL) or in memory.

    Units of work (``run``) and appended rows go to one database thread
    (``executor``), which groups what was queued meanwhile into one
    transaction and commits it before answering any of it. The interactions
    an event loop logs in one pass of it are queued as one batch, and so are
    the treatments it serves.

    A file-backed store can instead hand the rows of one event loop to a
    writer process (``start_writer``), which commits them the same way
    (grouped, on disk before they are answered) without taking turns with the
    event loop's thread for the interpreter.

    What users did (their interactions, the treatments served to them) is
    read from the database when a decision first needs it, and kept for the
    users decided for lately in a bounded cache that committed rows keep exact
    (``activity.ActivityCache``).

    Args:
        path: the SQLite file (created with its tables if missing, migrated
            if older), or ``:memory:``.
        activity_cache_users: how many users' activity to keep at hand.

    """

    def __init__(self, path: str, *, activity_cache_users: int = DEFAULT_CAPACITY) -> None:
        self.path = path
        self.migration: Migration | None = None
        """What bringing the file to today's schema took, if it was older."""
        self._cache = ActivityCache(activity_cache_users)
        self.executor = DatabaseThread(self._connect, error_for=storage_error)
        """The database thread, which also takes operations on the raw connection."""
        # Reads of a file need not wait for the writers (WAL): connections of their own,
        # a decision's at once on the event loop's thread, others on threads of their own.
        self._reads = None if path == ":memory:" else ReadThreads(path, storage_error)
        self._old_files = None if path == ":memory:" else OldFiles(path)
        if self._old_files is not None:
            self._old_files.delete_leftovers()
        self._loops: dict[int, asyncio.AbstractEventLoop] = {}
        # The batch each event loop is filling, by kind (only its thread touches it).
        self._interactions: dict[asyncio.AbstractEventLoop, _OpenBatch] = {}
        self._served: dict[asyncio.AbstractEventLoop, _OpenBatch] = {}
        self._writer: WriterClient | None = None
        self._activity_reader: ReaderClient | None = None
        self._versions: dict[str, int] = {}
        self._replacing = asyncio.Lock()  # one replacement at a time (``replace``)
        self._purge = Purge(self._delete_hidden_turn, self.drain)  # ``purge_hidden``

    shared: Final = False
    """One process writes the store: it is always up to date, nothing to synchronize."""

    async def synchronize(self, project_id: str, user_id: str | None = None) -> None:
        """Nothing to catch up with: this process is the store's only writer."""
        del project_id, user_id

    def _connect(self) -> sqlite3.Connection:
        connection, self.migration = connect(self.path)
        return connection

    async def read(self, work: Callable[[Repository], T]) -> T:
        """Run a unit of work that only reads, in a snapshot of the last commit.

        On a file, beside the writers (``ReadThreads``): a long listing holds
        up no write. In memory, as ``run``.
        """
        reads = self._reads
        if reads is None:
            return await self.run(work)
        return await reads.run(lambda connection: work(SqliteRepository(connection)))

    async def run(self, work: Callable[[Repository], T]) -> T:
        """Run a unit of work in a transaction; return its result once committed."""
        touched: set[str] = set()
        result = await self.executor.run(
            lambda connection: work(SqliteRepository(connection, touched))
        )
        self._changed(touched)
        return result

    def run_sync(self, work: Callable[[Repository], T]) -> T:
        """Run a unit of work from a thread that is not running an event loop."""
        touched: set[str] = set()
        result = self.executor.submit(
            lambda connection: work(SqliteRepository(connection, touched))
        ).result()
        self._changed(touched)
        return result

    def _changed(self, projects: set[str]) -> None:
        for project_id in projects:
            self._versions[project_id] = self._versions.get(project_id, 0) + 1

    def version(self, project_id: str) -> int:
        """Return a number that changes whenever the project's configuration or treatments do."""
        return self._versions.get(project_id, 0)

    # Activity.

    def cached_activity(self, project_id: str, user_id: str) -> UserActivity | None:
        """Return what a user did, as far as it is committed, if it is cached."""
        return self._cache.get(project_id, user_id)

    def fold_kinds(self, project_id: str, kinds: frozenset[int]) -> None:
        """Keep a project's cached users' counts of these kinds exact (``ActivityCache.fold``)."""
        self._cache.fold(project_id, kinds)

    def activity(self, project_id: str, user_id: str) -> Awaitable[UserActivity]:
        """Return what a user did, as far as it is committed: cached, or read by index."""
        return self._cache.load(
            project_id, user_id, lambda: self._read_activity(project_id, user_id)
        )

    def _read_activity(self, project_id: str, user_id: str) -> Read:
        """Start a read of a user's activity: by the reader process if this loop has one."""
        reader = self._activity_reader
        if reader is not None and reader.running and reader.loop is asyncio.get_running_loop():
            return reader.read(project_id, user_id)
        return self._read_activity_here(project_id, user_id)

    def _read_activity_here(self, project_id: str, user_id: str) -> Read:
        """Start a read of a user's activity in this process."""

        def read(repository: Repository) -> tuple[PackedActivity, Watermark]:
            rows, watermark = repository.user_activity(project_id, user_id)
            return packed(rows), watermark

        return self._read(read)

    def _read(self, work: Callable[[Repository], T]) -> asyncio.Future[T]:
        """Start a unit of work that only reads, beside the writers when the store is a file."""
        reads = self._reads
        if reads is None:
            return asyncio.ensure_future(self.run(work))
        return reads.submit(lambda connection: work(SqliteRepository(connection)))

    @property
    def cached_users(self) -> int:
        """How many users' activity is cached."""
        return len(self._cache)

    async def replace(self, project_id: str | None, work: Callable[[Repository], T]) -> T:
        """Run a unit of work that replaces a project's data (None: everyone's); return its result.

        What this event loop appended before is committed first; the
        project's users' activity (everyone's, for a new file) is read again
        from the database when next needed. When the
        work replaces everything in a file (every project, or the only one), it
        runs on a new file instead of deleting row by row, and the old file is
        deleted meanwhile (``old_files``): quicker than deleting the file,
        however big it had grown. A project's records in a file of several are
        hidden at once and deleted in turns afterwards (``purge_hidden``).
        Replacements run one at a time. A caller that stops waiting (cancelled)
        does not stop the replacement; if it then fails, the failure is logged.
        """
        replacing = asyncio.ensure_future(self._replace(project_id, work))
        return await replaced_to_its_end(project_id, replacing)

    async def _replace(self, project_id: str | None, work: Callable[[Repository], T]) -> T:
        """Replace a project's data (``replace``); the cache is forgotten however it ends."""
        async with self._replacing:
            afresh = project_id is None
            try:
                await self.drain()
                if self.path != ":memory:":
                    projects = await self.run(lambda repository: repository.project_ids())
                    afresh = afresh or projects == [project_id]
                    if afresh:
                        stopping = self._purge.stop()  # a turn under way ends first
                        if stopping is not None:
                            await asyncio.wait({stopping})
                        await self._start_afresh()
                return await self.run(work)
            finally:
                # The other projects' records are as they were: their users stay cached.
                if project_id is None or afresh:
                    self._cache.forget_all()
                else:
                    self._cache.forget_project(project_id)
                self.purge_hidden()

    def purge_hidden(self) -> None:
        """Delete the records a project's Reset hid, in turns, unless that is under way.

        Each turn (``RESET_TURN_ROWS`` records) is a transaction of its own,
        and what this event loop logged meanwhile is committed before the
        next: the writer and the other projects' calls go on between them
        (one transaction of millions of rows held the writer past its busy
        timeout: the other projects' writes failed). The records stay hidden
        until they are gone, and a server stopped meanwhile goes on at its
        next start (``start_helpers``), as do a failed turn's and a hidden
        table's last row (``SqliteRepository.purge_hidden``): the next Reset
        or start deletes them. A turn the store cannot make for now (the
        file locked by another program) is tried again (``purging``). Call
        it from the store's event loop.
        """
        self._purge.start()

    async def _delete_hidden_turn(self) -> bool:
        return await self.executor.run(
            lambda connection: SqliteRepository(connection).purge_hidden(RESET_TURN_ROWS)
        )

    async def purged(self) -> None:
        """Wait until the deleting of hidden records under way ends (``purge_hidden``).

        What it leaves (a hidden last row of a table, what a failed turn
        left) waits for the next Reset or start.
        """
        await self._purge.done()

    async def _start_afresh(self) -> None:
        """Replace the store's file by a new, empty one, with the same writers."""
        # Synchronous from here to the new database thread: nothing else of
        # this event loop can queue work meanwhile.
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
        activity_reader, self._activity_reader = self._activity_reader, None
        if activity_reader is not None:
            activity_reader.close()
        self.executor.close()
        assert self._old_files is not None, "a store in memory has no file to start afresh"
        reads = self._reads
        if reads is not None:
            reads.hold()  # until the new file has its tables
        try:
            self._old_files.set_aside()  # deleted meanwhile, by a thread
            self.executor = DatabaseThread(self._connect, error_for=storage_error)
        finally:
            if reads is not None:
                reads.reopen()
        await self._start(writer=writer is not None, reader=activity_reader is not None)

    async def drain(self) -> None:
        """Wait until the rows this event loop appended so far are committed (or failed)."""
        # The rows of this pass of the loop are queued by a callback of the
        # pass: one turn of the loop lets it run.
        await asyncio.sleep(0)
        writer = self._writer
        if writer is not None and writer.running:
            await writer.drained()
        # The database thread runs jobs in order: an empty job ends after them.
        await self.executor.run(lambda _: None)

    # Appending rows.

    def log_interaction_if_current(self, request: LoggedRow, result: R) -> None:
        """Return None: a store no other process writes needs no sync (``log_interaction``)."""
        del request, result

    def log_interaction(self, request: LoggedRow, result: R) -> asyncio.Future[R]:
        """Record one treatment interaction; the future resolves to ``result`` once committed.

        Call it from a running event loop. The rows a loop appends in one pass
        of it are queued together, as one batch, when the pass ends.
        """
        batch = self._open_batch(self._interactions, RowKind.INTERACTIONS)
        values = batch.values
        row = interaction_values(request)
        user_id = row[_USER]
        if user_id:
            # The event (kind, treatment, surface, time): the row's columns after the user.
            event = row[_USER + 1 : _USER + 5]
            batch.events.append(
                (len(values) // _INTERACTION_WIDTH, request.project_id, user_id, event)
            )
        values += row
        return self._wait(batch, result)

    def record_served(
        self, project_id: str, user_id: str, served: Sequence[ServedTreatment], result: R
    ) -> asyncio.Future[R]:
        """Record the treatments a response serves a user; resolves to ``result`` once committed.

        Each counts as a SENT interaction once committed.
        """
        batch = self._open_batch(self._served, RowKind.SERVED)
        events = batch.events
        for treatment in served:
            event = (SENT, treatment.treatment_id, treatment.surface, treatment.time_micros)
            events.append((len(batch.values) // _SERVED_WIDTH, project_id, user_id, event))
            batch.values += (
                project_id,
                user_id,
                treatment.response_id,
                treatment.treatment_id,
                treatment.surface,
                treatment.tracking_id,
                treatment.time_micros,
            )
        return self._wait(batch, result)

    def _open_batch(
        self, batches: dict[asyncio.AbstractEventLoop, _OpenBatch], kind: RowKind
    ) -> _OpenBatch:
        """Return the batch of a kind the running event loop is filling in this pass of it."""
        # The running loop is remembered per thread: asyncio.get_running_loop
        # makes a system call (getpid) each time, and this runs once per
        # logged interaction. A remembered loop running in its thread is
        # that thread's loop.
        loop = self._loops.get(threading.get_ident())
        if loop is None or not loop.is_running():
            loop = self._remember_running_loop()
        batch = batches.get(loop)
        if batch is None:
            batch = batches[loop] = _OpenBatch(kind, loop, [], [], [], [])
            loop.call_soon(self._queue, loop, batches)
        return batch

    @staticmethod
    def _wait(batch: _OpenBatch, result: R) -> asyncio.Future[R]:
        waiter: asyncio.Future[R] = batch.loop.create_future()
        batch.waiters.append(waiter)
        batch.results.append(result)
        return waiter

    def _queue(
        self,
        loop: asyncio.AbstractEventLoop,
        batches: dict[asyncio.AbstractEventLoop, _OpenBatch],
    ) -> None:
        """Hand the batch a pass of ``loop`` filled to the writer process or the database thread."""
        opened = batches.pop(loop)
        committed = None
        if opened.events:
            table = SERVED if opened.kind is RowKind.SERVED else INTERACTIONS
            apply = self._cache.committed
            events = opened.events

            def committed(first_id: int) -> None:
                apply(table, first_id, events)

        batch = RowBatch(opened.kind, opened.values, opened.waiters, opened.results, committed)
        writer = self._writer
        if writer is not None and writer.running and writer.loop is loop:
            writer.send(batch)
        else:
            self.executor.queue_batch(batch, loop)

    async def start_helpers(self) -> None:
        """Start the writer and the reader process side by side; raise the first failure.

        What ``start_writer`` and ``start_reader`` do, the two waits at once;
        a failure is raised once both have started or failed.
        """
        await self._start(writer=True, reader=True)
        self.purge_hidden()  # what a Reset before a stop left

    async def _start(self, *, writer: bool, reader: bool) -> None:
        """Start the helper processes asked for, side by side; raise the first failure."""
        starts = [
            start()
            for start, wanted in ((self.start_writer, writer), (self.start_reader, reader))
            if wanted
        ]
        for result in await asyncio.gather(*starts, return_exceptions=True):
            if isinstance(result, BaseException):
                raise result

    async def start_writer(self) -> None:
        """Append the rows appended from the running event loop in a writer process.

        Other event loops, and a store in memory (which another process cannot
        open), keep appending through the database thread, as do all the rows
        after the writer process stops unexpectedly.
        """
        if self.path == ":memory:" or self._writer is not None:
            return
        writer = WriterClient(self.path, asyncio.get_running_loop(), storage_error)
        try:
            await writer.started()
        except BaseException:
            writer.close()
            raise
        self._writer = writer

    async def start_reader(self) -> None:
        """Read users' activity for the running event loop in a reader process.

        Other event loops, and a store in memory, read it on their own
        thread, as does this one after the reader process stops unexpectedly.
        """
        if self.path == ":memory:" or self._activity_reader is not None:
            return
        # The file and its tables first: the process opens what is there.
        await self.executor.run(lambda _: None)
        reader = ReaderClient(
            self.path,
            sent=SENT,
            loop=asyncio.get_running_loop(),
            fallback=self._read_activity_here,
            error_for=storage_error,
        )
        try:
            await reader.started()
        except BaseException:
            reader.close()
            raise
        self._activity_reader = reader

    @property
    def reader_pid(self) -> int | None:
        """The process id of the running reader process, or None."""
        reader = self._activity_reader
        return reader.process.pid if reader is not None and reader.running else None

    @property
    def writer_pid(self) -> int | None:
        """The process id of the running writer process, or None."""
        writer = self._writer
        return writer.process.pid if writer is not None and writer.running else None

    def _remember_running_loop(self) -> asyncio.AbstractEventLoop:
        """Return the running event loop of this thread, remembered for ``_open_batch``."""
        loop = asyncio.get_running_loop()
        self._loops[threading.get_ident()] = loop
        return loop

    async def aclose(self) -> None:
        """Finish the queued operations and close the database (from the event loop)."""
        self.close()

    def close(self) -> None:
        """Finish the queued operations and close the database.

        With a writer process, call it from that event loop's thread or after
        the loop has stopped: the rows handed to the process are committed and
        answered for before it stops.
        """
        self._purge.stop(closing=True)  # the records stay hidden; deleted after the next start
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
        activity_reader, self._activity_reader = self._activity_reader, None
        if activity_reader is not None:
            activity_reader.close()
        if self._reads is not None:
            self._reads.close()
        self.executor.close()
        if self._old_files is not None:
            self._old_files.wait()
