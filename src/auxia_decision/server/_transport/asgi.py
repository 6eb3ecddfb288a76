"""What the REST gateway (an ASGI app) and the HTTP server it runs on agree about.

The ASGI types, and two server extensions:

- an app may answer a request with one call instead of the two ASGI messages
  (``http.response.start``, then ``http.response.body``). The server offers it
  in each HTTP scope as ``scope["extensions"][WHOLE_ANSWER][ANSWER]``, a
  :class:`WholeAnswer`; any other ASGI server leaves it out, and the app sends
  the two messages;
- ``scope["extensions"][RAW_REQUEST][RECEIVED]``: the bytes of the read that
  began with the request's head and held all of it (the head, then what came
  with it: some or all of the body, or more), so that an app that keeps
  requests (the emulator's journal) keeps the bytes received instead of
  joining the headers again. The server leaves it out when the head did not
  begin a read or did not end in it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any, Final, Protocol

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

WHOLE_ANSWER: Final = "auxia.http.response.whole"
"""The name of the whole-answer extension in ``scope["extensions"]``."""
ANSWER: Final = "answer"
"""The key of the extension's :class:`WholeAnswer` in its dict."""
RAW_REQUEST: Final = "auxia.http.request.raw"
"""The name of the raw-request extension in ``scope["extensions"]``."""
RECEIVED: Final = "received"
"""The key of the bytes received in the raw-request extension's dict."""


class WholeAnswer(Protocol):
    """Answers one request whole: its status line, headers and body leave in one write."""

    def __call__(self, status: int, headers: Sequence[tuple[bytes, bytes]], body: bytes) -> bool:
        """Answer ``status`` with ``headers`` and ``body``; False: send the ASGI messages instead.

        ``headers`` are written as given (lowercase names, valid values),
        after the server's own and before a ``content-length`` of the body
        that the server adds; they name neither ``content-length`` nor
        ``connection``, and ``status`` is one that has a body (not 1xx, 204
        or 304). It returns False, having written nothing, when the answer
        cannot leave at once (the client is not reading what was written
        before): the app then sends the two ASGI messages, which wait.
        """
        ...
