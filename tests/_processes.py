"""The processes a test watches or starts: whether one is still there, their environment."""

from __future__ import annotations

import os


def exists(pid: int) -> bool:
    """Return whether a process of this id exists (a zombie not yet reaped counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def own_pytest_environment() -> dict[str, str]:
    """Return this process's environment for a pytest run of a project's own.

    Without the variables pytest and pytest-xdist set for this run: a pytest
    started under an xdist worker would otherwise take itself for that worker
    (the ``auxia_server`` fixture adds the worker's number to debug ports).
    """
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("PYTEST_XDIST_")
        and name not in {"PYTEST_CURRENT_TEST", "PYTEST_VERSION"}
    }
