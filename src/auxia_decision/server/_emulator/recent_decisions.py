"""The last GetTreatments calls answered, kept for the console (``ListRecentDecisions``)."""

from __future__ import annotations

import collections
from collections.abc import Awaitable, Iterator
from typing import Final

from auxia.decision.model import treatment_decision_service_pb2 as decisions
from auxia_decision.server._domain.servicer import AnsweredDecision, DecisionListener, as_message
from auxia_decision.server._emulator.shared_state import SharedState

KEPT: Final = 200
"""How many of the last GetTreatments calls are kept."""

Listed = tuple[int, str, decisions.GetTreatmentsRequest, decisions.GetTreatmentsResponse]
"""A decision as listed: when (µs since the epoch), project, request, response."""


class RecentDecisions:
    """The last ``KEPT`` GetTreatments calls answered, as the servicer reports them.

    ``record`` is the servicer's ``on_decision`` listener: a deque's append,
    so that listening adds no frame to a decision. With a ``SharedState``
    (server processes on one store), each decision is stored with the call
    instead, and every process lists them all.

    Args:
        shared: where processes sharing a store keep their decisions; None:
            this process keeps its own, in memory.

    """

    def __init__(self, shared: SharedState | None = None) -> None:
        self._kept: collections.deque[AnsweredDecision] = collections.deque(maxlen=KEPT)
        self._shared = shared
        self.record: DecisionListener
        if shared is None:
            self.record = self._kept.append
            """Keep one answered call (the oldest kept is dropped once there are ``KEPT``)."""
        else:
            self.record = self._store

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
        """Forget the calls of one project, or every call (a shared store's go with its reset)."""
        if project_id is None:
            self._kept.clear()
            return
        kept = [decision for decision in self._kept if decision[1] != project_id]
        self._kept.clear()
        self._kept.extend(kept)
