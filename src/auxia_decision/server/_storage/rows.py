"""The rows the store appends, and the SQL that appends them: one batch, one transaction.

A :class:`RowBatch` is what one event loop appended in one pass of it:
logged interactions or served treatments, its rows' values in turn. The
database thread and the writer process both append batches with the
functions here (``commit_rows``, or ``insert_interactions`` and
``insert_served`` inside a transaction of their own), on connections opened
by ``open_database``.

This module imports only the standard library: the writer process, which
runs it, starts in a few milliseconds.
"""

from __future__ import annotations

import enum
import functools
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    import asyncio

    from auxia_decision.server._storage.seam import LoggedRow

# Rows appended by one INSERT statement at most; a group with more rows is
# appended by several statements in one transaction.
ROWS_PER_STATEMENT: Final = 256
# How long a connection waits for another one's write transaction to end.
BUSY_TIMEOUT_MS: Final = 5_000
# Under load, a group of fewer rows than this waits for company: up to
# LINGER_STEPS pauses, and no longer than a pause that brings nothing. Waiting
# costs less than committing in small groups, each with its fsync and its CPU
# time in the committer (bench/NOTES.md, "group commit").
LINGER_BELOW: Final = 16
LINGER_STEPS: Final = 8
LINGER_STEP_SECONDS: Final = 0.00025


class RowKind(enum.IntEnum):
    """What the rows of a batch are."""

    INTERACTIONS = 0
    """Logged interactions: project id, serialized request, for each."""
    SERVED = 1
    """Treatments GetTreatments served: the ``SERVED_COLUMNS`` of each."""


Values = list[Any]
"""The values of a batch's rows, one row after another."""


@dataclass(slots=True)
class RowBatch:
    """The rows one event loop appended in one pass of it, and who waits for them."""

    kind: RowKind
    values: Values
    """Each row's values in turn: the ``INTERACTION_COLUMNS`` of each logged
    interaction, or the ``SERVED_COLUMNS`` of each served treatment."""
    waiters: list[asyncio.Future[Any]]
    results: list[object]
    """What each waiter resolves to once its row is committed."""
    committed: Callable[[int], None] | None = None
    """Called with the id of the batch's first row once the rows are committed,
    before any waiter is resolved."""

    def resolve(self, error: BaseException | None, first_id: int = 0) -> None:
        """Resolve each waiter to its own result, or every one to ``error``.

        A waiter whose caller gave up (cancelled) is skipped; ``committed`` is
        called first, with ``first_id``, when the rows were committed.
        """
        if error is None:
            if self.committed is not None:
                self.committed(first_id)
            for waiter, result in zip(self.waiters, self.results, strict=True):
                if not waiter.cancelled():
                    waiter.set_result(result)
        else:
            for waiter in self.waiters:
                if not waiter.cancelled():
                    waiter.set_exception(error)


def row_count(kind: int, values: Sequence[object]) -> int:
    """Return how many rows of a kind some values hold."""
    return len(values) // len(_TABLES[RowKind(kind)][1])


def split_by_kind(batches: Sequence[tuple[int, Values]]) -> tuple[Values, Values]:
    """Return the interaction values and the served values of (kind, values) batches, in order."""
    interactions: Values = []
    served: Values = []
    for kind, values in batches:
        if kind == RowKind.SERVED:
            served += values
        else:
            interactions += values
    return interactions, served


INTERACTION_COLUMNS: Final = (
    "project_id",
    "body",
    "user_id",
    "kind",
    "treatment_id",
    "surface",
    "time_micros",
    "tracking_id",
)
"""The columns of a logged interaction's row, in the order given: the request as stored (its
serialized bytes), and what rules and listings read of it (``kind`` is the
``TreatmentInteractionType`` of its interaction type)."""


def interaction_values(request: LoggedRow) -> tuple[Any, ...]:
    """Return the values of a logged interaction's row, in the order of ``INTERACTION_COLUMNS``."""
    return (
        request.project_id,
        request.SerializeToString(),
        request.user_id,
        request.interaction_type + 1,
        request.treatment_id,
        request.surface,
        request.interaction_time_micros,
        request.treatment_tracking_id,
    )


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

_TABLES: Final = {
    RowKind.INTERACTIONS: ("interactions", INTERACTION_COLUMNS),
    RowKind.SERVED: ("served", SERVED_COLUMNS),
}


@functools.cache
def _insert_sql(kind: RowKind, rows: int) -> str:
    # Only the placeholders are repeated: the values are bound, never formatted in.
    table, columns = _TABLES[kind]
    one = "(" + ", ".join(["?"] * len(columns)) + ")"
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES {', '.join([one] * rows)}"  # noqa: S608


def insert_rows(connection: sqlite3.Connection, kind: RowKind, values: Sequence[object]) -> int:
    """Append rows of a kind given as their values in turn; return the last row's id.

    One statement appends up to ``ROWS_PER_STATEMENT`` rows; more take several
    statements, which the caller runs inside one transaction. The rows get
    consecutive ids: a store has one writer at a time.
    """
    width = len(_TABLES[kind][1])
    step = width * ROWS_PER_STATEMENT
    last = 0
    for start in range(0, len(values), step):
        chunk = values[start : start + step]
        last = connection.execute(_insert_sql(kind, len(chunk) // width), chunk).lastrowid or 0
    return last


def commit_rows(
    connection: sqlite3.Connection, interactions: Sequence[object], served: Sequence[object] = ()
) -> tuple[int, int]:
    """Append interaction rows and served rows and commit them, all or none.

    Returns the id of the last interaction row and of the last served row
    appended (0 for none). ``connection`` is in autocommit mode; a few
    interactions alone are one statement, which commits by itself.
    """
    width = len(INTERACTION_COLUMNS)
    if not served and len(interactions) <= width * ROWS_PER_STATEMENT:
        return insert_rows(connection, RowKind.INTERACTIONS, interactions), 0
    connection.execute("BEGIN IMMEDIATE")
    try:
        last = insert_rows(connection, RowKind.INTERACTIONS, interactions) if interactions else 0
        last_served = insert_rows(connection, RowKind.SERVED, served) if served else 0
        connection.execute("COMMIT")
    finally:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
    return last, last_served


def first_ids(kinds_and_sizes: Sequence[tuple[int, int]], last: tuple[int, int]) -> list[int]:
    """Return the id of each batch's first row, the batches appended in order.

    ``kinds_and_sizes`` gives each batch's kind and how many values it holds;
    ``last`` the ids of the last interaction and served rows appended
    (``commit_rows``'s answer). A store's rows get consecutive ids.
    """
    rows = [(kind, size // len(_TABLES[RowKind(kind)][1])) for kind, size in kinds_and_sizes]
    remaining = [last[0], last[1]]
    for kind, count in rows:
        remaining[kind] -= count
    found = []
    for kind, count in rows:
        found.append(remaining[kind] + 1)
        remaining[kind] += count
    return found


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


def error_code(error: sqlite3.Error) -> int:
    """Return SQLite's extended error code of an error."""
    return int(getattr(error, "sqlite_errorcode", sqlite3.SQLITE_ERROR))


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
