"""The PostgreSQL store's schema: its tables and indexes, its version, and the migrations to it.

A database says which schema it holds in ``auxia_schema``. ``prepare`` creates
a new database's tables, migrates an older one (each step in one
transaction), and refuses one written by a newer version of the server; the
replicas that start together take turns (an advisory lock) so that one
creates or migrates and the others find it done.

Beside the tables of the SQLite store, each appended row (interactions,
served treatments) keeps the transaction that wrote it (``txid``, a
``xid8``): replicas follow each other's writes by snapshot, not by row id
(``postgres_store``). ``replica_state`` is the one row every replica reads
before each call: the reset generation (a whole Reset changes it), and the
versions of the emulator's shared state and of the projects' configuration
(with which it reads ``record_floors``: a project's Reset raises its floors).
"""

from __future__ import annotations

import time
from typing import Final

import psycopg

from auxia_decision.server._storage.seam import Migration

SCHEMA_VERSION: Final = 4
"""The schema this code writes (1: the first PostgreSQL schema; 2: the interactions' index by
tracking id and the served rows' by response; 3: each table's index by project; 4: the records
a project's Reset hid, ``record_floors``, which older versions would show)."""

_LOCK: Final = 0x61757869  # "auxi": the advisory lock of schema changes and units of work
"""The key of the advisory lock that start-up and units of work take."""

_TABLES: Final = """
CREATE TABLE auxia_schema (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  version integer NOT NULL
);
CREATE SEQUENCE config_versions;
CREATE SEQUENCE state_versions;
CREATE TABLE replica_state (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  generation bigint NOT NULL DEFAULT 1,
  state_version bigint NOT NULL DEFAULT nextval('state_versions'),
  config_version bigint NOT NULL DEFAULT nextval('config_versions')
);
INSERT INTO replica_state DEFAULT VALUES;
CREATE TABLE emulator_state (
  key text PRIMARY KEY,
  value bytea NOT NULL
);
CREATE TABLE projects (
  project_id text PRIMARY KEY,
  numeric_project_id bigint NOT NULL UNIQUE,
  supported_language_codes text NOT NULL,
  version bigint NOT NULL DEFAULT nextval('config_versions')
);
CREATE TABLE api_keys (
  key_sha256 bytea PRIMARY KEY,
  project_id text NOT NULL REFERENCES projects (project_id)
);
CREATE TABLE treatment_types (
  project_id text NOT NULL REFERENCES projects (project_id),
  name text NOT NULL,
  body bytea NOT NULL,
  PRIMARY KEY (project_id, name)
);
CREATE TABLE user_attribute_types (
  project_id text NOT NULL REFERENCES projects (project_id),
  property_name text NOT NULL,
  data_field_type text NOT NULL,
  PRIMARY KEY (project_id, property_name)
);
CREATE TABLE data_fields (
  project_id text NOT NULL REFERENCES projects (project_id),
  data_field_id bigint NOT NULL,
  params_key bytea NOT NULL,
  params bytea NOT NULL,
  data_field_type text NOT NULL,
  PRIMARY KEY (project_id, data_field_id),
  UNIQUE (project_id, params_key)
);
CREATE TABLE mutual_exclusion_groups (
  mutual_exclusion_group_id bigserial PRIMARY KEY,
  project_id text NOT NULL REFERENCES projects (project_id),
  name text NOT NULL,
  UNIQUE (project_id, name)
);
CREATE TABLE treatments (
  project_id text NOT NULL REFERENCES projects (project_id),
  treatment_id text NOT NULL,
  external_treatment_id text,
  body bytea NOT NULL,
  published_versions text NOT NULL,
  PRIMARY KEY (project_id, treatment_id),
  UNIQUE (project_id, external_treatment_id)
);
CREATE TABLE interactions (
  interaction_id bigserial PRIMARY KEY,
  project_id text NOT NULL,
  body bytea NOT NULL,
  user_id text NOT NULL DEFAULT '',
  kind integer NOT NULL DEFAULT 0,
  treatment_id text NOT NULL DEFAULT '',
  surface text NOT NULL DEFAULT '',
  time_micros bigint NOT NULL DEFAULT 0,
  tracking_id text NOT NULL DEFAULT '',
  txid xid8 NOT NULL DEFAULT pg_current_xact_id()
);
CREATE TABLE served (
  served_id bigserial PRIMARY KEY,
  project_id text NOT NULL,
  user_id text NOT NULL,
  response_id text NOT NULL,
  treatment_id text NOT NULL,
  surface text NOT NULL,
  tracking_id text NOT NULL,
  time_micros bigint NOT NULL,
  txid xid8 NOT NULL DEFAULT pg_current_xact_id()
);
CREATE TABLE recent_decisions (
  decision_id bigserial PRIMARY KEY,
  time_micros bigint NOT NULL,
  project_id text NOT NULL,
  user_id text NOT NULL,
  request bytea NOT NULL,
  response bytea NOT NULL
);
CREATE TABLE write_batches (
  batch_id bigint PRIMARY KEY,
  written_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX interactions_by_user ON interactions (project_id, user_id, txid);
CREATE INDEX served_by_user ON served (project_id, user_id, txid);
CREATE INDEX write_batches_by_time ON write_batches (written_at);
"""
"""Schema 1's tables and indexes, made in one transaction on an empty database with
``_LISTING_INDEXES``. ``write_batches`` holds the id of each batch of appended rows, committed
with them: after a connection is lost during a commit, it says whether the batch was stored."""
_LISTING_INDEXES: Final = """
CREATE INDEX interactions_by_tracking ON interactions (project_id, tracking_id, interaction_id);
CREATE INDEX served_by_response ON served (project_id, response_id, served_id);
"""
"""Schema 2: the listings' reads by tracking id and by response (``filters``), each key's rows
in sequence order."""
_PROJECT_INDEXES: Final = """
CREATE INDEX interactions_by_project ON interactions (project_id, interaction_id);
CREATE INDEX served_by_project ON served (project_id, served_id);
"""
"""Schema 3: a listing's seeks of a project's next record in sequence order (``filters``)."""
_RECORD_FLOORS: Final = """
CREATE TABLE record_floors (
  project_id text PRIMARY KEY,
  interactions bigint NOT NULL,
  served bigint NOT NULL
);
"""
"""Schema 4: a project's records at and below these row ids are gone: its Reset hid them at once,
and they are deleted in turns after it (``postgres_store``). The rows stay (one a project that
was reset): a record numbered below its floor may commit after the Reset."""


class NewerSchemaError(Exception):
    """The database was written by a newer version of the server; the message says so."""


def lock_key() -> int:
    """Return the key of the advisory lock that schema changes and units of work take."""
    return _LOCK


def _version(connection: psycopg.Connection[tuple[object, ...]]) -> int | None:
    """Return the database's schema version, None when it has no tables of ours."""
    found = connection.execute("SELECT to_regclass('auxia_schema') IS NOT NULL").fetchone()
    if found is None or not found[0]:
        return None
    row = connection.execute("SELECT version FROM auxia_schema").fetchone()
    return None if row is None else int(str(row[0]))


def prepare(connection: psycopg.Connection[tuple[object, ...]]) -> Migration | None:
    """Bring a database to today's schema; return the migration it took, if any.

    Creates the schema in an empty database; a database of an older schema
    takes the steps from it, in one transaction. Raises NewerSchemaError,
    changing nothing, for a database of a newer schema.
    """
    started = time.monotonic()
    with connection.transaction():
        connection.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK,))
        version = _version(connection)
        if version is not None and version > SCHEMA_VERSION:
            msg = (
                f"it was written by a newer auxia-decision (schema version {version}; "
                f"this one reads versions up to {SCHEMA_VERSION})"
            )
            raise NewerSchemaError(msg)
        if version == SCHEMA_VERSION:
            return None
        if version is None:
            _execute_each(
                connection, _TABLES + _LISTING_INDEXES + _PROJECT_INDEXES + _RECORD_FLOORS
            )
            connection.execute("INSERT INTO auxia_schema (version) VALUES (%s)", (SCHEMA_VERSION,))
            return None
        if version < 2:  # the listings' indexes
            _execute_each(connection, _LISTING_INDEXES)
        if version < 3:  # the projects' indexes
            _execute_each(connection, _PROJECT_INDEXES)
        if version < 4:  # the records' floors
            _execute_each(connection, _RECORD_FLOORS)
        connection.execute("UPDATE auxia_schema SET version = %s", (SCHEMA_VERSION,))
        if version >= 3:  # no index built, which would have counted the rows: a sample
            connection.execute("ANALYZE interactions, served")
        # As CREATE INDEX counted them (no second scan of the tables), or ANALYZE guessed.
        counted = connection.execute(
            "SELECT SUM(GREATEST(reltuples, 0))::bigint FROM pg_class "
            "WHERE oid IN ('interactions'::regclass, 'served'::regclass)"
        ).fetchone()
    rows = 0 if counted is None else int(str(counted[0]))
    return Migration(version, SCHEMA_VERSION, rows, time.monotonic() - started)


def _execute_each(connection: psycopg.Connection[tuple[object, ...]], script: str) -> None:
    """Run a script's statements, one after another, in the open transaction."""
    for statement in script.split(";\n"):
        if statement.strip():
            connection.execute(statement.encode())
