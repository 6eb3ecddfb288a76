"""An in-process reference world: a store with the default seed and a settable clock."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from google.protobuf.message import Message

from auxia_decision.server._domain.seed import apply_seed, load_seed
from auxia_decision.server._domain.servicer import ApiServicer
from auxia_decision.server._storage.sqlite_store import SqliteStore

T = TypeVar("T")
KEY = "TEST_API_KEY"
OTHER_KEY = "OTHER_API_KEY"


def micros(moment: str) -> int:
    """Return an RFC 3339 time as microseconds since the epoch."""
    parsed = datetime.datetime.fromisoformat(moment.replace("Z", "+00:00"))
    return int(parsed.timestamp() * 1_000_000)


@dataclass
class World:
    """A servicer over a fresh in-memory store, with the time under the test's control."""

    now: int = field(default_factory=lambda: micros("2026-11-23T12:00:00Z"))
    store: SqliteStore = field(default_factory=lambda: SqliteStore(":memory:"))

    def __post_init__(self) -> None:
        seed = load_seed()
        self.store.run_sync(lambda repository: apply_seed(repository, seed, self.now))
        self.servicer = ApiServicer(self.store, clock=lambda: self.now)
        self.loop = asyncio.new_event_loop()

    def run(self, coroutine: Coroutine[object, object, T]) -> T:
        """Run a coroutine on the world's event loop."""
        return self.loop.run_until_complete(coroutine)

    def call(self, method: str, request: Message, api_key: str = KEY) -> Message:
        """Invoke an RPC as the holder of ``api_key``."""
        return self.run(self.servicer.invoke(method, request, api_key))

    def call_fields(
        self,
        method: str,
        request_type: type[Message],
        fields: Mapping[str, Any],
        api_key: str = KEY,
    ) -> Message | Mapping[str, Any]:
        """Invoke an RPC as the REST gateway does: its request as its constructor's arguments.

        The response is a message, or its constructor's arguments.
        """

        async def invoke() -> Message | Mapping[str, Any]:
            project = await self.servicer.authenticate(api_key)
            answer = await self.servicer.invoke_fields(project, method, request_type, fields)
            assert not isinstance(answer, bytes), "no fault here answers JSON text"
            return answer

        return self.run(invoke())

    def close(self) -> None:
        """Close the loop and the store."""
        self.loop.close()
        self.store.close()
