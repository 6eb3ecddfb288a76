"""Deleting, in turns and in the background, the records a project's Reset hid.

Both stores hide a project's records in its Reset's transaction
(``record_floors``) and delete them afterwards, a transaction a turn, so
that a Reset answers at once however big the project, and the other
projects' writes go on between turns. ``Purge`` runs those turns on the
store's event loop: one run at a time, looking again when a Reset asked
for one meanwhile, waiting out what the store says may pass (UNAVAILABLE:
a lock held elsewhere, a connection lost) and stopping on anything else,
the records still hidden for the next start to delete.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Final

from auxia_decision._errors import ApiError, Code

_log = logging.getLogger("auxia_decision.store")

RETRY_SECONDS: Final = (1.0, 60.0)
"""The pause after a turn the store could not make for now, first and longest (doubling)."""


class Purge:
    """Turns of deleting hidden records, one run of them at a time.

    Args:
        turn: makes one turn (a transaction) and returns whether it
            deleted anything; the run ends when one deletes nothing.
        between: awaited after each turn that deleted something (the
            rows queued meanwhile committed, say).

    """

    __slots__ = ("_again", "_between", "_closed", "_running", "_turn")

    def __init__(
        self,
        turn: Callable[[], Awaitable[bool]],
        between: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._turn = turn
        self._between = between
        self._running: asyncio.Future[None] | None = None
        self._again = False
        self._closed = False

    def start(self) -> None:
        """Start a run, unless one is under way (which then looks again before it ends).

        Call it from the store's event loop; once ``stop`` was called with
        ``closing``, it does nothing.
        """
        if self._closed:
            return
        self._again = True
        if self._running is None or self._running.done():
            self._running = asyncio.ensure_future(self._run())

    async def done(self) -> None:
        """Wait until the run under way, if any, ends."""
        while self._running is not None and not self._running.done():
            await asyncio.wait({self._running})

    def stop(self, *, closing: bool = False) -> asyncio.Future[None] | None:
        """Stop the run under way (the records stay hidden); return it, to be awaited if wanted.

        ``closing``: no run starts again.
        """
        self._closed = self._closed or closing
        running, self._running = self._running, None
        if running is None or running.done() or running.get_loop().is_closed():
            return None
        running.cancel()
        return running

    async def _run(self) -> None:
        pause = RETRY_SECONDS[0]
        while self._again:
            self._again = False
            try:
                while await self._turn():
                    pause = RETRY_SECONDS[0]
                    if self._between is not None:
                        await self._between()
            except ApiError as error:
                if error.code != Code.UNAVAILABLE:
                    _log.error(
                        "deleting the records a Reset hid failed (%s): they stay hidden", error
                    )
                    return
                _log.warning(
                    "deleting the records a Reset hid waits %g s: %s", pause, error.message
                )
                await asyncio.sleep(pause)
                pause = min(pause * 2, RETRY_SECONDS[1])
                self._again = True
