"""The reference server: one servicer behind gRPC and REST, on an embedded store."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import errno
import importlib.resources
import logging
import pathlib
import resource
import signal
import socket
import sqlite3
import sys
from dataclasses import dataclass, field
from typing import Final

import grpc
import uvicorn

from auxia.decision.server import seed_pb2
from auxia_decision._errors import ApiError
from auxia_decision._routes import services
from auxia_decision.server._domain.clock import ControlledClock
from auxia_decision.server._domain.seed import apply_seed, checked_seed, load_seed
from auxia_decision.server._domain.servicer import ApiServicer
from auxia_decision.server._emulator.admin_api import SERVICE, EmulatorServicer
from auxia_decision.server._emulator.console import PREFIX as CONSOLE
from auxia_decision.server._emulator.console import console_documents
from auxia_decision.server._emulator.faults import FaultPlan
from auxia_decision.server._emulator.recent_decisions import RecentDecisions
from auxia_decision.server._storage.sqlite_store import SqliteStore
from auxia_decision.server._transport.bindings import Binding, Document
from auxia_decision.server._transport.gateway import RestGateway
from auxia_decision.server._transport.grpc_server import add_to_server
from auxia_decision.server._transport.http import HttpLimits, protocol_with
from auxia_decision.server._transport.runtime import GRACE_SECONDS, rest_socket, start_rest

DEFAULT_DB: Final = "auxia-decision.db"
_log = logging.getLogger("auxia_decision.server")


@dataclass(frozen=True)
class ServerConfig:
    """Where the server listens and what it stores. Port 0 picks a free port."""

    host: str = "127.0.0.1"
    grpc_port: int = 50051
    rest_port: int = 8080
    db: str = DEFAULT_DB
    seed: pathlib.Path | seed_pb2.Seed | None = None
    """A seed file (proto JSON of ``io.auxia.decision.server.Seed``), a ``Seed``
    message, or None: the default seed."""
    limits: HttpLimits = field(default_factory=HttpLimits)
    """What one REST connection may take of the server."""
    frozen_at: datetime.datetime | None = None
    """Start with the clock frozen at this time (timezone-aware); None: the system's time."""


@dataclass
class RunningServer:
    """A started server: its bound ports, and how to stop it."""

    servicer: ApiServicer
    emulator: EmulatorServicer
    clock: ControlledClock
    store: SqliteStore
    grpc_server: grpc.aio.Server
    rest_server: uvicorn.Server
    rest_task: asyncio.Task[None]
    grpc_port: int
    rest_port: int
    host: str

    async def stop(self) -> None:
        """Stop taking calls, let calls in flight finish, then close the store."""
        self.rest_server.should_exit = True
        await asyncio.gather(self.rest_task, self.grpc_server.stop(GRACE_SECONDS))
        self.store.close()


class StartupError(Exception):
    """The server could not start; the message is one line naming what is wrong."""


async def start_server(config: ServerConfig) -> RunningServer:
    """Open the store, apply the seed and start both transports.

    Raises StartupError, with everything it had started stopped again, when
    the seed, the database or a port is not usable.
    """
    seed = seed_of(config.seed)
    clock = ControlledClock(_micros(config.frozen_at))
    store = open_store(config.db)
    grpc_server: grpc.aio.Server | None = None
    try:
        try:
            now = clock.now()
            await store.run(lambda repository: apply_seed(repository, seed, now))
        except (ApiError, ValueError) as error:
            raise StartupError(
                f"{_seed_name(config.seed)} is invalid: {_one_line(error)}"
            ) from None
        await store.load_activity()
        try:
            await store.start_writer()
        except sqlite3.Error as error:
            raise StartupError(f"the database {config.db} cannot be used: {error}") from None
        faults, recent = FaultPlan(), RecentDecisions()
        servicer = ApiServicer(store, clock.now, faults=faults, on_decision=recent.record)
        await servicer.load_keys()
        emulator = EmulatorServicer(servicer, store, seed, clock, faults=faults, recent=recent)
        bindings = _bindings(servicer, emulator)
        # grpc's default SO_REUSEPORT would let a second server share the port
        # (and split the calls between two databases): refuse it instead.
        grpc_server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
        await add_to_server(grpc_server, bindings)
        grpc_port = _bind_grpc(grpc_server, config.host, config.grpc_port)
        await grpc_server.start()
        sock = _bind_rest(config.host, config.rest_port)
        gateway = RestGateway(bindings, documents=_documents())
        protocol = protocol_with(config.limits, _open_files_limit())
        rest_server, rest_task = await start_rest(gateway, sock, protocol)
    except BaseException:
        if grpc_server is not None:
            await grpc_server.stop(None)
        store.close()
        raise
    return RunningServer(
        servicer,
        emulator,
        clock,
        store,
        grpc_server,
        rest_server,
        rest_task,
        grpc_port,
        sock.getsockname()[1],
        config.host,
    )


def _bindings(servicer: ApiServicer, emulator: EmulatorServicer) -> list[Binding]:
    """Return what both transports serve: the Auxia API, and the emulator admin API."""
    return [
        Binding(
            services(),
            servicer.admit,
            servicer.invoke_for,
            takes_fields=servicer.takes_fields,
            invoke_fields=servicer.invoke_fields,
        ),
        Binding([SERVICE], emulator.admit, emulator.invoke, listed=False),
    ]


def _open_files_limit() -> int:
    """Raise the process's limit of open files to its hard limit; return the limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


def _seed_name(seed: pathlib.Path | seed_pb2.Seed | None) -> str:
    if isinstance(seed, seed_pb2.Seed):
        return "the seed"
    return "the default seed" if seed is None else f"the seed {seed}"


def _one_line(error: BaseException) -> str:
    """Return an error as one line: a request error's violations joined by semicolons."""
    if isinstance(error, ApiError) and error.field_violations:
        return "; ".join(
            f"{violation.field}: {violation.description}"
            if violation.field
            else violation.description
            for violation in error.field_violations
        )
    return str(error).replace("\n", "; ")


def _micros(moment: datetime.datetime | None) -> int | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        msg = f"the clock's start time {moment.isoformat()} needs a time zone (UTC: ...Z)"
        raise StartupError(msg)
    delta = moment - datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
    return delta // datetime.timedelta(microseconds=1)


def seed_of(given: pathlib.Path | seed_pb2.Seed | None) -> seed_pb2.Seed:
    """Return a checked seed: a copy of a message, a file's, or the default one.

    Raises StartupError, one line naming the seed and each bad field.
    """
    if isinstance(given, seed_pb2.Seed):
        try:
            return checked_seed(given)
        except ApiError as error:
            raise StartupError(f"the seed is invalid: {_one_line(error)}") from None
    path = given
    try:
        return load_seed(path)
    except OSError as error:
        raise StartupError(f"{_seed_name(path)} cannot be read: {error.strerror}") from None
    except (ApiError, ValueError) as error:
        raise StartupError(f"{_seed_name(path)} is invalid: {_one_line(error)}") from None


def open_store(path: str) -> SqliteStore:
    """Open the store's database, or raise StartupError naming the path and what is wrong.

    A file that is not a usable SQLite database is left as it is.
    """
    if path != ":memory:":
        file = pathlib.Path(path)
        if file.is_dir():
            raise StartupError(f"the database {path} is a directory, not a file")
        if not file.parent.is_dir():
            raise StartupError(f"the database {path} cannot be created: no folder {file.parent}")
    try:
        return SqliteStore(path)
    except sqlite3.Error as error:
        reason = str(error)
        code = int(getattr(error, "sqlite_errorcode", 0)) & 0xFF
        if code in (sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT):
            reason = f"it is not a SQLite database, or it is damaged ({error})"
        elif code in (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM):
            reason = f"it cannot be opened for writing ({error})"
        raise StartupError(f"the database {path} cannot be used: {reason}") from None


def _bind_grpc(server: grpc.aio.Server, host: str, port: int) -> int:
    if port:
        # Tried first with a socket of our own, so that a port in use is one
        # line of ours rather than grpc's log line and then ours.
        try:
            rest_socket(host, port).close()
        except OSError as error:
            reason = "it is in use" if error.errno == errno.EADDRINUSE else error.strerror
            raise StartupError(f"the gRPC port {host}:{port} cannot be bound: {reason}") from None
    try:
        return server.add_insecure_port(f"{host}:{port}")
    except RuntimeError:
        raise StartupError(
            f"the gRPC port {host}:{port} cannot be bound: it is in use, or not an address here"
        ) from None


def _bind_rest(host: str, port: int) -> socket.socket:
    try:
        return rest_socket(host, port)
    except OSError as error:
        reason = "it is in use" if error.errno == errno.EADDRINUSE else error.strerror
        raise StartupError(f"the REST port {host}:{port} cannot be bound: {reason}") from None


_HEALTHY: Final = b'{"status":"SERVING"}'


def _documents() -> dict[str, Document]:
    """Return the static documents the gateway serves on GET.

    Health, the OpenAPI documents, and the console's pages and explorer.
    """
    documents = {"/healthz": Document(_HEALTHY)}
    for path, package in (
        ("/openapi.json", "auxia.decision.model"),
        ("/emulator/v1/openapi.json", "auxia.decision.emulator.v1"),
    ):
        spec = importlib.resources.files(package).joinpath("openapi.json")
        if spec.is_file():
            documents[path] = Document(spec.read_bytes())
    api = documents.get("/openapi.json")
    documents.update(console_documents(api.body if api is not None else None))
    return documents


def ready_message(running: RunningServer) -> str:
    """Return what ``serve`` prints once it listens: addresses and a curl line to paste."""
    rest = f"http://{running.host}:{running.rest_port}"
    return "\n".join(
        [
            f"auxia-decision: REST on {rest}",
            f"auxia-decision: gRPC on {running.host}:{running.grpc_port} "
            "(health checking and reflection on)",
            "Try:",
            f"  curl -sS -X POST {rest}/v1/LogTreatmentInteraction \\",
            "    -H 'Content-Type: application/json' -H 'x-api-key: TEST_API_KEY' \\",
            '    -d \'{"projectId": "PROJECT_ID", "treatmentTrackingId": "T1", '
            '"interactionType": "VIEWED", "interactionTimeMicros": "1732312345123456"}\'',
            f"  buf curl --http2-prior-knowledge --protocol grpc "
            f"http://{running.host}:{running.grpc_port}/"
            "io.auxia.decision.model.TreatmentManagementService/GetDataFields \\",
            '    -H \'x-api-key: API_KEY\' -d \'{"projectId": "PROJECT_ID", '
            '"dataFieldParams": [{"userAttributeDataFieldParams": '
            '{"propertyName": "country"}}]}\'',
            f"auxia-decision: console on {rest}{CONSOLE} (the seed's admin key opens it)",
            f"auxia-decision: emulator admin API on {rest}/emulator/v1/ and gRPC "
            "(x-admin-key: see the seed), health on /healthz",
            "auxia-decision: ready (Ctrl-C to stop)",
        ]
    )


async def serve(config: ServerConfig) -> None:
    """Run the server until SIGINT or SIGTERM, then stop it cleanly."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    running = await start_server(config)
    print(ready_message(running), flush=True)
    await stop.wait()
    print("auxia-decision: stopping", file=sys.stderr, flush=True)
    await running.stop()
