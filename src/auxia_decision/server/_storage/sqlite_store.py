"""The embedded SQLite store of the reference server (a ``Store``), with group commit."""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from auxia.decision.model import treatment_interaction_service_pb2
from auxia_decision.server._storage.activity import ActivityBook, UserActivity
from auxia_decision.server._storage.database_thread import GroupCommitExecutor, InteractionBatch
from auxia_decision.server._storage.seam import SENT, Repository, ServedTreatment
from auxia_decision.server._storage.sqlite_repository import (
    SqliteRepository,
    connect,
    storage_error,
)
from auxia_decision.server._storage.writer_process import InteractionWriter

T = TypeVar("T")
R = TypeVar("R")


@dataclass(slots=True)
class _Filling:
    """The rows an event loop appends in one pass of it, before they are queued."""

    loop: asyncio.AbstractEventLoop
    rows: list[Any]
    waiters: list[asyncio.Future[Any]]
    results: list[object]
    events: list[Any]
    """The activity the rows add, applied once they are committed: logged
    interactions (requests that name a user), or served (project, user, event)."""


class TreatmentStore:
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

    What users did (their interactions, the treatments served to them) is also
    kept in memory, as rules read it (``activity``): loaded from the database
    by ``load_activity`` and added to as rows are committed.

    Args:
        path: the SQLite file (created with its tables if missing), or
            ``:memory:``.

    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.executor = GroupCommitExecutor(lambda: connect(path), error_for=storage_error)
        """The database thread, which also takes operations on the raw connection."""
        self._loops: dict[int, asyncio.AbstractEventLoop] = {}
        # What each event loop is filling (only its thread touches it).
        self._interactions: dict[asyncio.AbstractEventLoop, _Filling] = {}
        self._served: dict[asyncio.AbstractEventLoop, _Filling] = {}
        self._writer: InteractionWriter | None = None
        self._book = ActivityBook()
        self._versions: dict[str, int] = {}

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

    def activity(self, project_id: str, user_id: str) -> UserActivity:
        """Return what a user did, as far as it is committed."""
        return self._book.of(project_id, user_id)

    async def replace(self, project_id: str | None, work: Callable[[Repository], T]) -> T:
        """Run a unit of work that replaces a project's data (None: everyone's); return its result.

        What this event loop appended before is committed first, and what the
        store remembers of the users' activity is forgotten and read again
        from the database once the work is committed.
        """
        await self.drain()
        result = await self.run(work)
        events = await self.run(lambda repository: repository.activity())
        self._book.forget(project_id)
        self._book.add_all(
            event for event in events if project_id is None or event[0] == project_id
        )
        return result

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

    async def load_activity(self) -> None:
        """Read what users did from the database; call before rows are appended."""
        events = await self.run(lambda repository: repository.activity())
        self._book.forget()
        self._book.add_all(events)

    # Appending rows.

    def log_interaction(
        self, request: treatment_interaction_service_pb2.LogTreatmentInteractionRequest, result: R
    ) -> asyncio.Future[R]:
        """Record one treatment interaction; the future resolves to ``result`` once committed."""
        # The high-volume path: what the helpers do, inline.
        filling = self._filling(self._interactions)
        project_id = request.project_id
        filling.rows += (project_id, request.SerializeToString())
        if request.user_id:
            filling.events.append(request)
        waiter: asyncio.Future[R] = filling.loop.create_future()
        filling.waiters.append(waiter)
        filling.results.append(result)
        return waiter

    def append_interaction(self, project_id: str, body: bytes) -> asyncio.Future[None]:
        """Append one row to the interactions table; the future resolves once it is committed.

        Call it from a running event loop. The rows a loop appends in one pass
        of it are queued together, as one job, when the pass ends.
        """
        filling = self._filling(self._interactions)
        filling.rows += (project_id, body)
        return self._wait(filling, None)

    def record_served(
        self, project_id: str, user_id: str, served: Sequence[ServedTreatment], result: R
    ) -> asyncio.Future[R]:
        """Record the treatments a response serves a user; resolves to ``result`` once committed.

        Each counts as a SENT interaction once committed.
        """
        filling = self._filling(self._served)
        for treatment in served:
            filling.rows += (
                project_id,
                user_id,
                treatment.response_id,
                treatment.treatment_id,
                treatment.surface,
                treatment.tracking_id,
                treatment.time_micros,
            )
            event = (SENT, treatment.treatment_id, treatment.surface, treatment.time_micros)
            filling.events.append((project_id, user_id, event))
        return self._wait(filling, result)

    def _filling(self, fillings: dict[asyncio.AbstractEventLoop, _Filling]) -> _Filling:
        # The running loop is remembered per thread: asyncio.get_running_loop
        # makes a system call (getpid) each time, and this runs once per
        # logged interaction. A remembered loop running in its thread is
        # that thread's loop.
        loop = self._loops.get(threading.get_ident())
        if loop is None or not loop.is_running():
            loop = self._remember_running_loop()
        filling = fillings.get(loop)
        if filling is None:
            filling = fillings[loop] = _Filling(loop, [], [], [], [])
            loop.call_soon(self._queue, loop, fillings)
        return filling

    @staticmethod
    def _wait(filling: _Filling, result: R) -> asyncio.Future[R]:
        waiter: asyncio.Future[R] = filling.loop.create_future()
        filling.waiters.append(waiter)
        filling.results.append(result)
        return waiter

    def _queue(
        self,
        loop: asyncio.AbstractEventLoop,
        fillings: dict[asyncio.AbstractEventLoop, _Filling],
    ) -> None:
        filling = fillings.pop(loop)
        rows = tuple(filling.rows) if fillings is self._served else filling.rows
        committed = None
        if filling.events:
            add = self._book.add_all if fillings is self._served else self._book.add_interactions
            committed = functools.partial(add, filling.events)
        writer = self._writer
        if writer is not None and writer.running and writer.loop is loop:
            writer.send(rows, filling.waiters, filling.results, committed)
        else:
            batch = InteractionBatch(rows, filling.waiters, filling.results, committed)
            self.executor.queue_batch(batch, loop)

    async def start_writer(self) -> None:
        """Append the rows appended from the running event loop in a writer process.

        Other event loops, and a store in memory (which another process cannot
        open), keep appending through the database thread, as do all the rows
        after the writer process stops unexpectedly.
        """
        if self.path == ":memory:" or self._writer is not None:
            return
        writer = InteractionWriter(self.path, asyncio.get_running_loop(), storage_error)
        try:
            await writer.started()
        except BaseException:
            writer.close()
            raise
        self._writer = writer

    @property
    def writer_pid(self) -> int | None:
        """The process id of the running writer process, or None."""
        writer = self._writer
        return writer.process.pid if writer is not None and writer.running else None

    def _remember_running_loop(self) -> asyncio.AbstractEventLoop:
        """Return the running event loop of this thread, remembered for ``_filling``."""
        loop = asyncio.get_running_loop()
        self._loops[threading.get_ident()] = loop
        return loop

    def close(self) -> None:
        """Finish the queued operations and close the database.

        With a writer process, call it from that event loop's thread or after
        the loop has stopped: the rows handed to the process are committed and
        answered for before it stops.
        """
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
        self.executor.close()
