"""The embedded SQLite store of the reference server (a ``Store``), with group commit."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import TypeVar

from auxia.decision.model import treatment_interaction_service_pb2
from auxia_decision.server._executor import GroupCommitExecutor, InteractionBatch
from auxia_decision.server._sqlite import SqliteRepository, connect, storage_error
from auxia_decision.server._storage import Repository
from auxia_decision.server._writer import InteractionWriter

T = TypeVar("T")
R = TypeVar("R")


class TreatmentStore:
    """The server's state in one SQLite database, file-backed (WAL) or in memory.

    Units of work (``run``) and logged interactions go to one database thread
    (``executor``), which groups what was queued meanwhile into one
    transaction and commits it before answering any of it. The interactions
    an event loop logs in one pass of it are queued as one batch.

    A file-backed store can instead hand the interactions of one event loop
    to a writer process (``start_writer``), which commits them the same way
    (grouped, on disk before they are answered) without taking turns with the
    event loop's thread for the interpreter.

    Args:
        path: the SQLite file (created with its tables if missing), or
            ``:memory:``.

    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.executor = GroupCommitExecutor(lambda: connect(path), error_for=storage_error)
        """The database thread, which also takes operations on the raw connection."""
        self._loops: dict[int, asyncio.AbstractEventLoop] = {}
        # The batch of interactions each event loop is filling (only its thread touches it).
        self._batches: dict[asyncio.AbstractEventLoop, InteractionBatch] = {}
        self._writer: InteractionWriter | None = None

    async def run(self, work: Callable[[Repository], T]) -> T:
        """Run a unit of work in a transaction; return its result once committed."""
        return await self.executor.run(lambda connection: work(SqliteRepository(connection)))

    def run_sync(self, work: Callable[[Repository], T]) -> T:
        """Run a unit of work from a thread that is not running an event loop."""
        return self.executor.submit(lambda connection: work(SqliteRepository(connection))).result()

    def log_interaction(
        self, request: treatment_interaction_service_pb2.LogTreatmentInteractionRequest, result: R
    ) -> asyncio.Future[R]:
        """Record one treatment interaction; the future resolves to ``result`` once committed."""
        return self._append(request.project_id, request.SerializeToString(), result)

    def append_interaction(self, project_id: str, body: bytes) -> asyncio.Future[None]:
        """Append one row to the interactions table; the future resolves once it is committed.

        Call it from a running event loop. The rows a loop appends in one pass
        of it are queued together, as one job, when the pass ends.
        """
        return self._append(project_id, body, None)

    def _append(self, project_id: str, body: bytes, result: R) -> asyncio.Future[R]:
        # The running loop is remembered per thread: asyncio.get_running_loop
        # makes a system call (getpid) each time, and this runs once per
        # logged interaction. A remembered loop running in its thread is
        # that thread's loop.
        loop = self._loops.get(threading.get_ident())
        if loop is None or not loop.is_running():
            loop = self._remember_running_loop()
        waiter: asyncio.Future[R] = loop.create_future()
        batch = self._batches.get(loop)
        if batch is None:
            batch = self._batches[loop] = InteractionBatch([], [], [])
            loop.call_soon(self._queue_batch, loop)
        batch.rows += (project_id, body)
        batch.waiters.append(waiter)
        batch.results.append(result)
        return waiter

    def _queue_batch(self, loop: asyncio.AbstractEventLoop) -> None:
        batch = self._batches.pop(loop)
        writer = self._writer
        if writer is not None and writer.running and writer.loop is loop:
            writer.send(batch.rows, batch.waiters, batch.results)
        else:
            self.executor.queue_batch(batch, loop)

    async def start_writer(self) -> None:
        """Append the interactions logged from the running event loop in a writer process.

        Other event loops, and a store in memory (which another process cannot
        open), keep appending through the database thread, as do all the
        interactions after the writer process stops unexpectedly.
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
        """Return the running event loop of this thread, remembered for ``_append``."""
        loop = asyncio.get_running_loop()
        self._loops[threading.get_ident()] = loop
        return loop

    def close(self) -> None:
        """Finish the queued operations and close the database.

        With a writer process, call it from that event loop's thread or after
        the loop has stopped: the interactions handed to the process are
        committed and answered for before it stops.
        """
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
        self.executor.close()
