"""A user's events counted by kind, treatment, surface and UTC day, as read from SQLite.

What the activity cache keeps of a user (``activity.DailyActivity``) is made
of these rows, packed (``packed``): tuples and bytes, which the garbage
collector does not track and ``marshal`` carries between processes.

This module imports only the standard library: the reader process, which
reads users' activity beside the server's event loop, runs it.
"""

from __future__ import annotations

import array
import sqlite3
from collections.abc import Iterable
from typing import Final

MICROS_PER_DAY: Final = 86_400_000_000

Event = tuple[int, str, str, int]
"""One event of a user: its kind (a ``TreatmentInteractionType`` number), treatment,
surface, time (µs since the Unix epoch)."""

DailyRow = tuple[int, str, str, int, int, int, int]
"""A user's events of one kind, treatment, surface and UTC day: kind, treatment, surface,
day, count, first time and latest time (µs since the Unix epoch)."""

PackedActivity = tuple[tuple[tuple[int, str], ...], tuple[str, ...], bytes, bytes, bytes]
"""A user's daily rows sorted, as parallel fields: the (kind, treatment) and the surface
of each row, then their days, counts, and first and latest times (one after the other)
as 64-bit integers in the machine's order."""

Watermark = tuple[int, int]
"""The highest interaction row id and served row id a read of the store saw."""


def daily_rows(events: Iterable[Event]) -> list[DailyRow]:
    """Return events counted by kind, treatment, surface and UTC day (in no set order)."""
    counted: dict[tuple[int, str, str, int], list[int]] = {}
    for kind, treatment_id, surface, time_micros in events:
        key = (kind, treatment_id, surface, time_micros // MICROS_PER_DAY)
        found = counted.get(key)
        if found is None:
            counted[key] = [1, time_micros, time_micros]
            continue
        found[0] += 1
        if time_micros < found[1]:
            found[1] = time_micros
        elif time_micros > found[2]:
            found[2] = time_micros
    return [(*key, count, first, latest) for key, (count, first, latest) in counted.items()]


def packed(rows: Iterable[DailyRow]) -> PackedActivity:
    """Return daily rows sorted and packed (see ``PackedActivity``)."""
    ordered = sorted(rows)
    return (
        tuple([(row[0], row[1]) for row in ordered]),
        tuple([row[2] for row in ordered]),
        array.array("q", [row[3] for row in ordered]).tobytes(),
        array.array("q", [row[4] for row in ordered]).tobytes(),
        array.array("q", [time for row in ordered for time in (row[5], row[6])]).tobytes(),
    )


# A user's events: the logged interactions that name the user, then the
# treatments served (kind SENT), above the floors a Reset of the project left
# (``sqlite_schema``). Counted by day in Python (``daily_rows``), which was
# quicker than SQL's GROUP BY, which sorts them in a temporary B-tree first
# (bench/NOTES.md, "Cold reads"). ?1 is the project, ?2 the user, ?3 SENT.
_USER_EVENTS: Final = (
    "SELECT kind, treatment_id, surface, time_micros FROM interactions "
    "WHERE project_id = ?1 AND user_id = ?2 AND interaction_id > "
    "coalesce((SELECT interactions FROM record_floors WHERE project_id = ?1), 0) "
    "UNION ALL SELECT ?3, treatment_id, surface, time_micros FROM served "
    "WHERE project_id = ?1 AND user_id = ?2 AND served_id > "
    "coalesce((SELECT served FROM record_floors WHERE project_id = ?1), 0)"
)
_LAST_IDS: Final = (
    "SELECT (SELECT COALESCE(MAX(interaction_id), 0) FROM interactions), "
    "(SELECT COALESCE(MAX(served_id), 0) FROM served)"
)


def read_daily_rows(
    connection: sqlite3.Connection, project_id: str, user_id: str, sent: int
) -> list[DailyRow]:
    """Return a user's events counted by day, read by index; ``sent`` is the kind of SENT."""
    return daily_rows(connection.execute(_USER_EVENTS, (project_id, user_id, sent)))


def read_last_ids(connection: sqlite3.Connection) -> Watermark:
    """Return the highest interaction and served row ids stored (0 for none)."""
    last_interaction, last_served = connection.execute(_LAST_IDS).fetchone()
    return int(last_interaction), int(last_served)
