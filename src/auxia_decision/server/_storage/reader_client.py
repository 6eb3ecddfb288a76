"""The server's side of the reader process: asks it for users' activity, resolves the answers."""

from __future__ import annotations

import asyncio
import collections
import logging
import pathlib
import sqlite3
from collections.abc import Callable
from typing import Any, Final

from auxia_decision._futures import forward
from auxia_decision.server._storage import reader_process
from auxia_decision.server._storage.daily import PackedActivity, Watermark
from auxia_decision.server._storage.process_link import ProcessLink, helper_error

_SCRIPT: Final = str(pathlib.Path(reader_process.__file__))

_log = logging.getLogger("auxia_decision.store")

Read = asyncio.Future[tuple[PackedActivity, Watermark]]
"""A user's activity as read, packed, with the highest row ids of the snapshot it was read in."""


class ReaderClient:
    """The server side of a reader process, bound to one event loop.

    ``read`` asks the process for a user's activity; the users asked for in
    one pass of the event loop go in one frame and are read in one snapshot.
    If the process stops, ``running`` turns false and the reads it has not
    answered are done by ``fallback`` instead.

    Args:
        path: the SQLite file the process reads.
        sent: the kind number of a served treatment (``daily.read_daily_rows``).
        loop: the event loop whose futures it resolves; it must be running in
            this thread when the reader is used.
        fallback: reads a user's activity (project id, user id) another way.
        error_for: what a read gets for a SQLite error (the error itself by
            default): a store turns them into the errors of its callers.

    """

    def __init__(
        self,
        path: str,
        *,
        sent: int,
        loop: asyncio.AbstractEventLoop,
        fallback: Callable[[str, str], Read],
        error_for: Callable[[sqlite3.Error], BaseException] = lambda error: error,
    ) -> None:
        self.loop = loop
        self._fallback = fallback
        self._error_for = error_for
        # Users asked for in this pass of the loop, not yet sent; then every user
        # sent or to be sent, and its read, oldest first.
        self._asked: list[tuple[str, str]] = []
        self._pending: collections.deque[tuple[tuple[str, str], Read]] = collections.deque()
        self.running = True
        self._link = ProcessLink(
            _SCRIPT,
            [path, str(sent)],
            loop,
            self._answer,
            lambda reason: self._stop(f"the activity reader {reason}", unexpected=True),
        )
        self.process = self._link.process

    async def started(self) -> None:
        """Wait until the process has opened the database; raise if it could not."""
        await self._link.opened()

    def read(self, project_id: str, user_id: str) -> Read:
        """Return a future of a user's activity, read by the process (or ``fallback``)."""
        found: Read = self.loop.create_future()
        user = (project_id, user_id)
        if not self.running:
            forward(self._fallback(*user), found)
            return found
        if not self._asked:
            self.loop.call_soon(self._send)
        self._asked.append(user)
        self._pending.append((user, found))
        return found

    def _send(self) -> None:
        users, self._asked = self._asked, []
        if users and self._link.open:
            self._link.send(users)

    def _answer(self, answers: list[Any]) -> None:
        for count, error, code, found, last, last_served in answers:
            answered = [self._pending.popleft() for _ in range(count)]
            if error is not None:
                failure = self._error_for(helper_error(error, code))
                for _, read in answered:
                    if not read.done():
                        read.set_exception(failure)
                continue
            watermark = (last, last_served)
            for (_, read), activity in zip(answered, found, strict=True):
                if not read.done():
                    read.set_result((activity, watermark))

    def _stop(self, reason: str, *, unexpected: bool = False) -> None:
        """Let go of the process: the reads it has not answered go to ``fallback``."""
        self.running = False
        self._link.release()
        self._asked = []
        pending, self._pending = self._pending, collections.deque()
        for user, read in pending:
            forward(self._fallback(*user), read)
        if unexpected:
            _log.error("%s; activity is read on the event loop's thread from now on", reason)

    def close(self) -> None:
        """Stop the process once it has answered the users it was asked for.

        Call it from the event loop's thread (it waits for those answers), or
        once that loop has stopped (the reads not answered are dropped).
        """
        self.running = False
        if self._link.open and not self.loop.is_closed():
            self._send()
            self._link.finish()  # its last answers resolve their reads
        self._link.release()
        self._asked = []
        pending, self._pending = self._pending, collections.deque()
        if not self.loop.is_closed():
            for _, read in pending:  # the process was gone before it answered them
                read.cancel()
        self.process.wait()
