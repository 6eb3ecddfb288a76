"""The processes a test watches: whether one is still there."""

from __future__ import annotations

import os


def exists(pid: int) -> bool:
    """Return whether a process of this id exists (a zombie not yet reaped counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
