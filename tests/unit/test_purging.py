"""Deleting hidden records in turns (``purging.Purge``): one run at a time, retried if busy."""

from __future__ import annotations

import asyncio

import pytest

from auxia_decision._errors import ApiError, Code
from auxia_decision.server._storage import purging
from auxia_decision.server._storage.purging import Purge


class _Turns:
    """Turns that deliver, one per call, what they were given: True, False or an error."""

    def __init__(self, *outcomes: bool | ApiError) -> None:
        self.outcomes = list(outcomes)
        self.made = 0
        self.between = 0

    async def turn(self) -> bool:
        self.made += 1
        outcome = self.outcomes.pop(0) if self.outcomes else False
        await asyncio.sleep(0)
        if isinstance(outcome, ApiError):
            raise outcome
        return outcome

    async def after(self) -> None:
        self.between += 1


@pytest.fixture(autouse=True)
def _quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(purging, "RETRY_SECONDS", (0.001, 0.004))


def _run(turns: _Turns, *, starts: int = 1) -> None:
    async def scenario() -> None:
        purge = Purge(turns.turn, turns.after)
        for _ in range(starts):
            purge.start()
        await asyncio.wait_for(purge.done(), 10)

    asyncio.run(scenario())


def test_turns_go_on_until_one_deletes_nothing() -> None:
    turns = _Turns(True, True, False)
    _run(turns)
    assert (turns.made, turns.between) == (3, 2)


@pytest.mark.parametrize("failures", [1, 4])
def test_a_turn_the_store_cannot_make_for_now_is_tried_again(
    caplog: pytest.LogCaptureFixture, failures: int
) -> None:
    busy = ApiError(Code.UNAVAILABLE, "the store is locked by another connection")
    turns = _Turns(True, *[busy] * failures, True, False)
    _run(turns)
    assert turns.made == 3 + failures
    waits = [r.getMessage() for r in caplog.records if "waits" in r.getMessage()]
    # Doubling from the first pause up to the longest.
    assert waits == [
        f"deleting the records a Reset hid waits {pause:g} s: "
        "the store is locked by another connection"
        for pause in [0.001, 0.002, 0.004, 0.004][:failures]
    ]


def test_another_failure_stops_the_run_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    turns = _Turns(True, ApiError(Code.INTERNAL, "the store failed"), True)
    _run(turns)
    assert turns.made == 2
    assert [r.getMessage() for r in caplog.records] == [
        "deleting the records a Reset hid failed (INTERNAL: the store failed): they stay hidden"
    ]


def test_a_start_during_a_run_makes_it_look_again() -> None:
    # The last turn found nothing as a Reset hid more: the run looks once more.
    async def scenario() -> int:
        turns = _Turns(True, False, True, False)
        purge = Purge(turns.turn)
        purge.start()
        await asyncio.sleep(0)
        purge.start()  # during the first turn: one run, which looks again
        await purge.done()
        return turns.made

    assert asyncio.run(scenario()) == 4


def test_a_stopped_purge_closing_starts_no_run() -> None:
    async def scenario() -> tuple[int, set[asyncio.Task[object]]]:
        turns = _Turns(True, True, False)
        purge = Purge(turns.turn)
        purge.start()
        stopping = purge.stop(closing=True)
        assert stopping is not None
        await asyncio.wait({stopping})
        purge.start()
        return turns.made, asyncio.all_tasks() - {asyncio.current_task()}

    made, left = asyncio.run(scenario())
    assert made == 0  # cancelled before its first turn
    assert left == set()
