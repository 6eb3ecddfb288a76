"""What every peer shares: its command line, the ready file of the start contract, SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import os
import pathlib
import signal
from collections.abc import Awaitable, Callable, Sequence

from auxia_decision.server._ready import ReadyInfo, write_ready_file
from auxia_decision.server._storage.sqlite_store import SqliteStore
from auxia_decision.server._transport.runtime import bound_socket, run_event_loop, start_rest


def parse_address(description: str, argv: Sequence[str] | None) -> argparse.Namespace:
    """Read ``--host``, ``--port`` (0: a free port), ``--db`` and ``--ready-file``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--db", default=":memory:", help="SQLite file, for peers that store")
    parser.add_argument("--ready-file", type=pathlib.Path, required=True)
    return parser.parse_args(argv)


def announce(ready_file: pathlib.Path, *, rest_url: str = "", grpc_target: str = "") -> None:
    """Write the ready file as the reference server does (a peer has no project or keys)."""
    write_ready_file(ready_file, ReadyInfo(rest_url, grpc_target, os.getpid(), "", "", None))


async def _until_signalled() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()


async def _serve_rest(
    app: Callable[..., Awaitable[None]],
    address: argparse.Namespace,
    store: SqliteStore | None,
) -> None:
    if store is not None:
        await store.start_writer()
    sock = bound_socket(address.host, address.port)
    server, task = await start_rest(app, sock)
    announce(address.ready_file, rest_url=f"http://{address.host}:{sock.getsockname()[1]}")
    await _until_signalled()
    server.stop()
    await task
    if store is not None:
        store.close()


def serve_rest(
    app: Callable[..., Awaitable[None]],
    address: argparse.Namespace,
    store: SqliteStore | None = None,
) -> None:
    """Serve an ASGI app exactly as the reference server serves its gateway, until SIGTERM.

    An app that writes to a ``store`` has it set up as the reference server
    does (its interactions appended by a writer process), and closed after.
    """
    run_event_loop(_serve_rest(app, address, store))


async def until_signalled() -> None:
    """Return on SIGINT or SIGTERM."""
    await _until_signalled()
