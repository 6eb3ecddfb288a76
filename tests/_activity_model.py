"""A plain reading of what rules ask of a user's activity, to hold the store's answers to."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from auxia_decision.server._storage.seam import MICROS_PER_DAY, Event, UserActivity


@dataclass(frozen=True)
class Question:
    """One question a rule may ask: a count over days, or a first or latest time."""

    what: str
    """``count``, ``count_of``, ``first`` or ``latest``."""
    kind: int
    treatment_id: str | None
    surface: str | None
    distinct: bool = False
    first_day: int = 0
    last_day: int = 0

    def asked_of(self, activity: UserActivity) -> int | None:
        """Return the answer a ``UserActivity`` gives."""
        if self.what == "count_of":
            assert self.treatment_id is not None
            return activity.count_of(self.kind, self.treatment_id, self.first_day, self.last_day)
        if self.what == "count":
            return activity.count(
                self.kind,
                treatment_id=self.treatment_id,
                surface=self.surface,
                distinct=self.distinct,
                first_day=self.first_day,
                last_day=self.last_day,
            )
        found = activity.first if self.what == "first" else activity.latest
        return found(self.kind, treatment_id=self.treatment_id, surface=self.surface)

    def answered_by(self, events: Iterable[Event]) -> int | None:
        """Return the answer, read plainly from the events."""
        chosen = [
            (treatment, time)
            for kind, treatment, surface, time in events
            if kind == self.kind
            and (self.treatment_id is None or treatment == self.treatment_id)
            and (self.surface is None or surface == self.surface or self.what == "count_of")
        ]
        if self.what in ("first", "latest"):
            times = [time for _, time in chosen]
            if not times:
                return None
            return min(times) if self.what == "first" else max(times)
        within = [
            treatment
            for treatment, time in chosen
            if self.first_day <= time // MICROS_PER_DAY <= self.last_day
        ]
        return len(set(within)) if self.distinct else len(within)


def questions(
    kinds: Sequence[int], treatments: Sequence[str], surfaces: Sequence[str], today: int
) -> list[Question]:
    """Return every question over these kinds, treatments and surfaces, for two windows."""
    asked = []
    for kind, treatment, surface in itertools.product(
        kinds, [None, *treatments], [None, *surfaces]
    ):
        for first_day in (today - 6, today - 30):
            for distinct in (False, True):
                asked.append(
                    Question("count", kind, treatment, surface, distinct, first_day, today)
                )
            if treatment is not None and surface is None:
                asked.append(Question("count_of", kind, treatment, None, False, first_day, today))
        asked += [
            Question("first", kind, treatment, surface),
            Question("latest", kind, treatment, surface),
        ]
    return asked
