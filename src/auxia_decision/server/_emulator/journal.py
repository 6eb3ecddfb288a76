"""The request journal: the last calls the server answered, as the transports saw them.

``Journal`` is the transports' ``CallObserver``. Recording a call appends one
tuple of what the transport already holds (the request's method, path, query
and headers or its gRPC metadata, the request's bytes, the status, the
answer's bytes, two readings of the monotonic clock) to a bounded deque:
nothing is decoded or redacted then, and bodies over ``KEPT_BYTES`` are cut.
When a call arrived by the server's clock is worked out when it is listed,
from the changes of that clock the journal was told of (``clock_changed``). What is kept is
strings, bytes, numbers and tuples of them, never a dict or a list: the
garbage collector soon stops tracking such tuples, so that a full journal
costs its collections nothing. A REST call is kept packed, its numbers, bodies
and headers in one bytes object (``Packed``): dropping the oldest call then
frees one object of memory long unused instead of twenty, and the request's own
objects are freed at once, their memory used again by the next call
(bench/NOTES.md, "The request journal"). ``ListJournal`` (``journal_listing``)
decodes and redacts the calls it lists.
"""

from __future__ import annotations

import bisect
import collections
import itertools
import struct
import time
from collections.abc import Mapping, Sequence
from typing import Any, Final, Protocol

from auxia_decision._errors import ApiError

DEFAULT_SIZE: Final = 1000
"""How many calls the journal keeps unless told otherwise (``--journal-size``)."""
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


Packed = tuple[bytes, str, str, bytes]
"""A REST call as kept: its numbers, request, answer and headers in one bytes object
(``_HEAD`` then the bodies, then the headers' names and values joined by NUL), and its
HTTP method, path and query string."""

_HEAD: Final = struct.Struct("<qqqiii")
"""The numbers heading a packed call: sequence, arrival and end (perf_counter_ns), status,
the request's and the answer's lengths."""
_PACKED_LENGTH: Final = 4
_chain = itertools.chain.from_iterable


def _expanded(kept: Record | Packed) -> Record:
    """Return a call as recorded, from the form it is kept in."""
    if len(kept) != _PACKED_LENGTH:
        return kept  # a gRPC call, or a REST call with a NUL in a header
    packed, method, path, query = kept
    sequence, began, ended, status, request_size, answer_size = _HEAD.unpack_from(packed)
    start = _HEAD.size
    request = packed[start : start + request_size]
    start += request_size
    answer = packed[start : start + answer_size]
    start += answer_size
    items = packed[start:].split(b"\0") if start < len(packed) else []
    headers = tuple(zip(items[::2], items[1::2], strict=True))
    return (sequence, REST, began, ended, method, path, query, headers, request, status, answer)


def _sequence_and_arrival(kept: Record | Packed) -> tuple[int, int]:
    """Return a kept call's sequence and arrival (perf_counter_ns), reading nothing else."""
    if len(kept) != _PACKED_LENGTH:
        return kept[0], kept[2]
    sequence, began = _HEAD.unpack_from(kept[0])[:2]
    return sequence, began


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
        self._records: collections.deque[Record | Packed] = collections.deque(maxlen=capacity)
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
        request: bytes,
        status: int,
        answer: bytes,
        /,
    ) -> None:
        """Record a REST call (see ``CallObserver.rest``)."""
        if len(request) > KEPT_BYTES:
            request = request[: KEPT_BYTES + 1]
        if len(answer) > KEPT_BYTES:
            answer = answer[: KEPT_BYTES + 1]
        headers = scope["headers"]
        joined = b"\0".join(_chain(headers))
        if headers and joined.count(b"\0") != 2 * len(headers) - 1:
            # A NUL in a header (which HTTP forbids): kept as received, unpacked.
            self._records.append(
                (
                    next(self._sequence),
                    REST,
                    began_ns,
                    ended_ns,
                    scope["method"],
                    scope["path"],
                    scope["query_string"],
                    tuple(headers),
                    request,
                    status,
                    answer,
                )
            )
            return
        head = _HEAD.pack(
            next(self._sequence), began_ns, ended_ns, status, len(request), len(answer)
        )
        self._records.append(
            (
                head + request + answer + joined,
                scope["method"],
                scope["path"],
                scope["query_string"],
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
