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
  module or a folder. A relative seed path, wherever it is given (the
  marker, the ini option, the fixture), is relative to the rootdir.
- ini options ``auxia_seed`` (the session's seed file) and
  ``auxia_server_in_process`` (``false``: run the server as a subprocess).
- When a test that used ``auxia_server`` fails, its report gets a section
  with the test's calls from the server's request journal, and for each
  GetTreatments that served nothing the verdicts of that moment (ini
  ``auxia_failure_report = false`` turns it off).
- ``--auxia-debug[=REST_PORT,GRPC_PORT]`` (ini ``auxia_debug``): the session's
  first server listens on fixed ports (8080 and 50051 unless given; under
  pytest-xdist, worker N adds N to both) with the admin key
  ``EMULATOR_ADMIN_KEY``, so that its console and admin API are at known
  addresses while a test is debugged.

Disable it with ``-p no:auxia_decision``.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING, Any, Final

import pytest

if TYPE_CHECKING:
    from auxia_decision.server import LocalServer

DEBUG_ADMIN_KEY: Final = "EMULATOR_ADMIN_KEY"
"""The admin key of a debugging session's servers (the default seed's)."""
DEBUG_PORTS: Final = (8080, 50051)
"""The REST and gRPC ports of a debugging session's first server."""
REPORT_CALLS: Final = 50
"""How many of a failed test's calls (the last ones) its report shows."""


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
    parser.addini(
        "auxia_failure_report",
        "whether the report of a failed test that used auxia_server shows the test's calls "
        "from the server's request journal",
        type="bool",
        default=True,
    )
    parser.addini(
        "auxia_debug",
        "true, or REST_PORT,GRPC_PORT: the session's first auxia_server listens on fixed "
        "ports (8080,50051 by default) with the admin key EMULATOR_ADMIN_KEY",
        default="",
    )
    group = parser.getgroup("auxia_decision", "the local Auxia server (auxia_server)")
    group.addoption(
        "--auxia-debug",
        nargs="?",
        const="true",
        default=None,
        metavar="REST_PORT,GRPC_PORT",
        help="the session's first auxia_server listens on fixed ports (8080,50051 unless "
        "given; pytest-xdist worker N adds N) with the admin key EMULATOR_ADMIN_KEY",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Declare the plugin's marker."""
    config.addinivalue_line(
        "markers",
        "auxia_seed(seed): run the test against a local Auxia server started with this seed "
        "(an io.auxia.decision.server.Seed message, or the path of a seed file)",
    )


def debug_ports(setting: str | None, worker: str | None = None) -> tuple[int, int] | None:
    """Return the fixed ports of ``--auxia-debug``/``auxia_debug``, or None: not debugging.

    ``setting`` is ``true`` (the default ports) or ``REST_PORT,GRPC_PORT``;
    ``worker`` a pytest-xdist worker's name (``gw2``), whose number is added
    to both ports. Raises ``pytest.UsageError`` for anything else.
    """
    text = (setting or "").strip().lower()
    if text in ("", "false", "no", "0", "off"):
        return None
    if text in ("true", "yes", "1", "on"):
        rest, grpc = DEBUG_PORTS
    else:
        parts = text.replace(" ", "").split(",")
        if len(parts) != 2 or not all(part.isdigit() for part in parts):
            msg = f"auxia_debug: expected true or REST_PORT,GRPC_PORT (8080,50051), got {setting!r}"
            raise pytest.UsageError(msg)
        rest, grpc = int(parts[0]), int(parts[1])
    offset = int(worker[2:]) if worker and worker.startswith("gw") and worker[2:].isdigit() else 0
    return rest + offset, grpc + offset


class AuxiaServers:
    """The servers of a test session, one per seed, started when first asked for.

    Args:
        in_process: whether servers run in a thread of this process (else as
            subprocesses).
        rootdir: what a relative seed path is relative to.
        debug: the fixed REST and gRPC ports of the first server, which then
            takes the admin key ``EMULATOR_ADMIN_KEY``; None: free ports and a
            random key.
        announce: told a line for people when a debugging server starts.

    """

    def __init__(
        self,
        *,
        in_process: bool,
        rootdir: pathlib.Path | None = None,
        debug: tuple[int, int] | None = None,
        announce: Any = None,  # noqa: ANN401 - a callable taking a line, or None
    ) -> None:
        self._in_process = in_process
        self._rootdir = rootdir or pathlib.Path.cwd()
        self._debug = debug
        self._announce = announce
        self._servers: dict[tuple[str, bytes], LocalServer] = {}

    def server_for(self, seed: Any) -> LocalServer:  # noqa: ANN401 - a Seed, a path or None
        """Return the session's server for a seed, starting it the first time."""
        if isinstance(seed, str | os.PathLike):
            seed = self._rootdir / seed  # an absolute path stays as it is
        key = _key(seed)
        server = self._servers.get(key)
        if server is None:
            server = self._start(seed)
            self._servers[key] = server
        return server

    def _start(self, seed: Any) -> LocalServer:  # noqa: ANN401 - a Seed, a path or None
        failure = ""
        server = None
        try:
            from auxia_decision import server as local  # noqa: PLC0415 - the [server] extra
        except ImportError as error:  # MissingExtraError, naming the extra
            failure = str(error)
        else:
            ports, key = (0, 0), None
            debugging = self._debug is not None and not self._servers
            if debugging:
                assert self._debug is not None
                ports, key = self._debug, DEBUG_ADMIN_KEY
            try:
                server = local.LocalServer(
                    seed=seed,
                    in_process=self._in_process,
                    rest_port=ports[0],
                    grpc_port=ports[1],
                    admin_key=key,
                ).start()
            except local.StartupError as error:  # the seed, the ports
                failure = str(error)
            else:
                if debugging and self._announce is not None:
                    self._announce(f"auxia_server for debugging: {server!r}, admin key {key}")
        if server is None:
            pytest.fail(f"auxia_server: {failure}", pytrace=False)
        return server

    def stop_all(self) -> None:
        """Stop every server started."""
        servers, self._servers = self._servers, {}
        for server in servers.values():
            server.stop()


def _announce(config: pytest.Config, line: str) -> None:
    """Write a line on the terminal, even from inside a test whose output is captured."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None:
        return
    if capture is None:
        reporter.write_line(line)
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line(line)


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
    setting = pytestconfig.getoption("auxia_debug") or str(pytestconfig.getini("auxia_debug"))
    servers = AuxiaServers(
        in_process=bool(pytestconfig.getini("auxia_server_in_process")),
        rootdir=pytestconfig.rootpath,
        debug=debug_ports(setting, os.environ.get("PYTEST_XDIST_WORKER")),
        announce=lambda line: _announce(pytestconfig, line),
    )
    try:
        yield servers
    finally:
        servers.stop_all()


@pytest.fixture
def auxia_seed(request: pytest.FixtureRequest) -> Any:  # noqa: ANN401 - a Seed, a path or None
    """Return the seed of ``auxia_server``: the test's ``auxia_seed`` marker, else the ini's.

    Override it (in a conftest.py or a module) to give a group of tests a
    seed. A relative path, given anywhere, is relative to the rootdir.
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


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Add the test's calls to the report of a failed test that used ``auxia_server``."""
    report = yield
    if report.failed and call.when == "call":
        server = getattr(item, "funcargs", {}).get("auxia_server")
        if server is not None and item.config.getini("auxia_failure_report"):
            report.sections.append(("auxia_server: the test's calls", failure_report(server)))
    return report


def failure_report(server: LocalServer) -> str:
    """Return what a failed test's report says of its server: where it is, and its calls.

    The calls are the server's journal since the fixture's reset (left out),
    the last ``REPORT_CALLS`` of them, with the error of each that failed and
    the verdicts of each GetTreatments that served nothing.
    """
    from auxia.decision.emulator.v1 import emulator_pb2  # noqa: PLC0415 - on failure only
    from auxia_decision import ApiError  # noqa: PLC0415
    from auxia_decision._journal_text import journal_text  # noqa: PLC0415

    request = emulator_pb2.ListJournalRequest(page_size=REPORT_CALLS + 1, newest_first=True)
    try:
        page = server.admin.call(server.admin.stub.ListJournal, request)
    except (ApiError, RuntimeError) as error:
        return f"{server!r}\n(its journal cannot be read: {error})"
    entries = [
        entry
        for entry in reversed(page.entries)
        if not (entry.sequence == 1 and entry.method == "Reset")  # the fixture's
    ][-REPORT_CALLS:]
    earlier = max(0, entries[0].sequence - 2) if entries else 0
    heading = f"{server!r}; the test's calls since its reset, oldest first:"
    return heading + "\n" + journal_text(entries, earlier)
