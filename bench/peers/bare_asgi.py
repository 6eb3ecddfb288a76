"""The ceiling of the REST stack: a bare ASGI app answering ``{}`` on the same HTTP server.

It reads the whole request body and answers every request with ``200 {}``,
doing nothing else, served by ``rest_server_for`` (the reference server's
uvicorn configuration) on the same event loop.

Run: ``python -m bench.peers.bare_asgi --port 0``.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any, Final

from bench.peers._serving import parse_address, serve_rest

_HEADERS: Final = [(b"content-type", b"application/json"), (b"content-length", b"2")]


async def app(
    scope: MutableMapping[str, Any],
    receive: Callable[[], Awaitable[MutableMapping[str, Any]]],
    send: Callable[[MutableMapping[str, Any]], Awaitable[None]],
) -> None:
    """Read the request and answer ``{}``."""
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body", False):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": b"{}"})


def main(argv: Sequence[str] | None = None) -> int:
    """Serve the bare app until SIGTERM."""
    args = parse_address(__doc__ or "", argv)
    serve_rest(app, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
