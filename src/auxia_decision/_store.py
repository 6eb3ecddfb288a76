"""The embedded SQLite store of the reference server, with group commit."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import importlib
import queue
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar, cast

from auxia.decision.model import (
    data_field_pb2,
    treatment_interaction_service_pb2,
    treatment_pb2,
)
from auxia_decision._writer import (
    ROWS_PER_STATEMENT,
    InteractionWriter,
    commit_interactions,
    insert_interactions,
    linger,
    open_database,
    resolve_batch,
)

T = TypeVar("T")
R = TypeVar("R")

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS projects (
  project_id TEXT PRIMARY KEY,
  numeric_project_id INTEGER NOT NULL UNIQUE,
  supported_language_codes TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS api_keys (
  key_sha256 BLOB PRIMARY KEY,
  project_id TEXT NOT NULL REFERENCES projects(project_id)
);
CREATE TABLE IF NOT EXISTS treatment_types (
  project_id TEXT NOT NULL REFERENCES projects(project_id),
  name TEXT NOT NULL,
  body BLOB NOT NULL,
  PRIMARY KEY (project_id, name)
);
CREATE TABLE IF NOT EXISTS user_attribute_types (
  project_id TEXT NOT NULL REFERENCES projects(project_id),
  property_name TEXT NOT NULL,
  data_field_type TEXT NOT NULL,
  PRIMARY KEY (project_id, property_name)
);
CREATE TABLE IF NOT EXISTS data_fields (
  project_id TEXT NOT NULL REFERENCES projects(project_id),
  data_field_id INTEGER NOT NULL,
  params_key BLOB NOT NULL,
  params BLOB NOT NULL,
  data_field_type TEXT NOT NULL,
  PRIMARY KEY (project_id, data_field_id),
  UNIQUE (project_id, params_key)
);
CREATE TABLE IF NOT EXISTS mutual_exclusion_groups (
  mutual_exclusion_group_id INTEGER PRIMARY KEY AUTOINCREMENT,
  project_id TEXT NOT NULL REFERENCES projects(project_id),
  name TEXT NOT NULL,
  UNIQUE (project_id, name)
);
CREATE TABLE IF NOT EXISTS treatments (
  project_id TEXT NOT NULL REFERENCES projects(project_id),
  treatment_id TEXT NOT NULL,
  external_treatment_id TEXT,
  body BLOB NOT NULL,
  published_versions TEXT NOT NULL,
  PRIMARY KEY (project_id, treatment_id),
  UNIQUE (project_id, external_treatment_id)
);
-- Rows are only ever appended, so the rowid numbers them in order without
-- AUTOINCREMENT (whose sqlite_sequence row every commit would write as well).
CREATE TABLE IF NOT EXISTS interactions (
  interaction_id INTEGER PRIMARY KEY,
  project_id TEXT NOT NULL,
  body BLOB NOT NULL
);
"""

# How many queued operations one transaction may group before it commits.
_MAX_GROUP: Final = 512


def _builtin_sha256() -> Callable[[bytes], Any]:
    """Return CPython's own SHA-256 constructor, else hashlib's.

    Every request's key is digested. Through OpenSSL 3 each new hash looks
    its algorithm up again, taking locks (openssl/openssl#19612): measured on
    the server under load, about 11 us a request against 2 us for the
    interpreter's own implementation of the same SHA-256.
    """
    for module_name in ("_sha2", "_sha256"):  # Python 3.12+, 3.11
        with contextlib.suppress(ImportError):
            module = importlib.import_module(module_name)
            return cast(Callable[[bytes], Any], module.sha256)
    return hashlib.sha256


_sha256: Final = _builtin_sha256()


def key_digest(api_key: str) -> bytes:
    """Return the SHA-256 digest under which an API key is stored (keys are never stored)."""
    digest: bytes = _sha256(api_key.encode()).digest()
    return digest


@dataclass(frozen=True)
class ProjectRecord:
    """A project as the store holds it."""

    project_id: str
    numeric_project_id: int
    supported_language_codes: frozenset[str]


@dataclass
class StoredTreatment:
    """A treatment and which of its versions are published (status is derived on read)."""

    treatment: treatment_pb2.TreatmentPb
    published_versions: list[bool]


_Waiter = concurrent.futures.Future[Any] | asyncio.Future[Any]
_Outcome = tuple[bool, object]


@dataclass(slots=True)
class _Interactions:
    """Interactions logged by one event loop in one pass of it, queued as one job."""

    rows: list[str | bytes]
    """Each row's values in turn: project id, serialized request."""
    waiters: list[asyncio.Future[Any]]
    results: list[object]
    """What each waiter resolves to once its row is committed."""


@dataclass(slots=True)
class _Job:
    """One queued operation, or a batch of interactions, and who waits for the outcome."""

    operation: Callable[[sqlite3.Connection], Any] | None
    waiter: _Waiter | None
    """The operation's waiter (a batch of interactions has a waiter per row)."""
    loop: asyncio.AbstractEventLoop | None = None
    """The event loop of asyncio waiters, which only that loop's thread may settle."""
    interactions: _Interactions | None = None


def _size(job: _Job) -> int:
    """Return how many writes a job holds: an operation, or the interactions of a batch."""
    return 1 if job.interactions is None else len(job.interactions.waiters)


def _resolve(waiter: _Waiter, ok: bool, value: object) -> None:
    if waiter.cancelled():
        return  # its caller gave up
    if ok:
        waiter.set_result(value)
    else:
        assert isinstance(value, BaseException)
        waiter.set_exception(value)


def _settle(settled: list[tuple[_Job, _Outcome]]) -> None:
    """Give the waiters of each job their outcome (a waiter whose caller gave up is skipped).

    A batch of interactions that was committed resolves each waiter to its
    own result; one that failed gives each the error.
    """
    for job, (ok, value) in settled:
        batch = job.interactions
        if batch is None:
            assert job.waiter is not None
            _resolve(job.waiter, ok, value)
        else:
            error = None if ok else value
            assert error is None or isinstance(error, BaseException)
            resolve_batch(batch.waiters, batch.results, error)


def _append_interactions(
    connection: sqlite3.Connection,
    group: list[_Job],
    pending: list[int],
    outcomes: list[_Outcome],
) -> None:
    """Append the pending batches of a group in the order queued, inside its transaction."""
    if not pending:
        return
    rows: list[str | bytes] = []
    for position in pending:
        batch = group[position].interactions
        assert batch is not None
        rows += batch.rows
    several = len(rows) > 2 * ROWS_PER_STATEMENT
    try:
        if several:
            connection.execute("SAVEPOINT interactions")
        insert_interactions(connection, rows)
        if several:
            connection.execute("RELEASE interactions")
    except sqlite3.Error as error:
        # All of them or none: one statement is atomic, several share a savepoint.
        if several:
            connection.execute("ROLLBACK TO interactions")
            connection.execute("RELEASE interactions")
        for position in pending:
            outcomes[position] = (False, error)
    pending.clear()


def _append_only(connection: sqlite3.Connection, group: list[_Job]) -> list[_Outcome]:
    """Append a group of interaction batches, committed before it returns."""
    rows: list[str | bytes] = []
    for job in group:
        assert job.interactions is not None
        rows += job.interactions.rows
    try:
        commit_interactions(connection, rows)
    except sqlite3.Error as error:
        return [(False, error)] * len(group)
    return [(True, None)] * len(group)


class TreatmentStore:
    """The server's state in one SQLite database, file-backed (WAL) or in memory.

    Every operation runs on one database thread, inside its own savepoint; the
    thread groups the operations queued meanwhile into one transaction and
    commits it before any of them is answered (group commit), so a write is
    durable before it is acknowledged and a failing operation undoes only itself.
    The interactions an event loop logs in one pass of it are queued as one
    job, those queued meanwhile are appended together by one statement, and
    the waiters of one event loop are woken together, once per transaction.

    A file-backed store can instead hand the interactions of one event loop
    to a writer process (``start_writer``), which commits them the same way
    (grouped, on disk before they are answered) without taking turns with the
    event loop's thread for the interpreter.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._loops: dict[int, asyncio.AbstractEventLoop] = {}
        # The batch of interactions each event loop is filling (only its thread touches it).
        self._batches: dict[asyncio.AbstractEventLoop, _Interactions] = {}
        self._writer: InteractionWriter | None = None
        self._ready = threading.Event()
        self._open_error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="treatment-store", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._open_error is not None:
            raise self._open_error

    def _connect(self) -> sqlite3.Connection:
        connection = open_database(self.path)
        connection.executescript(_SCHEMA)
        return connection

    def _run(self) -> None:
        try:
            connection = self._connect()
        except BaseException as error:
            self._open_error = error
            self._ready.set()
            return
        self._ready.set()
        stopping = False
        while not stopping:
            try:
                first = self._jobs.get_nowait()
                busy = True  # it came while the last group was being committed
            except queue.Empty:
                first = self._jobs.get()
                busy = False
            if first is None:
                break
            group = [first]
            stopping = self._take_queued(group)
            if busy and not stopping:
                stopping = self._linger(group)
            self._finish(group, self._run_group(connection, group))
        connection.close()

    def _linger(self, group: list[_Job]) -> bool:
        """Let a small group wait a little for more jobs; return whether to stop after it.

        Under load more jobs are on their way, and waiting for them costs less
        than a commit (an fsync) each. The wait ends as soon as a pause brings
        no new job, so a few clients are not held back; an idle store, which
        found no job waiting, commits a lone job at once. A group's size counts
        each interaction of a batch.
        """
        stopping = False

        def take_more() -> int:
            nonlocal stopping
            jobs = len(group)
            stopping = self._take_queued(group)
            return 0 if stopping else sum(_size(job) for job in group[jobs:])

        linger(sum(_size(job) for job in group), take_more)
        return stopping

    def _take_queued(self, group: list[_Job]) -> bool:
        """Move the queued jobs into ``group`` (up to its limit); return whether to stop."""
        while len(group) < _MAX_GROUP:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                return False
            if job is None:
                return True
            group.append(job)
        return False

    @staticmethod
    def _run_group(connection: sqlite3.Connection, group: list[_Job]) -> list[_Outcome]:
        """Run a group of jobs in one transaction and return each one's outcome once committed."""
        if all(job.interactions is not None for job in group):
            return _append_only(connection, group)
        outcomes: list[_Outcome] = []
        pending: list[int] = []  # the positions of the interactions not yet appended
        connection.execute("BEGIN IMMEDIATE")
        for job in group:
            if job.interactions is not None:
                pending.append(len(outcomes))
                outcomes.append((True, None))
                continue
            _append_interactions(connection, group, pending, outcomes)
            assert job.operation is not None
            connection.execute("SAVEPOINT job")
            try:
                result = job.operation(connection)
            except BaseException as error:
                connection.execute("ROLLBACK TO job")
                connection.execute("RELEASE job")
                outcomes.append((False, error))
            else:
                connection.execute("RELEASE job")
                outcomes.append((True, result))
        _append_interactions(connection, group, pending, outcomes)
        try:
            connection.execute("COMMIT")
        except sqlite3.Error as error:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            return [(False, error)] * len(group)
        return outcomes

    @staticmethod
    def _finish(group: list[_Job], outcomes: list[_Outcome]) -> None:
        """Hand the outcomes to their waiters: one wake-up per event loop, not per job."""
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Job, _Outcome]]] = {}
        direct: list[tuple[_Job, _Outcome]] = []
        for job, outcome in zip(group, outcomes, strict=True):
            settled = direct if job.loop is None else by_loop.setdefault(job.loop, [])
            settled.append((job, outcome))
        _settle(direct)
        for loop, settled in by_loop.items():
            # A closed loop has nobody left waiting.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle, settled)

    def submit(self, operation: Callable[[sqlite3.Connection], T]) -> concurrent.futures.Future[T]:
        """Queue an operation; its future resolves after its transaction commits."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._jobs.put(_Job(operation, future))
        return future

    async def run(self, operation: Callable[[sqlite3.Connection], T]) -> T:
        """Run an operation and return its result once it is committed."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[T] = loop.create_future()
        self._jobs.put(_Job(operation, waiter, loop))
        return await waiter

    def log_interaction(
        self, request: treatment_interaction_service_pb2.LogTreatmentInteractionRequest, result: R
    ) -> asyncio.Future[R]:
        """Record one treatment interaction; the future resolves to ``result`` once committed."""
        return self._append(request.project_id, request.SerializeToString(), result)

    def append_interaction(self, project_id: str, body: bytes) -> asyncio.Future[None]:
        """Append one row to the interactions table; the future resolves once it is committed.

        Call it from a running event loop. The rows a loop appends in one pass
        of it are queued together, as one job, when the pass ends.
        """
        return self._append(project_id, body, None)

    def _append(self, project_id: str, body: bytes, result: R) -> asyncio.Future[R]:
        # The running loop is remembered per thread: asyncio.get_running_loop
        # makes a system call (getpid) each time, and this runs once per
        # logged interaction. A remembered loop running in its thread is
        # that thread's loop.
        loop = self._loops.get(threading.get_ident())
        if loop is None or not loop.is_running():
            loop = self._remember_running_loop()
        waiter: asyncio.Future[R] = loop.create_future()
        batch = self._batches.get(loop)
        if batch is None:
            batch = self._batches[loop] = _Interactions([], [], [])
            loop.call_soon(self._queue_batch, loop)
        batch.rows += (project_id, body)
        batch.waiters.append(waiter)
        batch.results.append(result)
        return waiter

    def _queue_batch(self, loop: asyncio.AbstractEventLoop) -> None:
        batch = self._batches.pop(loop)
        writer = self._writer
        if writer is not None and writer.running and writer.loop is loop:
            writer.send(batch.rows, batch.waiters, batch.results)
        else:
            self._jobs.put(_Job(None, None, loop, batch))

    async def start_writer(self) -> None:
        """Append the interactions logged from the running event loop in a writer process.

        Other event loops, and a store in memory (which another process cannot
        open), keep appending through the database thread, as do all the
        interactions after the writer process stops unexpectedly.
        """
        if self.path == ":memory:" or self._writer is not None:
            return
        writer = InteractionWriter(self.path, asyncio.get_running_loop())
        try:
            await writer.started()
        except BaseException:
            writer.close()
            raise
        self._writer = writer

    @property
    def writer_pid(self) -> int | None:
        """The process id of the running writer process, or None."""
        writer = self._writer
        return writer.process.pid if writer is not None and writer.running else None

    def _remember_running_loop(self) -> asyncio.AbstractEventLoop:
        """Return the running event loop of this thread, remembered for ``_append``."""
        loop = asyncio.get_running_loop()
        self._loops[threading.get_ident()] = loop
        return loop

    def run_sync(self, operation: Callable[[sqlite3.Connection], T]) -> T:
        """Run an operation from a thread that is not the event loop's."""
        return self.submit(operation).result()

    def close(self) -> None:
        """Finish the queued operations and close the database.

        With a writer process, call it from that event loop's thread or after
        the loop has stopped: the interactions handed to the process are
        committed and answered for before it stops.
        """
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
        if self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join()


# Operations: each runs on the store's thread, inside a savepoint.


def insert_project(
    connection: sqlite3.Connection,
    project: ProjectRecord,
    api_keys: Sequence[str],
) -> None:
    """Create or replace a project and its keys."""
    connection.execute(
        "INSERT INTO projects VALUES (?, ?, ?) ON CONFLICT (project_id) DO UPDATE SET "
        "numeric_project_id = excluded.numeric_project_id, "
        "supported_language_codes = excluded.supported_language_codes",
        (
            project.project_id,
            project.numeric_project_id,
            "\n".join(sorted(project.supported_language_codes)),
        ),
    )
    for key in api_keys:
        connection.execute(
            "INSERT OR REPLACE INTO api_keys VALUES (?, ?)", (key_digest(key), project.project_id)
        )


def projects_by_key_digest(connection: sqlite3.Connection) -> dict[bytes, ProjectRecord]:
    """Return every API key digest with the project it belongs to."""
    rows = connection.execute(
        "SELECT k.key_sha256, p.project_id, p.numeric_project_id, p.supported_language_codes "
        "FROM api_keys k JOIN projects p USING (project_id)"
    ).fetchall()
    return {
        row[0]: ProjectRecord(row[1], row[2], frozenset(filter(None, row[3].split("\n"))))
        for row in rows
    }


def put_treatment_type(
    connection: sqlite3.Connection, treatment_type: treatment_pb2.TreatmentTypePb
) -> None:
    """Create or replace a treatment type."""
    connection.execute(
        "INSERT OR REPLACE INTO treatment_types VALUES (?, ?, ?)",
        (treatment_type.project_id, treatment_type.name, treatment_type.SerializeToString()),
    )


def get_treatment_type(
    connection: sqlite3.Connection, project_id: str, name: str
) -> treatment_pb2.TreatmentTypePb | None:
    """Return a treatment type by name, or None."""
    row = connection.execute(
        "SELECT body FROM treatment_types WHERE project_id = ? AND name = ?", (project_id, name)
    ).fetchone()
    return None if row is None else treatment_pb2.TreatmentTypePb.FromString(row[0])


def put_user_attribute_type(
    connection: sqlite3.Connection, project_id: str, property_name: str, data_field_type: str
) -> None:
    """Declare the type of a user attribute."""
    connection.execute(
        "INSERT OR REPLACE INTO user_attribute_types VALUES (?, ?, ?)",
        (project_id, property_name, data_field_type),
    )


def user_attribute_type(
    connection: sqlite3.Connection, project_id: str, property_name: str
) -> str | None:
    """Return the declared type of a user attribute, or None."""
    row = connection.execute(
        "SELECT data_field_type FROM user_attribute_types "
        "WHERE project_id = ? AND property_name = ?",
        (project_id, property_name),
    ).fetchone()
    return None if row is None else str(row[0])


def resolve_data_field(
    connection: sqlite3.Connection,
    project_id: str,
    params: data_field_pb2.DataFieldParams,
    data_field_type: str,
) -> int:
    """Return the identifier of a data field, creating it the first time it is seen."""
    params_key = params.SerializeToString(deterministic=True)
    row = connection.execute(
        "SELECT data_field_id FROM data_fields WHERE project_id = ? AND params_key = ?",
        (project_id, params_key),
    ).fetchone()
    if row is not None:
        return int(row[0])
    (next_id,) = connection.execute(
        "SELECT COALESCE(MAX(data_field_id), 0) + 1 FROM data_fields WHERE project_id = ?",
        (project_id,),
    ).fetchone()
    connection.execute(
        "INSERT INTO data_fields VALUES (?, ?, ?, ?, ?)",
        (project_id, next_id, params_key, params.SerializeToString(), data_field_type),
    )
    return int(next_id)


def data_field_type(
    connection: sqlite3.Connection, project_id: str, data_field_id: int
) -> str | None:
    """Return the type of a data field by identifier, or None when it does not exist."""
    row = connection.execute(
        "SELECT data_field_type FROM data_fields WHERE project_id = ? AND data_field_id = ?",
        (project_id, data_field_id),
    ).fetchone()
    return None if row is None else str(row[0])


def mutual_exclusion_group(connection: sqlite3.Connection, project_id: str, name: str) -> int:
    """Return the identifier of the project's group of that name, creating it if needed."""
    connection.execute(
        "INSERT OR IGNORE INTO mutual_exclusion_groups (project_id, name) VALUES (?, ?)",
        (project_id, name),
    )
    (group_id,) = connection.execute(
        "SELECT mutual_exclusion_group_id FROM mutual_exclusion_groups "
        "WHERE project_id = ? AND name = ?",
        (project_id, name),
    ).fetchone()
    return int(group_id)


def find_treatment(
    connection: sqlite3.Connection,
    project_id: str,
    *,
    treatment_id: str = "",
    external_treatment_id: str = "",
) -> StoredTreatment | None:
    """Return a treatment by identifier or external identifier, or None."""
    if treatment_id:
        row = connection.execute(
            "SELECT body, published_versions FROM treatments "
            "WHERE project_id = ? AND treatment_id = ?",
            (project_id, treatment_id),
        ).fetchone()
    else:
        row = connection.execute(
            "SELECT body, published_versions FROM treatments "
            "WHERE project_id = ? AND external_treatment_id = ?",
            (project_id, external_treatment_id),
        ).fetchone()
    if row is None:
        return None
    return StoredTreatment(
        treatment_pb2.TreatmentPb.FromString(row[0]), [flag == "1" for flag in row[1]]
    )


def put_treatment(connection: sqlite3.Connection, stored: StoredTreatment) -> None:
    """Create or replace a treatment (raises sqlite3.IntegrityError on an external id clash)."""
    treatment = stored.treatment
    connection.execute(
        "INSERT OR REPLACE INTO treatments VALUES (?, ?, ?, ?, ?)",
        (
            treatment.project_id,
            treatment.treatment_id,
            treatment.external_treatment_id or None,
            treatment.SerializeToString(),
            "".join("1" if flag else "0" for flag in stored.published_versions),
        ),
    )


def interactions(
    connection: sqlite3.Connection, project_id: str
) -> list[treatment_interaction_service_pb2.LogTreatmentInteractionRequest]:
    """Return the project's recorded interactions, oldest first."""
    rows = connection.execute(
        "SELECT body FROM interactions WHERE project_id = ? ORDER BY interaction_id", (project_id,)
    ).fetchall()
    return [
        treatment_interaction_service_pb2.LogTreatmentInteractionRequest.FromString(row[0])
        for row in rows
    ]
