"""The snapshot reader: reads on a connection of its own, beside the writers, at once.

A file-backed store (WAL mode) lets a reader see the last commit without
waiting for the writers: what a decision must read (a user's activity, by
index) is read here, on the event loop's thread, rather than queued to the
database thread, whose groups of work take the write lock. Reading at once
was measured against a thread of its own for these reads: a read is one
index lookup, and a thread's hand-offs and contention for the GIL cost more
(the figures are in bench/NOTES.md, "Cold reads").
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from typing import TypeVar

from auxia_decision.server._storage.rows import open_database

T = TypeVar("T")


class SnapshotReader:
    """Runs read-only operations at once, each in a snapshot of the last commit.

    Args:
        path: the store's SQLite file.
        error_for: what callers get for a SQLite error.

    """

    def __init__(self, path: str, error_for: Callable[[sqlite3.Error], BaseException]) -> None:
        self._path = path
        self._error_for = error_for
        self._connection: sqlite3.Connection | None = None

    def submit(self, operation: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        """Run a read-only operation now; the future holds its result or its error."""
        waiter: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        try:
            connection = self._connection
            if connection is None:
                connection = self._connection = open_database(self._path)
                connection.execute("PRAGMA query_only = ON")
            connection.execute("BEGIN")
            try:
                waiter.set_result(operation(connection))
            finally:
                connection.execute("COMMIT")
        except sqlite3.Error as error:
            waiter.set_exception(self._error_for(error))
        except Exception as error:  # handed to its caller
            waiter.set_exception(error)
        return waiter

    def reopen(self) -> None:
        """Read a new file of the same path from the next read on."""
        self.close()

    def close(self) -> None:
        """Close the connection."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None
