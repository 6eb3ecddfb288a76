"""Units of work that only read a store's file, on connections of their own, beside the writers.

A file in WAL mode lets a reader see the last commit without the write lock.
The database thread runs each group of work in a transaction that takes it
(``BEGIN IMMEDIATE``), so a long read there (a listing that a rare filter
makes read the whole table) held up every write, and past the busy timeout
the writer process's commits failed. Here such reads run on threads of their
own (``run``), beside the writers, the decisions and each other.

What a decision must read (a user's activity, by index, when no reader
process does) is read at once on the event loop's thread (``submit``): a
read is one index lookup, and a thread's hand-offs and contention for the
GIL cost more (measured: bench/NOTES.md, "Cold reads").
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import sqlite3
import threading
from collections.abc import Callable
from typing import Final, TypeVar

from auxia_decision.server._storage.rows import open_database

T = TypeVar("T")

THREADS: Final = 2
"""How many reads run at once; more wait for one of them to end."""


class ReadThreads:
    """Runs read-only units of work, each in a snapshot of the last commit, on pooled connections.

    Args:
        path: the store's SQLite file.
        error_for: what callers get for a SQLite error.

    """

    def __init__(self, path: str, error_for: Callable[[sqlite3.Error], BaseException]) -> None:
        self._path = path
        self._error_for = error_for
        self._executor = concurrent.futures.ThreadPoolExecutor(
            THREADS, thread_name_prefix="sqlite-read"
        )
        self._lock = threading.Lock()
        self._idle: list[sqlite3.Connection] = []
        self._generation = 0
        """Which file of the path the idle connections read: one more at each ``reopen``."""
        self._open = threading.Event()
        """Clear while the path's file is being replaced (``hold``): no connection is opened."""
        self._open.set()

    async def run(self, operation: Callable[[sqlite3.Connection], T]) -> T:
        """Run a read-only operation on a thread of its own; return its result."""
        return await asyncio.wrap_future(self._executor.submit(self._call, operation))

    def submit(self, operation: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        """Run a read-only operation now, on this thread; the future holds its result or error."""
        waiter: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        try:
            waiter.set_result(self._call(operation))
        except Exception as error:  # handed to its caller
            waiter.set_exception(error)
        return waiter

    def _call(self, operation: Callable[[sqlite3.Connection], T]) -> T:
        try:
            connection, generation = self._taken()
            try:
                connection.execute("BEGIN")
                try:
                    return operation(connection)
                finally:
                    connection.execute("COMMIT")
            finally:
                self._given_back(connection, generation)
        except sqlite3.Error as error:
            raise self._error_for(error) from None

    def _taken(self) -> tuple[sqlite3.Connection, int]:
        """Return an idle connection to the path's file of now (or a new one) and its number."""
        while True:
            self._open.wait()
            with self._lock:
                generation = self._generation
                if self._idle:
                    return self._idle.pop(), generation
            connection = open_database(self._path)
            connection.execute("PRAGMA query_only = ON")
            with self._lock:
                if generation == self._generation and self._open.is_set():
                    return connection, generation
            connection.close()  # opened as the file was replaced: maybe not the new one

    def hold(self) -> None:
        """Open no connection until ``reopen``: the path's file is being replaced."""
        self._open.clear()

    def _given_back(self, connection: sqlite3.Connection, generation: int) -> None:
        with self._lock:
            if generation == self._generation:
                self._idle.append(connection)
                return
        connection.close()  # of a file set aside since

    def reopen(self) -> None:
        """Read a new file of the same path from the next read on; let go of the old one."""
        with self._lock:
            self._generation += 1
            idle, self._idle = self._idle, []
            self._open.set()
        for connection in idle:
            connection.close()

    def close(self) -> None:
        """Wait for the reads under way, then close every connection."""
        self._executor.shutdown(wait=True)
        self.reopen()
