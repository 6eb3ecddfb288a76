"""The PostgreSQL store (a ``Store``): any number of server processes on one database, as one.

Four connections per server process (a fifth once it deletes what a Reset hid:
``purge_hidden``):

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
  configuration versions and floors: a whole Reset forgets every cached
  user, a project's Reset the project's) and, for the users about to be
  decided for, the events committed since their cached activity was read.
  The calls that arrive meanwhile share the next sync;
- reads that take no lock (listings, GetTreatment, GetAllTreatments, the
  treatments compiled for decisions, ListFaults' plan) run one at a time on
  a thread and connection of their own, each in a snapshot, so that a long
  listing holds up none of the units of work.

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
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Generic, TypeVar

import psycopg

from auxia_decision._errors import ApiError
from auxia_decision.server._storage.activity import DEFAULT_CAPACITY, DailyActivity
from auxia_decision.server._storage.daily import PackedActivity
from auxia_decision.server._storage.postgres_appender import Appender
from auxia_decision.server._storage.postgres_connections import (
    Link,
    WorkThread,
    closed_error,
    spawn,
    storage_error,
)
from auxia_decision.server._storage.postgres_repository import (
    DAY_SQL,
    Connection,
    PostgresRepository,
)
from auxia_decision.server._storage.postgres_schema import lock_key
from auxia_decision.server._storage.purging import Purge
from auxia_decision.server._storage.rows import interaction_values
from auxia_decision.server._storage.seam import (
    SENT,
    DailyRow,
    LoggedRow,
    Migration,
    Repository,
    ServedTreatment,
    replaced_to_its_end,
)

T = TypeVar("T")
R = TypeVar("R")

_log = logging.getLogger("auxia_decision.store")
_SYNC_ATTEMPTS: Final = 3
"""How many times a sync is tried on new connections when the last one was lost."""
REPLACE_SECONDS: Final = 20.0
"""How long a Reset goes on trying its TRUNCATE while reads keep it waiting (then 503):
less than the clients' default deadline of an admin call (30 s), so that they see why."""
_REPLACE_PAUSE_SECONDS: Final = 0.05
"""The pause between its tries, in which the others' statements go on."""
RESET_TURN_ROWS: Final = 10_000
"""How many of the records a project's Reset hid are deleted a transaction, after it."""
_EVERYTHING_NEW: Final = "1:1:"
"""A snapshot in which no transaction is visible: reading "since" it reads everything."""

# One statement, one snapshot: the replicas' shared row, then each wanted user's
# events committed since the snapshot given for them, above the floors their project's
# Reset left (``record_floors``), counted by kind, treatment, surface and day. The first
# row (n = 0) is the shared row; when the configuration changed (a project's Reset
# changes it), it holds the projects' versions and every project's floors too.
_SYNC: Final = (
    "WITH want AS (SELECT w.*, coalesce(f.interactions, 0) AS hidden_interactions, "  # noqa: S608 - our own constants
    "coalesce(f.served, 0) AS hidden_served FROM unnest(%(projects)s::text[], "
    "%(users)s::text[], %(seen)s::text[]::pg_snapshot[]) WITH ORDINALITY "
    "AS w (project_id, user_id, seen, n) "
    "LEFT JOIN record_floors f ON f.project_id = w.project_id) "
    "SELECT 0::int8, r.generation, r.state_version, r.config_version, "
    "pg_current_snapshot()::text, "
    "CASE WHEN r.state_version <> %(state)s::int8 THEN "
    "(SELECT coalesce(array_agg(key ORDER BY key), '{}') FROM emulator_state) END, "
    "CASE WHEN r.state_version <> %(state)s::int8 THEN "
    "(SELECT coalesce(array_agg(value ORDER BY key), '{}') FROM emulator_state) END, "
    "CASE WHEN r.config_version <> %(config)s::int8 THEN "
    "(SELECT coalesce(array_agg(project_id ORDER BY project_id), '{}') FROM projects) END, "
    "CASE WHEN r.config_version <> %(config)s::int8 THEN "
    "(SELECT coalesce(array_agg(version ORDER BY project_id), '{}') FROM projects) END, "
    "NULL::int4, NULL::text, NULL::text, NULL::int8, NULL::int8, NULL::int8, NULL::int8, "
    "CASE WHEN r.config_version <> %(config)s::int8 THEN "
    "(SELECT coalesce(array_agg(project_id ORDER BY project_id), '{}') FROM record_floors) END, "
    "CASE WHEN r.config_version <> %(config)s::int8 THEN "
    "(SELECT coalesce(array_agg(interactions ORDER BY project_id), '{}') FROM record_floors) END, "
    "CASE WHEN r.config_version <> %(config)s::int8 THEN "
    "(SELECT coalesce(array_agg(served ORDER BY project_id), '{}') FROM record_floors) END "
    "FROM replica_state r "
    "UNION ALL "
    "SELECT w.n, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, "
    f"i.kind, i.treatment_id, i.surface, {DAY_SQL} AS day, count(*), min(time_micros), "
    "max(time_micros), NULL, NULL, NULL "
    "FROM want w JOIN interactions i ON i.project_id = w.project_id "
    "AND i.user_id = w.user_id AND i.txid >= pg_snapshot_xmin(w.seen) "
    "AND NOT pg_visible_in_snapshot(i.txid, w.seen) AND i.interaction_id > w.hidden_interactions "
    "GROUP BY w.n, i.kind, i.treatment_id, i.surface, day "
    "UNION ALL "
    "SELECT w.n, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, "
    f"{SENT}, s.treatment_id, s.surface, {DAY_SQL} AS day, count(*), min(time_micros), "
    "max(time_micros), NULL, NULL, NULL FROM want w JOIN served s ON s.project_id = w.project_id "
    "AND s.user_id = w.user_id AND s.txid >= pg_snapshot_xmin(w.seen) "
    "AND NOT pg_visible_in_snapshot(s.txid, w.seen) AND s.served_id > w.hidden_served "
    "GROUP BY w.n, s.treatment_id, s.surface, day"
).encode()


def _bump_versions(connection: Connection, projects: set[str]) -> None:
    """Give changed projects new configuration versions, which every replica's sync reads."""
    if projects:
        connection.execute(
            b"UPDATE projects SET version = nextval('config_versions') WHERE project_id = ANY(%s)",
            (sorted(projects),),
        )
        connection.execute(b"UPDATE replica_state SET config_version = nextval('config_versions')")


_Entry = tuple[PackedActivity, str]
"""A cached user: the activity, packed (``activity``: the garbage collector does not track
it), and the snapshot (``pg_snapshot`` as text) whose committed rows it holds."""


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
        self.capacity = activity_cache_users
        self._work = WorkThread(url)
        self.migration: Migration | None = self._work.migration
        """What bringing the database to today's schema took at start, if it was older."""
        # Reads that take no lock, on a connection of their own: a long listing holds up
        # none of this replica's units of work and changes of the shared state.
        self._reads = WorkThread(url, prepares=False)
        self._appender = Appender(url)
        self._entries: collections.OrderedDict[tuple[str, str], _Entry] = collections.OrderedDict()
        self._epoch = 0
        self._versions: dict[str, int] = {}
        self._floors: dict[str, tuple[int, int]] = {}
        """Each project's floors (``record_floors``), as of the last sync that read them."""
        self._generation: int | None = None
        self._state_version = -1
        self._config_version = -1
        self._state: dict[str, bytes] = {}
        self._state_listeners: list[StateListener] = []
        self._reader = Link(url)
        self._next_round: _Round | None = None
        self._syncing = False
        self._changes: list[_Change[Any]] = []
        self._changing: asyncio.Future[None] | None = None
        self._closing = False
        self._purge = Purge(self._delete_hidden_turn)  # ``purge_hidden``
        self._purger: WorkThread | None = None  # its connection, once a purge has begun
        self._purge_progress = _PurgeProgress()

    # Units of work.

    async def run(self, work: Callable[[Repository], T]) -> T:
        """Run a unit of work in a transaction; return its result once committed."""
        return await self._work.run(lambda connection: _unit(connection, work))

    async def read(self, work: Callable[[Repository], T]) -> T:
        """Run a unit of work that only reads: in one snapshot, without the store's lock."""
        return await self._reads.run(lambda connection: _snapshot(connection, work), writes=False)

    def run_sync(self, work: Callable[[Repository], T]) -> T:
        """Run a unit of work from a thread that is not running an event loop."""
        return self._work.call(lambda connection: _unit(connection, work))

    async def replace(self, project_id: str | None, work: Callable[[Repository], T]) -> T:
        """Run a unit of work that replaces a project's data (None: everyone's); return its result.

        What this server appended before is committed first. A whole Reset
        changes the reset generation: every replica forgets every cached user.
        A project's Reset raises the project's floors (``delete_project``) and
        the configuration version: every replica's next sync reads the
        floors and forgets that project's cached users only.
        """
        await self._appender.drained()

        def replace(connection: Connection) -> T:
            with connection.transaction():
                connection.execute(b"SELECT pg_advisory_xact_lock(%s)", (lock_key(),))
                if project_id is None:
                    connection.execute(b"UPDATE replica_state SET generation = generation + 1")
                touched: set[str] = set()
                result = work(PostgresRepository(connection, touched))
                _bump_versions(connection, touched)
            return result

        def replace_in_turn(connection: Connection) -> T:
            # A TRUNCATE that gave way to reads in progress (``delete_everything``) is
            # tried again, the whole unit, until the reads let it through or time is up.
            deadline = time.monotonic() + REPLACE_SECONDS
            while True:
                try:
                    return replace(connection)
                except psycopg.errors.LockNotAvailable:
                    if time.monotonic() >= deadline:
                        raise
                    time.sleep(_REPLACE_PAUSE_SECONDS)

        # Shielded: a caller that stops waiting (a deadline) leaves the transaction to
        # commit, and what follows it is done all the same.
        replacing = asyncio.ensure_future(self._work.run(replace_in_turn))
        replacing.add_done_callback(functools.partial(self._replaced, project_id))
        return await replaced_to_its_end(project_id, replacing)

    def _replaced(self, project_id: str | None, replacing: asyncio.Future[Any]) -> None:
        """Forget what was cached once data was replaced; then delete what a project's Reset hid."""
        if replacing.cancelled() or replacing.exception() is not None:
            return  # the caller, or the log (``replaced_to_its_end``), hears of it
        if project_id is None:
            self._forget_all()
        else:
            self._forget_project(project_id)
            self.purge_hidden()

    def purge_hidden(self) -> None:
        """Delete the records a project's Reset hid, in turns, unless that is under way.

        Each turn (``RESET_TURN_ROWS`` records) is a transaction of its own,
        taking no lock, on a connection of its own (opened for it): this and
        the other replicas' units of work go on between them, and the appends
        beside them. The records stay hidden until they are gone; a server
        stopped meanwhile goes on at its next start (``start_helpers``), as
        does any replica started later. A turn the database cannot make for
        now (a lost connection) is tried again (``purging``). Call it from
        the store's event loop.
        """
        self._purge.start()

    async def _delete_hidden_turn(self) -> bool:
        if self._purger is None:
            self._purger = WorkThread(self.url, prepares=False)
        progress = self._purge_progress
        return await self._purger.run(functools.partial(_purge_turn, progress=progress))

    async def purged(self) -> None:
        """Wait until the deleting of hidden records under way ends (``purge_hidden``)."""
        await self._purge.done()

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
        return DailyActivity.unpacked(entry[0])

    def fold_kinds(self, project_id: str, kinds: frozenset[int]) -> None:
        """Do nothing: a sync brings cached users every kind of row committed, from the database."""
        del project_id, kinds

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
                spawn(self._sync_all())
        return round_

    async def _sync_all(self) -> None:
        try:
            while (round_ := self._next_round) is not None:
                self._next_round = None
                await self._sync(round_)
        finally:
            self._syncing = False

    async def _sync(self, round_: _Round) -> None:
        if self._closing:  # its connection is closed, or about to be: not opened again
            _settle_round(round_, closed_error())
            return
        try:
            activities = await self._read_round_again_if_lost(list(round_.users))
        except psycopg.Error as error:
            if self._reader.lost:
                self._reader.drop()
            _settle_round(round_, storage_error(error))
        except ApiError as error:  # closed meanwhile
            _settle_round(round_, error)
        except Exception as error:  # a bug: each caller gets it
            _log.exception("the sync failed")
            _settle_round(round_, error)
        else:
            _settle_round(round_, None, activities)

    async def _read_round_again_if_lost(
        self, users: list[tuple[str, str]]
    ) -> dict[tuple[str, str], DailyActivity]:
        """Run ``_read_round``; on a connection lost meanwhile, again on new ones, a few times.

        The connection may be lost as the server restarts or ends it (and it
        may end the next one too, as ``pg_terminate_backend`` in a loop does):
        a sync writes nothing, so it is safe to try again.
        """
        for attempt in range(1, _SYNC_ATTEMPTS + 1):
            try:
                return await self._read_round(users)
            except psycopg.Error:
                if not self._reader.lost or attempt == _SYNC_ATTEMPTS:
                    raise
                self._reader.drop()
        raise AssertionError  # unreachable: the last attempt returns or raises

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
                    _EVERYTHING_NEW if entry is None else entry[1] for entry in entries.values()
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
            # A whole Reset, by any replica: what was cached is gone; read these users
            # afresh, and the configuration and floors with them.
            self._forget_all()
            self._generation = generation
            self._config_version = -1
            return await self._read_round(users)
        self._generation = generation
        self._apply_head(head)
        if head[16] is not None:
            reset = self._take_floors(head)
            if any(key[0] in reset and entry is not None for key, entry in entries.items()):
                # A user read before a Reset of their project, which hid what they did:
                # read these users afresh.
                return await self._read_round(users)
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
                activity = DailyActivity(new)
            else:
                activity = DailyActivity.unpacked(cached[0])
                activity.merge(new)
            found[key] = activity
            if epoch == self._epoch and self.capacity:
                self._entries[key] = (activity.packed(), snapshot)
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

    def _take_floors(self, head: Sequence[Any]) -> set[str]:
        """Take in the projects' floors of a sync; forget the users of projects reset since.

        Return those projects. A project's Reset raises its floors unless it
        saw no record of the project above them: unchanged floors hide what
        they hid before, so no cached user counts a record newly hidden.
        """
        floors = {
            str(project): (int(interactions), int(served))
            for project, interactions, served in zip(head[16], head[17], head[18], strict=True)
        }
        reset = {
            project
            for project in floors.keys() | self._floors.keys()
            if floors.get(project) != self._floors.get(project)
        }
        self._floors = floors
        if reset:
            for key in [key for key in self._entries if key[0] in reset]:
                del self._entries[key]
        return reset

    def _take_state(self, version: int, state: dict[str, bytes]) -> None:
        if version <= self._state_version:
            return
        self._state_version = version
        self._state = state
        for listener in self._state_listeners:
            # Each is told, whatever another makes of it: the state is committed. One
            # that cannot read it (another version wrote it) is a bug to see in the log.
            try:
                listener(state)
            except Exception:
                _log.exception("a listener could not take the emulator's shared state")

    def _forget_all(self) -> None:
        self._entries.clear()
        self._epoch += 1

    def _forget_project(self, project_id: str) -> None:
        """Forget a project's cached users, and the users of reads in flight (a Reset)."""
        for key in [key for key in self._entries if key[0] == project_id]:
            del self._entries[key]
        self._epoch += 1

    # Appending rows.

    def log_interaction(self, request: LoggedRow, result: R) -> asyncio.Future[R]:
        """Record one treatment interaction; the future resolves to ``result`` once committed."""
        batch = self._appender.batch()
        batch.interactions += interaction_values(request)
        return self._appender.wait(batch, result)

    def log_interaction_if_current(self, request: LoggedRow, result: R) -> asyncio.Future[R] | None:
        """Record one interaction if the shared state is still what this process knows.

        The interaction is written, and the future resolves to ``result``,
        only if no replica has changed the shared state (the faults, the
        clock, the count of Resets the admin API keeps for the keys they
        write) or reset the whole store since the last sync: then the call
        saw what a sync would have shown it, without waiting for one. Otherwise the
        future fails with ``StaleKnowledgeError`` and nothing is written.
        None: nothing is known yet (no sync has run).
        """
        if self._generation is None:
            return None
        batch = self._appender.batch_if_current((self._generation, self._state_version))
        batch.interactions += interaction_values(request)
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

        return await self._reads.run(read, writes=False)

    async def drain(self) -> None:
        """Wait until the rows appended so far are committed (or failed)."""
        await self._appender.drained()

    async def start_helpers(self) -> None:
        """Go on deleting what Resets hid (``purge_hidden``); no writer or reader process."""
        self.purge_hidden()

    async def start_writer(self) -> None:
        """Nothing to start: rows are committed on a connection of the event loop."""

    async def start_reader(self) -> None:
        """Nothing to start: users' activity is read with each sync, on the event loop."""

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
        value and a result; it runs while every other change waits. The
        changes asked for while a transaction of changes is under way are made
        together in the next, in the order asked (a fault selecting each call
        costs a transaction per group of calls, not per call); one that raises
        fails its caller alone and leaves the entry as it found it.
        """
        return await self._queue_change(_Change(key, change, self._waiter()))

    async def count_state(
        self, key: str, change: Callable[[bytes | None], tuple[bytes, T, bool]]
    ) -> T:
        """Change one entry as ``change_state`` does, telling the replicas only if ``change`` says.

        A group of changes none of which tells (a fault's draws) leaves the
        state version as it was: no replica's sync reads the state again, and
        no replica's writes in flight are made stale by it.
        """
        return await self._queue_change(_Change(key, change, self._waiter(), counted=True))

    async def current_state(self, key: str) -> bytes | None:
        """Return an entry as committed now (None: none yet), not as of the last sync."""
        return await self._reads.run(functools.partial(_entry, key=key), writes=False)

    def _waiter(self) -> asyncio.Future[T]:
        if self._closing:
            raise closed_error()
        return asyncio.get_running_loop().create_future()

    async def _queue_change(self, change: _Change[T]) -> T:
        """Ask for a change in the next group; return its result once made."""
        self._changes.append(change)
        if self._changing is None:
            self._changing = spawn(self._change_all())
        return await change.waiter

    async def _change_all(self) -> None:
        """Make the changes asked for, a group at a time, until none is left."""
        try:
            while self._changes:
                group = [change for change in self._changes if not change.waiter.done()]
                self._changes = []
                if group:
                    await self._change_group(group)
        finally:
            self._changing = None
            # Stopped by its cancellation (the event loop closing): nobody is left waiting.
            left, self._changes = self._changes, []
            for change in left:
                change.waiter.cancel()

    async def _change_group(self, group: list[_Change[Any]]) -> None:
        """Make a group of changes in one transaction; settle every caller's waiter."""
        try:
            outcomes, told = await self._work.run(functools.partial(_changed, group=group))
            if told is not None:
                self._take_state(*told)
        except Exception as error:
            # The transaction (or taking its state) failed: each caller sees it.
            for change in group:
                if not change.waiter.done():
                    change.waiter.set_exception(error)
            return
        except BaseException:
            for change in group:
                change.waiter.cancel()
            raise
        for change, (result, failure) in zip(group, outcomes, strict=True):
            if change.waiter.done():
                continue
            if failure is not None:
                change.waiter.set_exception(failure)
            else:
                change.waiter.set_result(result)

    def close(self) -> None:
        """Close the connections, from outside the event loop (after a failed start).

        What was appended and not committed fails with its connection.
        """
        self._closing = True
        self._purge.stop(closing=True)  # the records stay hidden: the next start goes on
        if self._purger is not None:
            self._purger.close()
        self._work.close()
        self._reads.close()
        self._reader.finish()
        self._appender.link.finish()

    async def aclose(self) -> None:
        """Commit what was appended and make the changes asked for; then close the connections.

        From the event loop. A change of the shared state asked for once this
        has begun fails as ``closed_error`` says.
        """
        self._closing = True
        stopping = self._purge.stop(closing=True)  # the records stay hidden: the next start goes on
        if stopping is not None:
            await asyncio.wait({stopping})
        if self._purger is not None:
            self._purger.close()  # after the turn under way, if any
        if self._changing is not None:
            # It settles its callers' waiters, whatever becomes of it.
            await asyncio.wait([self._changing])
        await self._appender.close()
        await self._reader.close()
        self._work.close()
        self._reads.close()


@dataclass(frozen=True, slots=True)
class _Change(Generic[T]):
    """A change of one entry of the shared state asked for, and who waits for its result."""

    key: str
    change: Callable[[bytes | None], tuple[Any, ...]]
    """Returns the new value, the result and, when ``counted``, whether to tell the replicas."""
    waiter: asyncio.Future[T]
    counted: bool = False


def _changed(
    connection: Connection, *, group: list[_Change[Any]]
) -> tuple[list[tuple[Any, BaseException | None]], tuple[int, dict[str, bytes]] | None]:
    """Make a group of changes in one transaction, in order.

    Return each one's (result, failure) and, if a change made is to be told
    to the replicas, the new state version and the state (else None).
    """
    outcomes: list[tuple[Any, BaseException | None]] = []
    gone = asyncio.CancelledError("its caller gave up before it was made")
    tells = False
    with connection.transaction():
        # Each group of changes, of any replica, holds this row until it commits.
        connection.execute(b"SELECT 1 FROM replica_state FOR UPDATE")
        values: dict[str, bytes | None] = {}
        for asked in group:
            # A caller gone (cancelled) before its change is made: not made, as a
            # call that never came. Read across threads: a flag the loop only sets.
            if asked.waiter.done():
                outcomes.append((None, gone))
                continue
            if asked.key not in values:
                found = connection.execute(
                    b"SELECT value FROM emulator_state WHERE key = %s", (asked.key,)
                ).fetchone()
                values[asked.key] = None if found is None else bytes(found[0])
            try:
                made = asked.change(values[asked.key])
            except Exception as error:  # the caller's to see, not the group's
                # A StopIteration cannot be a future's exception: set as it is, it would
                # stop the settling of the whole group.
                failure = RuntimeError(error) if isinstance(error, StopIteration) else error
                outcomes.append((None, failure))
                continue
            values[asked.key] = made[0]
            outcomes.append((made[1], None))
            tells = tells or not asked.counted or bool(made[2])
        for key, kept in values.items():
            if kept is not None:
                connection.execute(
                    b"INSERT INTO emulator_state VALUES (%s, %s) "
                    b"ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (key, kept),
                )
        if not tells:
            return outcomes, None
        row = connection.execute(
            b"UPDATE replica_state SET state_version = nextval('state_versions') "
            b"RETURNING state_version"
        ).fetchone()
        assert row is not None
        rows = connection.execute(b"SELECT key, value FROM emulator_state").fetchall()
    return outcomes, (int(row[0]), {str(k): bytes(v) for k, v in rows})


def _entry(connection: Connection, *, key: str) -> bytes | None:
    """Return an entry of the shared state as committed now."""
    found = connection.execute(
        b"SELECT value FROM emulator_state WHERE key = %s", (key,)
    ).fetchone()
    return None if found is None else bytes(found[0])


def _snapshot(connection: Connection, work: Callable[[Repository], T]) -> T:
    """Run work that only reads in a read-only transaction of one snapshot, taking no lock.

    Other replicas' units of work go on meanwhile: a long listing holds up none of them.
    """
    with connection.transaction():
        connection.execute(b"SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        return work(PostgresRepository(connection, set()))


@dataclass(slots=True)
class _PurgeProgress:
    """How far deleting hidden records went, in the row ids of one reset generation."""

    generation: int = -1
    last: dict[tuple[str, str], int] = field(default_factory=dict)
    """The last row deleted of each project and table (``purge_hidden``)."""


def _purge_turn(connection: Connection, *, progress: _PurgeProgress) -> bool:
    """Delete some of the records Resets hid, in a transaction; return whether to go on.

    A whole Reset (any replica's) starts the row ids again: the progress made
    before it is dropped, else the rows numbered below it would be passed over.
    Each statement sees what was committed before it, so the generation is read
    before the deletes and again after them: a whole Reset committed between
    the two makes the next turn start over.
    """
    with connection.transaction():
        generation = _generation(connection)
        if generation != progress.generation:
            progress.generation = generation
            progress.last.clear()
        deleted = PostgresRepository(connection, set()).purge_hidden(RESET_TURN_ROWS, progress.last)
        if _generation(connection) != generation:
            progress.generation = -1
            progress.last.clear()
            return True
        return deleted


def _generation(connection: Connection) -> int:
    """Return the reset generation as last committed (-1 before the first replica set it)."""
    row = connection.execute(b"SELECT generation FROM replica_state").fetchone()
    return -1 if row is None else int(row[0])


def _unit(connection: Connection, work: Callable[[Repository], T]) -> T:
    """Run a unit of work in a transaction that holds the store's advisory lock."""
    touched: set[str] = set()
    with connection.transaction():
        connection.execute(b"SELECT pg_advisory_xact_lock(%s)", (lock_key(),))
        result = work(PostgresRepository(connection, touched))
        _bump_versions(connection, touched)
    return result
