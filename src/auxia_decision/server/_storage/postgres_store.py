"""The PostgreSQL store (a ``Store``): any number of server processes on one database, as one.

Three connections per server process:

- units of work (``run``, ``replace``) run one at a time on a thread of
  their own, each in a transaction that takes the store's advisory lock, so
  that the replicas change configuration one after the other, as the
  SQLite store's single writer does;
- the rows calls append (logged interactions, served treatments, the
  decisions the console lists) are grouped as they arrive and committed by
  one statement, one batch in flight at a time (group commit), on a
  connection of the event loop;
- every call first waits for a **sync** (``synchronize``): one statement,
  sent after the call arrived, that reads what the other replicas changed
  (the reset generation, the emulator's shared state, the projects'
  configuration versions) and, for the users about to be decided for, the
  events committed since their cached activity was read. The calls that
  arrive meanwhile share the next sync.

Why a sync per call, and why snapshots: row ids come from a sequence, and
with concurrent writers a smaller id can commit after a larger one, so a
watermark of ids (the SQLite store's) could skip a row for ever. Instead
each row keeps the id of the transaction that wrote it (``txid``), and a
cached user keeps the snapshot its rows were read in: the rows to add are
those not visible in that snapshot (``pg_visible_in_snapshot``), read by
index on (project, user, txid) from the snapshot's oldest running
transaction on. Nothing is ever missed or counted twice, whatever the
order of commits, and writers never wait for one another. A write
acknowledged by any replica before a call arrives is committed before that
call's sync starts, so the sync sees it: the next decision on every replica
counts it (docs/replicas.md measures what that costs).
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import logging
import random
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

import psycopg
from google.protobuf import duration_pb2
from google.rpc import error_details_pb2
from psycopg import errors as pg_errors

from auxia_decision._errors import ApiError, Code
from auxia_decision.server._storage.activity import DEFAULT_CAPACITY, DailyActivity
from auxia_decision.server._storage.postgres_repository import (
    DAY_SQL,
    Connection,
    PostgresRepository,
)
from auxia_decision.server._storage.postgres_schema import lock_key, prepare
from auxia_decision.server._storage.rows import INTERACTION_COLUMNS, SERVED_COLUMNS
from auxia_decision.server._storage.seam import (
    SENT,
    DailyRow,
    LoggedRow,
    Repository,
    ServedTreatment,
)

T = TypeVar("T")
R = TypeVar("R")

_log = logging.getLogger("auxia_decision.store")
_RETRY_AFTER: Final = duration_pb2.Duration(seconds=1)
_CONNECT_SECONDS: Final = 5
IN_DOUBT_SECONDS: Final = 10.0
"""How long a batch whose commit lost its connection waits to learn whether it was stored."""
_IN_DOUBT_PAUSE: Final = 0.2
_PRUNE_EVERY: Final = 256
"""Every so many batches, the oldest kept decisions and batch ids are pruned."""
RECENT_KEPT: Final = 200
"""How many of the last decisions the database keeps for the console (at least)."""
_EVERYTHING_NEW: Final = "1:1:"
"""A snapshot in which no transaction is visible: reading "since" it reads everything."""
_INTERACTION_WIDTH: Final = len(INTERACTION_COLUMNS)
_SERVED_WIDTH: Final = len(SERVED_COLUMNS)
_RECENT_COLUMNS: Final = ("time_micros", "project_id", "user_id", "request", "response")
_RECENT_WIDTH: Final = len(_RECENT_COLUMNS)

_APPEND: Final = (
    "WITH batch AS (INSERT INTO write_batches (batch_id) VALUES (%s::int8)), "  # noqa: S608 - our own columns
    f"i AS (INSERT INTO interactions ({', '.join(INTERACTION_COLUMNS)}) "
    "SELECT * FROM unnest(%s::text[], %s::bytea[], %s::text[], %s::int4[], %s::text[], "
    "%s::text[], %s::int8[], %s::text[])), "
    f"s AS (INSERT INTO served ({', '.join(SERVED_COLUMNS)}) "
    "SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[], "
    "%s::text[], %s::int8[])), "
    f"r AS (INSERT INTO recent_decisions ({', '.join(_RECENT_COLUMNS)}) "
    "SELECT * FROM unnest(%s::int8[], %s::text[], %s::text[], %s::bytea[], %s::bytea[])), "
    "old_decisions AS (DELETE FROM recent_decisions WHERE %s::bool AND decision_id <= "
    "(SELECT last_value FROM recent_decisions_decision_id_seq) - %s::int8), "
    "old_batches AS (DELETE FROM write_batches "
    "WHERE %s::bool AND written_at < now() - interval '1 hour') "
    "SELECT 1"
).encode()

# One statement, one snapshot: the replicas' shared row, then each wanted user's
# events committed since the snapshot given for them, counted by kind, treatment,
# surface and day. The first row (n = 0) is the shared row.
_SYNC: Final = (
    "WITH want AS (SELECT * FROM unnest(%(projects)s::text[], %(users)s::text[], "  # noqa: S608 - our own constants
    "%(seen)s::text[]::pg_snapshot[]) WITH ORDINALITY AS w (project_id, user_id, seen, n)) "
    "SELECT 0::int8, r.generation, r.state_version, r.config_version, "
    "pg_current_snapshot()::text, "
    "CASE WHEN r.state_version <> %(state)s::int8 THEN "
    "(SELECT coalesce(array_agg(key ORDER BY key), '{}') FROM emulator_state) END, "
    "CASE WHEN r.state_version <> %(state)s::int8 THEN "
    "(SELECT coalesce(array_agg(value ORDER BY key), '{}') FROM emulator_state) END, "
    "CASE WHEN r.config_version <> %(config)s::int8 THEN "
    "(SELECT coalesce(array_agg(project_id), '{}') FROM projects) END, "
    "CASE WHEN r.config_version <> %(config)s::int8 THEN "
    "(SELECT coalesce(array_agg(version), '{}') FROM projects) END, "
    "NULL::int4, NULL::text, NULL::text, NULL::int8, NULL::int8, NULL::int8, NULL::int8 "
    "FROM replica_state r "
    "UNION ALL "
    "SELECT w.n, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, "
    f"i.kind, i.treatment_id, i.surface, {DAY_SQL} AS day, count(*), min(time_micros), "
    "max(time_micros) FROM want w JOIN interactions i ON i.project_id = w.project_id "
    "AND i.user_id = w.user_id AND i.txid >= pg_snapshot_xmin(w.seen) "
    "AND NOT pg_visible_in_snapshot(i.txid, w.seen) "
    "GROUP BY w.n, i.kind, i.treatment_id, i.surface, day "
    "UNION ALL "
    "SELECT w.n, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, "
    f"{SENT}, s.treatment_id, s.surface, {DAY_SQL} AS day, count(*), min(time_micros), "
    "max(time_micros) FROM want w JOIN served s ON s.project_id = w.project_id "
    "AND s.user_id = w.user_id AND s.txid >= pg_snapshot_xmin(w.seen) "
    "AND NOT pg_visible_in_snapshot(s.txid, w.seen) "
    "GROUP BY w.n, s.treatment_id, s.surface, day"
).encode()


def _reason(error: BaseException) -> str:
    """Return the first line of an error's message (psycopg's carry libpq's details after it)."""
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def _unreachable(error: BaseException) -> bool:
    """Whether an error means the database could not be reached or the connection was lost."""
    return isinstance(
        error,
        pg_errors.OperationalError
        | pg_errors.InterfaceError
        | pg_errors.AdminShutdown
        | pg_errors.CannotConnectNow
        | pg_errors.CrashShutdown,
    ) and not isinstance(error, pg_errors.InsufficientResources | pg_errors.DiskFull)


def storage_error(error: BaseException, *, writes: bool = True) -> ApiError:
    """Return the error a caller gets when PostgreSQL fails under the store.

    What the caller can wait out is UNAVAILABLE (HTTP 503) with a retry
    delay: the database unreachable or restarting, read-only, full, or a
    transaction it had to cancel. Nothing of the failed call is stored.
    """
    retry = [error_details_pb2.RetryInfo(retry_delay=_RETRY_AFTER)]
    nothing = "; nothing was written" if writes else ""
    reason = _reason(error)
    if isinstance(error, pg_errors.ReadOnlySqlTransaction):
        message = f"the database is read-only ({reason}){nothing}: try again once it takes writes"
    elif isinstance(error, pg_errors.DiskFull | pg_errors.InsufficientResources):
        message = f"the database is full or out of resources ({reason}){nothing}: try again later"
    elif isinstance(
        error,
        pg_errors.TransactionRollback | pg_errors.LockNotAvailable | pg_errors.QueryCanceled,
    ):
        message = f"the database cancelled the transaction ({reason}){nothing}: try again"
    elif _unreachable(error):
        message = f"the database cannot be reached ({reason}){nothing}: try again"
    else:
        _log.error("the store failed: %s: %s", type(error).__name__, reason)
        return ApiError(Code.INTERNAL, f"the store failed{nothing}")
    return ApiError(Code.UNAVAILABLE, message, details=retry)


def _in_doubt_error() -> ApiError:
    return ApiError(
        Code.UNAVAILABLE,
        "the connection to the database was lost while it committed, and the database "
        f"could not be asked within {IN_DOUBT_SECONDS:.0f} s whether it stored the call: "
        "it may have been stored",
        details=[error_details_pb2.RetryInfo(retry_delay=_RETRY_AFTER)],
    )


async def _connect(url: str) -> psycopg.AsyncConnection[tuple[Any, ...]]:
    return await psycopg.AsyncConnection.connect(
        url, autocommit=True, connect_timeout=_CONNECT_SECONDS, application_name="auxia-decision"
    )


def _alive(connection: psycopg.Connection[Any] | psycopg.AsyncConnection[Any]) -> bool:
    """Whether an idle connection still has its server: what the server sent is read first.

    A server that ended the session (a restart, ``pg_terminate_backend``)
    has said so on the socket; reading it before the next statement lets the
    store open a new connection instead of failing that statement.
    """
    if connection.closed or connection.broken:
        return False
    pgconn = connection.pgconn
    try:
        pgconn.consume_input()
    except psycopg.OperationalError:
        return False
    return pgconn.status == psycopg.pq.ConnStatus.OK


class _WorkThread:
    """Runs units of work one at a time on a connection of its own, in a thread of its own."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._executor = concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix="postgres-work"
        )
        self._connection: Connection | None = None
        # The first connection prepares the schema; its errors are the constructor's.
        self._executor.submit(self._open_and_prepare).result()

    def _open_and_prepare(self) -> None:
        connection = psycopg.connect(
            self._url,
            autocommit=True,
            connect_timeout=_CONNECT_SECONDS,
            application_name="auxia-decision",
        )
        try:
            prepare(connection)
        except BaseException:
            connection.close()
            raise
        self._connection = connection

    def _connected(self) -> Connection:
        connection = self._connection
        if connection is None or not _alive(connection):
            if connection is not None:
                connection.close()
            self._connection = None
            connection = psycopg.connect(
                self._url,
                autocommit=True,
                connect_timeout=_CONNECT_SECONDS,
                application_name="auxia-decision",
            )
            self._connection = connection
        return connection

    def _call(self, operation: Callable[[Connection], T], writes: bool) -> T:
        try:
            connection = self._connected()
            return operation(connection)
        except psycopg.Error as error:
            if self._connection is not None and self._connection.broken:
                self._connection.close()
                self._connection = None
            raise storage_error(error, writes=writes) from None

    async def run(self, operation: Callable[[Connection], T], *, writes: bool = True) -> T:
        """Run ``operation`` with the connection in the thread; return its result."""
        return await asyncio.wrap_future(self._executor.submit(self._call, operation, writes))

    def call(self, operation: Callable[[Connection], T]) -> T:
        """Run ``operation`` with the connection, from a thread that runs no event loop."""
        return self._executor.submit(self._call, operation, True).result()

    def close(self) -> None:
        """Finish the queued work and close the connection."""

        def close_connection() -> None:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

        with contextlib.suppress(RuntimeError):
            self._executor.submit(close_connection).result()
        self._executor.shutdown(wait=True)


def _bump_versions(connection: Connection, projects: set[str]) -> None:
    """Give changed projects new configuration versions, which every replica's sync reads."""
    if projects:
        connection.execute(
            b"UPDATE projects SET version = nextval('config_versions') WHERE project_id = ANY(%s)",
            (sorted(projects),),
        )
        connection.execute(b"UPDATE replica_state SET config_version = nextval('config_versions')")


@dataclass(slots=True)
class _Batch:
    """The rows appended since the last batch was sent, and who waits for them."""

    interactions: list[Any] = field(default_factory=list)
    served: list[Any] = field(default_factory=list)
    recent: list[Any] = field(default_factory=list)
    waiters: list[asyncio.Future[Any]] = field(default_factory=list)
    results: list[object] = field(default_factory=list)

    def resolve(self, error: BaseException | None) -> None:
        """Resolve each waiter to its result, or all of them to ``error``."""
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


class _Appender:
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
        self.link = _Link(url)
        self._next: _Batch | None = None
        self._sending: asyncio.Future[Any] | None = None
        self._idle: list[asyncio.Future[None]] = []
        self._sent = 0
        self._random = random.SystemRandom()

    def batch(self) -> _Batch:
        """Return the batch being filled, starting the sender when none is running."""
        batch = self._next
        if batch is None:
            batch = self._next = _Batch()
            if self._sending is None:
                self._sending = _spawn(self._send_all())
        return batch

    def wait(self, batch: _Batch, result: R) -> asyncio.Future[R]:
        """Return a future resolved to ``result`` once the batch is committed."""
        waiter: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        batch.waiters.append(waiter)
        batch.results.append(result)
        return waiter

    async def drained(self) -> None:
        """Wait until every row appended so far is committed (or failed)."""
        await asyncio.sleep(0)
        if self._sending is not None:
            idle: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._idle.append(idle)
            await idle

    async def _send_all(self) -> None:
        try:
            while self._next is not None:
                batch, self._next = self._next, None
                await self._send(batch)
        finally:
            self._sending = None
            idle, self._idle = self._idle, []
            for waiter in idle:
                if not waiter.done():
                    waiter.set_result(None)

    def _parameters(self, batch: _Batch, batch_id: int) -> list[Any]:
        self._sent += 1
        prune = self._sent % _PRUNE_EVERY == 0
        return [
            batch_id,
            *_columns(batch.interactions, _INTERACTION_WIDTH),
            *_columns(batch.served, _SERVED_WIDTH),
            *_columns(batch.recent, _RECENT_WIDTH),
            prune,
            RECENT_KEPT * 4,
            prune,
        ]

    async def _send(self, batch: _Batch, attempts: int = 2) -> None:
        batch_id = self._random.getrandbits(63)
        sent = False
        try:
            connection = await self.link.connected()
            sent = True
            await connection.execute(_APPEND, self._parameters(batch, batch_id), prepare=True)
        except psycopg.Error as error:
            if not sent or not self.link.lost:
                # Not connected, or the statement failed: it was rolled back.
                batch.resolve(storage_error(error))
                return
            self.link.drop()
            # The connection was lost with the statement sent: was it stored?
            _spawn(self._settle(batch, batch_id, attempts - 1))
            return
        batch.resolve(None)

    async def _settle(self, batch: _Batch, batch_id: int, attempts: int) -> None:
        """Find out whether a batch whose connection was lost was stored; resolve it."""
        deadline = time.monotonic() + IN_DOUBT_SECONDS
        while True:
            try:
                async with await _connect(self._url) as connection:
                    found = await (
                        await connection.execute(
                            b"SELECT 1 FROM write_batches WHERE batch_id = %s", (batch_id,)
                        )
                    ).fetchone()
            except psycopg.Error:
                if time.monotonic() >= deadline:
                    batch.resolve(_in_doubt_error())
                    return
                await asyncio.sleep(_IN_DOUBT_PAUSE)
                continue
            break
        if found is not None:
            batch.resolve(None)
        elif attempts > 0:
            await self._send(batch, attempts)
        else:
            batch.resolve(
                ApiError(
                    Code.UNAVAILABLE,
                    "the connection to the database was lost twice; nothing was written: try again",
                    details=[error_details_pb2.RetryInfo(retry_delay=_RETRY_AFTER)],
                )
            )

    async def close(self) -> None:
        """Commit what was appended, then close the connection."""
        await self.drained()
        await self.link.close()


_TASKS: set[asyncio.Future[Any]] = set()


def _spawn(work: Awaitable[Any]) -> asyncio.Future[Any]:
    """Run ``work`` on its own, keeping the task referenced until it is done."""
    task = asyncio.ensure_future(work)
    _TASKS.add(task)
    task.add_done_callback(_TASKS.discard)
    return task


async def _close_quietly(connection: psycopg.AsyncConnection[tuple[Any, ...]]) -> None:
    with contextlib.suppress(psycopg.Error, OSError):
        await connection.close()


class _Link:
    """One connection of the event loop, opened again when the server has ended it."""

    def __init__(self, url: str) -> None:
        self._url = url
        self.connection: psycopg.AsyncConnection[tuple[Any, ...]] | None = None

    async def connected(self) -> psycopg.AsyncConnection[tuple[Any, ...]]:
        """Return the connection, opening a new one if it is gone."""
        connection = self.connection
        if connection is None or not _alive(connection):
            self.drop()
            connection = self.connection = await _connect(self._url)
        return connection

    @property
    def lost(self) -> bool:
        """Whether the connection was lost (its last statement's outcome may be unknown)."""
        connection = self.connection
        return connection is not None and (connection.broken or connection.closed)

    def drop(self) -> None:
        """Let go of the connection (closed on the side)."""
        connection, self.connection = self.connection, None
        if connection is not None and not connection.closed:
            _spawn(_close_quietly(connection))

    async def close(self) -> None:
        """Close the connection."""
        connection, self.connection = self.connection, None
        if connection is not None:
            await _close_quietly(connection)

    def finish(self) -> None:
        """Close the connection at once, from outside the event loop."""
        connection, self.connection = self.connection, None
        if connection is not None and not connection.closed:
            with contextlib.suppress(Exception):
                connection.pgconn.finish()


@dataclass(slots=True)
class _Entry:
    activity: DailyActivity
    seen: str
    """The snapshot (``pg_snapshot`` as text) whose committed rows ``activity`` holds."""


def _settle_round(
    round_: _Round,
    error: BaseException | None,
    activities: dict[tuple[str, str], DailyActivity] | None = None,
) -> None:
    """Resolve a sync's waiters, users' with their activity, or all of them to ``error``."""
    waiters: list[tuple[asyncio.Future[Any], object]] = [(w, None) for w in round_.waiters]
    for key, users in round_.users.items():
        waiters += [(w, None if activities is None else activities[key]) for w in users]
    for waiter, result in waiters:
        if waiter.done():
            continue
        if error is None:
            waiter.set_result(result)
        else:
            waiter.set_exception(error)


@dataclass(slots=True)
class _Round:
    """The calls waiting for the next sync, and the users whose activity they need."""

    waiters: list[asyncio.Future[None]] = field(default_factory=list)
    users: dict[tuple[str, str], list[asyncio.Future[DailyActivity]]] = field(default_factory=dict)


StateListener = Callable[[dict[str, bytes]], None]
"""Told of the emulator's shared state whenever a sync finds it changed."""


class PostgresStore:
    """The server's state in a PostgreSQL database, shared by any number of server processes.

    Args:
        url: the database, as a ``postgresql://`` URL (libpq's); its
            tables are created if missing.
        activity_cache_users: how many users' activity to keep at hand.

    """

    shared: Final = True
    """Other processes write to the same database: every call waits for a sync first."""

    def __init__(self, url: str, *, activity_cache_users: int = DEFAULT_CAPACITY) -> None:
        if activity_cache_users < 0:
            msg = f"an activity cache holds 0 users or more, not {activity_cache_users}"
            raise ValueError(msg)
        self.url = url
        self.migration: None = None
        """Nothing is migrated yet: version 1 is the first PostgreSQL schema."""
        self.capacity = activity_cache_users
        self._work = _WorkThread(url)
        self._appender = _Appender(url)
        self._entries: collections.OrderedDict[tuple[str, str], _Entry] = collections.OrderedDict()
        self._epoch = 0
        self._versions: dict[str, int] = {}
        self._generation: int | None = None
        self._state_version = -1
        self._config_version = -1
        self._state: dict[str, bytes] = {}
        self._state_listeners: list[StateListener] = []
        self._reader = _Link(url)
        self._next_round: _Round | None = None
        self._syncing = False
        self._closed = threading.Event()

    # Units of work.

    async def run(self, work: Callable[[Repository], T]) -> T:
        """Run a unit of work in a transaction; return its result once committed."""
        return await self._work.run(lambda connection: _unit(connection, work))

    def run_sync(self, work: Callable[[Repository], T]) -> T:
        """Run a unit of work from a thread that is not running an event loop."""
        return self._work.call(lambda connection: _unit(connection, work))

    async def replace(self, project_id: str | None, work: Callable[[Repository], T]) -> T:
        """Run a unit of work that replaces a project's data (None: everyone's); return its result.

        What this server appended before is committed first. The reset
        generation changes with it: every replica forgets what it had cached.
        """
        await self._appender.drained()

        def replace(connection: Connection) -> T:
            with connection.transaction():
                connection.execute(b"SELECT pg_advisory_xact_lock(%s)", (lock_key(),))
                connection.execute(b"UPDATE replica_state SET generation = generation + 1")
                touched: set[str] = set()
                result = work(PostgresRepository(connection, touched))
                _bump_versions(connection, touched)
            return result

        result = await self._work.run(replace)
        self._forget_all()
        return result

    def version(self, project_id: str) -> int:
        """Return the project's configuration version, as of the last sync."""
        return self._versions.get(project_id, 0)

    # The sync before each call.

    def synchronize(self, project_id: str, user_id: str | None = None) -> Awaitable[object]:
        """Return an awaitable that ends once a sync started after this call is done.

        With a user, the same sync brings their activity up to date
        (``cached_activity`` then has it).
        """
        if user_id is not None:
            return self.activity(project_id, user_id)
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._join().waiters.append(waiter)
        return waiter

    def cached_activity(self, project_id: str, user_id: str) -> DailyActivity | None:
        """Return a user's activity as of the last sync that read it, if it is cached.

        Callers sync first (``synchronize`` with the user): the entry then
        holds every event committed before the call arrived.
        """
        key = (project_id, user_id)
        entry = self._entries.get(key)
        if entry is None:
            return None
        self._entries.move_to_end(key)
        return entry.activity

    def activity(self, project_id: str, user_id: str) -> Awaitable[DailyActivity]:
        """Return a user's activity, brought up to date by a sync started after this call."""
        waiter: asyncio.Future[DailyActivity] = asyncio.get_running_loop().create_future()
        self._join().users.setdefault((project_id, user_id), []).append(waiter)
        return waiter

    @property
    def cached_users(self) -> int:
        """How many users' activity is cached."""
        return len(self._entries)

    def _join(self) -> _Round:
        """Return the round of the next sync, starting the syncs when none is running."""
        round_ = self._next_round
        if round_ is None:
            round_ = self._next_round = _Round()
            if not self._syncing:
                self._syncing = True
                _spawn(self._sync_all())
        return round_

    async def _sync_all(self) -> None:
        try:
            while (round_ := self._next_round) is not None:
                self._next_round = None
                await self._sync(round_)
        finally:
            self._syncing = False

    async def _sync(self, round_: _Round) -> None:
        try:
            try:
                activities = await self._read_round(list(round_.users))
            except psycopg.Error:
                if not self._reader.lost:
                    raise
                # The connection was lost (the server restarted, or ended it):
                # a sync writes nothing, so it is tried once more on a new one.
                self._reader.drop()
                activities = await self._read_round(list(round_.users))
        except psycopg.Error as error:
            if self._reader.lost:
                self._reader.drop()
            _settle_round(round_, storage_error(error))
        except Exception as error:  # a bug: each caller gets it
            _log.exception("the sync failed")
            _settle_round(round_, error)
        else:
            _settle_round(round_, None, activities)

    async def _read_round(
        self, users: list[tuple[str, str]]
    ) -> dict[tuple[str, str], DailyActivity]:
        """Run one sync for some users; return their activity, brought up to date."""
        epoch = self._epoch
        entries = {key: self._entries.get(key) for key in users}
        reader = await self._reader.connected()
        cursor = await reader.execute(
            _SYNC,
            {
                "projects": [key[0] for key in users],
                "users": [key[1] for key in users],
                "seen": [
                    _EVERYTHING_NEW if entry is None else entry.seen for entry in entries.values()
                ],
                "state": self._state_version,
                "config": self._config_version,
            },
            prepare=True,
        )
        rows = await cursor.fetchall()
        head = rows[0]
        generation, snapshot = int(head[1]), str(head[4])
        if self._generation is not None and generation != self._generation:
            # A reset, by any replica: what was cached is gone; read these users afresh.
            self._forget_all()
            self._generation = generation
            return await self._read_round(users)
        self._generation = generation
        self._apply_head(head)
        counted: dict[int, list[DailyRow]] = {}
        for row in rows[1:]:
            counted.setdefault(int(row[0]), []).append(
                (
                    int(row[9]),
                    row[10],
                    row[11],
                    int(row[12]),
                    int(row[13]),
                    int(row[14]),
                    int(row[15]),
                )
            )
        found: dict[tuple[str, str], DailyActivity] = {}
        for number, (key, cached) in enumerate(entries.items(), start=1):
            new = counted.get(number, [])
            if cached is None:
                entry = _Entry(DailyActivity(new), snapshot)
            else:
                entry = cached
                entry.activity.merge(new)
                entry.seen = snapshot
            found[key] = entry.activity
            if epoch == self._epoch and self.capacity:
                self._entries[key] = entry
                self._entries.move_to_end(key)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)
        return found

    def _apply_head(self, head: Sequence[Any]) -> None:
        """Take in the shared row of a sync: configuration versions and the emulator's state."""
        state_version, config_version = int(head[2]), int(head[3])
        if head[7] is not None:
            self._versions = {
                str(project): int(version)
                for project, version in zip(head[7], head[8], strict=True)
            }
            self._config_version = config_version
        if head[5] is not None and state_version > self._state_version:
            state = {str(key): bytes(value) for key, value in zip(head[5], head[6], strict=True)}
            self._take_state(state_version, state)

    def _take_state(self, version: int, state: dict[str, bytes]) -> None:
        if version <= self._state_version:
            return
        self._state_version = version
        self._state = state
        for listener in self._state_listeners:
            listener(state)

    def _forget_all(self) -> None:
        self._entries.clear()
        self._epoch += 1

    # Appending rows.

    def log_interaction(self, request: LoggedRow, result: R) -> asyncio.Future[R]:
        """Record one treatment interaction; the future resolves to ``result`` once committed."""
        batch = self._appender.batch()
        batch.interactions += (
            request.project_id,
            request.SerializeToString(),
            request.user_id,
            request.interaction_type + 1,
            request.treatment_id,
            request.surface,
            request.interaction_time_micros,
            request.treatment_tracking_id,
        )
        return self._appender.wait(batch, result)

    def record_served(
        self, project_id: str, user_id: str, served: Sequence[ServedTreatment], result: R
    ) -> asyncio.Future[R]:
        """Record the treatments a response serves a user; resolves to ``result`` once committed."""
        batch = self._appender.batch()
        for treatment in served:
            batch.served += (
                project_id,
                user_id,
                treatment.response_id,
                treatment.treatment_id,
                treatment.surface,
                treatment.tracking_id,
                treatment.time_micros,
            )
        return self._appender.wait(batch, result)

    def record_decision(
        self, time_micros: int, project_id: str, user_id: str, request: bytes, response: bytes
    ) -> asyncio.Future[None]:
        """Keep a decision for the console (committed with the rows appended beside it)."""
        batch = self._appender.batch()
        batch.recent += (time_micros, project_id, user_id, request, response)
        return self._appender.wait(batch, None)

    async def recent_decisions(
        self, project_id: str, user_id: str, limit: int
    ) -> list[tuple[int, str, bytes, bytes]]:
        """Return the last decisions kept, newest first: (time, project, request, response)."""
        conditions = ["TRUE"]
        values: list[object] = []
        for column, value in (("project_id", project_id), ("user_id", user_id)):
            if value:
                conditions.append(f"{column} = %s")
                values.append(value)
        query = (
            "SELECT time_micros, project_id, request, response FROM recent_decisions "  # noqa: S608 - our own columns
            f"WHERE {' AND '.join(conditions)} ORDER BY decision_id DESC LIMIT %s"
        )
        values.append(limit)

        def read(connection: Connection) -> list[tuple[int, str, bytes, bytes]]:
            rows = connection.execute(query.encode(), values).fetchall()
            return [(int(t), str(p), bytes(q), bytes(a)) for t, p, q, a in rows]

        return await self._work.run(read, writes=False)

    async def drain(self) -> None:
        """Wait until the rows appended so far are committed (or failed)."""
        await self._appender.drained()

    async def start_writer(self) -> None:
        """Nothing to start: rows are committed on a connection of the event loop."""

    # The emulator's shared state.

    def state(self) -> dict[str, bytes]:
        """Return the emulator's shared state as of the last sync."""
        return dict(self._state)

    def watch_state(self, listener: StateListener) -> None:
        """Tell ``listener`` of the shared state now, and whenever a sync finds it changed."""
        self._state_listeners.append(listener)

    async def change_state(self, key: str, change: Callable[[bytes | None], tuple[bytes, T]]) -> T:
        """Change one entry of the shared state, atomically across replicas; return the result.

        ``change`` gets the entry's value (None: none yet) and returns the new
        value and a result; it runs while every other change waits.
        """

        def apply(connection: Connection) -> tuple[T, int, dict[str, bytes]]:
            with connection.transaction():
                row = connection.execute(
                    b"UPDATE replica_state SET state_version = nextval('state_versions') "
                    b"RETURNING state_version"
                ).fetchone()
                assert row is not None
                found = connection.execute(
                    b"SELECT value FROM emulator_state WHERE key = %s", (key,)
                ).fetchone()
                value, result = change(None if found is None else bytes(found[0]))
                connection.execute(
                    b"INSERT INTO emulator_state VALUES (%s, %s) "
                    b"ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (key, value),
                )
                rows = connection.execute(b"SELECT key, value FROM emulator_state").fetchall()
            return result, int(row[0]), {str(k): bytes(v) for k, v in rows}

        result, version, state = await self._work.run(apply)
        self._take_state(version, state)
        return result

    def close(self) -> None:
        """Close the connections, from outside the event loop (after a failed start).

        What was appended and not committed fails with its connection.
        """
        self._work.close()
        self._reader.finish()
        self._appender.link.finish()

    async def aclose(self) -> None:
        """Commit what was appended, then close the connections (from the event loop)."""
        await self._appender.close()
        await self._reader.close()
        self._work.close()


def _unit(connection: Connection, work: Callable[[Repository], T]) -> T:
    """Run a unit of work in a transaction that holds the store's advisory lock."""
    touched: set[str] = set()
    with connection.transaction():
        connection.execute(b"SELECT pg_advisory_xact_lock(%s)", (lock_key(),))
        result = work(PostgresRepository(connection, touched))
        _bump_versions(connection, touched)
    return result
