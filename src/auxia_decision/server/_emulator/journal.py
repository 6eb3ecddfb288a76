"""The request journal: the last calls the server answered, as the transports saw them.

``Journal`` is the transports' ``CallObserver``. Recording a call appends one
tuple of what the transport already holds (the request's method, path, query
and headers or its gRPC metadata, the request's bytes, the status, the
answer's bytes, two readings of the monotonic clock) to a bounded deque:
nothing is decoded, copied or redacted then, and bodies over ``KEPT_BYTES``
are cut. A REST call whose head the server received whole in one read, as it
began it (the raw-request extension), is kept as that read's bytes: its
headers are read from them when the call is listed, not joined as it is
recorded (bench/NOTES.md, "The request journal"). When a call arrived by the
server's clock is worked out when it is listed, from the changes of that clock
the journal was told of (``clock_changed``). What is kept is strings, bytes,
numbers and tuples of them, never a dict or a list: the garbage collector soon
stops tracking such tuples, so that a full journal costs its collections
nothing. ``ListJournal`` (``journal_listing``) decodes and redacts the calls
it lists.
"""

from __future__ import annotations

import bisect
import collections
import itertools
import time
from collections.abc import Mapping, Sequence
from typing import Any, Final, Protocol, cast

from auxia_decision._errors import ApiError

DEFAULT_SIZE: Final = 200
"""How many calls the journal keeps unless told otherwise (``--journal-size``).

As many as the console's recent decisions. Every call kept costs the server's
throughput a little under load, since what it holds is memory the processor's
caches lose (bench/NOTES.md, "The request journal").
"""
KEPT_BYTES: Final = 16 * 1024
"""How much of a request's body and of an answer is kept (then marked as cut)."""

REST: Final = 1
GRPC: Final = 2

Headers = tuple[tuple[Any, Any], ...]
Record = tuple[
    int, int, int, int, str, str, bytes, Headers, bytes, int | bytes | None, bytes | None
]
"""One call as recorded: sequence, transport (``REST``, ``GRPC``), arrival (µs, the
server's clock), elapsed ns; REST: the HTTP method, the path and the query string,
gRPC: the service, the method and ``b""``; the headers (REST, bytes) or metadata (gRPC);
the request's bytes; how it ended (REST: the HTTP status; gRPC: None, or the serialized
``google.rpc.Status`` of its error); the answer's bytes (None: a gRPC call that failed)."""


Received = tuple[int, int, int, int, int, bytes, bytes, str, str, bytes]
"""A REST call kept as the bytes received: its sequence, arrival and end (perf_counter_ns),
HTTP status and the request body's length; the read that began with the request's head
and ends with its body; the answer's bytes; the HTTP method, path and query string."""
_RECEIVED_LENGTH: Final = 10
_RECEIVED_KEPT: Final = 2 * KEPT_BYTES
"""The longest read kept as received (with a body of ``KEPT_BYTES`` at most)."""


def _expanded(kept: Record | Received) -> Record:
    """Return a call as recorded, from the form it is kept in."""
    if len(kept) != _RECEIVED_LENGTH:
        return cast("Record", kept)  # a gRPC call, or a REST call with its headers
    sequence, began, ended, status, size, received, answer, method, path, query = cast(
        "Received", kept
    )
    request = received[len(received) - size :]
    return (
        sequence,
        REST,
        began,
        ended,
        method,
        path,
        query,
        _received_headers(received),
        request,
        status,
        answer,
    )


def _received_headers(received: bytes) -> Headers:
    """Return the headers of a request's head (lowercase names, as the ASGI scope has them)."""
    headers: list[tuple[bytes, bytes]] = []
    # Empty lines before the request line are read as none (RFC 9112, 2.2).
    for line in received.lstrip(b"\r\n").split(b"\n")[1:]:
        line = line.removesuffix(b"\r")  # noqa: PLW2901 - the line as read
        if not line:
            break  # the head's end
        if line[:1] in {b" ", b"\t"} and headers:  # a value folded onto this line
            name, value = headers[-1]
            headers[-1] = (name, value + b" " + line.strip(b" \t"))
            continue
        name, _, value = line.partition(b":")
        headers.append((name.strip().lower(), value.strip(b" \t")))
    return tuple(headers)


def _sequence_and_arrival(kept: Record | Received) -> tuple[int, int]:
    """Return a kept call's sequence and arrival (perf_counter_ns)."""
    arrival = kept[1 if len(kept) == _RECEIVED_LENGTH else 2]
    return kept[0], cast("int", arrival)


class ServerClock(Protocol):
    """What the journal reads of the server's clock when it changes."""

    def now(self) -> int:
        """Return the server's time, in microseconds since the Unix epoch."""
        ...

    @property
    def frozen(self) -> bool:
        """Whether the clock stands still."""
        ...


class Journal:
    """The last calls answered, at most ``capacity``; the oldest are dropped first.

    Args:
        capacity: how many calls are kept (at least 1).
        clock: the server's clock; ``clock_changed`` must be called after each
            change of it, so that the journal tells when each call arrived.

    """

    def __init__(self, capacity: int, clock: ServerClock) -> None:
        if capacity < 1:
            msg = f"a journal keeps at least one call, not {capacity}"
            raise ValueError(msg)
        self.capacity = capacity
        self._records: collections.deque[Record | Received] = collections.deque(maxlen=capacity)
        self._sequence = itertools.count(1)
        self._clock = clock
        # The clock's changes: when (perf_counter_ns), its time then (µs), whether frozen.
        self._changes: list[tuple[int, int, bool]] = []
        self.clock_changed()

    def clock_changed(self) -> None:
        """Note the server's clock as it now is (after it was frozen, advanced, set back...)."""
        ticks = time.perf_counter_ns()
        oldest = _sequence_and_arrival(self._records[0])[1] if self._records else ticks
        # The changes before the oldest call kept are no longer needed, but the last of them.
        while len(self._changes) > 1 and self._changes[1][0] <= oldest:
            del self._changes[0]
        self._changes.append((ticks, self._clock.now(), self._clock.frozen))

    def server_time(self, ticks: int) -> int:
        """Return the server's time (µs since the Unix epoch) at a ``perf_counter_ns`` reading."""
        index = bisect.bisect_right(self._changes, ticks, key=lambda change: change[0]) - 1
        at, then, frozen = self._changes[max(index, 0)]
        return then if frozen else then + (ticks - at) // 1000

    def rest(  # noqa: PLR0917 - positional: a call observed builds no object
        self,
        began_ns: int,
        ended_ns: int,
        scope: Mapping[str, Any],
        received: bytes | None,
        request: bytes,
        status: int,
        answer: bytes,
        /,
    ) -> None:
        """Record a REST call (see ``CallObserver.rest``)."""
        if len(answer) > KEPT_BYTES:
            answer = answer[: KEPT_BYTES + 1]
        if (
            received is not None
            and len(request) <= KEPT_BYTES
            and len(received) <= _RECEIVED_KEPT
            and received.endswith(request)
        ):
            self._records.append(
                (
                    next(self._sequence),
                    began_ns,
                    ended_ns,
                    status,
                    len(request),
                    received,
                    answer,
                    scope["method"],
                    scope["path"],
                    scope["query_string"],
                )
            )
            return
        if len(request) > KEPT_BYTES:
            request = request[: KEPT_BYTES + 1]
        self._records.append(
            (
                next(self._sequence),
                REST,
                began_ns,
                ended_ns,
                scope["method"],
                scope["path"],
                scope["query_string"],
                tuple(scope["headers"]),
                request,
                status,
                answer,
            )
        )

    def grpc(  # noqa: PLR0917 - positional: a call observed builds no object
        self,
        began_ns: int,
        ended_ns: int,
        service: str,
        method: str,
        metadata: Sequence[tuple[str, str | bytes]],
        request: bytes,
        answer: bytes | None,
        error: ApiError | None,
        /,
    ) -> None:
        """Record a gRPC call (see ``CallObserver.grpc``)."""
        if len(request) > KEPT_BYTES:
            request = request[: KEPT_BYTES + 1]
        if answer is not None and len(answer) > KEPT_BYTES:
            answer = answer[: KEPT_BYTES + 1]
        status = None if error is None else error.status.SerializeToString()
        pairs = tuple((key, value) for key, value in metadata)
        self._records.append(
            (
                next(self._sequence),
                GRPC,
                began_ns,
                ended_ns,
                service,
                method,
                b"",
                pairs,
                request,
                status,
                answer,
            )
        )

    def records(self) -> list[Record]:
        """Return the calls kept, oldest first."""
        return [_expanded(kept) for kept in self._records]

    @property
    def dropped(self) -> int:
        """How many calls were dropped (the oldest first) since the start or the last clear."""
        records = self._records
        return _sequence_and_arrival(records[0])[0] - 1 if records else 0

    def clear(self) -> None:
        """Forget every call (and the clock's past); the next is numbered 1 again."""
        self._records.clear()
        self._sequence = itertools.count(1)
        self._changes.clear()
        self.clock_changed()
