"""Fixtures shared by the test suite.

``tests/unit`` runs in-process; ``tests/system`` starts server processes,
runs the toolchain and installs the wheel. Helpers that are not fixtures live
beside this file: ``_fixtures`` (the documentation's samples), ``_served``
(a server process), ``_world`` (an in-process servicer with a settable clock),
``_repo`` (copies of this tree), ``_stored`` (the rows a store's file holds),
``_java`` (the JDK and JUnit for the Java jar, which the ``java_dist`` fixture
builds), and ``tools.loadgen`` (load).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests._java import JavaDist, require
from tests._served import Served, served
from tools.dist_java import BuildError, build


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Served]:
    """Run ``auxia-decision serve`` on free loopback ports, one per test module, on its own file."""
    name = request.module.__name__.rpartition(".")[2]
    with served(tmp_path_factory.mktemp(name) / "server.db") as running:
        yield running


@pytest.fixture(scope="session")
def java_dist(tmp_path_factory: pytest.TempPathFactory) -> JavaDist:
    """Build the jar and the sources jar, as ``make dist-java`` does, once for the session."""
    for tool in ("protoc", "javac", "jar", "java"):
        require(tool)
    try:
        jar, sources = build(tmp_path_factory.mktemp("dist-java"))
    except BuildError as error:
        pytest.fail(str(error), pytrace=False)
    return JavaDist(jar, sources)
