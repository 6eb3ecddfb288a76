"""The last GetTreatments calls answered, kept for the console (``ListRecentDecisions``)."""

from __future__ import annotations

import collections
from collections.abc import Iterator
from typing import Final

from auxia_decision.server._domain.servicer import AnsweredDecision

KEPT: Final = 200
"""How many of the last GetTreatments calls are kept."""


class RecentDecisions:
    """The last ``KEPT`` GetTreatments calls answered, as the servicer reports them.

    ``record`` is the servicer's ``on_decision`` listener: a deque's append,
    so that listening adds no frame to a decision.
    """

    def __init__(self) -> None:
        self._kept: collections.deque[AnsweredDecision] = collections.deque(maxlen=KEPT)
        self.record = self._kept.append
        """Keep one answered call (the oldest kept is dropped once there are ``KEPT``)."""

    def newest_first(self) -> Iterator[AnsweredDecision]:
        """Yield the calls kept, the newest first."""
        return reversed(self._kept)

    def forget(self, project_id: str | None = None) -> None:
        """Forget the calls of one project, or every call."""
        if project_id is None:
            self._kept.clear()
            return
        kept = [decision for decision in self._kept if decision[1] != project_id]
        self._kept.clear()
        self._kept.extend(kept)
