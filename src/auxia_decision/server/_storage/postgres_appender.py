"""The rows a PostgreSQL store appends: grouped as they arrive, committed one batch at a time.

Logged interactions, served treatments and the decisions the console lists
are appended by one statement per batch, with a random batch id stored
beside the rows, so that a batch whose connection was lost while it
committed can be found out about (``Appender``). Interactions logged without
a sync go in batches of their own, whose statement writes only if the shared
state is still what the process knew (``batch_if_current``). The statements'
parameters are sent in PostgreSQL's binary format: arrays of text and bytea
that neither end writes out or parses as text.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

import psycopg
from google.rpc import error_details_pb2

from auxia_decision._errors import ApiError, Code
from auxia_decision.server._storage.postgres_connections import (
    IN_DOUBT_SECONDS,
    RETRY_AFTER,
    Link,
    connect,
    in_doubt_error,
    spawn,
    storage_error,
    unreachable,
)
from auxia_decision.server._storage.rows import INTERACTION_COLUMNS, SERVED_COLUMNS
from auxia_decision.server._storage.seam import StaleKnowledgeError

R = TypeVar("R")

_log = logging.getLogger("auxia_decision.store")

_SEND_ATTEMPTS: Final = 4
"""How many times a batch is sent on new connections while each is lost before it answers
(the batch id says whether a lost one was stored, so none is stored twice)."""

_IN_DOUBT_PAUSE: Final = 0.2
_PRUNE_EVERY: Final = 256
"""Every so many batches, the oldest kept decisions and batch ids are pruned."""
RECENT_KEPT: Final = 200
"""How many of the last decisions the database keeps for the console (at least)."""
_INTERACTION_WIDTH: Final = len(INTERACTION_COLUMNS)
_SERVED_WIDTH: Final = len(SERVED_COLUMNS)
RECENT_COLUMNS: Final = ("time_micros", "project_id", "user_id", "request", "response")
RECENT_WIDTH: Final = len(RECENT_COLUMNS)

_APPEND: Final = (
    "WITH batch AS (INSERT INTO write_batches (batch_id) VALUES (%b::int8)), "  # noqa: S608 - our own columns
    f"i AS (INSERT INTO interactions ({', '.join(INTERACTION_COLUMNS)}) "
    "SELECT * FROM unnest(%b::text[], %b::bytea[], %b::text[], %b::int4[], %b::text[], "
    "%b::text[], %b::int8[], %b::text[])), "
    f"s AS (INSERT INTO served ({', '.join(SERVED_COLUMNS)}) "
    "SELECT * FROM unnest(%b::text[], %b::text[], %b::text[], %b::text[], %b::text[], "
    "%b::text[], %b::int8[])), "
    f"r AS (INSERT INTO recent_decisions ({', '.join(RECENT_COLUMNS)}) "
    "SELECT * FROM unnest(%b::int8[], %b::text[], %b::text[], %b::bytea[], %b::bytea[])), "
    "old_decisions AS (DELETE FROM recent_decisions WHERE %b::bool AND decision_id <= "
    "(SELECT last_value FROM recent_decisions_decision_id_seq) - %b::int8), "
    "old_batches AS (DELETE FROM write_batches "
    "WHERE %b::bool AND written_at < now() - interval '1 hour') "
    "SELECT 1"
).encode()

_APPEND_IF_CURRENT: Final = (
    "WITH current AS (SELECT 1 FROM replica_state "  # noqa: S608 - our own columns
    "WHERE generation = %b::int8 AND state_version = %b::int8), "
    "batch AS (INSERT INTO write_batches (batch_id) SELECT %b::int8 FROM current), "
    f"i AS (INSERT INTO interactions ({', '.join(INTERACTION_COLUMNS)}) "
    "SELECT u.* FROM unnest(%b::text[], %b::bytea[], %b::text[], %b::int4[], %b::text[], "
    "%b::text[], %b::int8[], %b::text[]) AS u, current) "
    "SELECT count(*) FROM current"
).encode()
"""Appends logged interactions only if the replicas' shared state is still what is known."""

Known = tuple[int, int]
"""What a process knows of the replicas' shared state: the reset generation, the state
version (of the faults and the clock)."""


@dataclass(slots=True)
class Batch:
    """The rows appended since the last batch was sent, and who waits for them."""

    interactions: list[Any] = field(default_factory=list)
    served: list[Any] = field(default_factory=list)
    recent: list[Any] = field(default_factory=list)
    waiters: list[asyncio.Future[Any]] = field(default_factory=list)
    results: list[object] = field(default_factory=list)
    known: Known | None = None
    """Write only if the shared state is still this (interactions only); None: write."""
    settled: list[asyncio.Future[None]] = field(default_factory=list)
    """Told once the batch is committed or has failed (``Appender.drained``)."""

    def resolve(self, error: BaseException | None) -> None:
        """Resolve each waiter to its result, or all of them to ``error``."""
        for settled in self.settled:
            if not settled.done():
                settled.set_result(None)
        self.settled.clear()
        for waiter, result in zip(self.waiters, self.results, strict=True):
            if waiter.done():
                continue
            if error is None:
                waiter.set_result(result)
            else:
                waiter.set_exception(error)


def _columns(values: Sequence[Any], width: int) -> list[Sequence[Any]]:
    """Return the columns of rows given as their values in turn."""
    return [values[column::width] for column in range(width)]


class Appender:
    """Commits the rows a server appends: grouped as they arrive, one batch in flight.

    Each batch is one statement, with a random batch id stored beside its
    rows: when the connection is lost while the statement runs, a new
    connection asks whether the id is there. A batch found stored is
    acknowledged; one found not stored is sent once more (a connection the
    server dropped while idle costs the callers nothing); one that cannot
    be asked about within ``IN_DOUBT_SECONDS`` fails, saying it may be stored.
    """

    def __init__(self, url: str) -> None:
        self._url = url
        self.link = Link(url)
        self._next: Batch | None = None
        self._next_if_current: Batch | None = None
        self._ready: list[Batch] = []
        """Batches of interactions to write if current, filled under knowledge since changed."""
        self._again: list[tuple[Batch, int]] = []
        """Batches found not stored after their connection was lost, to send again (with the
        attempts they have left): the sender sends them, so one statement is in flight."""
        self._sending: asyncio.Future[Any] | None = None
        self._in_flight: Batch | None = None
        self._ordinary_last = False
        """Whether the last batch sent was an ordinary one: a conditional one goes next."""
        self._idle: list[asyncio.Future[None]] = []
        self._settling: set[asyncio.Future[Any]] = set()
        self._sent = 0
        self._random = random.SystemRandom()

    def batch(self) -> Batch:
        """Return the batch being filled, starting the sender when none is running."""
        batch = self._next
        if batch is None:
            batch = self._next = Batch()
            self._start_sender()
        return batch

    def batch_if_current(self, known: Known) -> Batch:
        """Return the batch of interactions written only if the shared state is ``known``.

        Its waiters get ``StaleKnowledgeError`` when the state has changed by
        the time the batch commits.
        """
        batch = self._next_if_current
        if batch is None or batch.known != known:
            if batch is not None:
                self._ready.append(batch)
            batch = self._next_if_current = Batch(known=known)
            self._start_sender()
        return batch

    def _start_sender(self) -> None:
        if self._sending is None:
            self._sending = spawn(self._send_all())

    def wait(self, batch: Batch, result: R) -> asyncio.Future[R]:
        """Return a future resolved to ``result`` once the batch is committed."""
        waiter: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        batch.waiters.append(waiter)
        batch.results.append(result)
        return waiter

    async def drained(self) -> None:
        """Wait until every row appended so far is committed (or failed).

        Rows appended meanwhile are not waited for: under a steady stream of
        rows the sender is never idle, and a Reset waits for this.
        """
        await asyncio.sleep(0)
        loop = asyncio.get_running_loop()
        waits: list[asyncio.Future[Any]] = list(self._settling)
        batches = (
            self._in_flight,
            self._next,
            self._next_if_current,
            *self._ready,
            *(batch for batch, _ in self._again),
        )
        for batch in batches:
            if batch is not None:
                settled: asyncio.Future[None] = loop.create_future()
                batch.settled.append(settled)
                waits.append(settled)
        while waits:
            await asyncio.wait(waits)
            # A batch in doubt, once asked about, may be queued to be sent again.
            waits = []
            for batch, _ in self._again:
                settled = loop.create_future()
                batch.settled.append(settled)
                waits.append(settled)

    async def _idle_sender(self) -> None:
        """Wait until the sender has nothing left to send and no batch is in doubt."""
        await asyncio.sleep(0)
        while self._sending is not None or self._settling:
            if self._sending is None:
                await asyncio.wait(set(self._settling))
                continue
            idle: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._idle.append(idle)
            await idle

    async def _send_all(self) -> None:
        batch: Batch | None = None
        try:
            while True:
                # Ordinary and conditional batches take turns: a steady stream of
                # either does not hold the other back.
                conditional = bool(self._ready) or self._next_if_current is not None
                if self._again:
                    batch, attempts = self._again.pop(0)
                elif self._next is not None and not (conditional and self._ordinary_last):
                    batch, attempts, self._next = self._next, _SEND_ATTEMPTS, None
                    self._ordinary_last = True
                elif self._ready:
                    batch, attempts = self._ready.pop(0), _SEND_ATTEMPTS
                    self._ordinary_last = False
                elif self._next_if_current is not None:
                    batch, attempts = self._next_if_current, _SEND_ATTEMPTS
                    self._next_if_current = None
                    self._ordinary_last = False
                else:
                    break
                self._in_flight = batch
                await self._send(batch, attempts)
                self._in_flight = None
        except Exception as error:  # a bug: the callers waiting get it, none waits forever
            _log.exception("the appender failed")
            pending = [batch, self._next, self._next_if_current, *self._ready]
            for waiting in (*pending, *(again for again, _ in self._again)):
                if waiting is not None:
                    waiting.resolve(error)
            self._next, self._next_if_current, self._ready, self._again = None, None, [], []
            raise
        finally:
            self._sending = None
            self._in_flight = None
            idle, self._idle = self._idle, []
            for waiter in idle:
                if not waiter.done():
                    waiter.set_result(None)

    def _statement(self, batch: Batch, batch_id: int) -> tuple[bytes, list[Any]]:
        """Return the statement writing a batch, and its parameters."""
        if batch.known is not None:
            return _APPEND_IF_CURRENT, [
                *batch.known,
                batch_id,
                *_columns(batch.interactions, _INTERACTION_WIDTH),
            ]
        return _APPEND, self._parameters(batch, batch_id)

    def _parameters(self, batch: Batch, batch_id: int) -> list[Any]:
        self._sent += 1
        prune = self._sent % _PRUNE_EVERY == 0
        return [
            batch_id,
            *_columns(batch.interactions, _INTERACTION_WIDTH),
            *_columns(batch.served, _SERVED_WIDTH),
            *_columns(batch.recent, RECENT_WIDTH),
            prune,
            RECENT_KEPT * 4,
            prune,
        ]

    async def _send(self, batch: Batch, attempts: int = _SEND_ATTEMPTS) -> None:
        batch_id = self._random.getrandbits(63)
        connection = None
        try:
            connection = await self.link.connected()
        except ApiError as error:  # the store is closing
            batch.resolve(error)
            return
        except psycopg.Error as error:  # not connected: nothing was sent
            batch.resolve(storage_error(error))
            return
        try:
            statement, parameters = self._statement(batch, batch_id)
            cursor = await connection.execute(statement, parameters, prepare=True)
            written = batch.known is None or (await cursor.fetchone()) == (1,)
        except psycopg.Error as error:
            lost = connection is not None and (
                connection.broken or connection.closed or unreachable(error)
            )
            if not lost:
                # Not connected, or the statement failed: it was rolled back.
                batch.resolve(storage_error(error))
                return
            # The connection was lost with the statement sent (psycopg may say so before
            # it marks the connection broken): was it stored?
            self.link.drop(connection)
            settling = spawn(self._settle(batch, batch_id, attempts - 1))
            self._settling.add(settling)
            settling.add_done_callback(self._settling.discard)
            return
        batch.resolve(None if written else StaleKnowledgeError())

    async def _settle(self, batch: Batch, batch_id: int, attempts: int) -> None:
        """Find out whether a batch whose connection was lost was stored; resolve it."""
        deadline = time.monotonic() + IN_DOUBT_SECONDS
        while True:
            try:
                async with await connect(self._url) as connection:
                    found = await (
                        await connection.execute(
                            b"SELECT 1 FROM write_batches WHERE batch_id = %s", (batch_id,)
                        )
                    ).fetchone()
            except psycopg.Error:
                if time.monotonic() >= deadline:
                    batch.resolve(in_doubt_error())
                    return
                await asyncio.sleep(_IN_DOUBT_PAUSE)
                continue
            break
        if found is not None:
            batch.resolve(None)
        elif attempts > 0:
            self._again.append((batch, attempts))
            self._start_sender()
        else:
            batch.resolve(
                ApiError(
                    Code.UNAVAILABLE,
                    f"the connection to the database was lost {_SEND_ATTEMPTS} times; "
                    "nothing was written: try again",
                    details=[error_details_pb2.RetryInfo(retry_delay=RETRY_AFTER)],
                )
            )

    async def close(self) -> None:
        """Commit what was appended, then close the connection."""
        await self._idle_sender()
        await self.link.close()
