"""How the transports run: uvicorn on a bound socket for REST, and the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any, Final, TypeVar

import uvicorn

T = TypeVar("T")
GRACE_SECONDS: Final = 5.0
"""How long calls in flight may take to finish once the server is told to stop."""


class _Uvicorn(uvicorn.Server):
    """A uvicorn server that leaves signal handling to ``serve``."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def bound_socket(host: str, port: int) -> socket.socket:
    """Return a TCP socket bound to the address (port 0: a free port)."""
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say they
    # are TCP, and without it Nagle's algorithm holds back every response's
    # body behind its headers for a delayed ACK (40 ms on Linux).
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


def rest_server_for(
    app: Callable[..., Awaitable[None]],
    protocol: type[asyncio.Protocol] | None = None,
    *,
    default_headers: bool = True,
) -> uvicorn.Server:
    """Return the HTTP server the REST gateway runs on, serving any ASGI app the same way.

    No access log (the gateway logs), no lifespan, no proxy-header rewriting
    (the server reads no client address), and a graceful shutdown that lets
    requests in flight finish. ``protocol`` is the HTTP/1.1 protocol class;
    by default uvicorn's own (httptools). Without ``default_headers``,
    uvicorn adds no ``date`` and ``server`` headers: the app's are all.
    """
    return _Uvicorn(
        uvicorn.Config(
            app,
            http=protocol or "httptools",
            access_log=False,
            log_level="warning",
            lifespan="off",
            proxy_headers=False,
            timeout_graceful_shutdown=int(GRACE_SECONDS),
            server_header=default_headers,
            date_header=default_headers,
        )
    )


async def start_rest(
    app: Callable[..., Awaitable[None]],
    sock: socket.socket,
    protocol: type[asyncio.Protocol] | None = None,
    *,
    default_headers: bool = True,
) -> tuple[uvicorn.Server, asyncio.Task[None]]:
    """Serve an ASGI app on a bound socket as ``rest_server_for`` does; return once it listens."""
    server = rest_server_for(app, protocol, default_headers=default_headers)
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
