"""The listings' queries, for either store's SQL: records in sequence order, by index if one fits.

Each repository lists by ``listed_interactions`` and ``listed_served_rows``,
giving them how it runs a query (``Read``).

The filters that single out a few records read by an index that leads with
the project: an interaction's tracking id or user, a served row's response
or user (the first of them given picks it); the other filters are checked on
the rows it yields. Such a listing reads one project at a time (a listing of
every project merges theirs by sequence). On SQLite each of those indexes
keeps a key's rows in sequence order (no sort; a page stops reading where it
ends); so do PostgreSQL's by tracking id and by response, while its indexes
by user lead to a user's rows by transaction, sorted for each page. Without
such a filter, the rows are read in sequence order, each checked: a
treatment, a surface, a kind or a time window shared by many records fills a
page after a few pages' worth of rows, a rare one would read further: such a
read steps over at most ``SCAN_ROWS`` sequence numbers a call, from the
next record (of the listing's project: one seek of the index by project, so
another project's records after the last of this one's are not stepped over;
of every project: one seek of the primary key), and says where
it stopped (``Listing.resume_after``), so that a page may come back short, or
empty, with a token to go on from (as AIP-158 allows). Each index costs every
write (bench/NOTES.md, "Listing indexes").
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from auxia.decision.model.treatment_interaction_service_pb2 import LogTreatmentInteractionRequest
from auxia_decision.server._storage.seam import (
    InteractionFilter,
    Listing,
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
_Listed = TypeVar("_Listed")

_NO_FLOORS: Final[Mapping[str, int]] = {}
FLOORS: Final = "SELECT project_id, interactions, served FROM record_floors"
"""The query of the projects whose Reset hid records, and the row id of each table it hid
through: the rows of both tables (``record_floors``), for ``floors_of``."""


def floors_of(rows: Iterable[tuple[Any, ...]], table: str) -> dict[str, int]:
    """Return each project's floor in a record table (``interactions``, ``served``).

    ``rows``: those of ``FLOORS``.
    """
    column = 1 if table == "interactions" else 2
    return {str(row[0]): int(row[column]) for row in rows}


SCAN_ROWS = 100_000
"""The most sequence numbers a listing read in sequence order steps over in one call.

What a call costs is in bench/NOTES.md, "Listing indexes". Read when a listing
starts, so that tests can make it small.
"""


SERVED_SELECT: Final = (
    "served_id, project_id, user_id, response_id, treatment_id, surface, tracking_id, time_micros"
)
"""What a listing selects of a served row, in the order ``served_row`` reads it."""


def served_row(row: tuple[Any, ...]) -> ServedRow:
    """Return a served row selected as ``SERVED_SELECT`` lists them."""
    sequence, project, user, response, treatment, surface, tracking, time = row
    served = ServedTreatment(str(response), str(treatment), str(surface), str(tracking), int(time))
    return ServedRow(int(sequence), str(project), str(user), served)


def interactions_query(
    select: str,
    project_id: str,
    after: int,
    matching: InteractionFilter,
    dialect: Dialect,
    *,
    newest_first: bool = False,
    through: int | None = None,
    floor: int = 0,
) -> tuple[str, list[object]]:
    """Return the query (``SELECT select``) of a project's matching interactions after ``after``.

    Newest first, "after" is before: the rows below ``after`` (any row when 0).
    ``through``: the last sequence number read (the least, newest first).
    ``floor``: the project's rows at and below it are hidden (``record_floors``).
    """
    others: list[tuple[str, object]] = [("treatment_id", matching.treatment_id)]
    if matching.interaction_type:
        others.append(("kind", matching.interaction_type + 1))
    return _query(
        select,
        ("interactions", "interaction_id"),
        (project_id, after, _by_index_first(matching), others),
        (matching.start_micros, matching.end_micros),
        dialect,
        newest_first=newest_first,
        through=through,
        floor=floor,
    )


def served_query(
    select: str,
    project_id: str,
    after: int,
    matching: ServedFilter,
    dialect: Dialect,
    *,
    newest_first: bool = False,
    through: int | None = None,
    floor: int = 0,
) -> tuple[str, list[object]]:
    """Return the query (``SELECT select``) of a project's matching served rows after ``after``.

    Newest first, "after" is before: the rows below ``after`` (any row when 0).
    ``through``: the last sequence number read (the least, newest first).
    ``floor``: the project's rows at and below it are hidden (``record_floors``).
    """
    others: list[tuple[str, object]] = [
        ("treatment_id", matching.treatment_id),
        ("surface", matching.surface),
    ]
    return _query(
        select,
        ("served", "served_id"),
        (project_id, after, _by_index_first(matching), others),
        (matching.start_micros, matching.end_micros),
        dialect,
        newest_first=newest_first,
        through=through,
        floor=floor,
    )


def decisions_query(
    project_id: str, response_ids: Sequence[str], dialect: Dialect
) -> tuple[str, list[object]]:
    """Return the query of every served row of some of a project's responses, in no order.

    One seek of the index by response for each. Unordered, so that no planner
    reads the table in sequence order to spare itself a sort of a few rows.
    """
    marks = ", ".join([dialect.mark] * len(response_ids))
    query = (
        f"SELECT {SERVED_SELECT} FROM served "  # noqa: S608 - our own columns
        f"WHERE project_id = {dialect.mark} AND response_id IN ({marks})"
    )
    return query, [project_id, *response_ids]


def reads_by_index(matching: InteractionFilter | ServedFilter) -> bool:
    """Whether a listing of these filters reads by an index (one project at a time)."""
    return any(value for _, value in _by_index_first(matching))


def _by_index_first(matching: InteractionFilter | ServedFilter) -> list[tuple[str, object]]:
    """Return the filters with an index of their own, most selective first, and their values."""
    if isinstance(matching, InteractionFilter):
        return [("tracking_id", matching.tracking_id), ("user_id", matching.user_id)]
    return [("response_id", matching.response_id), ("user_id", matching.user_id)]


def next_project_query(table: str, dialect: Dialect, *, inclusive: bool = False) -> str:
    """Return the query of the least project id above a given one with rows in ``table``.

    ``inclusive``: at or above it. One seek of the table's indexes by
    project, however many rows it holds.
    """
    above = ">=" if inclusive else ">"
    return f"SELECT MIN(project_id) FROM {table} WHERE project_id {above} {dialect.mark}"  # noqa: S608 - our own table names


def listed_projects(
    project_id: str,
    matching: InteractionFilter | ServedFilter,
    least: Callable[[str, bool], object],
) -> list[str]:
    """Return the projects a listing reads one at a time (``[""]``: all at once; none: ``[]``).

    ``least(value, inclusive)`` runs ``next_project_query`` (None when no
    project is left). A project with no rows is not read: read in sequence
    order, its listing would step over every other project's rows to find
    none.
    """
    if project_id:
        return [project_id] if least(project_id, True) == project_id else []
    if not reads_by_index(matching):
        return [project_id]
    found: list[str] = []
    while (next_one := least(found[-1] if found else "", False)) is not None:
        found.append(str(next_one))
    return found


def _query(
    select: str,
    table: tuple[str, str],
    selected: tuple[str, int, list[tuple[str, object]], list[tuple[str, object]]],
    window: tuple[int | None, int | None],
    dialect: Dialect,
    *,
    newest_first: bool,
    through: int | None,
    floor: int = 0,
) -> tuple[str, list[object]]:
    """Return a listing's query: ``selected`` is (project, after, filters by index, others).

    ``through``: the last sequence number read (the least, newest first); None: no bound.
    ``floor``: the rows at and below it are not read.
    """
    name, sequence = table
    project_id, after, by_index, others = selected
    mark = dialect.mark
    given = [(column, value) for column, value in by_index + others if value]
    chosen = next((column for column, value in by_index if value), None)
    conditions, values = _past(sequence, mark, (after, floor), newest_first=newest_first)
    if through is not None:
        conditions.append(f"{sequence} {'>=' if newest_first else '<='} {mark}")
        values.append(through)
    if project_id:
        # Without a column to choose an index by, the rows are read in sequence order, by
        # the primary key: a stretch of them, each checked (the index by project serves the
        # seeks of where a stretch starts).
        project = "project_id" if chosen else f"{dialect.not_by_index}project_id"
        conditions.append(f"{project} = {mark}")
        values.append(project_id)
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
    where = f"WHERE {' AND '.join(conditions)} " if conditions else ""
    order = "DESC" if newest_first else "ASC"
    query = f"SELECT {select} FROM {name} {where}ORDER BY {sequence} {order}"  # noqa: S608 - our own columns
    return query, values


def _past(
    sequence: str, mark: str, bounds: tuple[int, int], *, newest_first: bool
) -> tuple[list[str], list[object]]:
    """Return the conditions (and values) of the rows past ``after`` and above ``floor``.

    ``bounds``: (after, floor). Newest first, "past" is below ``after``
    (any row when 0).
    """
    after, floor = bounds
    if not newest_first:
        return [f"{sequence} > {mark}"], [max(after, floor)]
    conditions: list[str] = []
    values: list[object] = []
    for column_bound, value in ((f"{sequence} < {mark}", after), (f"{sequence} > {mark}", floor)):
        if value:
            conditions.append(column_bound)
            values.append(value)
    return conditions, values


Query = tuple[str, list[object]]
"""A query's text, in a dialect's placeholders, and its values."""
Read = Callable[[Query], Iterator[tuple[Any, ...]]]
"""How a store runs a query: its rows, as they are taken."""
Reads = tuple[Read, Read]
"""How a store runs a listing's queries, and its seeks of one row (at once, if that is cheaper)."""


def listed_interactions(
    reads: Reads,
    projects: Sequence[str],
    after: int,
    matching: InteractionFilter,
    dialect: Dialect,
    *,
    newest_first: bool,
    floors: Mapping[str, int] = _NO_FLOORS,
) -> Listing[tuple[int, LogTreatmentInteractionRequest]]:
    """Return (sequence, request) for the matching interactions of the projects listed.

    ``projects`` are what ``listed_projects`` returns; each is read with
    ``reads``, and their rows are merged by sequence. Read in sequence order,
    the listing stops after ``SCAN_ROWS`` sequence numbers. ``floors``: the
    rows of a project at and below its floor are hidden by its Reset
    (``FLOORS``): not listed.
    """
    parse = LogTreatmentInteractionRequest.FromString
    return _listing(
        reads,
        ("interactions", "interaction_id", dialect.mark),
        (projects, reads_by_index(matching), (after, newest_first), floors),
        _query_of(
            interactions_query,
            ("interaction_id, project_id, body", after, matching, dialect),
            floors,
        ),
        lambda row: (int(row[0]), parse(row[2])),
    )


def listed_served_rows(
    reads: Reads,
    projects: Sequence[str],
    after: int,
    matching: ServedFilter,
    dialect: Dialect,
    *,
    newest_first: bool,
    floors: Mapping[str, int] = _NO_FLOORS,
) -> Listing[ServedRow]:
    """Return the matching served rows of the projects listed, as ``listed_interactions`` does."""
    return _listing(
        reads,
        ("served", "served_id", dialect.mark),
        (projects, reads_by_index(matching), (after, newest_first), floors),
        _query_of(served_query, (SERVED_SELECT, after, matching, dialect), floors),
        served_row,
    )


def _query_of(
    builder: Callable[..., Query],
    given: tuple[str, int, InteractionFilter | ServedFilter, Dialect],
    floors: Mapping[str, int],
) -> Callable[[str, int | None, bool], Query]:
    """Return the query of a project's rows (through a sequence number, or all; which order).

    ``builder`` is ``interactions_query`` or ``served_query``; ``given``: its
    select, the sequence the listing starts after, the filters, the dialect;
    ``floors``: each project's floor.
    """
    select, after, matching, dialect = given

    def query(project: str, through: int | None, newest_first: bool) -> Query:
        return builder(
            select,
            project,
            after,
            matching,
            dialect,
            newest_first=newest_first,
            through=through,
            floor=floors.get(project, 0),
        )

    return query


def _listing(
    reads: Reads,
    table: tuple[str, str, str],
    listed: tuple[Sequence[str], bool, tuple[int, bool], Mapping[str, int]],
    query: Callable[[str, int | None, bool], Query],
    convert: Callable[[tuple[Any, ...]], _Listed],
) -> Listing[_Listed]:
    """Return a listing of a table's rows (``table``: its name, sequence column and mark).

    ``listed``: the projects, whether their rows are read by an index, the
    sequence the listing starts after and whether newest first, each
    project's floor; ``query``: the query of a project's rows (``_query_of``).
    """
    read, seek = reads
    projects, by_index, (after, newest_first), floors = listed
    if len(projects) != 1 or by_index:
        streams = [read(query(project, None, newest_first)) for project in projects]
        rows = _merged_by_sequence(streams, newest_first=newest_first)
        return Listing(map(convert, rows))
    stopped: list[int] = []

    def bounded(project: str) -> Iterator[_Listed]:
        floor = floors.get(project, 0)
        first = _next_sequence(seek, table, (project, after, floor), newest_first=newest_first)
        if first is None:
            return
        scan = SCAN_ROWS
        through = first - scan + 1 if newest_first else first + scan - 1
        for row in read(query(project, through, newest_first)):
            # Every project at once: each row against its own project's floor (both
            # tables' selects put the project second).
            if project or row[0] > floors.get(row[1], 0):
                yield convert(row)
        if newest_first and through <= 1:
            return  # sequence numbers start at 1
        if (
            _next_sequence(seek, table, (project, through, floor), newest_first=newest_first)
            is not None
        ):
            stopped.append(through)

    return Listing(bounded(projects[0]), stopped)


def _next_sequence(
    read: Read, table: tuple[str, str, str], past: tuple[str, int, int], *, newest_first: bool
) -> int | None:
    """Return the first sequence number past ``past`` in reading order, or None.

    ``past``: (project, sequence, the project's floor). Newest first, the
    greatest below the sequence (the greatest of all when 0) and above the
    floor. Of a project's rows when one is given (one seek of the table's
    index by project: other projects' rows are not stepped over), else of
    every row (one seek of its primary key).
    """
    name, sequence, mark = table
    project, after, floor = past
    conditions, values = _past(sequence, mark, (after, floor), newest_first=newest_first)
    if project:
        conditions.append(f"project_id = {mark}")
        values.append(project)
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    text = f"SELECT {'MAX' if newest_first else 'MIN'}({sequence}) FROM {name}{where}"  # noqa: S608 - our own columns
    found = next(read((text, values)))[0]
    return None if found is None else int(found)


def _merged_by_sequence(streams: Iterable[Iterator[_Row]], *, newest_first: bool) -> Iterator[_Row]:
    """Merge streams of rows, each in sequence order (their first column; or newest first)."""
    return heapq.merge(*streams, key=lambda row: row[0], reverse=newest_first)
