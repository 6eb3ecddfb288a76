"""Connections to PostgreSQL: opened again when the server ended them, and the errors callers get.

``WorkThread`` runs the store's units of work on a connection of its own in a
thread; ``Link`` is a connection of the event loop; ``storage_error`` turns
PostgreSQL's errors into the API's (UNAVAILABLE, with a retry delay, for what
a caller can wait out).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeVar

import psycopg
from google.protobuf import duration_pb2
from google.rpc import error_details_pb2
from psycopg import errors as pg_errors

from auxia_decision._errors import ApiError, Code
from auxia_decision.server._storage.postgres_repository import Connection
from auxia_decision.server._storage.postgres_schema import prepare
from auxia_decision.server._storage.seam import Migration

T = TypeVar("T")

RETRY_AFTER: Final = duration_pb2.Duration(seconds=1)
CONNECT_SECONDS: Final = 5
IN_DOUBT_SECONDS: Final = 10.0
"""How long a batch whose commit lost its connection waits to learn whether it was stored."""
IDLE_IN_TRANSACTION_SECONDS: Final = 10
"""How long PostgreSQL lets a session of ours sit idle inside a transaction before ending it.

A unit of work holds the store's advisory lock for its transaction, and none
waits between its statements for anything but the database: a session idle
that long belongs to a replica that is frozen (a paused VM, a stopped
process) or cut off, and ending it frees the lock for the other replicas."""
_SESSION: Final = (
    b"SELECT set_config('idle_in_transaction_session_timeout', %s, false)",
    (f"{IDLE_IN_TRANSACTION_SECONDS}s",),
)

_log = logging.getLogger("auxia_decision.store")


def first_line(error: BaseException) -> str:
    """Return the first line of an error's message (psycopg's carry libpq's details after it)."""
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def unreachable(error: BaseException) -> bool:
    """Whether an error means the database could not be reached or the connection was lost."""
    return isinstance(
        error,
        pg_errors.OperationalError
        | pg_errors.InterfaceError
        | pg_errors.AdminShutdown
        | pg_errors.CannotConnectNow
        | pg_errors.CrashShutdown,
    ) and not isinstance(error, pg_errors.InsufficientResources | pg_errors.DiskFull)


def storage_error(error: BaseException, *, writes: bool = True) -> ApiError:
    """Return the error a caller gets when PostgreSQL fails under the store.

    What the caller can wait out is UNAVAILABLE (HTTP 503) with a retry
    delay: the database unreachable or restarting, read-only, full, or a
    transaction it had to cancel. Nothing of the failed call is stored.
    """
    retry = [error_details_pb2.RetryInfo(retry_delay=RETRY_AFTER)]
    nothing = "; nothing was written" if writes else ""
    reason = first_line(error)
    if isinstance(error, pg_errors.ReadOnlySqlTransaction):
        message = f"the database is read-only ({reason}){nothing}: try again once it takes writes"
    elif isinstance(error, pg_errors.DiskFull | pg_errors.InsufficientResources):
        message = f"the database is full or out of resources ({reason}){nothing}: try again later"
    elif isinstance(
        error,
        pg_errors.TransactionRollback
        | pg_errors.LockNotAvailable
        | pg_errors.QueryCanceled
        | pg_errors.IdleInTransactionSessionTimeout,
    ):
        message = f"the database cancelled the transaction ({reason}){nothing}: try again"
    elif unreachable(error):
        message = f"the database cannot be reached ({reason}){nothing}: try again"
    else:
        _log.error("the store failed: %s: %s", type(error).__name__, reason)
        return ApiError(Code.INTERNAL, f"the store failed{nothing}")
    return ApiError(Code.UNAVAILABLE, message, details=retry)


def in_doubt_error() -> ApiError:
    return ApiError(
        Code.UNAVAILABLE,
        "the connection to the database was lost while it committed, and the database "
        f"could not be asked within {IN_DOUBT_SECONDS:.0f} s whether it stored the call: "
        "it may have been stored",
        details=[error_details_pb2.RetryInfo(retry_delay=RETRY_AFTER)],
    )


def closed_error() -> ApiError:
    """Return the error of work that reaches the store once it is closing (the server stops)."""
    return ApiError(
        Code.UNAVAILABLE,
        "the server is stopping; nothing was written: try again",
        details=[error_details_pb2.RetryInfo(retry_delay=RETRY_AFTER)],
    )


async def connect(url: str) -> psycopg.AsyncConnection[tuple[Any, ...]]:
    """Open a session of the store (autocommit; see ``IDLE_IN_TRANSACTION_SECONDS``)."""
    connection = await psycopg.AsyncConnection.connect(
        url, autocommit=True, connect_timeout=CONNECT_SECONDS, application_name="auxia-decision"
    )
    try:
        await connection.execute(*_SESSION)
    except BaseException:
        await connection.close()
        raise
    return connection


def connect_sync(url: str) -> Connection:
    """Open a session of the store from a thread (autocommit; see ``connect``)."""
    connection = psycopg.connect(
        url, autocommit=True, connect_timeout=CONNECT_SECONDS, application_name="auxia-decision"
    )
    try:
        connection.execute(*_SESSION)
    except BaseException:
        connection.close()
        raise
    return connection


def alive(connection: psycopg.Connection[Any] | psycopg.AsyncConnection[Any]) -> bool:
    """Whether an idle connection still has its server: what the server sent is read first.

    A server that ended the session (a restart, ``pg_terminate_backend``)
    has said so on the socket; reading it before the next statement lets the
    store open a new connection instead of failing that statement.
    """
    if connection.closed or connection.broken:
        return False
    pgconn = connection.pgconn
    try:
        pgconn.consume_input()
    except psycopg.OperationalError:
        return False
    return pgconn.status == psycopg.pq.ConnStatus.OK


class WorkThread:
    """Runs units of work one at a time on a connection of its own, in a thread of its own.

    Args:
        url: the database's URL.
        prepares: whether its first connection brings the database to today's
            schema (its errors are then the constructor's); else it connects
            when first used.

    """

    def __init__(self, url: str, *, prepares: bool = True) -> None:
        self._url = url
        self._executor = concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix="postgres-work" if prepares else "postgres-read"
        )
        self._connection: Connection | None = None
        self._closed = False
        self.migration: Migration | None = None
        """What bringing the database to today's schema took, if it was older."""
        if prepares:
            self._executor.submit(self._open_and_prepare).result()

    def _open_and_prepare(self) -> None:
        connection = connect_sync(self._url)
        try:
            self.migration = prepare(connection)
        except BaseException:
            connection.close()
            raise
        self._connection = connection

    def _connected(self) -> Connection:
        connection = self._connection
        if connection is None or not alive(connection):
            if connection is not None:
                connection.close()
            self._connection = None
            connection = connect_sync(self._url)
            self._connection = connection
        return connection

    def _call(self, operation: Callable[[Connection], T], writes: bool) -> T:
        try:
            connection = self._connected()
            return operation(connection)
        except psycopg.Error as error:
            if self._connection is not None and self._connection.broken:
                self._connection.close()
                self._connection = None
            raise storage_error(error, writes=writes) from None

    async def run(self, operation: Callable[[Connection], T], *, writes: bool = True) -> T:
        """Run ``operation`` with the connection in the thread; return its result.

        Once ``close`` has begun, fail as ``closed_error`` says.
        """
        if self._closed:
            raise closed_error()
        return await asyncio.wrap_future(self._executor.submit(self._call, operation, writes))

    def call(self, operation: Callable[[Connection], T]) -> T:
        """Run ``operation`` with the connection, from a thread that runs no event loop."""
        if self._closed:
            raise closed_error()
        return self._executor.submit(self._call, operation, True).result()

    def close(self) -> None:
        """Finish the queued work and close the connection."""
        self._closed = True

        def close_connection() -> None:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

        with contextlib.suppress(RuntimeError):
            self._executor.submit(close_connection).result()
        self._executor.shutdown(wait=True)


_TASKS: set[asyncio.Future[Any]] = set()


def spawn(work: Awaitable[Any]) -> asyncio.Future[Any]:
    """Run ``work`` on its own, keeping the task referenced until it is done."""
    task = asyncio.ensure_future(work)
    _TASKS.add(task)
    task.add_done_callback(_TASKS.discard)
    return task


async def _close_quietly(connection: psycopg.AsyncConnection[tuple[Any, ...]]) -> None:
    with contextlib.suppress(psycopg.Error, OSError):
        await connection.close()


class Link:
    """One connection of the event loop, opened again when the server has ended it."""

    def __init__(self, url: str) -> None:
        self._url = url
        self.connection: psycopg.AsyncConnection[tuple[Any, ...]] | None = None
        self._closed = False

    async def connected(self) -> psycopg.AsyncConnection[tuple[Any, ...]]:
        """Return the connection, opening a new one if it is gone.

        Once ``close`` or ``finish`` has begun, raise ``closed_error`` instead
        (a connection opened meanwhile is closed).
        """
        connection = self.connection
        if connection is None or not alive(connection):
            if self._closed:
                raise closed_error()
            self.drop()
            connection = await connect(self._url)
            if self._closed:
                await _close_quietly(connection)
                raise closed_error()
            self.connection = connection
        return connection

    @property
    def lost(self) -> bool:
        """Whether the connection was lost (its last statement's outcome may be unknown)."""
        connection = self.connection
        return connection is not None and (connection.broken or connection.closed)

    def drop(self, failed: psycopg.AsyncConnection[tuple[Any, ...]] | None = None) -> None:
        """Let go of the connection (closed on the side); of ``failed`` only, when given.

        A connection that failed may have been replaced already: closing its
        successor under a statement in flight would leave that statement
        waiting on a closed socket.
        """
        connection = self.connection if failed is None else failed
        if connection is self.connection:
            self.connection = None
        if connection is not None and not connection.closed:
            spawn(_close_quietly(connection))

    async def close(self) -> None:
        """Close the connection, for good."""
        self._closed = True
        connection, self.connection = self.connection, None
        if connection is not None:
            await _close_quietly(connection)

    def finish(self) -> None:
        """Close the connection at once, for good, from outside the event loop."""
        self._closed = True
        connection, self.connection = self.connection, None
        if connection is not None and not connection.closed:
            with contextlib.suppress(Exception):
                connection.pgconn.finish()
