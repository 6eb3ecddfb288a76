"""The server's side of the writer process: hands it batches, resolves them as it answers."""

from __future__ import annotations

import asyncio
import collections
import logging
import pathlib
import sqlite3
from collections.abc import Callable
from typing import Any, Final

from auxia_decision.server._storage import writer_process
from auxia_decision.server._storage.process_link import HelperStopped, ProcessLink, helper_error
from auxia_decision.server._storage.rows import RowBatch, first_ids

_SCRIPT: Final = str(pathlib.Path(writer_process.__file__))

_log = logging.getLogger("auxia_decision.store")


class WriterStopped(HelperStopped):
    """The writer process stopped before it answered for a batch."""


class WriterClient:
    """The server side of a writer process, bound to one event loop.

    ``send`` hands a batch of rows to the process; each batch's waiters
    resolve, in the event loop, to their results once the batch is committed,
    or to the error that kept it from being stored. If the process stops,
    the batches it has not answered for fail with ``WriterStopped`` and
    ``running`` turns false.

    Args:
        path: the SQLite file the process appends to.
        loop: the event loop whose waiters it resolves; it must be running
            in this thread when the writer is used.
        error_for: what a waiter gets for a SQLite error (the error itself
            by default): a store turns them into the errors of its callers.

    """

    def __init__(
        self,
        path: str,
        loop: asyncio.AbstractEventLoop,
        error_for: Callable[[sqlite3.Error], BaseException] = lambda error: error,
    ) -> None:
        self.loop = loop
        self._error_for = error_for
        self._pending: collections.deque[RowBatch] = collections.deque()
        self._idle: list[asyncio.Future[None]] = []
        self.running = True
        self._link = ProcessLink(
            _SCRIPT,
            [path],
            loop,
            self._answer,
            lambda reason: self._stop(f"the interactions writer {reason}", unexpected=True),
        )
        self.process = self._link.process

    async def started(self) -> None:
        """Wait until the process has opened the database; raise if it could not."""
        await self._link.opened()

    async def drained(self) -> None:
        """Wait until every batch sent so far is answered for (or the writer has stopped)."""
        if self._pending:
            idle: asyncio.Future[None] = self.loop.create_future()
            self._idle.append(idle)
            await idle

    def _wake_idle(self) -> None:
        idle, self._idle = self._idle, []
        for waiter in idle:
            if not waiter.done():
                waiter.set_result(None)

    def send(self, batch: RowBatch) -> None:
        """Hand a batch to the process; it is resolved once committed (or failed)."""
        assert self._link.open, "send() after the writer stopped"
        self._pending.append(batch)
        self._link.send((int(batch.kind), batch.values))

    def _answer(self, answers: list[Any]) -> None:
        for count, error, code, last, last_served in answers:
            answered = [self._pending.popleft() for _ in range(count)]
            if error is not None:
                failure = self._error_for(helper_error(error, code))
                for batch in answered:
                    batch.resolve(failure)
                continue
            sizes = [(batch.kind, len(batch.values)) for batch in answered]
            for batch, first in zip(answered, first_ids(sizes, (last, last_served)), strict=True):
                batch.resolve(None, first)
        if not self._pending and self._idle:
            self._wake_idle()

    def _stop(self, reason: str, *, unexpected: bool = False) -> None:
        """Let go of the process: the batches it has not answered for fail."""
        self.running = False
        self._link.release()
        while self._pending:
            self._pending.popleft().resolve(self._error_for(WriterStopped(reason)))
        self._wake_idle()
        if unexpected:
            _log.error("%s; interactions go through the database thread from now on", reason)

    def close(self) -> None:
        """Have the process commit and answer for what it was sent, then stop it.

        Call it from the event loop's thread, or once that loop has stopped.
        """
        if self._link.open:
            self._link.finish()
            self._stop("the interactions writer was closed before committing")
        self.process.wait()
