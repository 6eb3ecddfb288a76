"""A project's records deleted in turns below each table's last row (a Reset beside others)."""

from __future__ import annotations

import asyncio
import sqlite3

from auxia_decision.server._storage.seam import ServedTreatment
from auxia_decision.server._storage.sqlite_repository import SqliteRepository
from auxia_decision.server._storage.sqlite_store import SqliteStore
from tests._stored import log_row

TABLES = (("interactions", "interaction_id"), ("served", "served_id"))


def _rows(connection: sqlite3.Connection) -> list[list[tuple[int, str]]]:
    return [
        connection.execute(f"SELECT {key}, project_id FROM {table} ORDER BY {key}").fetchall()
        for table, key in TABLES
    ]


def test_turns_delete_the_project_s_records_below_each_table_s_last_row() -> None:
    async def scenario() -> tuple[list[int], list[list[tuple[int, str]]]]:
        store = SqliteStore(":memory:")
        try:
            for project in "ABA":  # A's last interaction ends the table
                await asyncio.gather(*[log_row(store, project, b"x") for _ in range(5)])
            served = [ServedTreatment(f"r{n}", "T", "S", f"t{n}", n) for n in range(3)]
            await store.record_served("B", "u", served[:1], None)
            await store.record_served("A", "u", served, None)  # and its last served row
            ends = await store.executor.run(
                lambda connection: SqliteRepository(connection, set()).record_ends()
            )
            assert ends == (15, 4)
            counts = []
            while True:
                counts.append(
                    await store.executor.run(
                        lambda connection: SqliteRepository(connection, set()).delete_records(
                            "A", ends, 2
                        )
                    )
                )
                if not counts[-1]:
                    break
            return counts, await store.executor.run(_rows)
        finally:
            store.close()

    counts, (interactions, served) = asyncio.run(scenario())
    # 9 interactions of A below the last row, then 2 served treatments: turns of 2 at most.
    assert counts == [2, 2, 2, 2, 1, 2, 0]
    assert interactions == [*((n, "B") for n in range(6, 11)), (15, "A")]
    assert served == [(1, "B"), (4, "A")]
