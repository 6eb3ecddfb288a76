"""The reference server: one servicer behind gRPC and REST, on an embedded store."""

from __future__ import annotations

import asyncio
import importlib.resources
import logging
import pathlib
import signal
import sys
from dataclasses import dataclass
from typing import Final

import grpc
import uvicorn

from auxia_decision.server._clock import Clock, system_clock
from auxia_decision.server._gateway import RestGateway
from auxia_decision.server._grpc import add_to_server
from auxia_decision.server._runtime import GRACE_SECONDS, rest_socket, start_rest
from auxia_decision.server._seed import apply_seed, load_seed
from auxia_decision.server._servicer import DecisionServicer
from auxia_decision.server._store import TreatmentStore

DEFAULT_DB: Final = "auxia-decision.db"
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


@dataclass
class RunningServer:
    """A started server: its bound ports, and how to stop it."""

    servicer: DecisionServicer
    store: TreatmentStore
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


async def start_server(config: ServerConfig, clock: Clock = system_clock) -> RunningServer:
    """Open the store, apply the seed and start both transports."""
    seed = load_seed(config.seed)
    store = TreatmentStore(config.db)
    try:
        await store.run(lambda repository: apply_seed(repository, seed, clock()))
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
        servicer, store, grpc_server, rest_server, rest_task, grpc_port, rest_port, config.host
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
