"""A user's activity, counted by day in arrays, answers every question as plain reading does."""

from __future__ import annotations

import asyncio
import gc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auxia_decision.server._storage.activity import ActivityCache, DailyActivity
from auxia_decision.server._storage.daily import PackedActivity, Watermark, daily_rows, packed
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


@settings(max_examples=60, deadline=None)
@given(found=events)
def test_events_are_counted_by_kind_treatment_surface_and_day(found: list[Event]) -> None:
    assert sorted(daily_rows(found)) == sorted(_rows(found))


@settings(max_examples=60, deadline=None)
@given(read=events, added=events)
def test_a_packed_activity_unpacks_to_the_same_answers_and_apart(
    read: list[Event], added: list[Event]
) -> None:
    packed = DailyActivity(_rows(read)).packed()
    copy = DailyActivity.unpacked(packed)
    for event in added:
        copy.add(*event)
    again = DailyActivity.unpacked(packed)
    for question in QUESTIONS:
        assert question.asked_of(again) == question.answered_by(read), question
        assert question.asked_of(copy) == question.answered_by(read + added), question


def test_cached_users_add_no_objects_the_garbage_collector_tracks() -> None:
    users = 2_000
    cache = ActivityCache(users)

    async def fill() -> None:
        loop = asyncio.get_running_loop()

        def read(user: int) -> asyncio.Future[tuple[PackedActivity, Watermark]]:
            found: asyncio.Future[tuple[PackedActivity, Watermark]] = loop.create_future()
            times = [(TODAY - day) * MICROS_PER_DAY + user for day in range(5)]
            rows = _rows([(1, TREATMENTS[user % 3], "S1", t) for t in times])
            found.set_result((packed(rows), (1, 1)))
            return found

        for user in range(users):
            await cache.load("P", f"user-{user}", lambda user=user: read(user))  # type: ignore[misc]

    gc.collect()
    before = len(gc.get_objects())
    asyncio.run(fill())
    # A tuple leaves the collector's lists once a collection finds all it holds
    # untracked: a nested one, at the next.
    gc.collect()
    gc.collect()
    assert len(cache) == users
    # Five times as many (a list per field, an entry) before they were packed.
    assert len(gc.get_objects()) - before < users / 10


SENT, VIEWED = 1, 2  # the TreatmentInteractionType numbers


async def _load(cache: ActivityCache, project_id: str, user_rows: list[Event]) -> None:
    """Make user "u" of a project cached, read as ``user_rows`` (row ids up to 1)."""
    found: asyncio.Future[tuple[PackedActivity, Watermark]] = (
        asyncio.get_running_loop().create_future()
    )
    found.set_result((packed(_rows(user_rows)), (1, 1)))
    await cache.load(project_id, "u", lambda: found)


async def _cache_with(user_rows: list[Event], projects: tuple[str, ...] = ("P",)) -> ActivityCache:
    """Return a cache holding user "u" of each project, read as ``user_rows``."""
    cache = ActivityCache(10)
    for project_id in projects:
        await _load(cache, project_id, user_rows)
    return cache


def _sent(cache: ActivityCache, project_id: str = "P") -> int | None:
    activity = cache.get(project_id, "u")
    return None if activity is None else activity.count_of(SENT, "A", TODAY, TODAY)


def _served(project_id: str, micros: int) -> list[tuple[int, str, str, Event]]:
    return [(0, project_id, "u", (SENT, "A", "S1", TODAY * MICROS_PER_DAY + micros))]


def test_kinds_not_counted_are_passed_over_and_counting_one_forgets_the_projects_users() -> None:
    async def scenario() -> None:
        cache = await _cache_with([(SENT, "A", "S1", TODAY * MICROS_PER_DAY)])
        cache.committed(1, 2, _served("P", 1))
        assert _sent(cache) == 2  # every kind is kept until a catalog says which
        cache.fold("P", frozenset({VIEWED}))
        assert _sent(cache) == 2  # the first call forgets nothing: every kind was kept
        cache.committed(1, 3, _served("P", 2))
        assert _sent(cache) == 2  # SENT passed over: no catalog counts it
        cache.fold("P", frozenset({VIEWED}))
        assert _sent(cache) == 2  # nothing new: kept
        cache.fold("P", frozenset({SENT}))
        assert _sent(cache) is None  # behind in SENT: forgotten, read again when asked

    asyncio.run(scenario())


def test_each_project_keeps_the_kinds_its_own_catalogs_count() -> None:
    async def scenario() -> None:
        cache = await _cache_with([], projects=("P", "Q", "R"))
        cache.fold("P", frozenset({VIEWED}))
        cache.fold("Q", frozenset({SENT}))
        for project_id in ("P", "Q", "R"):
            cache.committed(1, 2, _served(project_id, 1))
        assert _sent(cache, "P") == 0  # P's rules count views only: passed over
        assert _sent(cache, "Q") == 1  # Q's count SENT
        assert _sent(cache, "R") == 1  # R has no catalog yet: every kind
        cache.fold("Q", frozenset({VIEWED}))  # a kind new to Q: Q's users only
        assert _sent(cache, "Q") is None
        assert (_sent(cache, "P"), _sent(cache, "R")) == (0, 1)
        cache.fold("P", frozenset({SENT}))
        assert (_sent(cache, "P"), _sent(cache, "R")) == (None, 1)

    asyncio.run(scenario())


def test_a_first_catalog_that_counts_nothing_still_says_which_kinds_are_kept() -> None:
    async def scenario() -> None:
        cache = await _cache_with([])
        cache.fold("P", frozenset())  # rules on attributes only
        cache.committed(1, 2, _served("P", 1))  # passed over
        cache.fold("P", frozenset({SENT}))
        assert _sent(cache) is None  # behind in SENT: forgotten

    asyncio.run(scenario())


def test_a_forgotten_read_that_ends_after_the_next_one_began_is_not_kept() -> None:
    async def scenario() -> None:
        cache = ActivityCache(10)
        cache.fold("P", frozenset({VIEWED}))
        loop = asyncio.get_running_loop()
        old, new = loop.create_future(), loop.create_future()
        first = cache.load("P", "u", lambda: old)
        cache.committed(1, 5, _served("P", 0))  # passed over: no catalog counts SENT
        cache.fold("P", frozenset({SENT}))
        second = cache.load("P", "u", lambda: new)  # a read of its own, after the fold
        old.set_result((packed([]), (0, 0)))  # read before the row
        await first
        new.set_result((packed(_rows([(SENT, "A", "S1", TODAY * MICROS_PER_DAY)])), (0, 5)))
        await second
        assert _sent(cache) == 1

    asyncio.run(scenario())


@pytest.mark.parametrize("forget", ["every user", "a kind new to the project"])
def test_a_read_in_flight_when_its_project_is_forgotten_is_not_kept(forget: str) -> None:
    # Its read may have missed a row of that kind committed meanwhile, passed over then.
    async def scenario() -> None:
        cache = ActivityCache(10)
        cache.fold("P", frozenset({VIEWED}))
        cache.fold("Q", frozenset({VIEWED}))
        pending = {
            project_id: asyncio.get_running_loop().create_future() for project_id in ("P", "Q")
        }
        waiting = [
            cache.load(project_id, "u", lambda read=read: read)  # type: ignore[misc]
            for project_id, read in pending.items()
        ]
        cache.committed(1, 5, _served("P", 0))
        if forget == "every user":
            cache.forget_all()
        else:
            cache.fold("P", frozenset({SENT}))
        for read in pending.values():
            read.set_result((packed([]), (0, 0)))  # read before the row
        await asyncio.gather(*waiting)
        assert cache.get("P", "u") is None
        # Another project's read is kept, unless every user was forgotten.
        kept = forget != "every user"
        assert (cache.get("Q", "u") is not None) is kept
        assert len(cache) == (1 if kept else 0)

    asyncio.run(scenario())
