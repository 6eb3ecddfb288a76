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
_TICK_SECONDS: Final = 0.1  # uvicorn's: its date header is refreshed every ten ticks
_DRAIN_POLL_SECONDS: Final = 0.005


class RestServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to ``serve`` and stops without waiting.

    uvicorn notices ``should_exit`` at its next tick (every 0.1 s) and then
    sleeps another 0.1 s after asking its connections to close; a test
    harness that starts and stops a server per test waits for both. This one
    is told to stop (``stop``) and wakes at once, and waits for its
    connections only as long as they take to close.
    """

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        """Begin a graceful stop now: no new connections, calls in flight finish."""
        self.should_exit = True
        self._stopping.set()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def main_loop(self) -> None:
        """Tick as uvicorn does (its date header, its limits), and end as soon as told to stop."""
        counter = 0
        should_exit = await self.on_tick(counter)
        while not should_exit:
            counter = (counter + 1) % 864000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), _TICK_SECONDS)
            should_exit = await self.on_tick(counter)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Close the listeners, ask each connection to close, and wait as long as they take."""
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        try:
            await asyncio.wait_for(self._drained(), self.config.timeout_graceful_shutdown)
        except TimeoutError:
            for task in self.server_state.tasks:
                task.cancel(msg="the grace period for calls in flight is over")
        for server in self.servers:
            await server.wait_closed()

    async def _drained(self) -> None:
        """Return once no connection is open and no call is running."""
        while self.server_state.connections or self.server_state.tasks:
            await asyncio.sleep(_DRAIN_POLL_SECONDS)


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
) -> RestServer:
    """Return the HTTP server the REST gateway runs on, serving any ASGI app the same way.

    No access log (the gateway logs), no lifespan, no proxy-header rewriting
    (the server reads no client address), and a graceful shutdown that lets
    requests in flight finish. ``protocol`` is the HTTP/1.1 protocol class;
    by default uvicorn's own (httptools). Without ``default_headers``,
    uvicorn adds no ``date`` and ``server`` headers: the app's are all.
    """
    return RestServer(
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
) -> tuple[RestServer, asyncio.Task[None]]:
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
