"""Fixtures of the system tests: server processes, the Java jar, PostgreSQL."""

from __future__ import annotations

import itertools
import pathlib
from collections.abc import Iterator

import httpx
import pytest

from tests._java import JavaDist, require
from tests._served import Served, served
from tools.dist_java import BuildError, build
from tools.postgres import Postgres, running_postgres, settings_for_tests

_databases = itertools.count(1)


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Served]:
    """Run ``auxia-decision serve`` on free loopback ports, one per test module, on its own file."""
    name = request.module.__name__.rpartition(".")[2]
    with served(tmp_path_factory.mktemp(name) / "server.db") as running:
        yield running


@pytest.fixture(scope="session")
def http() -> Iterator[httpx.Client]:
    """One HTTP client for the session's calls (``httpx.post`` makes a client, ~50 ms, a call)."""
    with httpx.Client(timeout=60) as client:
        yield client


@pytest.fixture
def path(tmp_path: pathlib.Path) -> str:
    """The path of a store's SQLite file of its own for one test (not created)."""
    return str(tmp_path / "store.db")


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


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """A PostgreSQL server of the test session's own (Debian's, on a free loopback port)."""
    with running_postgres(settings_for_tests()) as server:
        yield server


@pytest.fixture
def postgres_url(postgres: Postgres) -> Iterator[str]:
    """The URL of an empty database of its own for one test, dropped after it."""
    name = f"test_{next(_databases)}"
    url = postgres.create_database(name)
    yield url
    if postgres.running():
        postgres.drop_database(name)
