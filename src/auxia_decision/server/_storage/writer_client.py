"""The server's side of the writer process: hands it batches, resolves them as it answers."""

from __future__ import annotations

import asyncio
import collections
import logging
import pathlib
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from typing import Any, Final

from auxia_decision.server._storage import writer_process
from auxia_decision.server._storage.rows import RowBatch, first_ids
from auxia_decision.server._storage.writer_process import READ_SIZE, Frames, frame

_START_TIMEOUT_SECONDS: Final = 30.0
_SCRIPT: Final = str(pathlib.Path(writer_process.__file__))

_log = logging.getLogger("auxia_decision.store")


def writer_error(message: str, code: int) -> sqlite3.OperationalError:
    """Return the error the writer process answered with, with SQLite's error code."""
    error = sqlite3.OperationalError(message)
    error.sqlite_errorcode = code
    return error


class WriterStopped(sqlite3.OperationalError):
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
        ours, theirs = socket.socketpair()
        with theirs:
            try:
                self.process = subprocess.Popen(  # noqa: S603 (our interpreter, our script)
                    [
                        sys.executable,
                        "-I",
                        str(pathlib.Path(writer_process.__file__)),
                        str(theirs.fileno()),
                        path,
                    ],
                    pass_fds=(theirs.fileno(),),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    # Not in the server's process group: a terminal's signals are the server's.
                    start_new_session=True,
                )
            except BaseException:
                ours.close()
                raise
        ours.setblocking(False)
        self._socket: socket.socket | None = ours
        self._frames = Frames()
        self._outgoing = bytearray()
        self._pending: collections.deque[RowBatch] = collections.deque()
        self._started: asyncio.Future[None] = loop.create_future()
        self._idle: list[asyncio.Future[None]] = []
        self.running = True
        loop.add_reader(ours, self._on_readable)

    async def started(self) -> None:
        """Wait until the process has opened the database; raise if it could not."""
        await asyncio.wait_for(self._started, _START_TIMEOUT_SECONDS)

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
        sock = self._socket
        assert sock is not None, "send() after the writer stopped"
        data = frame((int(batch.kind), batch.values))
        self._pending.append(batch)
        if self._outgoing:
            self._outgoing += data
            return
        try:
            sent = sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError as error:
            self._stop(f"the interactions writer is gone ({error})", unexpected=True)
            return
        if sent < len(data):
            self._outgoing += memoryview(data)[sent:]
            self.loop.add_writer(sock, self._on_writable)

    def _on_writable(self) -> None:
        sock = self._socket
        assert sock is not None
        try:
            sent = sock.send(self._outgoing)
        except BlockingIOError:
            return
        except OSError as error:
            self._stop(f"the interactions writer is gone ({error})", unexpected=True)
            return
        del self._outgoing[:sent]
        if not self._outgoing:
            self.loop.remove_writer(sock)

    def _on_readable(self) -> None:
        sock = self._socket
        assert sock is not None
        try:
            data = sock.recv(READ_SIZE)
        except BlockingIOError:
            return
        except OSError as error:
            self._stop(f"the interactions writer is gone ({error})", unexpected=True)
            return
        if not data:
            self._stop("the interactions writer stopped before committing", unexpected=True)
            return
        self._answer(self._frames.feed(data))

    def _answer(self, answers: list[Any]) -> None:
        for count, error, code, last, last_served in answers:
            if not self._started.done():
                if error is None:
                    self._started.set_result(None)
                else:
                    self._started.set_exception(writer_error(error, code))
                continue
            answered = [self._pending.popleft() for _ in range(count)]
            if error is not None:
                failure = self._error_for(writer_error(error, code))
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
        sock, self._socket = self._socket, None
        if sock is not None:
            if not self.loop.is_closed():
                self.loop.remove_reader(sock)
                self.loop.remove_writer(sock)
            sock.close()
        if not self._started.done():
            self._started.set_exception(WriterStopped(reason))
        while self._pending:
            self._pending.popleft().resolve(self._error_for(WriterStopped(reason)))
        self._wake_idle()
        if unexpected:
            _log.error("%s; interactions go through the database thread from now on", reason)

    def close(self) -> None:
        """Have the process commit and answer for what it was sent, then stop it.

        Call it from the event loop's thread, or once that loop has stopped.
        """
        sock = self._socket
        if sock is not None:
            try:
                sock.setblocking(True)
                if self._outgoing:
                    sock.sendall(self._outgoing)
                    self._outgoing.clear()
                sock.shutdown(socket.SHUT_WR)  # the writer stops after what it has
                while data := sock.recv(READ_SIZE):
                    self._answer(self._frames.feed(data))
            except OSError:
                pass
            self._stop("the interactions writer was closed before committing")
        self.process.wait()
