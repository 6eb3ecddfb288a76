"""The reference server: one servicer behind gRPC and REST, on an embedded store."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.resources
import logging
import pathlib
import signal
import socket
import sqlite3
import sys
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import grpc
import uvicorn

from auxia.decision.server import seed_pb2
from auxia_decision import _store
from auxia_decision._codec import RestCodec
from auxia_decision._gateway import RestGateway
from auxia_decision._grpc import add_to_server
from auxia_decision._servicer import (
    DATA_FIELD_TYPES,
    Clock,
    DecisionServicer,
    data_field_type_of,
    new_treatment,
    system_clock,
)
from auxia_decision._store import ProjectRecord, TreatmentStore
from auxia_decision._validation import check_request

T = TypeVar("T")
DEFAULT_DB: Final = "auxia-decision.db"
_GRACE_SECONDS: Final = 5.0
_log = logging.getLogger("auxia_decision.server")


@dataclass(frozen=True)
class ServerConfig:
    """Where the server listens and what it stores. Port 0 picks a free port."""

    host: str = "127.0.0.1"
    grpc_port: int = 50051
    rest_port: int = 8080
    db: str = DEFAULT_DB
    seed: pathlib.Path | None = None
    """A seed file (proto JSON of ``io.auxia.decision.server.Seed``); None: the default seed."""


def default_seed_text() -> str:
    """Return the default seed: the world of the API documentation's samples."""
    return importlib.resources.files("auxia_decision").joinpath("default_seed.json").read_text()


def load_seed(config: ServerConfig) -> seed_pb2.Seed:
    """Read and check the configured seed file, or the default seed."""
    text = config.seed.read_text() if config.seed is not None else default_seed_text()
    seed = RestCodec().decode_request(text, seed_pb2.Seed)
    for project in seed.projects:
        # What belongs to a project names it; the seed may leave that implied.
        for treatment_type in project.treatment_types:
            treatment_type.project_id = treatment_type.project_id or project.project_id
        for seeded in project.treatments:
            seeded.insert.project_id = seeded.insert.project_id or project.project_id
    check_request(seed)
    return seed


def apply_seed(connection: sqlite3.Connection, seed: seed_pb2.Seed, now: int) -> None:
    """Write a seed to the store: configuration is replaced, data is added once.

    Projects, keys, treatment types and user-attribute types are written at
    every start; seeded data fields are resolved (which changes nothing when
    they exist) and seeded treatments are created only when their identifier is
    not taken, so data written through the API survives a restart.
    """
    for index, project in enumerate(seed.projects):
        path = f"projects[{index}]"
        record = ProjectRecord(
            project.project_id,
            project.numeric_project_id,
            frozenset(project.supported_language_codes),
        )
        _store.insert_project(connection, record, project.api_keys)
        for treatment_type in project.treatment_types:
            _store.put_treatment_type(connection, treatment_type)
        for attribute in project.user_attribute_types:
            if attribute.data_field_type not in DATA_FIELD_TYPES:
                msg = (
                    f"{path}: user attribute {attribute.property_name} has type "
                    f"{attribute.data_field_type}, not one of {sorted(DATA_FIELD_TYPES)}"
                )
                raise ValueError(msg)
            _store.put_user_attribute_type(
                connection, project.project_id, attribute.property_name, attribute.data_field_type
            )
        for number, params in enumerate(project.data_fields):
            field_type = data_field_type_of(
                connection, project.project_id, params, f"{path}.dataFields[{number}]"
            )
            _store.resolve_data_field(connection, project.project_id, params, field_type)
        for seeded in project.treatments:
            if _store.find_treatment(
                connection, project.project_id, treatment_id=seeded.treatment_id
            ):
                continue
            insert = seeded.insert
            seeded_type = _store.get_treatment_type(
                connection, project.project_id, insert.treatment_type_name
            )
            if seeded_type is None:
                msg = f"{path}: no treatment type {insert.treatment_type_name}"
                raise ValueError(msg)
            stored = new_treatment(
                connection, record, insert, seeded_type, now, treatment_id=seeded.treatment_id
            )
            _store.put_treatment(connection, stored)


class _Uvicorn(uvicorn.Server):
    """A uvicorn server that leaves signal handling to ``serve``."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def rest_socket(host: str, port: int) -> socket.socket:
    """Return a TCP socket bound to the address (port 0: a free port), for ``rest_server_for``."""
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say they
    # are TCP, and without it Nagle's algorithm holds back every response's
    # body behind its headers for a delayed ACK (40 ms on Linux).
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


def rest_server_for(app: Callable[..., Awaitable[None]]) -> uvicorn.Server:
    """Return the HTTP server the REST gateway runs on, serving any ASGI app the same way.

    No access log (the gateway logs), no lifespan, no proxy-header rewriting
    (the server reads no client address), and a graceful shutdown that lets
    requests in flight finish.
    """
    return _Uvicorn(
        uvicorn.Config(
            app,
            access_log=False,
            log_level="warning",
            lifespan="off",
            proxy_headers=False,
            timeout_graceful_shutdown=int(_GRACE_SECONDS),
        )
    )


async def start_rest(
    app: Callable[..., Awaitable[None]], sock: socket.socket
) -> tuple[uvicorn.Server, asyncio.Task[None]]:
    """Serve an ASGI app on a bound socket as ``rest_server_for`` does; return once it listens."""
    server = rest_server_for(app)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            await task  # it failed to start: raise its error
        await asyncio.sleep(0.01)
    return server, task


def run_event_loop(main: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion on uvloop when it is installed, else on asyncio's loop."""
    try:
        import uvloop  # noqa: PLC0415
    except ImportError:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


@dataclass
class RunningServer:
    """A started server: its bound ports, and how to stop it."""

    servicer: DecisionServicer
    grpc_server: grpc.aio.Server
    rest_server: uvicorn.Server
    rest_task: asyncio.Task[None]
    grpc_port: int
    rest_port: int
    host: str

    async def stop(self) -> None:
        """Stop taking calls, let calls in flight finish, then close the store."""
        self.rest_server.should_exit = True
        await asyncio.gather(self.rest_task, self.grpc_server.stop(_GRACE_SECONDS))
        self.servicer.store.close()


async def start_server(config: ServerConfig, clock: Clock = system_clock) -> RunningServer:
    """Open the store, apply the seed and start both transports."""
    seed = load_seed(config)
    store = TreatmentStore(config.db)
    try:
        await store.run(lambda connection: apply_seed(connection, seed, clock()))
        await store.start_writer()
    except BaseException:  # a bad seed, or a writer process that did not start
        store.close()
        raise
    servicer = DecisionServicer(store, clock)
    await servicer.load_keys()

    grpc_server = grpc.aio.server()
    await add_to_server(servicer, grpc_server)
    grpc_port = grpc_server.add_insecure_port(f"{config.host}:{config.grpc_port}")
    await grpc_server.start()

    sock = rest_socket(config.host, config.rest_port)
    rest_port = sock.getsockname()[1]
    gateway = RestGateway(servicer, documents=_documents())
    rest_server, rest_task = await start_rest(gateway, sock)
    return RunningServer(
        servicer, grpc_server, rest_server, rest_task, grpc_port, rest_port, config.host
    )


def _documents() -> dict[str, bytes]:
    """Return the static documents the gateway serves on GET, such as the OpenAPI spec."""
    spec = importlib.resources.files("auxia.decision.model").joinpath("openapi.json")
    return {"/openapi.json": spec.read_bytes()} if spec.is_file() else {}


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
