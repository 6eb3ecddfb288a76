"""The pytest plugin: an ``auxia_server`` fixture, the local server reset before each test.

Installed with the package (a ``pytest11`` entry point), it loads in every
pytest run and costs nothing until a test asks for ``auxia_server``. The
server needs the ``[server]`` extra; without it the fixture fails with the
line to install it, and the plugin itself still loads.

- ``auxia_server``: a ``LocalServer`` shared by the session, reset to its
  seed before every test that uses it (data, faults and clock).
- ``@pytest.mark.auxia_seed(seed)``: run a test against a server started
  with another seed (a ``Seed`` message or a seed file); one server per seed
  for the session. Overriding the ``auxia_seed`` fixture does the same for a
  module or a folder.
- ini options ``auxia_seed`` (the session's seed file, relative to the
  rootdir) and ``auxia_server_in_process`` (``false``: run the server as a
  subprocess).

Disable it with ``-p no:auxia_decision``.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from auxia_decision.server import LocalServer


def pytest_addoption(parser: pytest.Parser) -> None:
    """Declare the plugin's ini options."""
    parser.addini(
        "auxia_seed",
        "the seed file of the auxia_server fixture (proto JSON of "
        "io.auxia.decision.server.Seed), relative to the rootdir; empty: the docs' world",
        default="",
    )
    parser.addini(
        "auxia_server_in_process",
        "whether auxia_server runs in a thread of the test process (true) or as a subprocess",
        type="bool",
        default=True,
    )


def pytest_configure(config: pytest.Config) -> None:
    """Declare the plugin's marker."""
    config.addinivalue_line(
        "markers",
        "auxia_seed(seed): run the test against a local Auxia server started with this seed "
        "(an io.auxia.decision.server.Seed message, or the path of a seed file)",
    )


class AuxiaServers:
    """The servers of a test session, one per seed, started when first asked for.

    Args:
        in_process: whether servers run in a thread of this process (else as
            subprocesses).

    """

    def __init__(self, *, in_process: bool) -> None:
        self._in_process = in_process
        self._servers: dict[tuple[str, bytes], LocalServer] = {}

    def server_for(self, seed: Any) -> LocalServer:  # noqa: ANN401 - a Seed, a path or None
        """Return the session's server for a seed, starting it the first time."""
        key = _key(seed)
        server = self._servers.get(key)
        if server is None:
            failure = ""
            try:
                from auxia_decision import server as local  # noqa: PLC0415 - the [server] extra
            except ImportError as error:  # MissingExtraError, naming the extra
                failure = str(error)
            else:
                try:
                    server = local.LocalServer(seed=seed, in_process=self._in_process).start()
                except local.StartupError as error:  # the seed, the ports
                    failure = str(error)
            if server is None:
                pytest.fail(f"auxia_server: {failure}", pytrace=False)
            self._servers[key] = server
        return server

    def stop_all(self) -> None:
        """Stop every server started."""
        servers, self._servers = self._servers, {}
        for server in servers.values():
            server.stop()


def _key(seed: Any) -> tuple[str, bytes]:  # noqa: ANN401 - a Seed, a path or None
    """Return what tells one seed from another."""
    if seed is None:
        return ("default", b"")
    if isinstance(seed, str | os.PathLike):
        return ("file", str(pathlib.Path(seed).resolve()).encode())
    serialized: bytes = seed.SerializeToString(deterministic=True)
    return ("message", serialized)


@pytest.fixture(scope="session")
def auxia_servers(pytestconfig: pytest.Config) -> Iterator[AuxiaServers]:
    """Yield the session's local Auxia servers; stop them when the session ends."""
    servers = AuxiaServers(in_process=bool(pytestconfig.getini("auxia_server_in_process")))
    try:
        yield servers
    finally:
        servers.stop_all()


@pytest.fixture
def auxia_seed(request: pytest.FixtureRequest) -> Any:  # noqa: ANN401 - a Seed, a path or None
    """Return the seed of ``auxia_server``: the test's ``auxia_seed`` marker, else the ini's.

    Override it (in a conftest.py or a module) to give a group of tests a seed.
    """
    marker = request.node.get_closest_marker("auxia_seed")
    if marker is not None:
        if len(marker.args) != 1:
            pytest.fail("auxia_seed takes one argument: a Seed message or a path", pytrace=False)
        return marker.args[0]
    configured = str(request.config.getini("auxia_seed"))
    return request.config.rootpath / configured if configured else None


@pytest.fixture
def auxia_server(auxia_servers: AuxiaServers, auxia_seed: Any) -> LocalServer:  # noqa: ANN401
    """Return the session's local Auxia server (REST and gRPC), reset to its seed."""
    server = auxia_servers.server_for(auxia_seed)
    server.reset()
    return server
