"""A user's activity, counted by day in arrays, answers every question as plain reading does."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auxia_decision.server._storage.activity import DailyActivity
from auxia_decision.server._storage.seam import MICROS_PER_DAY, Event
from tests._activity_model import questions

TODAY = 20_000
KINDS = [1, 2, 5]
TREATMENTS = ["A", "B", "C"]
SURFACES = ["S1", "S2"]

events = st.lists(
    st.tuples(
        st.sampled_from(KINDS),
        st.sampled_from(TREATMENTS),
        st.sampled_from(SURFACES),
        st.integers((TODAY - 40) * MICROS_PER_DAY, (TODAY + 1) * MICROS_PER_DAY - 1),
    ),
    max_size=40,
)
QUESTIONS = questions(KINDS, TREATMENTS, SURFACES, TODAY)


def _rows(found: list[Event]) -> list[tuple[int, str, str, int, int, int, int]]:
    """Return events counted by kind, treatment, surface and day, as the store reads them."""
    grouped: dict[tuple[int, str, str, int], list[int]] = {}
    for kind, treatment, surface, time in found:
        grouped.setdefault((kind, treatment, surface, time // MICROS_PER_DAY), []).append(time)
    return [(*key, len(times), min(times), max(times)) for key, times in grouped.items()]


@settings(max_examples=60, deadline=None)
@given(read=events, added=events)
def test_read_then_added_events_answer_every_question_as_plain_reading(
    read: list[Event], added: list[Event]
) -> None:
    activity = DailyActivity(_rows(read))
    for event in added:
        activity.add(*event)
    every = read + added
    for question in QUESTIONS:
        assert question.asked_of(activity) == question.answered_by(every), question


@pytest.mark.parametrize("time", [-1, -MICROS_PER_DAY, -MICROS_PER_DAY - 1, 0])
def test_days_before_1970_are_whole_days_back(time: int) -> None:
    activity = DailyActivity()
    activity.add(1, "A", "S1", time)
    day = time // MICROS_PER_DAY
    assert activity.count_of(1, "A", day, day) == 1
    assert activity.count_of(1, "A", day + 1, day + 1) == 0
