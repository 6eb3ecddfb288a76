"""The server's notion of now."""

from __future__ import annotations

import time
from collections.abc import Callable

Clock = Callable[[], int]
"""Returns the current time in microseconds since the Unix epoch."""


def system_clock() -> int:
    """Return the current time in microseconds since the Unix epoch."""
    return time.time_ns() // 1000
