"""What a store's SQLite file holds, read by a connection of our own; and rows to put in it.

The tests and the server benchmark check what was committed against what was
acknowledged by reading the file, never through the server under test.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
from typing import TYPE_CHECKING

import psycopg

from auxia.decision.model import treatment_interaction_service_pb2 as interactions

if TYPE_CHECKING:
    from auxia_decision.server._storage.sqlite_store import SqliteStore


def stored_interactions(db: str | os.PathLike[str]) -> list[tuple[str, bytes]]:
    """Return every committed row of a store's interactions table, oldest first.

    Each row is its project id and body; the file is opened read-only.
    """
    with contextlib.closing(sqlite3.connect(f"file:{os.fspath(db)}?mode=ro", uri=True)) as db_:
        rows = db_.execute(
            "SELECT project_id, body FROM interactions ORDER BY interaction_id"
        ).fetchall()
    return [(str(project), bytes(body)) for project, body in rows]


def stored_tracking_ids(db: str | os.PathLike[str], *, body: str = "proto") -> list[str]:
    """Return the tracking id of every stored interaction; ``body`` is how rows are encoded.

    ``db`` is a SQLite file or a ``postgresql://`` URL.
    """
    if str(db).startswith("postgresql://"):
        with psycopg.connect(str(db)) as connection:
            rows = connection.execute(
                "SELECT tracking_id FROM interactions ORDER BY interaction_id"
            ).fetchall()
        return [str(row[0]) for row in rows]
    bodies = [row_body for _, row_body in stored_interactions(db)]
    if body == "json":
        return [str(json.loads(text)["treatmentTrackingId"]) for text in bodies]
    parse = interactions.LogTreatmentInteractionRequest.FromString
    return [parse(text).treatment_tracking_id for text in bodies]


class _Row:
    """A logged row (``LoggedRow``) of any project id and body, naming no user.

    A project id of None is a row the interactions table refuses (NOT NULL).
    """

    user_id = ""
    interaction_type = 1
    treatment_id = ""
    surface = ""
    interaction_time_micros = 1
    treatment_tracking_id = ""

    def __init__(self, project_id: str | None, body: bytes) -> None:
        self.project_id = project_id
        self._body = body

    def SerializeToString(self) -> bytes:  # noqa: N802 - the protobuf method it stands for
        return self._body


def log_row(store: SqliteStore, project_id: str | None, body: bytes) -> asyncio.Future[None]:
    """Log a row of a project id and a body through the store's one way to log an interaction."""
    # A None project id is not a str: the type ignored is the test's point.
    return store.log_interaction(_Row(project_id, body), None)  # type: ignore[arg-type]
