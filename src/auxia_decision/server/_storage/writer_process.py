"""The interactions writer: a process of its own that appends and commits interaction rows.

The server's event loop hands each batch of logged interactions to this
process over a private socket pair and goes on serving; the process appends
the batches that arrived meanwhile in one transaction, commits it to disk
(``synchronous=FULL``) and only then acknowledges them. With its own
interpreter it neither waits for nor holds up the server's, and no thread of
the server has to be woken for a commit: the acknowledgements arrive as
ordinary socket reads of the event loop.

Run as a script (``python -I _writer.py FD PATH``), this module imports only
the standard library, so the writer starts in a few milliseconds.

Both directions carry frames: a 4-byte little-endian length, then a
``marshal`` payload (both ends are this module, on the same interpreter).
To the writer, a frame is a batch: the values of its rows in turn; a list of
interaction rows (project id, serialized request, ...) or a tuple of served
rows (``SERVED_COLUMNS`` each). From the writer, a frame is ``(count, error,
code)``: the ``count`` oldest unanswered batches were committed (``error``
None) or were not (``error`` the reason and ``code`` SQLite's extended error
code, and none of them is stored). The first frame from the writer, ``(0,
None, 0)``, says that it has opened the database.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
import marshal
import pathlib
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, Final

# Rows appended by one INSERT statement at most; a group with more rows is
# appended by several statements in one transaction.
ROWS_PER_STATEMENT: Final = 256
# How long a connection waits for another one's write transaction to end.
BUSY_TIMEOUT_MS: Final = 5_000
# Under load, a group of fewer rows than this waits for company: up to
# LINGER_STEPS pauses, and no longer than a pause that brings nothing. Waiting
# costs less than committing in small groups, each with its fsync and, measured
# on a 2-core machine under gRPC load, about 200 us of the writer's CPU time.
LINGER_BELOW: Final = 16
LINGER_STEPS: Final = 8
LINGER_STEP_SECONDS: Final = 0.00025

_LENGTH: Final = struct.Struct("<I")
_READ_SIZE: Final = 1 << 16
_START_TIMEOUT_SECONDS: Final = 30.0

_log = logging.getLogger("auxia_decision.store")


@functools.cache
def _insert_sql(rows: int) -> str:
    # Only the placeholders are repeated: the values are bound, never formatted in.
    placeholders = ", ".join(["(?, ?)"] * rows)
    return f"INSERT INTO interactions (project_id, body) VALUES {placeholders}"  # noqa: S608


def insert_interactions(connection: sqlite3.Connection, rows: Sequence[str | bytes]) -> None:
    """Append interaction rows given as their values in turn (project id, body, ...).

    One statement appends up to ``ROWS_PER_STATEMENT`` rows; more take several
    statements, which the caller runs inside one transaction.
    """
    step = 2 * ROWS_PER_STATEMENT
    if len(rows) <= step:
        connection.execute(_insert_sql(len(rows) // 2), rows)
        return
    for start in range(0, len(rows), step):
        chunk = rows[start : start + step]
        connection.execute(_insert_sql(len(chunk) // 2), chunk)


SERVED_COLUMNS: Final = (
    "project_id",
    "user_id",
    "response_id",
    "treatment_id",
    "surface",
    "tracking_id",
    "time_micros",
)
"""The columns of a served row (a treatment GetTreatments returned), in the order given."""


@functools.cache
def _insert_served_sql(rows: int) -> str:
    one = "(" + ", ".join(["?"] * len(SERVED_COLUMNS)) + ")"
    columns = ", ".join(SERVED_COLUMNS)
    return f"INSERT INTO served ({columns}) VALUES {', '.join([one] * rows)}"  # noqa: S608


def insert_served(connection: sqlite3.Connection, rows: Sequence[str | int]) -> None:
    """Append served rows given as their values in turn (``SERVED_COLUMNS`` each)."""
    width = len(SERVED_COLUMNS)
    step = width * ROWS_PER_STATEMENT
    for start in range(0, len(rows), step):
        chunk = rows[start : start + step]
        connection.execute(_insert_served_sql(len(chunk) // width), chunk)


def commit_rows(
    connection: sqlite3.Connection,
    rows: Sequence[str | bytes],
    served: Sequence[str | int] = (),
) -> None:
    """Append interaction rows and served rows and commit them, all or none.

    ``connection`` is in autocommit mode; a few interactions alone are one
    statement, which commits by itself.
    """
    if not served and len(rows) <= 2 * ROWS_PER_STATEMENT:
        insert_interactions(connection, rows)
        return
    connection.execute("BEGIN IMMEDIATE")
    try:
        if rows:
            insert_interactions(connection, rows)
        if served:
            insert_served(connection, served)
        connection.execute("COMMIT")
    finally:
        if connection.in_transaction:
            connection.execute("ROLLBACK")


def open_database(path: str) -> sqlite3.Connection:
    """Open a store's SQLite file the way every connection to it is configured."""
    # Room for an INSERT of each size up to ROWS_PER_STATEMENT rows, and the rest.
    connection = sqlite3.connect(
        path,
        isolation_level=None,
        check_same_thread=False,
        cached_statements=ROWS_PER_STATEMENT + 128,
    )
    connection.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    if path != ":memory:":
        connection.execute("PRAGMA journal_mode=WAL")
    # FULL: a commit is on disk before the operations it holds are answered.
    connection.execute("PRAGMA synchronous=FULL")
    connection.execute("PRAGMA foreign_keys=ON")
    return connection


Batch = list[str | bytes] | tuple[str | int, ...]
"""Interaction rows (a list) or served rows (a tuple), their values in turn."""


def _frame(payload: Batch | tuple[int, str | None, int]) -> bytes:
    data = marshal.dumps(payload)
    return _LENGTH.pack(len(data)) + data


def resolve_batch(
    waiters: Sequence[asyncio.Future[Any]],
    results: Sequence[object],
    error: BaseException | None,
) -> None:
    """Resolve each waiter of a batch to its own result, or every one to ``error``.

    A waiter whose caller gave up (cancelled) is skipped.
    """
    if error is None:
        for waiter, result in zip(waiters, results, strict=True):
            if not waiter.cancelled():
                waiter.set_result(result)
    else:
        for waiter in waiters:
            if not waiter.cancelled():
                waiter.set_exception(error)


def linger(rows: int, take_more: Callable[[], int]) -> None:
    """Let a group of ``rows`` rows wait a little for company (see ``LINGER_BELOW``).

    ``take_more`` takes into the group what has arrived meanwhile and returns
    how many rows that added; none ends the wait.
    """
    for _ in range(LINGER_STEPS):
        if rows >= LINGER_BELOW:
            return
        time.sleep(LINGER_STEP_SECONDS)
        added = take_more()
        if not added:
            return
        rows += added


class _Frames:
    """Cuts a byte stream into the payloads of its frames."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Any]:
        """Take more bytes; return the payloads of the frames now complete."""
        buffer = self._buffer
        buffer += data
        payloads = []
        start = 0
        with memoryview(buffer) as view:
            while len(buffer) - start >= _LENGTH.size:
                (length,) = _LENGTH.unpack_from(buffer, start)
                end = start + _LENGTH.size + length
                if end > len(buffer):
                    break
                # Only the other end of a private socket pair, this very module, writes these.
                with view[start + _LENGTH.size : end] as frame:
                    payloads.append(marshal.loads(frame))  # noqa: S302
                start = end
        del buffer[:start]
        return payloads


class _Inbox:
    """The batches the writer has received and not yet committed."""

    def __init__(self, sock: socket.socket) -> None:
        self._socket = sock
        self._frames = _Frames()
        self.batches: list[Batch] = []
        self.rows = 0
        self.closed = False
        """Whether the server has closed its end: no batch comes after these."""

    def wait(self) -> None:
        """Wait for data, then take all that has arrived."""
        data = self._socket.recv(_READ_SIZE)
        if data:
            self._add(data)
            self.read_available()
        else:
            self.closed = True

    def read_available(self) -> bool:
        """Take what has arrived without waiting; return whether anything had."""
        arrived = False
        while not self.closed:
            try:
                data = self._socket.recv(_READ_SIZE, socket.MSG_DONTWAIT)
            except BlockingIOError:
                break
            if not data:
                self.closed = True
                break
            self._add(data)
            arrived = True
        return arrived

    def linger(self) -> None:
        """Let a small group wait a little for more batches (see ``linger``)."""

        def take_more() -> int:
            before = self.rows
            self.read_available()
            return 0 if self.closed else self.rows - before

        if not self.closed:
            linger(self.rows, take_more)

    def take(self) -> list[Batch]:
        """Return the batches received so far, and forget them."""
        batches, self.batches, self.rows = self.batches, [], 0
        return batches

    def _add(self, data: bytes) -> None:
        for batch in self._frames.feed(data):
            self.batches.append(batch)
            width = len(SERVED_COLUMNS) if type(batch) is tuple else 2
            self.rows += len(batch) // width


def _serve(fd: int, path: str) -> int:
    """Append the batches that arrive on ``fd`` to the database at ``path`` until it closes."""
    # Signals for the server (a terminal's Ctrl-C) are its to handle: the
    # writer stops when the server closes its end of the socket.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with socket.socket(fileno=fd) as sock:
        try:
            connection = open_database(path)
        except sqlite3.Error as error:
            sock.sendall(_frame((0, str(error), _error_code(error))))
            return 1
        sock.sendall(_frame((0, None, 0)))
        inbox = _Inbox(sock)
        while True:
            # Batches that came while the last group was being committed mean
            # load: a small group waits a little for company. A lone batch
            # that finds the writer idle is committed at once.
            if inbox.read_available():
                inbox.linger()
            elif not inbox.batches:
                if inbox.closed:
                    break
                inbox.wait()
            batches = inbox.take()
            if not batches:
                continue
            answer: str | None = None
            code = 0
            try:
                _commit(connection, batches)
            except sqlite3.Error as error:
                answer, code = str(error), _error_code(error)
            with contextlib.suppress(OSError):  # a server that died reads no answer
                sock.sendall(_frame((len(batches), answer, code)))
        connection.close()
    return 0


def _commit(connection: sqlite3.Connection, batches: list[Batch]) -> None:
    """Commit the rows of a group of batches in one transaction."""
    if len(batches) == 1 and type(batches[0]) is list:
        commit_rows(connection, batches[0])
        return
    rows: list[str | bytes] = []
    served: list[str | int] = []
    for batch in batches:
        if isinstance(batch, tuple):
            served += batch
        else:
            rows += batch
    commit_rows(connection, rows, served)


def _error_code(error: sqlite3.Error) -> int:
    return int(getattr(error, "sqlite_errorcode", sqlite3.SQLITE_ERROR))


def writer_error(message: str, code: int) -> sqlite3.OperationalError:
    """Return the error the writer process answered with, with SQLite's error code."""
    error = sqlite3.OperationalError(message)
    error.sqlite_errorcode = code
    return error


class WriterStopped(sqlite3.OperationalError):
    """The writer process stopped before it answered for a batch."""


class InteractionWriter:
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
                    [sys.executable, "-I", str(pathlib.Path(__file__)), str(theirs.fileno()), path],
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
        self._frames = _Frames()
        self._outgoing = bytearray()
        self._pending: collections.deque[
            tuple[list[asyncio.Future[Any]], list[object], Callable[[], None] | None]
        ] = collections.deque()
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

    def send(
        self,
        rows: Batch,
        waiters: list[asyncio.Future[Any]],
        results: list[object],
        committed: Callable[[], None] | None = None,
    ) -> None:
        """Hand a batch to the process; each waiter resolves to its result once committed.

        ``committed`` is called once the batch is committed, before any waiter
        is resolved.
        """
        sock = self._socket
        assert sock is not None, "send() after the writer stopped"
        data = _frame(rows)
        self._pending.append((waiters, results, committed))
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
            data = sock.recv(_READ_SIZE)
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
        for count, error, code in answers:
            if not self._started.done():
                if error is None:
                    self._started.set_result(None)
                else:
                    self._started.set_exception(writer_error(error, code))
                continue
            for _ in range(count):
                waiters, results, committed = self._pending.popleft()
                failure = None if error is None else self._error_for(writer_error(error, code))
                if failure is None and committed is not None:
                    committed()
                resolve_batch(waiters, results, failure)
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
            waiters, results, _ = self._pending.popleft()
            resolve_batch(waiters, results, self._error_for(WriterStopped(reason)))
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
                while data := sock.recv(_READ_SIZE):
                    self._answer(self._frames.feed(data))
            except OSError:
                pass
            self._stop("the interactions writer was closed before committing")
        self.process.wait()


if __name__ == "__main__":
    sys.exit(_serve(int(sys.argv[1]), sys.argv[2]))
