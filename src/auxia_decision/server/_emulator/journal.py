"""The request journal: the last calls the server answered, as the transports saw them.

``Journal`` is the transports' ``CallObserver``. Recording a call appends one
tuple of what the transport already holds (the request's method, path, query
and headers or its gRPC metadata, the request's bytes, the status, the
answer's bytes, two clock readings) to a bounded deque: nothing is decoded or
redacted then, and bodies over ``KEPT_BYTES`` are cut. What is kept is
strings, bytes, numbers and tuples of them, never a dict or a list: the
garbage collector soon stops tracking such tuples, so that a full journal
costs its collections nothing. ``ListJournal`` (``journal_listing``)
decodes and redacts the calls it lists.
"""

from __future__ import annotations

import collections
import itertools
from collections.abc import Mapping, Sequence
from typing import Any, Final

from auxia_decision._errors import ApiError
from auxia_decision.server._domain.clock import Clock

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


class Journal:
    """The last calls answered, at most ``capacity``; the oldest are dropped first.

    Args:
        capacity: how many calls are kept (at least 1).
        clock: the server's clock, read as each call arrives.

    """

    def __init__(self, capacity: int, clock: Clock) -> None:
        if capacity < 1:
            msg = f"a journal keeps at least one call, not {capacity}"
            raise ValueError(msg)
        self.capacity = capacity
        self._records: collections.deque[Record] = collections.deque(maxlen=capacity)
        self._sequence = itertools.count(1)
        self.now = clock
        """The server's time, read by a transport as a call arrives."""

    def rest(  # noqa: PLR0917 - positional: a call observed builds no object
        self,
        arrived: int,
        elapsed_ns: int,
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
        self._records.append(
            (
                next(self._sequence),
                REST,
                arrived,
                elapsed_ns,
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
        arrived: int,
        elapsed_ns: int,
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
                arrived,
                elapsed_ns,
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
        return list(self._records)

    @property
    def dropped(self) -> int:
        """How many calls were dropped (the oldest first) since the start or the last clear."""
        records = self._records
        return records[0][0] - 1 if records else 0

    def clear(self) -> None:
        """Forget every call; the next is numbered 1 again."""
        self._records.clear()
        self._sequence = itertools.count(1)
