"""The reader thread: reads on a connection of its own, in snapshots, beside the writers.

A file-backed store (WAL mode) lets readers see the last commit without
waiting for the writer: what a decision must read (a user's activity) goes to
this thread rather than to the database thread, whose groups of work take the
write lock. The reads queued meanwhile run in one snapshot (one read
transaction), and their callers are woken once per event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from auxia_decision.server._storage.rows import open_database

T = TypeVar("T")

_Read = tuple[Callable[[sqlite3.Connection], Any], asyncio.Future[Any], asyncio.AbstractEventLoop]
_MAX_GROUP = 256


def _settle(outcomes: list[tuple[asyncio.Future[Any], bool, object]]) -> None:
    for waiter, ok, value in outcomes:
        if waiter.cancelled():
            continue
        if ok:
            waiter.set_result(value)
        else:
            assert isinstance(value, BaseException)
            waiter.set_exception(value)


class ReaderThread:
    """Runs read-only operations on a store's file, several in one snapshot.

    Args:
        path: the store's SQLite file (not ``:memory:``: another connection
            could not see it).
        error_for: what callers get for a SQLite error.

    """

    def __init__(self, path: str, error_for: Callable[[sqlite3.Error], BaseException]) -> None:
        self._path = path
        self._error_for = error_for
        self._reads: queue.SimpleQueue[_Read | None] = queue.SimpleQueue()
        self._generation = 0
        self._thread = threading.Thread(target=self._serve, name="store-reader", daemon=True)
        self._thread.start()

    def submit(self, operation: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        """Queue a read-only operation; the future gives its result, read in a snapshot."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[T] = loop.create_future()
        self._reads.put((operation, waiter, loop))
        return waiter

    def _serve(self) -> None:
        connection: sqlite3.Connection | None = None
        opened = -1
        while True:
            first = self._reads.get()
            if first is None:
                break
            group = [first]
            while len(group) < _MAX_GROUP:
                try:
                    read = self._reads.get_nowait()
                except queue.Empty:
                    break
                if read is None:
                    self._reads.put(None)  # stop after this group
                    break
                group.append(read)
            try:
                # A store started afresh is a new file: read that one.
                generation = self._generation
                if connection is None or opened != generation:
                    if connection is not None:
                        connection.close()
                    connection = open_database(self._path)
                    connection.execute("PRAGMA query_only = ON")
                    opened = generation
                outcomes = self._snapshot(connection, group)
            except sqlite3.Error as error:
                failure = self._error_for(error)
                outcomes = [(waiter, False, failure) for _, waiter, _ in group]
            by_loop: dict[
                asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], bool, object]]
            ] = {}
            for (_, waiter, loop), outcome in zip(group, outcomes, strict=True):
                by_loop.setdefault(loop, []).append((waiter, outcome[1], outcome[2]))
            for loop, settled in by_loop.items():
                with contextlib.suppress(RuntimeError):  # a closed loop waits for nothing
                    loop.call_soon_threadsafe(_settle, settled)
        if connection is not None:
            connection.close()

    def _snapshot(
        self, connection: sqlite3.Connection, group: list[_Read]
    ) -> list[tuple[asyncio.Future[Any], bool, object]]:
        """Run a group of reads in one read transaction; return each one's outcome."""
        outcomes: list[tuple[asyncio.Future[Any], bool, object]] = []
        connection.execute("BEGIN")
        try:
            for operation, waiter, _ in group:
                try:
                    outcomes.append((waiter, True, operation(connection)))
                except sqlite3.Error as error:
                    outcomes.append((waiter, False, self._error_for(error)))
                except Exception as error:  # handed to its caller
                    outcomes.append((waiter, False, error))
        finally:
            connection.execute("COMMIT")
        return outcomes

    def reopen(self) -> None:
        """Read a new file of the same path from the next group of reads on."""
        self._generation += 1

    def close(self) -> None:
        """Finish the queued reads, close the connection and end the thread."""
        if self._thread.is_alive():
            self._reads.put(None)
            self._thread.join()
