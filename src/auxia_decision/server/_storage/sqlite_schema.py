"""The SQLite store's schema: its tables and indexes, its version, and the migrations to it.

A database file says which schema it holds in ``PRAGMA user_version``.
``prepare`` creates a new file's tables, migrates an older file to today's
schema (each step in one transaction) and refuses a file written by a newer
version of the server.
"""

from __future__ import annotations

import pathlib
import sqlite3
import time
from typing import Final

from google.protobuf.message import DecodeError

from auxia.decision.model import treatment_interaction_service_pb2
from auxia_decision.server._storage.rows import INTERACTION_COLUMNS, interaction_values
from auxia_decision.server._storage.seam import Migration

SCHEMA_VERSION: Final = 4
"""The schema this code writes: 1 added to the interactions the columns rules read
(user, kind, treatment, surface, time, tracking id) and the indexes by user; 2 the
interactions' index by tracking id and the served rows' by response; 3 each table's index
by project; 4 the records a project's Reset hid (``record_floors``), which older
versions would show."""

_TABLES: Final = """
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
-- Each keeps the request as stored (body) and what rules and listings read of
-- it; kind is the TreatmentInteractionType of its interaction type.
CREATE TABLE IF NOT EXISTS interactions (
  interaction_id INTEGER PRIMARY KEY,
  project_id TEXT NOT NULL,
  body BLOB NOT NULL,
  user_id TEXT NOT NULL DEFAULT '',
  kind INTEGER NOT NULL DEFAULT 0,
  treatment_id TEXT NOT NULL DEFAULT '',
  surface TEXT NOT NULL DEFAULT '',
  time_micros INTEGER NOT NULL DEFAULT 0,
  tracking_id TEXT NOT NULL DEFAULT ''
);
-- The treatments GetTreatments returned: one row each, appended.
CREATE TABLE IF NOT EXISTS served (
  served_id INTEGER PRIMARY KEY,
  project_id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  response_id TEXT NOT NULL,
  treatment_id TEXT NOT NULL,
  surface TEXT NOT NULL,
  tracking_id TEXT NOT NULL,
  time_micros INTEGER NOT NULL
);
-- A project's records at and below these row ids are gone: a Reset hid them at once
-- and deletes them in turns after it (``sqlite_store``). A row while any is left.
CREATE TABLE IF NOT EXISTS record_floors (
  project_id TEXT PRIMARY KEY,
  interactions INTEGER NOT NULL,
  served INTEGER NOT NULL
);
"""


# The reads by user (a user's activity, listings of one user's records), by tracking id and
# by response, and a listing's seeks of a project's next record (``filters``); every index
# also keeps each key's rows in rowid order.
_INDEXES: Final = """
CREATE INDEX IF NOT EXISTS interactions_by_user ON interactions (project_id, user_id);
CREATE INDEX IF NOT EXISTS served_by_user ON served (project_id, user_id);
CREATE INDEX IF NOT EXISTS interactions_by_tracking ON interactions (project_id, tracking_id);
CREATE INDEX IF NOT EXISTS served_by_response ON served (project_id, response_id);
CREATE INDEX IF NOT EXISTS interactions_by_project ON interactions (project_id);
CREATE INDEX IF NOT EXISTS served_by_project ON served (project_id);
"""
_ADDED_COLUMNS: Final = (
    "user_id TEXT NOT NULL DEFAULT ''",
    "kind INTEGER NOT NULL DEFAULT 0",
    "treatment_id TEXT NOT NULL DEFAULT ''",
    "surface TEXT NOT NULL DEFAULT ''",
    "time_micros INTEGER NOT NULL DEFAULT 0",
    "tracking_id TEXT NOT NULL DEFAULT ''",
)
_STORE_TABLES: Final = frozenset({"projects", "interactions"})
"""Tables every store has had since schema 0: a file of schema 0 without them is not one."""
_MIGRATION_CHUNK: Final = 10_000
# What migrating to version 1 fills in: a row's columns after its project id and body.
_FILLED: Final = slice(INTERACTION_COLUMNS.index("user_id"), None)
_FILL: Final = (
    f"UPDATE interactions SET {', '.join(f'{name} = ?' for name in INTERACTION_COLUMNS[_FILLED])} "  # noqa: S608 - our own columns
    "WHERE interaction_id = ?"
)


class UnusableFileError(Exception):
    """The file is a SQLite database the server must not change; the message says why."""


class NewerSchemaError(UnusableFileError):
    """The database was written by a newer version of the server; the message says so."""


class ForeignFileError(UnusableFileError):
    """The database holds another application's tables, not a store's; the message says so."""


def refuse_unusable(path: str) -> None:
    """Raise UnusableFileError for a file the server must not change, before anything does.

    NewerSchemaError for a file of a newer schema; ForeignFileError for a
    file of schema 0 with tables but without a store's (another
    application's database: migrating it would add ours to it).
    """
    if path == ":memory:" or not pathlib.Path(path).is_file():
        return
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        (version,) = connection.execute("PRAGMA user_version").fetchone()
        tables = {
            name
            for (name,) in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        }
    finally:
        connection.close()
    _refuse_newer(version)
    if version == 0 and tables and not _STORE_TABLES.issubset(tables):
        shown = ", ".join(sorted(tables)[:5]) + (", ..." if len(tables) > 5 else "")
        msg = f"it holds another application's tables ({shown}), not an auxia-decision store"
        raise ForeignFileError(msg)


def _refuse_newer(version: int) -> None:
    if version > SCHEMA_VERSION:
        msg = (
            f"it was written by a newer auxia-decision (schema version {version}; "
            f"this one reads versions up to {SCHEMA_VERSION})"
        )
        raise NewerSchemaError(msg)


def prepare(connection: sqlite3.Connection) -> Migration | None:
    """Bring a database to today's schema; return the migration it took, if any.

    Raises NewerSchemaError for a file of a newer schema (``refuse_unusable``
    says so before the file is opened for writing).
    """
    (version,) = connection.execute("PRAGMA user_version").fetchone()
    _refuse_newer(version)
    if version == SCHEMA_VERSION:
        return None
    started = time.monotonic()
    older = _has_table(connection, "interactions")
    connection.execute("BEGIN IMMEDIATE")
    try:
        if older and version == 0:
            _from_version_0(connection)
        _execute_each(connection, _TABLES + _INDEXES)
        rows = _records(connection) if older else 0
        connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        connection.execute("COMMIT")
    finally:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
    if not older:
        return None
    return Migration(version, SCHEMA_VERSION, rows, time.monotonic() - started)


def _execute_each(connection: sqlite3.Connection, script: str) -> None:
    """Run a script's statements in the open transaction (``executescript`` would commit it)."""
    for statement in script.split(";\n"):
        if statement.strip():
            connection.execute(statement)


def _records(connection: sqlite3.Connection) -> int:
    """Return how many interactions and served rows the file holds (what its indexes hold)."""
    (count,) = connection.execute(
        "SELECT (SELECT COUNT(*) FROM interactions) + (SELECT COUNT(*) FROM served)"
    ).fetchone()
    return int(count)


def _has_table(connection: sqlite3.Connection, name: str) -> bool:
    found = connection.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
    ).fetchone()
    return found is not None


def _from_version_0(connection: sqlite3.Connection) -> None:
    """Add the columns rules read to the interactions, filled from each request as stored.

    A row whose body is not a request (a file some other program wrote) keeps
    the defaults: no user.
    """
    for column in _ADDED_COLUMNS:
        connection.execute(f"ALTER TABLE interactions ADD COLUMN {column}")
    parse = treatment_interaction_service_pb2.LogTreatmentInteractionRequest.FromString
    after = 0
    while True:
        rows = connection.execute(
            "SELECT interaction_id, body FROM interactions WHERE interaction_id > ? "
            "ORDER BY interaction_id LIMIT ?",
            (after, _MIGRATION_CHUNK),
        ).fetchall()
        if not rows:
            return
        updates = []
        for row_id, body in rows:
            try:
                request = parse(body)
            except DecodeError:
                continue
            updates.append((*interaction_values(request)[_FILLED], row_id))
        connection.executemany(_FILL, updates)
        after = rows[-1][0]
