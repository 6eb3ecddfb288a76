"""The emulator's state that server processes on one database share, and how it is kept there.

One process keeps the clock, the armed faults, the recent decisions, the
seed and its admin keys in memory. Processes that share a store
(``Store.shared``: replicas on one PostgreSQL) keep them in the store
instead, through ``SharedState``, which such a store implements: named
entries changed atomically across processes (``change_state``), which every
process takes in whenever the sync before a call finds them changed
(``watch_state``), and the decisions answered, committed with the call. A
change that moves counters only (a fault's draws) is made without telling
the processes (``count_state``), so that their syncs do not read the state
again for each call a fault counts.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Final, Protocol, TypeVar

T = TypeVar("T")

CLOCK: Final = "clock"
"""The entry of the clock: ``{"frozen": µs or null, "offset": µs}`` as JSON."""
FAULTS: Final = "faults"
"""The entry of the armed faults (``FaultPlan.encode``)."""
SEED: Final = "seed"
"""The entry of the seed the last started process gave (serialized ``Seed``)."""
RESETS: Final = "resets"
"""The entry that counts resets, whole or of a project (as decimal text): each makes every
process read the API keys again."""
WHOLE_RESETS: Final = "whole_resets"
"""The entry that counts whole resets (as decimal text): each empties every process's journal."""

StateListener = Callable[[dict[str, bytes]], None]
"""Told of every entry whenever the sync before a call finds one changed."""


class SharedState(Protocol):
    """The emulator's state, kept in a store that server processes share."""

    def state(self) -> dict[str, bytes]:
        """Return every entry, as of the last sync."""
        ...

    def watch_state(self, listener: StateListener) -> None:
        """Tell ``listener`` of the entries whenever a sync, or a change here, changes them."""
        ...

    async def change_state(self, key: str, change: Callable[[bytes | None], tuple[bytes, T]]) -> T:
        """Change one entry atomically across processes; return what ``change`` returns.

        ``change`` gets the entry's value (None: none yet) and returns its new
        value and a result; other changes wait meanwhile.
        """
        ...

    async def count_state(
        self, key: str, change: Callable[[bytes | None], tuple[bytes, T, bool]]
    ) -> T:
        """Change one entry as ``change_state`` does; return what ``change`` returns second.

        ``change`` also says (third) whether the processes must take the new
        value in. When not (counters, which every change reads afresh), no
        process's sync reads the state again for it, and no process's view
        of the entry changes, this one's included: ``current_state`` reads it.
        """
        ...

    async def current_state(self, key: str) -> bytes | None:
        """Return an entry as committed now (None: none yet), not as of the last sync."""
        ...

    def record_decision(
        self, time_micros: int, project_id: str, user_id: str, request: bytes, response: bytes
    ) -> Awaitable[None]:
        """Keep a decision answered (serialized request and response) for every process to list."""
        ...

    async def recent_decisions(
        self, project_id: str, user_id: str, limit: int
    ) -> list[tuple[int, str, bytes, bytes]]:
        """Return the last decisions kept, newest first: (time, project, request, response)."""
        ...

    def synchronize(self, project_id: str, user_id: str | None = None) -> Awaitable[object]:
        """Return an awaitable that ends once this process has caught up with every commit."""
        ...


def encode_clock(frozen: int | None, offset: int) -> bytes:
    """Return the clock's entry."""
    return json.dumps({"frozen": frozen, "offset": offset}).encode()


def decode_clock(value: bytes) -> tuple[int | None, int]:
    """Return (frozen time or None, offset) from the clock's entry."""
    found = json.loads(value)
    frozen = found["frozen"]
    return (None if frozen is None else int(frozen)), int(found["offset"])


def count_of(value: bytes | None) -> int:
    """Return a counting entry's count (0 when there is none)."""
    return 0 if value is None else int(value.decode())
