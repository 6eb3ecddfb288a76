"""The last GetTreatments calls answered, kept for the console (``ListRecentDecisions``).

For a call that served nothing, the verdicts of that moment are kept too (the
near miss that the journal and the console show): explained as the call is
answered, for at most ``NEAR_MISS_SHARE`` of each second (1% of a core), so
that a server under load spends no more on them, however many of its answers
serve nothing; a test suite's calls are all explained.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Final

from google.protobuf.message import Message

from auxia.decision.model import treatment_decision_service_pb2 as decisions
from auxia_decision.server._domain.decisions import Verdict
from auxia_decision.server._domain.servicer import AnsweredDecision, as_message
from auxia_decision.server._emulator.shared_state import SharedState

KEPT: Final = 200
"""How many of the last GetTreatments calls are kept."""
NEAR_MISS_SHARE: Final = 0.01
"""The share of each second spent explaining calls that served nothing, at most."""
KEPT_NEAR_MISSES: Final = 1000
"""How many near misses are kept, by response id (the oldest are forgotten first)."""

Explain = Callable[[AnsweredDecision], list[Verdict] | None]
"""Returns the verdicts of a call as it is answered (``ApiServicer.verdicts_then``)."""

Listed = tuple[int, str, decisions.GetTreatmentsRequest, decisions.GetTreatmentsResponse]
"""A decision as listed: when (µs since the epoch), project, request, response."""


def served_nothing(answer: object) -> str | None:
    """Return the response id of a GetTreatments answer that served nothing, else None."""
    if isinstance(answer, Message):
        served = bool(getattr(answer, "user_treatments", ()))
        found = str(getattr(answer, "response_id", ""))
    elif isinstance(answer, dict):
        served = bool(answer.get("user_treatments"))
        found = str(answer.get("response_id") or "")
    else:
        return None
    return None if served else found


class RecentDecisions:
    """The last ``KEPT`` GetTreatments calls answered, as the servicer reports them.

    ``record`` is the servicer's ``on_decision`` listener; ``explain_with``
    gives it the servicer's explanation of a call, for the near misses. With a
    ``SharedState`` (server processes on one store), each decision is stored
    with the call instead, and every process lists them all; the near misses
    stay with the process that answered.

    Args:
        shared: where processes sharing a store keep their decisions; None:
            this process keeps its own, in memory.
        timer: seconds from any start (``time.perf_counter``): what the near
            misses' share of each second is measured with.

    """

    def __init__(
        self,
        shared: SharedState | None = None,
        timer: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._shared = shared
        self._timer = timer
        self._kept: collections.deque[AnsweredDecision] = collections.deque(maxlen=KEPT)
        self._explain: Explain | None = None
        self._near_misses: dict[str, list[Verdict]] = {}
        self._second = 0.0
        self._spent = 0.0
        """Seconds spent explaining since ``_second``."""

    def explain_with(self, explain: Explain) -> None:
        """Keep the near misses, explained by ``explain`` as each call is answered."""
        self._explain = explain

    def record(self, answered: AnsweredDecision) -> Awaitable[None] | None:
        """Keep one answered call (the oldest kept is dropped once there are ``KEPT``).

        On a shared store, what it returns is the storing of the call, which
        the answer waits for.
        """
        if self._explain is not None:
            self._keep_near_miss(answered)
        if self._shared is not None:
            return self._store(answered)
        self._kept.append(answered)
        return None

    def _keep_near_miss(self, answered: AnsweredDecision) -> None:
        """Keep the verdicts of a call that served nothing, within this second's share."""
        assert self._explain is not None
        response_id = served_nothing(answered[3])
        if not response_id:
            return
        started = self._timer()
        if started - self._second >= 1.0:
            self._second, self._spent = started, 0.0
        elif self._spent >= NEAR_MISS_SHARE:
            return
        verdicts = self._explain(answered)
        self._spent += self._timer() - started
        if verdicts is None:
            return
        if len(self._near_misses) >= KEPT_NEAR_MISSES:
            del self._near_misses[next(iter(self._near_misses))]
        self._near_misses[response_id] = verdicts

    def _store(self, decision: AnsweredDecision) -> Awaitable[None]:
        assert self._shared is not None
        time_micros, project_id, asked, answered = decision
        request = as_message(decisions.GetTreatmentsRequest, asked)
        response = as_message(decisions.GetTreatmentsResponse, answered)
        return self._shared.record_decision(
            time_micros,
            project_id,
            request.user_id,
            request.SerializeToString(),
            response.SerializeToString(),
        )

    def near_miss(self, response_id: str) -> list[Verdict] | None:
        """Return the verdicts of the moment of a call that served nothing, if they were kept."""
        return self._near_misses.get(response_id)

    def newest_first(self) -> Iterator[AnsweredDecision]:
        """Yield the calls this process kept, the newest first."""
        return reversed(self._kept)

    async def listed(self, project_id: str = "", user_id: str = "") -> list[Listed]:
        """Return the calls kept (every process's, when shared), the newest first.

        Empty ``project_id`` and ``user_id``: any.
        """
        shared = self._shared
        if shared is not None:
            return [
                (
                    time_micros,
                    project,
                    decisions.GetTreatmentsRequest.FromString(request),
                    decisions.GetTreatmentsResponse.FromString(response),
                )
                for time_micros, project, request, response in await shared.recent_decisions(
                    project_id, user_id, KEPT
                )
            ]
        found: list[Listed] = []
        for time_micros, project, asked, answered in self.newest_first():
            if project_id and project != project_id:
                continue
            request = as_message(decisions.GetTreatmentsRequest, asked)
            if user_id and request.user_id != user_id:
                continue
            response = as_message(decisions.GetTreatmentsResponse, answered)
            found.append((time_micros, project, request, response))
        return found

    def forget(self, project_id: str | None = None) -> None:
        """Forget the calls of one project, or every call and every near miss.

        A shared store's calls go with its reset.
        """
        if project_id is None:
            self._kept.clear()
            self._near_misses.clear()
            return
        kept = [decision for decision in self._kept if decision[1] != project_id]
        self._kept.clear()
        self._kept.extend(kept)
