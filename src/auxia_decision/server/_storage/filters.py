"""The listings' queries, for either store's SQL: one project's records in sequence order.

A listing reads one project at a time (a listing of every project merges
theirs by sequence). The filters that single out a few records read by an
index that leads with the project and keeps each key's rows in sequence
order (no sort; a page stops reading where it ends): an interaction's user or
tracking id, a served row's user or response. Of those given, the first
picks the index, and the other filters are checked on the rows it yields.
Without one, the project's rows are read in sequence order, each checked,
stepping over other projects' rows: a treatment, a surface, a kind or a time
window shared by many records fills a page after a few pages' worth of rows,
a rare one reads further. Each index costs every write (bench/NOTES.md,
"Listing indexes").
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from auxia_decision.server._storage.seam import (
    InteractionFilter,
    ServedFilter,
    ServedRow,
    ServedTreatment,
)


@dataclass(frozen=True, slots=True)
class Dialect:
    """How a store's SQL writes what the queries need."""

    mark: str
    """The placeholder of a value: ``?`` or ``%s``."""
    not_by_index: str
    """What keeps a column's condition from choosing the index (SQLite's unary ``+``)."""


SQLITE: Final = Dialect("?", "+")
POSTGRES: Final = Dialect("%s", "")
"""PostgreSQL's planner chooses by the statistics it keeps."""

_Row = TypeVar("_Row", bound=tuple[Any, ...])

# Each table's columns with an index of their own (after the project), most selective first.
_INTERACTIONS_INDEXED: Final = ("user_id", "tracking_id")
_SERVED_INDEXED: Final = ("user_id", "response_id")


SERVED_COLUMNS: Final = (
    "served_id, project_id, user_id, response_id, treatment_id, surface, tracking_id, time_micros"
)
"""What a listing selects of a served row, in the order ``served_row`` reads it."""


def served_row(row: tuple[Any, ...]) -> ServedRow:
    """Return a served row selected as ``SERVED_COLUMNS`` lists them."""
    sequence, project, user, response, treatment, surface, tracking, time = row
    served = ServedTreatment(str(response), str(treatment), str(surface), str(tracking), int(time))
    return ServedRow(int(sequence), str(project), str(user), served)


def interactions_query(
    select: str, project_id: str, after: int, matching: InteractionFilter, dialect: Dialect
) -> tuple[str, list[object]]:
    """Return the query (``SELECT select``) of a project's matching interactions after ``after``."""
    equal: list[tuple[str, object]] = [
        ("user_id", matching.user_id),
        ("tracking_id", matching.tracking_id),
        ("treatment_id", matching.treatment_id),
    ]
    if matching.interaction_type:
        equal.append(("kind", matching.interaction_type + 1))
    return _query(
        select,
        ("interactions", "interaction_id", _INTERACTIONS_INDEXED),
        (project_id, after, equal),
        (matching.start_micros, matching.end_micros),
        dialect,
    )


def served_query(
    select: str, project_id: str, after: int, matching: ServedFilter, dialect: Dialect
) -> tuple[str, list[object]]:
    """Return the query (``SELECT select``) of a project's matching served rows after ``after``."""
    equal: list[tuple[str, object]] = [
        ("user_id", matching.user_id),
        ("response_id", matching.response_id),
        ("tracking_id", matching.tracking_id),
        ("treatment_id", matching.treatment_id),
        ("surface", matching.surface),
    ]
    return _query(
        select,
        ("served", "served_id", _SERVED_INDEXED),
        (project_id, after, equal),
        (matching.start_micros, matching.end_micros),
        dialect,
    )


def next_project_query(table: str, dialect: Dialect) -> str:
    """Return the query of the least project id above a given one with rows in ``table``.

    One seek of the table's indexes by project, however many rows it holds.
    """
    return f"SELECT MIN(project_id) FROM {table} WHERE project_id > {dialect.mark}"  # noqa: S608 - our own table names


def _query(
    select: str,
    table: tuple[str, str, tuple[str, ...]],
    selected: tuple[str, int, list[tuple[str, object]]],
    window: tuple[int | None, int | None],
    dialect: Dialect,
) -> tuple[str, list[object]]:
    name, sequence, indexed = table
    project_id, after, equal = selected
    mark = dialect.mark
    given = [(column, value) for column, value in equal if value]
    chosen = next((column for column, _ in given if column in indexed), None)
    # Without a column to choose an index by, the rows are read in sequence order
    # (an index by project alone would hand them over by its other column).
    project = "project_id" if chosen else f"{dialect.not_by_index}project_id"
    conditions = [f"{project} = {mark}", f"{sequence} > {mark}"]
    values: list[object] = [project_id, after]
    for column, value in given:
        prefix = "" if column == chosen else dialect.not_by_index
        conditions.append(f"{prefix}{column} = {mark}")
        values.append(value)
    start, end = window
    if start is not None:
        conditions.append(f"{dialect.not_by_index}time_micros >= {mark}")
        values.append(start)
    if end is not None:
        conditions.append(f"{dialect.not_by_index}time_micros < {mark}")
        values.append(end)
    query = (
        f"SELECT {select} FROM {name} WHERE {' AND '.join(conditions)} "  # noqa: S608 - our own columns
        f"ORDER BY {sequence}"
    )
    return query, values


def merged_by_sequence(streams: Iterable[Iterator[_Row]]) -> Iterator[_Row]:
    """Merge streams of rows, each in sequence order (their first column), into one."""
    return heapq.merge(*streams, key=lambda row: row[0])
