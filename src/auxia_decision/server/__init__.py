"""The local reference server of the Auxia API: REST and gRPC on an embedded SQLite store.

It needs the ``[server]`` extra (``pip install 'auxia-decision-api[server]'``);
importing this package without it raises ``MissingExtraError`` saying so.
``auxia-decision serve`` is its command line; ``LocalServer`` starts it for a
test suite, and ``EmulatorAdmin`` drives the emulator admin API of a server
that runs elsewhere.
"""

from __future__ import annotations

from auxia_decision._extras import require

require("server", "grpc", "grpc_health", "grpc_reflection", "uvicorn")

from auxia_decision.server._assembly import (  # noqa: E402 - after the check for the extra
    RunningServer,
    ServerConfig,
    start_server,
)
from auxia_decision.server._emulator.client import (  # noqa: E402
    ClockControl,
    EmulatorAdmin,
    FaultControl,
)
from auxia_decision.server._local import LocalServer  # noqa: E402
from auxia_decision.server._ready import ReadyInfo  # noqa: E402
from auxia_decision.server._serve import ready_message, serve  # noqa: E402
from auxia_decision.server._startup import StartupError  # noqa: E402
from auxia_decision.server._transport.http import HttpLimits  # noqa: E402
from auxia_decision.server._transport.runtime import run_event_loop  # noqa: E402

__all__ = [
    "ClockControl",
    "EmulatorAdmin",
    "FaultControl",
    "HttpLimits",
    "LocalServer",
    "ReadyInfo",
    "RunningServer",
    "ServerConfig",
    "StartupError",
    "ready_message",
    "run_event_loop",
    "serve",
    "start_server",
]
