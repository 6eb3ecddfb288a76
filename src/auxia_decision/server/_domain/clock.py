"""The server's notion of now: the system's time, or a clock that tests control."""

from __future__ import annotations

import time
from collections.abc import Callable

Clock = Callable[[], int]
"""Returns the current time in microseconds since the Unix epoch."""


def system_clock() -> int:
    """Return the current time in microseconds since the Unix epoch."""
    return time.time_ns() // 1000


class ControlledClock:
    """A clock that runs with the system's time, shifted, or stands frozen.

    ``now`` is the server's ``Clock``. ``freeze``, ``advance`` and
    ``use_real_time`` change it; ``restore`` puts it back as it was made.

    Args:
        frozen_at: the time, in microseconds since the Unix epoch, to start
            frozen at; None: start with the system's real time.
        source: the system's time, in microseconds since the Unix epoch.

    """

    __slots__ = ("_frozen", "_offset", "_source", "_start")

    def __init__(self, frozen_at: int | None = None, source: Clock = system_clock) -> None:
        self._start = frozen_at
        self._source = source
        self._frozen = frozen_at
        self._offset = 0

    def now(self) -> int:
        """Return the current time in microseconds since the Unix epoch."""
        frozen = self._frozen
        return self._source() + self._offset if frozen is None else frozen

    @property
    def frozen(self) -> bool:
        """Whether the clock stands still."""
        return self._frozen is not None

    def freeze(self, at: int) -> None:
        """Stop the clock at a time (microseconds since the Unix epoch)."""
        self._frozen = at

    def advance(self, micros: int) -> None:
        """Move the clock forward; a frozen clock stays frozen, a running one runs on."""
        if micros <= 0:
            msg = f"a clock advances by a positive duration, not {micros} microseconds"
            raise ValueError(msg)
        if self._frozen is not None:
            self._frozen += micros
        else:
            self._offset += micros

    def use_real_time(self) -> None:
        """Run with the system's time again, unshifted."""
        self._frozen = None
        self._offset = 0

    def state(self) -> tuple[int | None, int]:
        """Return what the clock is set to: (frozen time or None, offset from the system's time)."""
        return self._frozen, self._offset

    def set_state(self, frozen: int | None, offset: int) -> None:
        """Set the clock as ``state`` returned it (another process's clock, shared)."""
        self._frozen = frozen
        self._offset = offset

    def start_state(self) -> tuple[int | None, int]:
        """Return the state ``restore`` puts the clock back to."""
        return self._start, 0

    def restore(self) -> None:
        """Put the clock back as it was made: frozen at its start time, or real."""
        self._frozen = self._start
        self._offset = 0
