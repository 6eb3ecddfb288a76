"""The PostgreSQL repository: the named operations of ``Repository`` as SQL on one connection."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final

import psycopg

from auxia.decision.model import (
    data_field_pb2,
    treatment_interaction_service_pb2,
    treatment_pb2,
)
from auxia_decision.server._storage.filters import (
    FLOORS,
    POSTGRES,
    Query,
    Reads,
    decisions_query,
    floors_of,
    listed_interactions,
    listed_projects,
    listed_served_rows,
    next_project_query,
    served_row,
)
from auxia_decision.server._storage.seam import (
    MICROS_PER_DAY,
    SENT,
    DailyRow,
    ExternalIdTakenError,
    InteractionFilter,
    Listing,
    ProjectRecord,
    ServedFilter,
    ServedRow,
    StoredTreatment,
)

Connection = psycopg.Connection[tuple[Any, ...]]

# The tables a project's Reset deletes its rows of, the projects table last (the others
# refer to it); its records it hides (``record_floors``).
PROJECT_TABLES: Final = (
    "api_keys",
    "treatment_types",
    "user_attribute_types",
    "data_fields",
    "mutual_exclusion_groups",
    "treatments",
    "recent_decisions",
    "projects",
)
_RECORD_TABLES: Final = (("interactions", "interaction_id"), ("served", "served_id"))
"""The tables of a project's records, and their keys: what grows with its traffic."""
TRUNCATE_WAIT_MS: Final = 100
"""How long a Reset's TRUNCATE waits for the tables' reads in progress before it gives way:
the longest it holds up the other sessions' statements on them at a time."""
_LISTED_PER_FETCH: Final = 500
_cursors = itertools.count(1)

# A UTC day of a time in µs, the floor for times before 1970 too (as the SQLite store's);
# its modulo is written %% for queries with parameters.
DAY_SQL: Final = (
    f"((time_micros - ((time_micros %% {MICROS_PER_DAY}) + {MICROS_PER_DAY}) %% "
    f"{MICROS_PER_DAY}) / {MICROS_PER_DAY})"
)
_USER_ACTIVITY: Final = (
    f"SELECT kind, treatment_id, surface, {DAY_SQL} AS day, COUNT(*), MIN(time_micros), "  # noqa: S608 - our own constants
    "MAX(time_micros) FROM interactions WHERE project_id = %(project)s AND user_id = %(user)s "
    "AND interaction_id > coalesce((SELECT interactions FROM record_floors "
    "WHERE project_id = %(project)s), 0) "
    "GROUP BY kind, treatment_id, surface, day "
    f"UNION ALL SELECT %(sent)s, treatment_id, surface, {DAY_SQL} AS day, COUNT(*), "
    "MIN(time_micros), MAX(time_micros) FROM served "
    "WHERE project_id = %(project)s AND user_id = %(user)s "
    "AND served_id > coalesce((SELECT served FROM record_floors "
    "WHERE project_id = %(project)s), 0) "
    "GROUP BY treatment_id, surface, day"
)


def _languages(codes: str) -> frozenset[str]:
    return frozenset(filter(None, codes.split("\n")))


class PostgresRepository:
    """The named operations of the store (``Repository``) on one PostgreSQL connection.

    Its methods run inside the transaction the caller has opened.

    Args:
        connection: an open connection to the store's database, in a transaction.
        touched: where the projects whose configuration or treatments the
            operations change are added (their versions change at commit).

    """

    __slots__ = ("_connection", "_touched")

    def __init__(self, connection: Connection, touched: set[str] | None = None) -> None:
        self._connection = connection
        self._touched = touched if touched is not None else set()

    def _one(self, query: str, values: Sequence[object] = ()) -> tuple[Any, ...] | None:
        return self._connection.execute(query.encode(), values).fetchone()

    def _all(
        self, query: str, values: Sequence[object] | Mapping[str, object] = ()
    ) -> list[tuple[Any, ...]]:
        return self._connection.execute(query.encode(), values).fetchall()

    def projects_by_key_digest(self) -> dict[bytes, ProjectRecord]:
        """Return every API key digest with the project it belongs to."""
        rows = self._all(
            "SELECT k.key_sha256, p.project_id, p.numeric_project_id, "
            "p.supported_language_codes FROM api_keys k JOIN projects p USING (project_id)"
        )
        return {
            bytes(row[0]): ProjectRecord(row[1], int(row[2]), _languages(row[3])) for row in rows
        }

    def put_project(self, project: ProjectRecord, key_digests: Sequence[bytes]) -> None:
        """Create or replace a project and add API keys, given by digest, to it."""
        self._touched.add(project.project_id)
        self._connection.execute(
            b"INSERT INTO projects (project_id, numeric_project_id, supported_language_codes) "
            b"VALUES (%s, %s, %s) ON CONFLICT (project_id) DO UPDATE SET "
            b"numeric_project_id = excluded.numeric_project_id, "
            b"supported_language_codes = excluded.supported_language_codes",
            (
                project.project_id,
                project.numeric_project_id,
                "\n".join(sorted(project.supported_language_codes)),
            ),
        )
        with self._connection.cursor() as cursor:
            cursor.executemany(
                b"INSERT INTO api_keys VALUES (%s, %s) ON CONFLICT (key_sha256) "
                b"DO UPDATE SET project_id = excluded.project_id",
                [(digest, project.project_id) for digest in key_digests],
            )

    def put_treatment_type(self, treatment_type: treatment_pb2.TreatmentTypePb) -> None:
        """Create or replace a treatment type."""
        self._touched.add(treatment_type.project_id)
        self._connection.execute(
            b"INSERT INTO treatment_types VALUES (%s, %s, %s) ON CONFLICT (project_id, name) "
            b"DO UPDATE SET body = excluded.body",
            (treatment_type.project_id, treatment_type.name, treatment_type.SerializeToString()),
        )

    def treatment_type(self, project_id: str, name: str) -> treatment_pb2.TreatmentTypePb | None:
        """Return a treatment type by name, or None."""
        row = self._one(
            "SELECT body FROM treatment_types WHERE project_id = %s AND name = %s",
            (project_id, name),
        )
        return None if row is None else treatment_pb2.TreatmentTypePb.FromString(row[0])

    def put_user_attribute_type(
        self, project_id: str, property_name: str, data_field_type: str
    ) -> None:
        """Declare the type of a user attribute."""
        self._touched.add(project_id)
        self._connection.execute(
            b"INSERT INTO user_attribute_types VALUES (%s, %s, %s) "
            b"ON CONFLICT (project_id, property_name) "
            b"DO UPDATE SET data_field_type = excluded.data_field_type",
            (project_id, property_name, data_field_type),
        )

    def user_attribute_type(self, project_id: str, property_name: str) -> str | None:
        """Return the declared type of a user attribute, or None."""
        row = self._one(
            "SELECT data_field_type FROM user_attribute_types "
            "WHERE project_id = %s AND property_name = %s",
            (project_id, property_name),
        )
        return None if row is None else str(row[0])

    def resolve_data_field(
        self, project_id: str, params: data_field_pb2.DataFieldParams, data_field_type: str
    ) -> int:
        """Return the identifier of a data field, creating it the first time it is seen.

        Parameters are keyed by their deterministic serialization.
        """
        params_key = params.SerializeToString(deterministic=True)
        row = self._one(
            "SELECT data_field_id FROM data_fields WHERE project_id = %s AND params_key = %s",
            (project_id, params_key),
        )
        if row is not None:
            return int(row[0])
        found = self._one(
            "SELECT COALESCE(MAX(data_field_id), 0) + 1 FROM data_fields WHERE project_id = %s",
            (project_id,),
        )
        assert found is not None
        next_id = int(found[0])
        self._touched.add(project_id)
        self._connection.execute(
            b"INSERT INTO data_fields VALUES (%s, %s, %s, %s, %s)",
            (project_id, next_id, params_key, params.SerializeToString(), data_field_type),
        )
        return next_id

    def data_field_type(self, project_id: str, data_field_id: int) -> str | None:
        """Return the type of a data field by identifier, or None when it does not exist."""
        row = self._one(
            "SELECT data_field_type FROM data_fields WHERE project_id = %s AND data_field_id = %s",
            (project_id, data_field_id),
        )
        return None if row is None else str(row[0])

    def mutual_exclusion_group(self, project_id: str, name: str) -> int:
        """Return the identifier of the project's group of that name, creating it if needed."""
        self._connection.execute(
            b"INSERT INTO mutual_exclusion_groups (project_id, name) VALUES (%s, %s) "
            b"ON CONFLICT (project_id, name) DO NOTHING",
            (project_id, name),
        )
        row = self._one(
            "SELECT mutual_exclusion_group_id FROM mutual_exclusion_groups "
            "WHERE project_id = %s AND name = %s",
            (project_id, name),
        )
        assert row is not None
        return int(row[0])

    def find_treatment(
        self, project_id: str, *, treatment_id: str = "", external_treatment_id: str = ""
    ) -> StoredTreatment | None:
        """Return a treatment by identifier or external identifier, or None."""
        column, value = (
            ("treatment_id", treatment_id)
            if treatment_id
            else ("external_treatment_id", external_treatment_id)
        )
        row = self._one(
            f"SELECT body, published_versions FROM treatments "  # noqa: S608 - our own columns
            f"WHERE project_id = %s AND {column} = %s",
            (project_id, value),
        )
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
            with self._connection.transaction():  # a savepoint: the clash undoes only this
                self._connection.execute(
                    b"INSERT INTO treatments VALUES (%s, %s, %s, %s, %s) "
                    b"ON CONFLICT (project_id, treatment_id) DO UPDATE SET "
                    b"external_treatment_id = excluded.external_treatment_id, "
                    b"body = excluded.body, published_versions = excluded.published_versions",
                    (
                        treatment.project_id,
                        treatment.treatment_id,
                        treatment.external_treatment_id or None,
                        treatment.SerializeToString(),
                        "".join("1" if flag else "0" for flag in stored.published_versions),
                    ),
                )
        except psycopg.errors.UniqueViolation as error:
            # The primary key is resolved by the upsert; only the external id can clash.
            raise ExternalIdTakenError(treatment.external_treatment_id) from error

    def interactions(
        self, project_id: str
    ) -> list[treatment_interaction_service_pb2.LogTreatmentInteractionRequest]:
        """Return the project's recorded interactions, oldest first."""
        parse = treatment_interaction_service_pb2.LogTreatmentInteractionRequest.FromString
        return [
            parse(row[0])
            for row in self._all(
                "SELECT body FROM interactions WHERE project_id = %s AND interaction_id > %s "
                "ORDER BY interaction_id",
                (project_id, self._floors("interactions").get(project_id, 0)),
            )
        ]

    @property
    def _reads(self) -> Reads:
        """How listings read: rows as they are taken, and a seek's one row at once."""
        return self._stream, self._fetched

    def _fetched(self, query: Query) -> Iterator[tuple[Any, ...]]:
        """Return a query's rows fetched at once: one round trip (a seek's one row)."""
        return iter(self._all(*query))

    def _stream(self, query: Query) -> Iterator[tuple[Any, ...]]:
        """Yield a query's rows as they are taken (a server-side cursor), not all at once."""
        text, values = query
        with self._connection.cursor(name=f"listing_{next(_cursors)}") as cursor:
            cursor.itersize = _LISTED_PER_FETCH
            cursor.execute(text.encode(), values)
            yield from cursor

    def logged_interactions(
        self,
        project_id: str,
        after: int,
        matching: InteractionFilter,
        *,
        newest_first: bool = False,
    ) -> Listing[tuple[int, treatment_interaction_service_pb2.LogTreatmentInteractionRequest]]:
        """Return (sequence, request) for the matching interactions stored after ``after``."""
        projects = self._listed_projects("interactions", project_id, matching)
        reads, floors = self._reads, self._floors("interactions")
        return listed_interactions(
            reads, projects, after, matching, POSTGRES, newest_first=newest_first, floors=floors
        )

    def served_rows(
        self, project_id: str, after: int, matching: ServedFilter, *, newest_first: bool = False
    ) -> Listing[ServedRow]:
        """Return the matching served treatments stored after sequence ``after``, by index."""
        projects = self._listed_projects("served", project_id, matching)
        reads, floors = self._reads, self._floors("served")
        return listed_served_rows(
            reads, projects, after, matching, POSTGRES, newest_first=newest_first, floors=floors
        )

    def decisions_rows(self, project_id: str, response_ids: Sequence[str]) -> list[ServedRow]:
        """Return the served rows of some of a project's responses, in no order, by index."""
        floor = self._floors("served").get(project_id, 0)
        rows = self._all(*decisions_query(project_id, response_ids, POSTGRES))
        return [row for row in map(served_row, rows) if row.sequence > floor]

    def _floors(self, table: str) -> dict[str, int]:
        """Return each project whose Reset hid records of a table, and the row id it hid through."""
        return floors_of(self._all(FLOORS), table)

    def _listed_projects(
        self, table: str, project_id: str, matching: InteractionFilter | ServedFilter
    ) -> list[str]:
        """Return the projects a listing reads one at a time (``""``: all at once)."""

        def least(value: str, inclusive: bool) -> object:
            row = self._one(next_project_query(table, POSTGRES, inclusive=inclusive), (value,))
            return None if row is None else row[0]

        return listed_projects(project_id, matching, least)

    def delete_project(self, project_id: str) -> None:
        """Delete a project and everything of it: keys, configuration, treatments, records.

        Its records are hidden at once (``record_floors``): ``purge_hidden``
        deletes them afterwards, in transactions of their own.
        """
        self._touched.add(project_id)
        for table in PROJECT_TABLES:
            self._connection.execute(
                f"DELETE FROM {table} WHERE project_id = %s".encode(),  # noqa: S608 - our own table names
                (project_id,),
            )
        ends = []
        for table, key in _RECORD_TABLES:
            found = self._one(
                f"SELECT coalesce(max({key}), 0) FROM {table} WHERE project_id = %s",  # noqa: S608 - our own table names
                (project_id,),
            )
            ends.append(0 if found is None else int(found[0]))
        if any(ends):
            # Above any floor of an earlier Reset: its rows may be deleted already. A row
            # numbered below it and committed after this transaction is hidden too: it
            # was logged while the Reset ran.
            self._connection.execute(
                b"INSERT INTO record_floors VALUES (%s, %s, %s) ON CONFLICT (project_id) DO "
                b"UPDATE SET interactions = greatest(record_floors.interactions, "
                b"excluded.interactions), served = greatest(record_floors.served, excluded.served)",
                (project_id, *ends),
            )

    def purge_hidden(self, limit: int, progress: dict[tuple[str, str], int]) -> bool:
        """Delete up to ``limit`` of the records a Reset hid; return whether it deleted any.

        ``progress``: the last row deleted of each project and table, kept by
        the caller from one turn to the next, so that each turn starts past
        the index entries of the rows deleted before it. The floors stay: a
        row numbered below one may still commit (its id was taken before the
        Reset), and it must stay hidden (a purge after the next start deletes
        such a row).
        """
        for project_id, *floors in self._all(FLOORS):
            for (table, key), floor in zip(_RECORD_TABLES, floors, strict=True):
                # = ANY(ARRAY(...)): with IN (...), the planner read the whole table.
                found = self._one(
                    f"WITH gone AS (DELETE FROM {table} WHERE {key} = ANY(ARRAY("  # noqa: S608 - our own table names
                    f"SELECT {key} FROM {table} WHERE project_id = %s AND {key} > %s "
                    f"AND {key} <= %s ORDER BY {key} LIMIT %s)) RETURNING {key}) "
                    f"SELECT max({key}) FROM gone",
                    (project_id, progress.get((project_id, table), 0), floor, limit),
                )
                if found is not None and found[0] is not None:
                    progress[project_id, table] = int(found[0])
                    return True
        return False

    def delete_everything(self) -> None:
        """Delete every project and everything of them; numbering starts again.

        Raises ``LockNotAvailable`` when reads of the tables in progress keep it
        waiting longer than ``TRUNCATE_WAIT_MS``: meanwhile every other session's
        statements on them queue behind it, so it gives way (to be run again).
        """
        self._touched.update(self.project_ids())
        self._connection.execute(
            b"SELECT set_config('lock_timeout', %s, true)", (f"{TRUNCATE_WAIT_MS}ms",)
        )
        self._connection.execute(
            f"TRUNCATE {', '.join(PROJECT_TABLES)}, interactions, served, record_floors, "
            "write_batches RESTART IDENTITY".encode()
        )
        self._connection.execute(b"SET LOCAL lock_timeout TO DEFAULT")

    def project_ids(self) -> list[str]:
        """Return the identifiers of every project, sorted."""
        return [project.project_id for project in self.projects()]

    def projects(self) -> list[ProjectRecord]:
        """Return every project, by identifier."""
        return [
            ProjectRecord(pid, int(number), _languages(codes))
            for pid, number, codes in self._all(
                "SELECT project_id, numeric_project_id, supported_language_codes FROM projects "
                'ORDER BY project_id COLLATE "C"'
            )
        ]

    def treatment_types(self, project_id: str) -> list[treatment_pb2.TreatmentTypePb]:
        """Return the project's treatment types, by name."""
        return [
            treatment_pb2.TreatmentTypePb.FromString(row[0])
            for row in self._all(
                'SELECT body FROM treatment_types WHERE project_id = %s ORDER BY name COLLATE "C"',
                (project_id,),
            )
        ]

    def user_attribute_types(self, project_id: str) -> dict[str, str]:
        """Return the declared type of each of the project's user attributes."""
        rows = self._all(
            "SELECT property_name, data_field_type FROM user_attribute_types WHERE project_id = %s",
            (project_id,),
        )
        return {str(name): str(data_field_type) for name, data_field_type in rows}

    def data_fields(self, project_id: str) -> dict[int, tuple[data_field_pb2.DataFieldParams, str]]:
        """Return the project's data fields: parameters and type, by identifier."""
        parse = data_field_pb2.DataFieldParams.FromString
        return {
            int(number): (parse(params), str(kind))
            for number, params, kind in self._all(
                "SELECT data_field_id, params, data_field_type FROM data_fields "
                "WHERE project_id = %s",
                (project_id,),
            )
        }

    def treatments(self, project_id: str) -> list[StoredTreatment]:
        """Return the project's treatments, by treatment identifier."""
        return [
            StoredTreatment(
                treatment_pb2.TreatmentPb.FromString(body), [flag == "1" for flag in published]
            )
            for body, published in self._all(
                "SELECT body, published_versions FROM treatments WHERE project_id = %s "
                'ORDER BY treatment_id COLLATE "C"',
                (project_id,),
            )
        ]

    def user_activity(
        self, project_id: str, user_id: str
    ) -> tuple[list[DailyRow], tuple[int, int]]:
        """Return a user's events counted by kind, treatment, surface and day, read by index.

        Also returns the highest interaction and served row ids stored. (The
        PostgreSQL store itself follows a user's activity by snapshot:
        ``postgres_store``.)
        """
        rows: list[DailyRow] = [
            (int(kind), str(treatment), str(surface), int(day), int(count), int(first), int(last))
            for kind, treatment, surface, day, count, first, last in self._all(
                _USER_ACTIVITY, {"project": project_id, "user": user_id, "sent": SENT}
            )
        ]
        found = self._one(
            "SELECT (SELECT COALESCE(MAX(interaction_id), 0) FROM interactions), "
            "(SELECT COALESCE(MAX(served_id), 0) FROM served)"
        )
        assert found is not None
        return rows, (int(found[0]), int(found[1]))
