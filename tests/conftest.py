"""Fixtures shared by the test suite.

``tests/unit`` runs in-process; ``tests/system`` starts server processes,
runs the toolchain and installs the wheel. Helpers that are not fixtures live
beside this file: ``_fixtures`` (the documentation's samples), ``_served``
(a server process), ``_world`` (an in-process servicer with a settable clock),
``_repo`` (copies of this tree), ``_stored`` (the rows a store's file holds),
and ``tools.loadgen`` (load).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests._served import Served, served


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Served]:
    """Run ``auxia-decision serve`` on free loopback ports, one per test module, on its own file."""
    name = request.module.__name__.rpartition(".")[2]
    with served(tmp_path_factory.mktemp(name) / "server.db") as running:
        yield running
