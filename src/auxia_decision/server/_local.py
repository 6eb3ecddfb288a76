"""A local server for tests: started on free ports in a thread or a subprocess, stopped on exit."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime
import os
import pathlib
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Protocol, Self

import grpc
from google.protobuf import json_format

from auxia.decision.emulator.v1 import emulator_pb2
from auxia.decision.model import treatment_decision_service_pb2 as decision_service
from auxia.decision.model import treatment_interaction_service_pb2 as interactions
from auxia.decision.server import seed_pb2
from auxia_decision._extras import import_optional
from auxia_decision.server._assembly import ServerConfig, start_server
from auxia_decision.server._emulator.client import ClockControl, EmulatorAdmin, FaultControl
from auxia_decision.server._emulator.journal import DEFAULT_SIZE as DEFAULT_JOURNAL_SIZE
from auxia_decision.server._ready import ReadyInfo, wait_for_ready_file
from auxia_decision.server._startup import StartupError, is_postgres, password_apart, seed_of
from auxia_decision.server._transport.runtime import GRACE_SECONDS, run_event_loop

if TYPE_CHECKING:
    from auxia_decision._client import AsyncClient, Client

_STOP_TIMEOUT: Final = GRACE_SECONDS + 10


class LocalServer:
    """The reference server of the Auxia API, started for a test suite and stopped after it.

    ``with LocalServer() as server:`` (or ``async with``) starts it on free
    loopback ports with an in-memory store and the default seed, and stops it
    on exit, whatever the block raised. It serves REST on ``rest_url`` and
    gRPC on ``grpc_target``; ``client()`` and ``grpc_channel()`` are ready to
    call it. ``reset()``, ``interactions()``, ``decisions()``, ``clock`` and
    ``faults`` drive the emulator admin API, with an admin key made for this
    server. The helpers block; from async code they take a few milliseconds.

    Args:
        seed: the world it starts with: a ``Seed`` message, a seed file (proto
            JSON of ``io.auxia.decision.server.Seed``), or None for the default
            seed (the API documentation's world).
        db: the SQLite file, ``:memory:`` (the default), or a PostgreSQL URL
            (``postgresql://...``, the ``[postgres]`` extra); run as a
            subprocess, the server gets the URL's password in ``PGPASSWORD``,
            not on its command line.
        in_process: True (the default): run in a thread of this process, on an
            event loop of its own; False: run ``auxia-decision serve`` as a
            subprocess of this interpreter.
        host: the address to bind.
        rest_port: the REST port; 0 picks a free one.
        grpc_port: the gRPC port; 0 picks a free one.
        frozen_at: start with the clock frozen at this time (timezone-aware);
            None: the system's time.
        startup_timeout: seconds to wait for the server to be ready.
        journal_size: how many of the last calls the request journal keeps
            (``journal()``); 0: no journal.
        admin_key: the admin key added to the seed's; None (the default): a
            random one, made for this server.

    """

    def __init__(
        self,
        *,
        seed: seed_pb2.Seed | str | os.PathLike[str] | None = None,
        db: str | os.PathLike[str] = ":memory:",
        in_process: bool = True,
        host: str = "127.0.0.1",
        rest_port: int = 0,
        grpc_port: int = 0,
        frozen_at: datetime.datetime | None = None,
        startup_timeout: float = 30.0,
        journal_size: int = DEFAULT_JOURNAL_SIZE,
        admin_key: str | None = None,
    ) -> None:
        self._seed_source = seed
        self._db = os.fspath(db)
        self._in_process = in_process
        self._host = host
        self._ports = (rest_port, grpc_port)
        self._frozen_at = frozen_at
        self._startup_timeout = startup_timeout
        self._journal_size = journal_size
        self._running: _Running | None = None
        self._admin: EmulatorAdmin | None = None
        self.admin_key = admin_key or secrets.token_urlsafe(24)
        """The admin key of this server (added to the seed's own): made for it unless given."""
        self.seed = seed_pb2.Seed()
        """The seed the server started with, the made admin key included."""

    # Starting and stopping.

    def start(self) -> Self:
        """Start the server; return once both transports take calls.

        Raises StartupError, with nothing left running, when it cannot start.
        """
        if self._running is not None:
            return self
        source = self._seed_source
        seed = seed_of(source if isinstance(source, seed_pb2.Seed | None) else pathlib.Path(source))
        seed.admin_keys.append(self.admin_key)
        self.seed = seed
        config = ServerConfig(
            host=self._host,
            rest_port=self._ports[0],
            grpc_port=self._ports[1],
            db=self._db,
            seed=seed,
            frozen_at=self._frozen_at,
            journal_size=self._journal_size,
        )
        if self._in_process:
            self._running = _InThread.start(config, self._startup_timeout)
        else:
            self._running = _InSubprocess.start(config, self._startup_timeout)
        self._admin = EmulatorAdmin(self.grpc_target, self.admin_key)
        return self

    def stop(self) -> None:
        """Stop the server and let calls in flight finish; the store is closed."""
        admin, self._admin = self._admin, None
        if admin is not None:
            admin.close()
        running, self._running = self._running, None
        if running is not None:
            running.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)

    def __repr__(self) -> str:
        running = self._running
        if running is None:
            return f"<LocalServer not running, {self._ports_text()}>"
        rest = f"http://{running.rest_address}"
        return f"<LocalServer REST {rest}, gRPC {running.grpc_address}, console {rest}/console/>"

    def _ports_text(self) -> str:
        rest, grpc_port = self._ports
        if not rest and not grpc_port:
            return "on free ports"
        return f"REST port {rest or 'free'}, gRPC port {grpc_port or 'free'}"

    # Where it is.

    def _started(self) -> _Running:
        if self._running is None:
            msg = "the server is not running: use `with LocalServer() as server:` or start()"
            raise RuntimeError(msg)
        return self._running

    @property
    def rest_url(self) -> str:
        """The REST base URL (``http://127.0.0.1:PORT``), for ``Client(base_url=...)``."""
        return f"http://{self._started().rest_address}"

    @property
    def grpc_target(self) -> str:
        """The gRPC address (``127.0.0.1:PORT``), for ``grpc.insecure_channel``."""
        return self._started().grpc_address

    @property
    def project_id(self) -> str:
        """The first project of the seed (``PROJECT_ID`` in the default seed)."""
        return self.seed.projects[0].project_id if self.seed.projects else ""

    @property
    def api_key(self) -> str:
        """The first API key of the first project of the seed (``TEST_API_KEY`` by default)."""
        projects = self.seed.projects
        return projects[0].api_keys[0] if projects and projects[0].api_keys else ""

    # Calling it.

    def client(self, api_key: str | None = None, **options: Any) -> Client:  # noqa: ANN401
        """Return a new ``Client`` of the server's REST API (close it, or use ``with``).

        ``api_key`` defaults to ``api_key``; ``options`` go to ``Client``.
        """
        module = import_optional("client", "auxia_decision._client")
        client: Client = module.Client(
            api_key=api_key or self.api_key, base_url=self.rest_url, **options
        )
        return client

    def async_client(self, api_key: str | None = None, **options: Any) -> AsyncClient:  # noqa: ANN401
        """Return a new ``AsyncClient`` of the server's REST API (``async with`` it)."""
        module = import_optional("client", "auxia_decision._client")
        client: AsyncClient = module.AsyncClient(
            api_key=api_key or self.api_key, base_url=self.rest_url, **options
        )
        return client

    def grpc_channel(self) -> grpc.Channel:
        """Return a new gRPC channel to the server (close it, or use ``with``).

        Calls authenticate with ``metadata=(("x-api-key", server.api_key),)``.
        """
        return grpc.insecure_channel(self.grpc_target)

    # The emulator admin API.

    @property
    def admin(self) -> EmulatorAdmin:
        """The emulator admin API of the server, with this server's admin key."""
        self._started()
        assert self._admin is not None
        return self._admin

    @property
    def clock(self) -> ClockControl:
        """The server's clock: ``now()``, ``freeze(at)``, ``advance(by)``, ``use_real_time()``."""
        return self.admin.clock

    @property
    def faults(self) -> FaultControl:
        """Faults on the API's calls: ``fail_next``, ``fail_fraction``, ``delay_next``..."""
        return self.admin.faults

    def reset(self, project_id: str = "") -> None:
        """Put the server back as its seed made it (only ``project_id`` when given).

        A whole-server reset also clears the faults and sets the clock back as
        the server started.
        """
        self.admin.reset(project_id)

    def interactions(
        self,
        **filters: Any,  # noqa: ANN401 - EmulatorAdmin.interactions' keywords
    ) -> list[interactions.LogTreatmentInteractionRequest]:
        """Return the logged interactions matching ``filters``, oldest first.

        The filters are ``EmulatorAdmin.interactions``' keywords: ``project_id``,
        ``user_id``, ``treatment_tracking_id``, ``treatment_id``,
        ``interaction_type``, ``start_time``, ``end_time``; and ``newest_first``.
        """
        return self.admin.interactions(**filters)

    def explain(self, request: decision_service.GetTreatmentsRequest) -> list[emulator_pb2.Verdict]:
        """Return what GetTreatments would give each treatment for a request now, and why."""
        return self.admin.explain(request)

    def journal(
        self,
        **filters: Any,  # noqa: ANN401 - EmulatorAdmin.journal's keywords
    ) -> list[emulator_pb2.JournalEntry]:
        """Return the calls the server answered (since the last reset) matching ``filters``.

        Oldest first. The filters are ``EmulatorAdmin.journal``'s keywords:
        ``method``, ``code``, ``failed_only``, ``http_status``, ``project_id``,
        ``user_id``, ``api_calls_only``, ``start_time``, ``end_time``.
        """
        return self.admin.journal(**filters)

    def decisions(
        self,
        **filters: Any,  # noqa: ANN401 - EmulatorAdmin.decisions' keywords
    ) -> list[emulator_pb2.ServedDecision]:
        """Return the served decisions of GetTreatments matching ``filters``, oldest first.

        The filters are ``EmulatorAdmin.decisions``' keywords: ``project_id``,
        ``user_id``, ``treatment_tracking_id``, ``treatment_id``, ``surface``,
        ``start_time``, ``end_time``; and ``newest_first``.
        """
        return self.admin.decisions(**filters)


class _Running(Protocol):
    """A started server, wherever it runs."""

    rest_address: str
    grpc_address: str

    def stop(self) -> None:
        """Stop the server; return once it has stopped."""
        ...


class _InThread:
    """The server on an event loop of its own, in a thread of this process."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.rest_address = self.grpc_address = ""
        self._ready: concurrent.futures.Future[tuple[str, str]] = concurrent.futures.Future()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="auxia-decision-server", daemon=True)

    @classmethod
    def start(cls, config: ServerConfig, timeout: float) -> _InThread:
        started = cls(config)
        started._thread.start()
        try:
            started.rest_address, started.grpc_address = started._ready.result(timeout)
        except concurrent.futures.TimeoutError:
            started.stop()
            raise StartupError(f"the server was not ready within {timeout} s") from None
        return started

    def _run(self) -> None:
        try:
            run_event_loop(self._run_server())
        except BaseException as error:  # handed to the starting thread
            if not self._ready.done():
                self._ready.set_exception(error)

    async def _run_server(self) -> None:
        running = await start_server(self.config)
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._ready.set_result(
            (f"{running.host}:{running.rest_port}", f"{running.host}:{running.grpc_port}")
        )
        try:
            await self._stop.wait()
        finally:
            await running.stop()

    def stop(self) -> None:
        """Stop the server; return once it has stopped."""
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop has already ended
                loop.call_soon_threadsafe(stop.set)
        self._thread.join(_STOP_TIMEOUT)


class _InSubprocess:
    """``auxia-decision serve`` in a subprocess of this interpreter, by the start contract.

    It is started with ``--ready-file`` (read for its addresses) and
    ``--exit-with-parent`` (it stops if this process dies without stopping it).
    """

    def __init__(
        self, process: subprocess.Popen[bytes], folder: tempfile.TemporaryDirectory[str]
    ) -> None:
        self.rest_address = self.grpc_address = ""
        self._process = process
        self._folder = folder

    @classmethod
    def start(cls, config: ServerConfig, timeout: float) -> _InSubprocess:
        folder = tempfile.TemporaryDirectory(prefix="auxia-decision-")
        seed_file = pathlib.Path(folder.name) / "seed.json"
        assert isinstance(config.seed, seed_pb2.Seed)
        seed_file.write_text(json_format.MessageToJson(config.seed))
        log = pathlib.Path(folder.name) / "server.log"
        ready_file = pathlib.Path(folder.name) / "ready.json"
        db, password = config.db, None
        if is_postgres(db):
            # The password goes in the environment, which other users cannot read, as ps shows
            # them the command line.
            db, password = password_apart(db)
        environment = None if password is None else {**os.environ, "PGPASSWORD": password}
        command = [
            sys.executable,
            "-m",
            "auxia_decision",
            "serve",
            "--host",
            config.host,
            "--rest-port",
            str(config.rest_port),
            "--grpc-port",
            str(config.grpc_port),
            "--db",
            db,
            "--seed",
            str(seed_file),
            "--ready-file",
            str(ready_file),
            "--exit-with-parent",
        ]
        if config.frozen_at is not None:
            command += ["--clock", config.frozen_at.isoformat()]
        command += ["--journal-size", str(config.journal_size)]
        with log.open("wb") as log_file:
            process = subprocess.Popen(  # noqa: S603 - our interpreter, our command line
                command, stdin=subprocess.PIPE, stdout=log_file, stderr=log_file, env=environment
            )
        started = cls(process, folder)
        try:
            started._wait_ready(ready_file, timeout, log)
        except BaseException:
            started.stop()
            raise
        return started

    def _wait_ready(self, ready_file: pathlib.Path, timeout: float, log: pathlib.Path) -> None:
        try:
            info = wait_for_ready_file(ready_file, self._process, timeout)
        except TimeoutError:
            raise StartupError(f"the server was not ready within {timeout} s") from None
        if info is None:
            lines = log.read_text().strip().splitlines()
            reason = lines[-1] if lines else f"it exited with status {self._process.returncode}"
            raise StartupError(f"the server did not start: {reason.removeprefix('error: ')}")
        self.rest_address = _address(info)
        self.grpc_address = info.grpc_target

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after the grace period); remove its files."""
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._process.stdin is not None:
            self._process.stdin.close()
        self._folder.cleanup()


def _address(info: ReadyInfo) -> str:
    """Return the REST address (``host:port``) of a ready server."""
    return info.rest_url.removeprefix("http://")
