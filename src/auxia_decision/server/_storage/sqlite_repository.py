"""The SQLite repository: the named operations of ``Repository`` as SQL on one connection."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any, Final

from auxia.decision.model import (
    data_field_pb2,
    treatment_interaction_service_pb2,
    treatment_pb2,
)
from auxia_decision.server._storage.daily import read_daily_rows, read_last_ids
from auxia_decision.server._storage.filters import (
    FLOORS,
    SQLITE,
    Query,
    decisions_query,
    floors_of,
    listed_interactions,
    listed_projects,
    listed_served_rows,
    next_project_query,
    served_row,
)
from auxia_decision.server._storage.rows import open_database
from auxia_decision.server._storage.seam import (
    SENT,
    DailyRow,
    ExternalIdTakenError,
    InteractionFilter,
    Listing,
    Migration,
    ProjectRecord,
    ServedFilter,
    ServedRow,
    StoredTreatment,
)
from auxia_decision.server._storage.sqlite_schema import prepare, refuse_unusable

# The tables of a project's configuration, the projects table last (the others refer to it).
_PROJECT_TABLES: Final = (
    "api_keys",
    "treatment_types",
    "user_attribute_types",
    "data_fields",
    "mutual_exclusion_groups",
    "treatments",
    "projects",
)
_RECORD_TABLES: Final = (("interactions", "interaction_id"), ("served", "served_id"))
"""The tables of a project's records, and their keys: what grows with its traffic."""


def connect(path: str) -> tuple[sqlite3.Connection, Migration | None]:
    """Open a store's database (a file, or ``:memory:``) at today's schema.

    Creates a new file's tables, or migrates an older file (the migration is
    returned); raises UnusableFileError for a newer one or another application's.
    """
    refuse_unusable(path)
    connection = open_database(path)
    try:
        return connection, prepare(connection)
    except BaseException:
        connection.close()
        raise


class SqliteRepository:
    """The named operations of the store (``Repository``) on one SQLite connection.

    Its methods run inside the transaction the caller has opened.

    Args:
        connection: an open connection to the store's database.
        touched: where the projects whose configuration or treatments the
            operations change are added.

    """

    __slots__ = ("_connection", "_touched")

    def __init__(self, connection: sqlite3.Connection, touched: set[str] | None = None) -> None:
        self._connection = connection
        self._touched = touched if touched is not None else set()

    def projects_by_key_digest(self) -> dict[bytes, ProjectRecord]:
        """Return every API key digest with the project it belongs to."""
        rows = self._connection.execute(
            "SELECT k.key_sha256, p.project_id, p.numeric_project_id, "
            "p.supported_language_codes FROM api_keys k JOIN projects p USING (project_id)"
        ).fetchall()
        return {
            row[0]: ProjectRecord(row[1], row[2], frozenset(filter(None, row[3].split("\n"))))
            for row in rows
        }

    def put_project(self, project: ProjectRecord, key_digests: Sequence[bytes]) -> None:
        """Create or replace a project and add API keys, given by digest, to it."""
        self._touched.add(project.project_id)
        self._connection.execute(
            "INSERT INTO projects VALUES (?, ?, ?) ON CONFLICT (project_id) DO UPDATE SET "
            "numeric_project_id = excluded.numeric_project_id, "
            "supported_language_codes = excluded.supported_language_codes",
            (
                project.project_id,
                project.numeric_project_id,
                "\n".join(sorted(project.supported_language_codes)),
            ),
        )
        self._connection.executemany(
            "INSERT OR REPLACE INTO api_keys VALUES (?, ?)",
            [(digest, project.project_id) for digest in key_digests],
        )

    def put_treatment_type(self, treatment_type: treatment_pb2.TreatmentTypePb) -> None:
        """Create or replace a treatment type."""
        self._touched.add(treatment_type.project_id)
        self._connection.execute(
            "INSERT OR REPLACE INTO treatment_types VALUES (?, ?, ?)",
            (treatment_type.project_id, treatment_type.name, treatment_type.SerializeToString()),
        )

    def treatment_type(self, project_id: str, name: str) -> treatment_pb2.TreatmentTypePb | None:
        """Return a treatment type by name, or None."""
        row = self._connection.execute(
            "SELECT body FROM treatment_types WHERE project_id = ? AND name = ?",
            (project_id, name),
        ).fetchone()
        return None if row is None else treatment_pb2.TreatmentTypePb.FromString(row[0])

    def put_user_attribute_type(
        self, project_id: str, property_name: str, data_field_type: str
    ) -> None:
        """Declare the type of a user attribute."""
        self._touched.add(project_id)
        self._connection.execute(
            "INSERT OR REPLACE INTO user_attribute_types VALUES (?, ?, ?)",
            (project_id, property_name, data_field_type),
        )

    def user_attribute_type(self, project_id: str, property_name: str) -> str | None:
        """Return the declared type of a user attribute, or None."""
        row = self._connection.execute(
            "SELECT data_field_type FROM user_attribute_types "
            "WHERE project_id = ? AND property_name = ?",
            (project_id, property_name),
        ).fetchone()
        return None if row is None else str(row[0])

    def resolve_data_field(
        self, project_id: str, params: data_field_pb2.DataFieldParams, data_field_type: str
    ) -> int:
        """Return the identifier of a data field, creating it the first time it is seen.

        Parameters are keyed by their deterministic serialization.
        """
        params_key = params.SerializeToString(deterministic=True)
        row = self._connection.execute(
            "SELECT data_field_id FROM data_fields WHERE project_id = ? AND params_key = ?",
            (project_id, params_key),
        ).fetchone()
        if row is not None:
            return int(row[0])
        (next_id,) = self._connection.execute(
            "SELECT COALESCE(MAX(data_field_id), 0) + 1 FROM data_fields WHERE project_id = ?",
            (project_id,),
        ).fetchone()
        self._touched.add(project_id)
        self._connection.execute(
            "INSERT INTO data_fields VALUES (?, ?, ?, ?, ?)",
            (project_id, next_id, params_key, params.SerializeToString(), data_field_type),
        )
        return int(next_id)

    def data_field_type(self, project_id: str, data_field_id: int) -> str | None:
        """Return the type of a data field by identifier, or None when it does not exist."""
        row = self._connection.execute(
            "SELECT data_field_type FROM data_fields WHERE project_id = ? AND data_field_id = ?",
            (project_id, data_field_id),
        ).fetchone()
        return None if row is None else str(row[0])

    def mutual_exclusion_group(self, project_id: str, name: str) -> int:
        """Return the identifier of the project's group of that name, creating it if needed."""
        self._connection.execute(
            "INSERT OR IGNORE INTO mutual_exclusion_groups (project_id, name) VALUES (?, ?)",
            (project_id, name),
        )
        (group_id,) = self._connection.execute(
            "SELECT mutual_exclusion_group_id FROM mutual_exclusion_groups "
            "WHERE project_id = ? AND name = ?",
            (project_id, name),
        ).fetchone()
        return int(group_id)

    def find_treatment(
        self, project_id: str, *, treatment_id: str = "", external_treatment_id: str = ""
    ) -> StoredTreatment | None:
        """Return a treatment by identifier or external identifier, or None."""
        if treatment_id:
            row = self._connection.execute(
                "SELECT body, published_versions FROM treatments "
                "WHERE project_id = ? AND treatment_id = ?",
                (project_id, treatment_id),
            ).fetchone()
        else:
            row = self._connection.execute(
                "SELECT body, published_versions FROM treatments "
                "WHERE project_id = ? AND external_treatment_id = ?",
                (project_id, external_treatment_id),
            ).fetchone()
        if row is None:
            return None
        return StoredTreatment(
            treatment_pb2.TreatmentPb.FromString(row[0]), [flag == "1" for flag in row[1]]
        )

    def put_treatment(self, stored: StoredTreatment) -> None:
        """Create or replace a treatment; ExternalIdTakenError on an external id clash."""
        treatment = stored.treatment
        self._touched.add(treatment.project_id)
        try:
            # Not INSERT OR REPLACE: REPLACE would also delete another
            # treatment holding the same external id instead of failing.
            self._connection.execute(
                "INSERT INTO treatments VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (project_id, treatment_id) DO UPDATE SET "
                "external_treatment_id = excluded.external_treatment_id, "
                "body = excluded.body, published_versions = excluded.published_versions",
                (
                    treatment.project_id,
                    treatment.treatment_id,
                    treatment.external_treatment_id or None,
                    treatment.SerializeToString(),
                    "".join("1" if flag else "0" for flag in stored.published_versions),
                ),
            )
        except sqlite3.IntegrityError as error:
            # The primary key is resolved by the upsert; only the external id can clash.
            raise ExternalIdTakenError(treatment.external_treatment_id) from error

    def interactions(
        self, project_id: str
    ) -> list[treatment_interaction_service_pb2.LogTreatmentInteractionRequest]:
        """Return the project's recorded interactions, oldest first."""
        rows = self._connection.execute(
            "SELECT body FROM interactions WHERE project_id = ? AND interaction_id > ? "
            "ORDER BY interaction_id",
            (project_id, self._floors("interactions").get(project_id, 0)),
        ).fetchall()
        parse = treatment_interaction_service_pb2.LogTreatmentInteractionRequest.FromString
        return [parse(row[0]) for row in rows]

    def logged_interactions(
        self,
        project_id: str,
        after: int,
        matching: InteractionFilter,
        *,
        newest_first: bool = False,
    ) -> Listing[tuple[int, treatment_interaction_service_pb2.LogTreatmentInteractionRequest]]:
        """Return (sequence, request) for the matching interactions stored after ``after``.

        Read as ``filters`` says, as the caller takes them.
        """
        projects = self._listed_projects("interactions", project_id, matching)
        reads, floors = (self._rows, self._rows), self._floors("interactions")
        return listed_interactions(
            reads, projects, after, matching, SQLITE, newest_first=newest_first, floors=floors
        )

    def served_rows(
        self, project_id: str, after: int, matching: ServedFilter, *, newest_first: bool = False
    ) -> Listing[ServedRow]:
        """Return the matching served treatments stored after sequence ``after``, oldest first."""
        projects = self._listed_projects("served", project_id, matching)
        reads, floors = (self._rows, self._rows), self._floors("served")
        return listed_served_rows(
            reads, projects, after, matching, SQLITE, newest_first=newest_first, floors=floors
        )

    def decisions_rows(self, project_id: str, response_ids: Sequence[str]) -> list[ServedRow]:
        """Return the served rows of some of a project's responses, in no order, by index."""
        floor = self._floors("served").get(project_id, 0)
        rows = self._rows(decisions_query(project_id, response_ids, SQLITE))
        return [row for row in map(served_row, rows) if row.sequence > floor]

    def _floors(self, table: str) -> dict[str, int]:
        """Return each project whose Reset hid records of a table, and the row id it hid through."""
        return floors_of(self._connection.execute(FLOORS), table)

    def _rows(self, query: Query) -> Iterator[tuple[Any, ...]]:
        """Yield a query's rows as SQLite steps to them."""
        text, values = query
        yield from self._connection.execute(text, values)

    def _listed_projects(
        self, table: str, project_id: str, matching: InteractionFilter | ServedFilter
    ) -> list[str]:
        """Return the projects a listing reads one at a time (``""``: all at once)."""

        def least(value: str, inclusive: bool) -> object:
            query = next_project_query(table, SQLITE, inclusive=inclusive)
            return self._connection.execute(query, (value,)).fetchone()[0]

        return listed_projects(project_id, matching, least)

    def delete_project(self, project_id: str) -> None:
        """Delete a project and everything of it: keys, configuration, treatments, records.

        Its records are hidden at once (``record_floors``): ``purge_hidden``
        deletes them afterwards, in transactions of their own.
        """
        self._touched.add(project_id)
        for table in _PROJECT_TABLES:
            self._connection.execute(f"DELETE FROM {table} WHERE project_id = ?", (project_id,))  # noqa: S608 - our own table names
        ends = [
            self._connection.execute(
                f"SELECT coalesce(max({key}), 0) FROM {table} WHERE project_id = ?",  # noqa: S608 - our own table names
                (project_id,),
            ).fetchone()[0]
            for table, key in _RECORD_TABLES
        ]
        if any(ends):
            # Above any floor of an earlier Reset: its rows may be deleted already.
            self._connection.execute(
                "INSERT INTO record_floors VALUES (?, ?, ?) ON CONFLICT (project_id) DO UPDATE "
                "SET interactions = max(interactions, excluded.interactions), "
                "served = max(served, excluded.served)",
                (project_id, *ends),
            )

    def purge_hidden(self, limit: int) -> bool:
        """Delete up to ``limit`` of the records a Reset hid; return whether it deleted any.

        A table's last row is never deleted (a new row would take its number,
        which cached users count already): a project's floor is dropped once
        none of its records at or below it is left, so a hidden last row
        keeps it until a purge after rows came after it.
        """
        for project_id, *floors in self._connection.execute(FLOORS).fetchall():
            left = False
            for (table, key), floor in zip(_RECORD_TABLES, floors, strict=True):
                deleted: int = self._connection.execute(
                    f"DELETE FROM {table} WHERE {key} IN "  # noqa: S608 - our own table names
                    f"(SELECT {key} FROM {table} WHERE project_id = ? AND {key} <= ? "
                    f"AND {key} < (SELECT max({key}) FROM {table}) LIMIT ?)",
                    (project_id, floor, limit),
                ).rowcount
                if deleted:
                    return True
                left = (
                    left
                    or self._connection.execute(
                        f"SELECT 1 FROM {table} WHERE project_id = ? AND {key} <= ?",  # noqa: S608 - our own table names
                        (project_id, floor),
                    ).fetchone()
                    is not None
                )
            if not left:
                self._connection.execute(
                    "DELETE FROM record_floors WHERE project_id = ?", (project_id,)
                )
                return True
        return False

    def delete_everything(self) -> None:
        """Delete every project and everything of them; numbering starts again."""
        self._touched.update(self.project_ids())
        for table in (*_PROJECT_TABLES, *(table for table, _ in _RECORD_TABLES), "record_floors"):
            self._connection.execute(f"DELETE FROM {table}")  # noqa: S608 - our own table names
        self._connection.execute(
            "DELETE FROM sqlite_sequence WHERE name = 'mutual_exclusion_groups'"
        )

    def project_ids(self) -> list[str]:
        """Return the identifiers of every project, sorted."""
        return [project.project_id for project in self.projects()]

    def projects(self) -> list[ProjectRecord]:
        """Return every project, by identifier."""
        rows = self._connection.execute(
            "SELECT project_id, numeric_project_id, supported_language_codes FROM projects "
            "ORDER BY project_id"
        )
        return [
            ProjectRecord(str(pid), int(number), frozenset(filter(None, str(codes).split("\n"))))
            for pid, number, codes in rows
        ]

    def treatment_types(self, project_id: str) -> list[treatment_pb2.TreatmentTypePb]:
        """Return the project's treatment types, by name."""
        rows = self._connection.execute(
            "SELECT body FROM treatment_types WHERE project_id = ? ORDER BY name", (project_id,)
        ).fetchall()
        return [treatment_pb2.TreatmentTypePb.FromString(row[0]) for row in rows]

    def user_attribute_types(self, project_id: str) -> dict[str, str]:
        """Return the declared type of each of the project's user attributes."""
        rows = self._connection.execute(
            "SELECT property_name, data_field_type FROM user_attribute_types WHERE project_id = ?",
            (project_id,),
        ).fetchall()
        return {str(name): str(data_field_type) for name, data_field_type in rows}

    def data_fields(self, project_id: str) -> dict[int, tuple[data_field_pb2.DataFieldParams, str]]:
        """Return the project's data fields: parameters and type, by identifier."""
        rows = self._connection.execute(
            "SELECT data_field_id, params, data_field_type FROM data_fields WHERE project_id = ?",
            (project_id,),
        ).fetchall()
        parse = data_field_pb2.DataFieldParams.FromString
        return {int(number): (parse(params), str(kind)) for number, params, kind in rows}

    def treatments(self, project_id: str) -> list[StoredTreatment]:
        """Return the project's treatments, by treatment identifier."""
        rows = self._connection.execute(
            "SELECT body, published_versions FROM treatments WHERE project_id = ? "
            "ORDER BY treatment_id",
            (project_id,),
        ).fetchall()
        return [
            StoredTreatment(
                treatment_pb2.TreatmentPb.FromString(body), [flag == "1" for flag in published]
            )
            for body, published in rows
        ]

    def user_activity(
        self, project_id: str, user_id: str
    ) -> tuple[list[DailyRow], tuple[int, int]]:
        """Return a user's events counted by kind, treatment, surface and day, read by index.

        Also returns the highest interaction and served row ids stored, which
        the rows include: the read and the ids are of one transaction.
        """
        rows = read_daily_rows(self._connection, project_id, user_id, SENT)
        return rows, read_last_ids(self._connection)
