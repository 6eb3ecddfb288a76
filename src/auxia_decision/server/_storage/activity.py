"""What each user did with treatments: the counts and times that eligibility rules read.

Every stored interaction of a user (LogTreatmentInteraction) and every
treatment served to them (SENT, by GetTreatments) is one event: a kind, a
treatment, a surface and a time. Rules ask for counts over trailing windows
of days, first and latest times, and days since those, per treatment, per
surface or over all treatments, counting repeats or distinct treatments. Only
what those questions need is kept: per kind, treatment and surface, a count
per UTC day and the first and latest times, so a user's activity takes room
by the days and treatments it spans, not by its number of events.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Final, Protocol

from auxia_decision.server._storage.seam import MICROS_PER_DAY, Event


@dataclass(slots=True)
class _Stats:
    """The events of one kind, with one treatment, on one surface."""

    per_day: dict[int, int] = field(default_factory=dict)
    first: int = 0
    latest: int = 0

    def count(self, first_day: int, last_day: int) -> int:
        return sum(n for day, n in self.per_day.items() if first_day <= day <= last_day)


class LoggedInteraction(Protocol):
    """What activity reads of a logged interaction (a ``LogTreatmentInteractionRequest``)."""

    @property
    def project_id(self) -> str: ...
    @property
    def user_id(self) -> str: ...
    @property
    def interaction_type(self) -> int: ...
    @property
    def treatment_id(self) -> str: ...
    @property
    def surface(self) -> str: ...
    @property
    def interaction_time_micros(self) -> int: ...


class DailyActivity:
    """The events of one user, as eligibility rules ask about them (a ``UserActivity``)."""

    __slots__ = ("_by_kind",)

    def __init__(self) -> None:
        # kind -> treatment id -> surface -> stats
        self._by_kind: dict[int, dict[str, dict[str, _Stats]]] = {}

    def add(self, kind: int, treatment_id: str, surface: str, time_micros: int) -> None:
        """Record one event."""
        # Called for every event stored: the lookups and the counting in one frame.
        by_kind = self._by_kind
        by_treatment = by_kind.get(kind)
        if by_treatment is None:
            by_treatment = by_kind[kind] = {}
        by_surface = by_treatment.get(treatment_id)
        if by_surface is None:
            by_surface = by_treatment[treatment_id] = {}
        stats = by_surface.get(surface)
        if stats is None:
            stats = by_surface[surface] = _Stats()
        day = time_micros // MICROS_PER_DAY
        per_day = stats.per_day
        per_day[day] = per_day.get(day, 0) + 1
        if not stats.first or time_micros < stats.first:
            stats.first = time_micros
        if time_micros > stats.latest:  # noqa: PLR1730 - max() is a call, twice as slow here
            stats.latest = time_micros

    def _selected(
        self, kind: int, treatment_id: str | None, surface: str | None
    ) -> Iterator[tuple[str, _Stats]]:
        """Yield (treatment, stats) of the events of a kind, with a treatment or on a surface."""
        by_treatment = self._by_kind.get(kind)
        if not by_treatment:
            return
        if treatment_id is not None:
            selected: Iterable[tuple[str, dict[str, _Stats]]] = (
                [(treatment_id, by_treatment[treatment_id])] if treatment_id in by_treatment else []
            )
        else:
            selected = by_treatment.items()
        for treatment, by_surface in selected:
            if surface is None:
                for stats in by_surface.values():
                    yield treatment, stats
            elif surface in by_surface:
                yield treatment, by_surface[surface]

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
        if not distinct:
            return sum(
                stats.count(first_day, last_day)
                for _, stats in self._selected(kind, treatment_id, surface)
            )
        return len(
            {
                treatment
                for treatment, stats in self._selected(kind, treatment_id, surface)
                if stats.count(first_day, last_day)
            }
        )

    def count_of(self, kind: int, treatment_id: str, first_day: int, last_day: int) -> int:
        """Return how many events of a kind with one treatment fall on the days given."""
        by_treatment = self._by_kind.get(kind)
        if not by_treatment:
            return 0
        by_surface = by_treatment.get(treatment_id)
        if not by_surface:
            return 0
        total = 0
        for stats in by_surface.values():
            for day, number in stats.per_day.items():
                if first_day <= day <= last_day:
                    total += number
        return total

    def first(
        self, kind: int, *, treatment_id: str | None = None, surface: str | None = None
    ) -> int | None:
        """Return the time (µs) of the first such event, or None when there is none."""
        times = [stats.first for _, stats in self._selected(kind, treatment_id, surface)]
        return min(times) if times else None

    def latest(
        self, kind: int, *, treatment_id: str | None = None, surface: str | None = None
    ) -> int | None:
        """Return the time (µs) of the latest such event, or None when there is none."""
        times = [stats.latest for _, stats in self._selected(kind, treatment_id, surface)]
        return max(times) if times else None


NO_ACTIVITY: Final = DailyActivity()
"""The activity of a user of whom nothing is stored (never written to)."""


class ActivityBook:
    """The activity of every user of every project, kept as the events are stored."""

    def __init__(self) -> None:
        self._users: dict[tuple[str, str], DailyActivity] = {}

    def of(self, project_id: str, user_id: str) -> DailyActivity:
        """Return a user's activity (an empty one, not kept, for a user with none)."""
        return self._users.get((project_id, user_id), NO_ACTIVITY)

    def add_all(self, events: Iterable[tuple[str, str, Event]]) -> None:
        """Record stored events given as (project id, user id, event)."""
        # Called for every treatment served: kept to one frame.
        users = self._users
        for project_id, user_id, event in events:
            key = (project_id, user_id)
            activity = users.get(key)
            if activity is None:
                activity = users[key] = DailyActivity()
            activity.add(*event)

    def add_interactions(self, requests: Iterable[LoggedInteraction]) -> None:
        """Record stored interactions (``LogTreatmentInteractionRequest``s that name a user).

        Each is the event ``interaction_event`` makes of it: of the
        ``TreatmentInteractionType`` one after its interaction type.
        """
        users = self._users
        for request in requests:
            key = (request.project_id, request.user_id)
            activity = users.get(key)
            if activity is None:
                activity = users[key] = DailyActivity()
            activity.add(
                request.interaction_type + 1,
                request.treatment_id,
                request.surface,
                request.interaction_time_micros,
            )

    def forget(self, project_id: str | None = None) -> None:
        """Forget the activity of one project's users, or of everyone."""
        if project_id is None:
            self._users.clear()
        else:
            for key in [key for key in self._users if key[0] == project_id]:
                del self._users[key]
