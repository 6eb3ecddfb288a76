"""What users did with treatments: read from the store when needed, kept in a bounded cache.

Every stored interaction of a user (LogTreatmentInteraction) and every
treatment served to them (SENT, by GetTreatments) is one event: a kind, a
treatment, a surface and a time. Rules ask for counts over trailing windows
of days, first and latest times, per treatment, per surface or over all
treatments, counting repeats or distinct treatments. A user's activity keeps
only what those questions need (``DailyActivity``): per kind, treatment,
surface and UTC day, a count and the first and latest times, in a few flat
arrays, so it takes room by the days and treatments it spans, not by its
number of events.

``ActivityCache`` holds the activity of the users decided for lately (least
recently used first out) and keeps each exact as events are committed: every
stored row has an id, ids are committed in increasing order (the store has
one writer at a time), and an entry remembers the highest ids its read saw
(its watermark). A committed event updates a cached user only when its id is
above the entry's watermark; one committed while the user's read is in flight
waits for the read and is applied if the read did not see it. A user not
cached is read again from the store, where every acknowledged event is.
Only the kinds a project's compiled catalogs count are kept up to date
(``fold``, project by project): a treatment served, a SENT event, costs a
decision nothing in a project whose rules never count SENT (bench/NOTES.md,
"Where GetTreatments' CPU went since November"); a catalog that counts a kind
not kept makes the cache forget the project's users, who are read again with
it. Other projects keep theirs.
Another process writing to the same store is caught up the same way: read the
rows above an entry's watermark.
"""

from __future__ import annotations

import array
import asyncio
import bisect
import collections
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Final

from auxia_decision.server._storage.daily import (
    MICROS_PER_DAY,
    DailyRow,
    Event,
    PackedActivity,
    Watermark,
    packed,
)

DEFAULT_CAPACITY: Final = 50_000
"""How many users' activity the cache keeps by default (what one takes: bench/NOTES.md)."""

# One (kind, treatment) tuple per pair in the process, shared by every user's activity.
_KEYS: dict[tuple[int, str], tuple[int, str]] = {}


def _key(kind: int, treatment_id: str) -> tuple[int, str]:
    key = (kind, treatment_id)
    return _KEYS.setdefault(key, key)


def shared(activity: PackedActivity) -> PackedActivity:
    """Return packed activity with each of its keys and surfaces the process's one object."""
    keys, surfaces, days, counts, times = activity
    return (
        tuple([_KEYS.setdefault(key, key) for key in keys]),
        tuple([sys.intern(surface) for surface in surfaces]),
        days,
        counts,
        times,
    )


class DailyActivity:
    """The events of one user, counted by kind, treatment, surface and day (a ``UserActivity``).

    Its rows are kept sorted by (kind, treatment), in parallel arrays: the
    questions rules ask find their rows by bisection.
    """

    __slots__ = ("_counts", "_days", "_keys", "_surfaces", "_times")

    def __init__(self, rows: Iterable[DailyRow] = ()) -> None:
        self._unpack(shared(packed(rows)))

    def _unpack(self, activity: PackedActivity) -> None:
        self._keys, self._surfaces, days, counts, times = activity
        self._days = array.array("q", days)
        self._counts = array.array("q", counts)
        # The first and the latest time of each row, one after the other.
        self._times = array.array("q", times)

    def packed(self) -> PackedActivity:
        """Return the activity as objects the garbage collector does not track (``unpacked``)."""
        return (
            self._keys,
            self._surfaces,
            self._days.tobytes(),
            self._counts.tobytes(),
            self._times.tobytes(),
        )

    @classmethod
    def unpacked(cls, activity: PackedActivity) -> DailyActivity:
        """Return the activity a packed one holds, apart from it: changing one leaves the other."""
        unpacked = cls.__new__(cls)
        unpacked._unpack(activity)
        return unpacked

    def add(self, kind: int, treatment_id: str, surface: str, time_micros: int) -> None:
        """Record one event."""
        day = time_micros // MICROS_PER_DAY
        self._count((kind, treatment_id, surface, day, 1, time_micros, time_micros))

    def merge(self, rows: Iterable[DailyRow]) -> None:
        """Add events counted by kind, treatment, surface and day (rows read after the others)."""
        for row in rows:
            self._count(row)

    def _count(self, row: DailyRow) -> None:
        """Add the events of one kind, treatment, surface and day: their count, first and latest."""
        kind, treatment_id, surface, day, count, first, latest = row
        key = _key(kind, treatment_id)
        keys = self._keys
        start = bisect.bisect_left(keys, key)
        end = bisect.bisect_right(keys, key, start)
        surfaces, days = self._surfaces, self._days
        for index in range(start, end):
            if surfaces[index] == surface and days[index] == day:
                self._counts[index] += count
                times = self._times
                times[2 * index] = min(times[2 * index], first)
                times[2 * index + 1] = max(times[2 * index + 1], latest)
                return
        self._keys = (*keys[:end], key, *keys[end:])
        self._surfaces = (*surfaces[:end], sys.intern(surface), *surfaces[end:])
        days.insert(end, day)
        self._counts.insert(end, count)
        self._times[2 * end : 2 * end] = array.array("q", (first, latest))

    def _range(self, kind: int, treatment_id: str | None) -> range:
        """Return the rows of a kind, with one treatment when given."""
        keys = self._keys
        if treatment_id is None:
            start = bisect.bisect_left(keys, (kind,))
            return range(start, bisect.bisect_left(keys, (kind + 1,), start))
        key = (kind, treatment_id)
        start = bisect.bisect_left(keys, key)
        return range(start, bisect.bisect_right(keys, key, start))

    def _selected(self, kind: int, treatment_id: str | None, surface: str | None) -> Iterator[int]:
        rows = self._range(kind, treatment_id)
        if surface is None:
            return iter(rows)
        surfaces = self._surfaces
        return (index for index in rows if surfaces[index] == surface)

    def count(
        self,
        kind: int,
        *,
        treatment_id: str | None = None,
        surface: str | None = None,
        distinct: bool = False,
        first_day: int,
        last_day: int,
    ) -> int:
        """Return how many events (or distinct treatments) fall on the days given, both included."""
        days, counts = self._days, self._counts
        within = [
            index
            for index in self._selected(kind, treatment_id, surface)
            if first_day <= days[index] <= last_day
        ]
        if distinct:
            return len({self._keys[index] for index in within})
        return sum(counts[index] for index in within)

    def count_of(self, kind: int, treatment_id: str, first_day: int, last_day: int) -> int:
        """Return how many events of a kind with one treatment fall on the days given."""
        days, counts = self._days, self._counts
        total = 0
        for index in self._range(kind, treatment_id):
            if first_day <= days[index] <= last_day:
                total += counts[index]
        return total

    def first(
        self, kind: int, *, treatment_id: str | None = None, surface: str | None = None
    ) -> int | None:
        """Return the time (µs) of the first such event, or None when there is none."""
        times = self._times
        found = [times[2 * index] for index in self._selected(kind, treatment_id, surface)]
        return min(found) if found else None

    def latest(
        self, kind: int, *, treatment_id: str | None = None, surface: str | None = None
    ) -> int | None:
        """Return the time (µs) of the latest such event, or None when there is none."""
        times = self._times
        found = [times[2 * index + 1] for index in self._selected(kind, treatment_id, surface)]
        return max(found) if found else None


_Entry = tuple[PackedActivity, Watermark]
"""A user's activity as cached, packed, and the highest row ids it holds, by table.

Tuples of strings, numbers and bytes only: the garbage collector stops
tracking them, so its full collections, which pause the server, do not grow
with the cache (bench/NOTES.md, "Cold reads").
"""


INTERACTIONS: Final = 0
"""The table of a row id: an interaction's (``Watermark[0]``)."""
SERVED: Final = 1
"""The table of a row id: a served treatment's (``Watermark[1]``)."""

CommittedEvent = tuple[str, str, int, Event]
"""An event as committed: project id, user id, its row's id, the event."""


@dataclass(slots=True)
class _Load:
    """A read of one user's activity in flight, and the events committed meanwhile.

    The cache keeps what it reads only while the load is the user's in ``_loads``:
    one forgotten meanwhile (``forget_all``, ``forget_project``, ``fold``) answers its callers only.
    """

    committed: list[tuple[int, int, Event]]
    """(table, row id, event) of each event of the user committed during the read."""
    waiters: list[asyncio.Future[DailyActivity]]


class ActivityCache:
    """The activity of the users decided for lately, kept exact as events are committed.

    Args:
        capacity: how many users' activity it keeps at most; the least
            recently used goes first.

    """

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 0:
            msg = f"an activity cache holds 0 users or more, not {capacity}"
            raise ValueError(msg)
        self.capacity = capacity
        self._entries: collections.OrderedDict[tuple[str, str], _Entry] = collections.OrderedDict()
        self._loads: dict[tuple[str, str], _Load] = {}
        self._folded: dict[str, frozenset[int]] = {}
        """The kinds kept up to date as events are committed, by project; absent: every kind."""

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, project_id: str, user_id: str) -> DailyActivity | None:
        """Return a user's activity if it is cached (now the most recently used)."""
        key = (project_id, user_id)
        entry = self._entries.get(key)
        if entry is None:
            return None
        self._entries.move_to_end(key)
        return DailyActivity.unpacked(entry[0])

    def load(
        self,
        project_id: str,
        user_id: str,
        read: Callable[[], asyncio.Future[tuple[PackedActivity, Watermark]]],
    ) -> asyncio.Future[DailyActivity]:
        """Return a user's activity, read with ``read`` unless it is cached or being read.

        ``read`` starts a read of the user's rows from the store, which gives
        them with the highest row ids the read saw. Each caller gets a future
        of its own: one that gives up stops nobody else's wait.
        """
        waiter: asyncio.Future[DailyActivity] = asyncio.get_running_loop().create_future()
        key = (project_id, user_id)
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
            waiter.set_result(DailyActivity.unpacked(entry[0]))
            return waiter
        loading = self._loads.get(key)
        if loading is None:
            loading = self._loads[key] = _Load([], [waiter])
            read().add_done_callback(lambda found: self._finish(key, loading, found))
        else:
            loading.waiters.append(waiter)
        return waiter

    def _finish(
        self,
        key: tuple[str, str],
        loading: _Load,
        found: asyncio.Future[tuple[PackedActivity, Watermark]],
    ) -> None:
        """Make a user's activity of a finished read and the events committed meanwhile."""
        kept = self._loads.get(key) is loading
        if kept:
            del self._loads[key]
        if found.cancelled():
            for waiter in loading.waiters:
                waiter.cancel()
            return
        if (failure := found.exception()) is not None:
            _fail(loading.waiters, failure)
            return
        read, watermark = found.result()
        try:
            activity = DailyActivity.unpacked(shared(read))
        except Exception as error:  # a read that is no activity fails its callers, not hangs them
            _fail(loading.waiters, error)
            return
        marks = list(watermark)
        for table, row_id, event in loading.committed:
            if row_id > marks[table]:
                activity.add(*event)
                marks[table] = row_id
        if kept and self.capacity:
            self._entries[key] = (activity.packed(), (marks[0], marks[1]))
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)
        for waiter in loading.waiters:
            if not waiter.done():
                waiter.set_result(activity)

    def fold(self, project_id: str, kinds: frozenset[int]) -> None:
        """Keep a project's counts of these kinds up to date from now on (a catalog counts them).

        Until a project's first call, every kind of it is kept; from then on,
        the kinds of every call for it so far. A kind not kept until now makes
        the cache forget the project's users (their counts of that kind are
        behind), reads in flight included.
        """
        kept = self._folded.get(project_id)
        if kept is None:
            self._folded[project_id] = kinds  # every kind was kept: nothing is behind
        elif not kinds <= kept:
            self._folded[project_id] = kept | kinds
            self.forget_project(project_id)

    def committed(
        self, table: int, first_id: int, events: Sequence[tuple[int, str, str, Event]]
    ) -> None:
        """Apply events just committed: (position of its row in its batch, project, user, event).

        A row's id is ``first_id`` (the batch's first row) plus its position.
        Events of a kind their project does not keep (``fold``) are passed over.
        """
        entries, loads, folded = self._entries, self._loads, self._folded
        for position, project_id, user_id, event in events:
            kept = folded.get(project_id)
            if kept is not None and event[0] not in kept:
                continue
            key = (project_id, user_id)
            row_id = first_id + position
            entry = entries.get(key)
            if entry is not None:
                packed, marks = entry
                if row_id > marks[table]:
                    activity = DailyActivity.unpacked(packed)
                    activity.add(*event)
                    marks = (row_id, marks[1]) if table == INTERACTIONS else (marks[0], row_id)
                    entries[key] = (activity.packed(), marks)
                continue
            loading = loads.get(key)
            if loading is not None:
                loading.committed.append((table, row_id, event))

    def forget_all(self) -> None:
        """Forget every user (the store's data was replaced); reads in flight are not kept."""
        self._entries.clear()
        self._loads.clear()

    def forget_project(self, project_id: str) -> None:
        """Forget a project's users (its data was replaced); their reads in flight are not kept."""
        entries, loads = self._entries, self._loads
        for key in [key for key in entries if key[0] == project_id]:
            del entries[key]
        for key in [key for key in loads if key[0] == project_id]:
            del loads[key]


def _fail(waiters: Iterable[asyncio.Future[DailyActivity]], error: BaseException) -> None:
    """Fail the waiters of a read that still wait."""
    for waiter in waiters:
        if not waiter.done():
            waiter.set_exception(error)
