"""The assembly: the store, the domain, the emulator and both transports, started together.

``start_server`` wires the parts (the servicer and the emulator's faults,
recent decisions and request journal, the two bindings both transports serve
and the journal observing them, the documents REST serves on GET, the hosts
it answers) and ``RunningServer.stop`` stops them in order.
"""

from __future__ import annotations

import asyncio
import datetime
import importlib.resources
import pathlib
import socket
import sqlite3
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

import grpc

from auxia.decision.server import seed_pb2
from auxia_decision._errors import ApiError, Code
from auxia_decision._routes import services
from auxia_decision.server._domain.clock import ControlledClock
from auxia_decision.server._domain.seed import apply_seed
from auxia_decision.server._domain.servicer import ApiServicer
from auxia_decision.server._emulator.admin_api import SERVICE, EmulatorServicer
from auxia_decision.server._emulator.console import console_documents
from auxia_decision.server._emulator.faults import FaultPlan
from auxia_decision.server._emulator.journal import DEFAULT_SIZE, Journal
from auxia_decision.server._emulator.recent_decisions import RecentDecisions
from auxia_decision.server._emulator.shared_state import SharedState
from auxia_decision.server._startup import (
    StartupError,
    bind_ports,
    check_ports,
    one_line,
    open_files_limit,
    open_store,
    redacted,
    seed_name,
    seed_of,
    start_micros,
)
from auxia_decision.server._storage.activity import DEFAULT_CAPACITY
from auxia_decision.server._storage.sqlite_store import SqliteStore
from auxia_decision.server._transport.bindings import Binding, Document
from auxia_decision.server._transport.gateway import RestGateway
from auxia_decision.server._transport.grpc_server import add_to_server
from auxia_decision.server._transport.hosts import HostCheck, HostPolicy
from auxia_decision.server._transport.http import HttpLimits, protocol_with
from auxia_decision.server._transport.runtime import GRACE_SECONDS, RestServer, start_rest

if TYPE_CHECKING:
    from auxia_decision.server._storage.postgres_store import PostgresStore

DEFAULT_DB: Final = "auxia-decision.db"


@dataclass(frozen=True)
class ServerConfig:
    """Where the server listens and what it stores. Port 0 picks a free port."""

    host: str = "127.0.0.1"
    grpc_port: int = 50051
    rest_port: int = 8080
    db: str = DEFAULT_DB
    """A SQLite file, ``:memory:``, or a ``postgresql://`` URL (``[postgres]`` extra)."""
    seed: pathlib.Path | seed_pb2.Seed | None = None
    """A seed file (proto JSON of ``io.auxia.decision.server.Seed``), a ``Seed``
    message, or None: the default seed."""
    limits: HttpLimits = field(default_factory=HttpLimits)
    """What one REST connection may take of the server."""
    frozen_at: datetime.datetime | None = None
    """Start with the clock frozen at this time (timezone-aware); None: the system's time."""
    activity_cache_users: int = DEFAULT_CAPACITY
    """How many users' activity the store keeps at hand (the least recently decided go)."""
    journal_size: int = DEFAULT_SIZE
    """How many of the last calls the request journal keeps; 0: no journal."""
    allowed_hosts: tuple[str, ...] = ()
    """The names REST answers besides loopback names, IP addresses and ``host``
    (``.example.test``: it and its subdomains; ``*``: any)."""
    cors_origins: tuple[str, ...] = ()
    """The origins whose requests get CORS headers (``*``: any); none by default."""


@dataclass
class RunningServer:
    """A started server: its bound ports, and how to stop it."""

    servicer: ApiServicer
    emulator: EmulatorServicer
    journal: Journal | None
    clock: ControlledClock
    store: SqliteStore | PostgresStore
    grpc_server: grpc.aio.Server
    rest_server: RestServer
    rest_task: asyncio.Task[None]
    grpc_port: int
    rest_port: int
    host: str
    seed: seed_pb2.Seed
    """The checked seed it started from."""

    async def stop(self) -> None:
        """Stop taking calls, let calls in flight finish, then close the store."""
        self.rest_server.stop()
        await asyncio.gather(self.rest_task, self.grpc_server.stop(GRACE_SECONDS))
        await self.store.aclose()


_STORE_FAILURES: Final = frozenset({Code.UNAVAILABLE, Code.INTERNAL})
"""The codes of what the store raises when its database fails under it."""


async def start_server(config: ServerConfig) -> RunningServer:
    """Open the store, apply the seed and start both transports.

    Raises StartupError, with everything it had started stopped again, when
    the seed, the database or a port is not usable.
    """
    seed = seed_of(config.seed)
    clock = ControlledClock(start_micros(config.frozen_at))
    check_ports(config.host, config.rest_port, config.grpc_port)  # before the file is touched
    store = open_store(config.db, config.activity_cache_users)
    grpc_server: grpc.aio.Server | None = None
    sock: socket.socket | None = None
    try:
        try:
            now = clock.now()
            await store.run(lambda repository: apply_seed(repository, seed, now))
        except (ApiError, ValueError) as error:
            # The store's failures (storage_error) are the database's, not the seed's.
            if isinstance(error, ApiError) and error.code in _STORE_FAILURES:
                msg = f"the database {redacted(config.db)} cannot be used: {error.message}"
                raise StartupError(msg) from None
            raise StartupError(f"{seed_name(config.seed)} is invalid: {one_line(error)}") from None
        try:
            await store.start_helpers()
        except sqlite3.Error as error:
            raise StartupError(f"the database {config.db} cannot be used: {error}") from None
        # Processes on one shared store (PostgreSQL) keep the emulator's state in it.
        shared: SharedState | None = store if store.shared else None  # type: ignore[assignment]
        faults, recent = FaultPlan(), RecentDecisions(shared)
        servicer = ApiServicer(store, clock.now, faults=faults, on_decision=recent.record)
        recent.explain_with(servicer.verdicts_then)
        journal = Journal(config.journal_size, clock) if config.journal_size > 0 else None
        emulator = EmulatorServicer(
            servicer,
            store,
            seed,
            clock,
            faults=faults,
            recent=recent,
            shared=shared,
            journal=journal,
        )
        await emulator.share()
        await servicer.load_keys()
        # Each project's catalog compiled now, not on the first decision's time (and, by
        # `serve`, frozen out of the garbage collector's full collections with the rest).
        for project_id in await store.run(lambda repository: repository.project_ids()):
            await servicer.catalog(project_id)
        bindings = _bindings(servicer, emulator)
        # grpc's default SO_REUSEPORT would let a second server share the port
        # (and split the calls between two databases): refuse it instead.
        grpc_server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
        await add_to_server(grpc_server, bindings, journal)
        sock, grpc_port = bind_ports(grpc_server, config.host, config.rest_port, config.grpc_port)
        rest_port = sock.getsockname()[1]
        await grpc_server.start()
        policy = HostPolicy(config.host, config.allowed_hosts, config.cors_origins)
        gateway = RestGateway(
            bindings,
            documents=_documents(),
            hosts=HostCheck(policy, rest_port),
            observer=journal,
        )
        protocol = protocol_with(config.limits, open_files_limit())
        rest_server, rest_task = await start_rest(gateway, sock, protocol)
    except BaseException:
        if grpc_server is not None:
            await grpc_server.stop(None)
        if sock is not None:
            sock.close()
        store.close()
        raise
    return RunningServer(
        servicer,
        emulator,
        journal,
        clock,
        store,
        grpc_server,
        rest_server,
        rest_task,
        grpc_port,
        rest_port,
        config.host,
        seed,
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
