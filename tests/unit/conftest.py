"""Fixtures of the unit tests: in-process, no server process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests._http_server import ScriptedServer, scripted_server
from tests._world import World


@pytest.fixture
def world() -> Iterator[World]:
    """An in-process servicer on a store in memory, with a settable clock."""
    running = World()
    yield running
    running.close()


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    """A scripted HTTP server on a loopback port, in a thread, for the clients' tests."""
    with scripted_server() as running:
        yield running
