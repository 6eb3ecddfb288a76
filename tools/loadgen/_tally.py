"""What a load run counts: answers by status, acknowledged requests, latencies, and the result."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final

_CONNECT_ATTEMPTS: Final = 3


@dataclass
class LoadResult:
    """What one load run did and saw."""

    transport: str
    requests: int
    """How many requests were sent (whole or in part)."""
    acknowledged: list[int]
    """The indices of the requests answered with HTTP 2xx or gRPC OK."""
    statuses: dict[str, int]
    """Answers by HTTP status or gRPC code name; ``no answer`` counts lost connections."""
    elapsed: float
    """Seconds from the first request to the last answer."""
    latency_ms: dict[str, float]
    """p50, p90, p99 and max latency of the answered requests, in milliseconds."""
    cpu_seconds: float
    """CPU time the generator process used (user + system)."""
    first_failure: str = ""
    """The first transport error, for the report."""
    served: int = 0
    """Treatments in the GetTreatments answers acknowledged (the decide workload)."""

    @property
    def throughput(self) -> float:
        """Return answered requests per second."""
        answered = sum(n for status, n in self.statuses.items() if status != "no answer")
        return answered / self.elapsed if self.elapsed > 0 else 0.0

    def count(self, predicate: Callable[[str], bool]) -> int:
        """Return how many answers have a status the predicate accepts."""
        return sum(n for status, n in self.statuses.items() if predicate(status))


def is_server_error(status: str) -> bool:
    """Whether an answer is a server failure: an HTTP 5xx or a gRPC INTERNAL/UNKNOWN/DATA_LOSS."""
    return status.startswith("5") or status in ("INTERNAL", "UNKNOWN", "DATA_LOSS")


@dataclass
class Tally:
    """The shared budget of a run and what its workers recorded."""

    total: int
    deadline: float
    next_index: int = 0
    acknowledged: list[int] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    latencies_ns: list[int] = field(default_factory=list)
    first_failure: str = ""
    served: int = 0

    def take(self) -> int | None:
        """Return the next request index, or None when the count or the time is spent."""
        if self.next_index >= self.total or time.monotonic() >= self.deadline:
            return None
        index = self.next_index
        self.next_index += 1
        return index

    def record(self, status: str, *, ok: bool, index: int, started_ns: int) -> None:
        """Record an answer."""
        self.statuses[status] = self.statuses.get(status, 0) + 1
        self.latencies_ns.append(time.perf_counter_ns() - started_ns)
        if ok:
            self.acknowledged.append(index)

    def lost(self, reason: str) -> None:
        """Record a request that got no answer."""
        self.statuses["no answer"] = self.statuses.get("no answer", 0) + 1
        self.first_failure = self.first_failure or reason


def percentiles(latencies_ns: list[int]) -> dict[str, float]:
    if not latencies_ns:
        return {}
    ordered = sorted(latencies_ns)

    def at(fraction: float) -> float:
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] / 1e6

    return {"p50": at(0.50), "p90": at(0.90), "p99": at(0.99), "max": ordered[-1] / 1e6}


async def keep_connected(
    tally: Tally, connect: Callable[[], Awaitable[asyncio.Future[None]]]
) -> None:
    """Connect again each time a connection ends, while the run's budget lasts.

    ``connect`` opens a connection and returns what resolves when it ends. A
    connection that cannot be opened is tried again after a pause, at most
    three times in a row; the first error is the run's first failure.
    """
    attempts = 0
    while tally.next_index < tally.total and time.monotonic() < tally.deadline:
        try:
            done = await connect()
        except OSError as error:
            tally.first_failure = tally.first_failure or f"connect: {error}"
            attempts += 1
            if attempts >= _CONNECT_ATTEMPTS:
                return
            await asyncio.sleep(0.05)
            continue
        attempts = 0
        await done
