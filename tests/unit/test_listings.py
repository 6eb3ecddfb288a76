"""The emulator's listings on a SQLite store: what they return, page by page, and how they read.

What ListDecisions and ListInteractions list, every page followed, is what a
plain model of the stored records says, for each filter, page size and bound
on what a call reads in sequence order; each query a listing runs reads by
index, in sequence order (no sort, no scan).
"""

from __future__ import annotations

import asyncio
import functools
import pathlib
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from auxia.decision.emulator.v1 import emulator_pb2
from auxia.decision.model import treatment_interaction_service_pb2 as interactions
from auxia_decision.server._emulator import inspection
from auxia_decision.server._storage import filters
from auxia_decision.server._storage.filters import (
    SERVED_SELECT,
    SQLITE,
    decisions_query,
    interactions_query,
    listed_projects,
    next_project_query,
    reads_by_index,
    served_query,
)
from auxia_decision.server._storage.seam import InteractionFilter, ServedFilter, ServedTreatment
from auxia_decision.server._storage.sqlite_store import SqliteStore
from tests._listings import (
    INTERLEAVED,
    INTERLEAVED_LISTED,
    LISTED_DECISIONS,
    LISTED_INTERACTIONS,
    all_decisions,
    all_interactions,
    decisions_matching,
    fill,
    interactions_matching,
    seek_of_next,
)
from tests._repo import ROOT

PAGE_SIZES = (1, 3, 100)
SCAN_BOUNDS = (1, 7, filters.SCAN_ROWS)
"""Sequence numbers a call steps over in sequence order: a page cut short by each, or none."""


# Each listing: what every page followed returns, and what the model says it should.
_LISTINGS: dict[str, tuple[Callable[..., Awaitable[list[Any]]], Callable[..., list[Any]]]] = {
    "ListDecisions": (all_decisions, decisions_matching),
    "ListInteractions": (all_interactions, interactions_matching),
}


@pytest.fixture(params=[1, 2, inspection._ROWS_AT_ONCE], ids=lambda n: f"{n}-rows-at-once")
def rows_at_once(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    """How many selected rows ListDecisions takes at once (a decision's rows span takes)."""
    monkeypatch.setattr(inspection, "_ROWS_AT_ONCE", request.param)
    return int(request.param)


@pytest.mark.parametrize("newest_first", [False, True], ids=["oldest-first", "newest-first"])
@pytest.mark.parametrize(
    ("listing", "asked", "rows_at_once"),
    [
        ("ListDecisions", asked, rows)
        for asked in LISTED_DECISIONS
        for rows in (1, 2, inspection._ROWS_AT_ONCE)
    ]
    + [("ListInteractions", asked, None) for asked in LISTED_INTERACTIONS],
)
def test_records_are_listed_as_stored_page_by_page(
    tmp_path: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    listing: str,
    asked: dict[str, Any],
    rows_at_once: int | None,
    newest_first: bool,
) -> None:
    if rows_at_once is not None:  # ListDecisions: a decision's rows span its takes
        monkeypatch.setattr(inspection, "_ROWS_AT_ONCE", rows_at_once)
    asked = {**asked, "newest_first": newest_first}
    listed, matching = _LISTINGS[listing]

    async def scenario() -> None:
        store = SqliteStore(str(tmp_path / "store.db"))
        try:
            expected = matching(await fill(store), asked)
            for scan in SCAN_BOUNDS:
                monkeypatch.setattr(filters, "SCAN_ROWS", scan)
                for size in PAGE_SIZES:
                    assert await listed(store, asked, size) == expected, (scan, size)
        finally:
            await store.aclose()

    asyncio.run(scenario())


def test_the_models_filters_leave_something_and_not_everything() -> None:
    # The listings' tests above compare with the model: each filter must select.
    async def stored() -> Any:
        store = SqliteStore(":memory:")
        try:
            return await fill(store)
        finally:
            await store.aclose()

    records = asyncio.run(stored())
    for asked in LISTED_DECISIONS[1:]:
        if asked != {"treatment_tracking_id": "nowhere"}:
            assert 0 < len(decisions_matching(records, asked)) < len(records.decisions), asked
    for asked in LISTED_INTERACTIONS[1:]:
        assert 0 < len(interactions_matching(records, asked)) < len(records.interactions), asked


def _plan(db: pathlib.Path, query: tuple[str, list[object]]) -> str:
    text, values = query
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
        rows = connection.execute(f"EXPLAIN QUERY PLAN {text}", values).fetchall()
    return " | ".join(str(row[-1]) for row in rows)


@pytest.mark.parametrize(
    ("matching", "index"),
    [
        (InteractionFilter(), "INTEGER PRIMARY KEY"),
        (
            InteractionFilter(user_id="u", tracking_id="k", interaction_type=1),
            "interactions_by_tracking",
        ),
        (InteractionFilter(user_id="u", treatment_id="t"), "interactions_by_user"),
        (InteractionFilter(tracking_id="k", treatment_id="t"), "interactions_by_tracking"),
        (InteractionFilter(treatment_id="t", start_micros=1, end_micros=2), "INTEGER PRIMARY KEY"),
        (InteractionFilter(interaction_type=2, start_micros=1), "INTEGER PRIMARY KEY"),
    ],
)
@pytest.mark.parametrize(("newest_first", "bound"), [(False, "rowid>?"), (True, "rowid<?")])
def test_interaction_listings_read_in_sequence_order_by_index_when_one_fits(
    tmp_path: pathlib.Path, matching: InteractionFilter, index: str, newest_first: bool, bound: str
) -> None:
    SqliteStore(str(tmp_path / "store.db")).close()
    query = interactions_query("body", "P", 5, matching, SQLITE, newest_first=newest_first)
    plan = _plan(tmp_path / "store.db", query)
    assert index in plan
    assert bound in plan
    assert "TEMP B-TREE" not in plan


@pytest.mark.parametrize(
    ("matching", "index"),
    [
        (ServedFilter(), "INTEGER PRIMARY KEY"),
        (ServedFilter(user_id="u", response_id="r", surface="s"), "served_by_response"),
        (ServedFilter(user_id="u", treatment_id="t"), "served_by_user"),
        (ServedFilter(response_id="r", surface="s", start_micros=1), "served_by_response"),
        (ServedFilter(treatment_id="t", surface="s"), "INTEGER PRIMARY KEY"),
        (ServedFilter(surface="s", end_micros=9), "INTEGER PRIMARY KEY"),
    ],
)
@pytest.mark.parametrize(("newest_first", "bound"), [(False, "rowid>?"), (True, "rowid<?")])
def test_served_listings_read_in_sequence_order_by_index_when_one_fits(
    tmp_path: pathlib.Path, matching: ServedFilter, index: str, newest_first: bool, bound: str
) -> None:
    SqliteStore(str(tmp_path / "store.db")).close()
    query = served_query(SERVED_SELECT, "P", 5, matching, SQLITE, newest_first=newest_first)
    plan = _plan(tmp_path / "store.db", query)
    assert index in plan
    assert bound in plan
    assert "TEMP B-TREE" not in plan


def test_the_decisions_of_a_listings_rows_are_read_by_a_seek_each(tmp_path: pathlib.Path) -> None:
    SqliteStore(str(tmp_path / "store.db")).close()
    plan = _plan(tmp_path / "store.db", decisions_query("P", ["r1", "r2", "r3"], SQLITE))
    assert plan.startswith(
        "SEARCH served USING INDEX served_by_response (project_id=? AND response_id=?)"
    )
    assert "SCAN" not in plan


@pytest.mark.parametrize("inclusive", [False, True], ids=["above", "at-or-above"])
@pytest.mark.parametrize("table", ["interactions", "served"])
def test_the_projects_of_a_listing_of_every_project_are_found_by_seeks(
    tmp_path: pathlib.Path, table: str, *, inclusive: bool
) -> None:
    SqliteStore(str(tmp_path / "store.db")).close()
    query = next_project_query(table, SQLITE, inclusive=inclusive)
    plan = _plan(tmp_path / "store.db", (query, [""]))
    assert plan.startswith(f"SEARCH {table} USING COVERING INDEX")
    assert "(project_id>?)" in plan  # as SQLite shows a lower bound, either way


@pytest.mark.parametrize("table", ["interactions", "served"])
def test_a_listing_of_a_project_with_no_rows_reads_none(tmp_path: pathlib.Path, table: str) -> None:
    # Read in sequence order for a rare filter, it would step over every other project's rows.
    async def stored() -> None:
        store = SqliteStore(str(tmp_path / "store.db"))
        try:
            await fill(store)
        finally:
            await store.aclose()

    asyncio.run(stored())
    rare = (
        InteractionFilter(treatment_id="t")
        if table == "interactions"
        else ServedFilter(surface="s")
    )
    with sqlite3.connect(f"file:{tmp_path / 'store.db'}?mode=ro", uri=True) as connection:

        def least(value: str, inclusive: bool) -> object:
            query = next_project_query(table, SQLITE, inclusive=inclusive)
            return connection.execute(query, (value,)).fetchone()[0]

        assert listed_projects("P", rare, least) == []  # no rows: sorts before them all
        assert listed_projects("P1x", rare, least) == []
        assert listed_projects("P2", rare, least) == ["P2"]
        assert listed_projects("", rare, least) == [""]  # all at once, in order
        assert listed_projects("", InteractionFilter(user_id="u"), least) == ["P1", "P2"]


@pytest.mark.parametrize(
    "query",
    [
        interactions_query("body", "", 5, InteractionFilter(treatment_id="t"), SQLITE),
        served_query(SERVED_SELECT, "", 5, ServedFilter(surface="s", start_micros=1), SQLITE),
    ],
)
def test_a_listing_of_every_project_without_an_index_to_read_by_reads_once_in_order(
    tmp_path: pathlib.Path, query: tuple[str, list[object]]
) -> None:
    # One read in sequence order, not one per project stepping over the others' rows.
    SqliteStore(str(tmp_path / "store.db")).close()
    assert _plan(tmp_path / "store.db", query).endswith("USING INTEGER PRIMARY KEY (rowid>?)")
    assert "project_id =" not in query[0]
    assert not reads_by_index(InteractionFilter(treatment_id="t", interaction_type=1))
    assert reads_by_index(InteractionFilter(tracking_id="k"))
    assert reads_by_index(ServedFilter(user_id="u"))


@pytest.mark.usefixtures("rows_at_once")
@pytest.mark.parametrize("scan", [1, 2, filters.SCAN_ROWS])
def test_decisions_interleaved_or_sharing_a_response_across_projects_are_listed_once(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, scan: int
) -> None:
    monkeypatch.setattr(filters, "SCAN_ROWS", scan)
    path = tmp_path / "store.db"
    SqliteStore(str(path)).close()
    with sqlite3.connect(path) as connection:
        connection.executemany(
            "INSERT INTO served (served_id, project_id, user_id, response_id, treatment_id, "
            "surface, tracking_id, time_micros) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            INTERLEAVED,
        )

    async def scenario() -> None:
        store = SqliteStore(str(path))
        try:
            for asked, expected in INTERLEAVED_LISTED:
                for size in PAGE_SIZES:
                    listed = await all_decisions(store, asked, size)
                    assert [(d.project_id, d.response_id) for d in listed] == expected, (
                        asked,
                        size,
                    )
                    assert all(len(d.served_treatments) == 2 for d in listed)
                    newest = await all_decisions(store, {**asked, "newest_first": True}, size)
                    assert newest == listed[::-1], (asked, size)
        finally:
            await store.aclose()

    asyncio.run(scenario())


async def _every_page(
    store: SqliteStore,
    listing: Callable[..., Any],
    request_type: type[Any],
    asked: dict[str, Any],
) -> list[Any]:
    """Return every page of a listing, each token followed until one comes back empty."""
    answered: list[Any] = []
    token = ""
    while token or not answered:
        request = request_type(**asked, page_token=token)
        answered.append(await store.read(functools.partial(listing, request=request)))
        token = answered[-1].next_page_token
    return answered


@pytest.mark.parametrize("newest_first", [False, True], ids=["oldest-first", "newest-first"])
@pytest.mark.parametrize(
    ("request_type", "rare"),
    [
        (emulator_pb2.ListInteractionsRequest, {"treatment_id": "nowhere"}),
        (emulator_pb2.ListDecisionsRequest, {"surface": "nowhere"}),
    ],
    ids=["ListInteractions", "ListDecisions"],
)
def test_a_rare_filter_is_read_a_bounded_stretch_a_call_and_ends_with_the_table(
    tmp_path: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
    request_type: type[Any],
    rare: dict[str, Any],
    *,
    newest_first: bool,
) -> None:
    # No index serves the filter: each call steps over at most SCAN_ROWS records and
    # answers an empty page with a token, until the last stretch, which has none.
    monkeypatch.setattr(filters, "SCAN_ROWS", 7)
    listing: Callable[..., Any] = (
        inspection.list_interactions
        if request_type is emulator_pb2.ListInteractionsRequest
        else inspection.list_decisions
    )
    table = "interactions" if request_type is emulator_pb2.ListInteractionsRequest else "served"

    async def pages() -> list[Any]:
        store = SqliteStore(str(tmp_path / "store.db"))
        try:
            await fill(store)
            return await _every_page(
                store, listing, request_type, {**rare, "newest_first": newest_first}
            )
        finally:
            await store.aclose()

    answered = asyncio.run(pages())
    with sqlite3.connect(tmp_path / "store.db") as connection:
        (rows,) = connection.execute(f"SELECT COUNT(*) FROM {table}").fetchone()
    assert rows > 7 * 5
    assert len(answered) == -(-rows // 7)  # ids 1..rows, 7 a call; no empty page after the last
    field = "interactions" if table == "interactions" else "decisions"
    assert not any(getattr(page, field) for page in answered)
    assert all(page.next_page_token for page in answered[:-1])
    assert not answered[-1].next_page_token


@pytest.mark.parametrize("newest_first", [False, True], ids=["oldest-first", "newest-first"])
@pytest.mark.parametrize(
    "request_type",
    [emulator_pb2.ListInteractionsRequest, emulator_pb2.ListDecisionsRequest],
    ids=["ListInteractions", "ListDecisions"],
)
@pytest.mark.parametrize(
    ("own", "where"),
    [(3, "read last"), (3, "read first"), (10, "read last"), (10, "read first")],
)
def test_a_projects_listing_steps_over_no_other_projects_records_past_its_own(
    tmp_path: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
    request_type: type[Any],
    *,
    newest_first: bool,
    own: int,
    where: str,
) -> None:
    # P's records stored together, where the listing reads them last (40 of Q's before them
    # in its order) or first (Q's after them): each call starts at P's next record by the
    # index by project, and a token is given only while P has records left, so every page
    # holds some (7 at most, the bound) and the last has no token.
    monkeypatch.setattr(filters, "SCAN_ROWS", 7)
    logged = request_type is emulator_pb2.ListInteractionsRequest
    field = "interactions" if logged else "decisions"

    async def store_one(store: SqliteStore, project: str, number: int) -> None:
        if logged:
            interaction = interactions.LogTreatmentInteractionRequest(
                project_id=project, user_id="u", treatment_tracking_id=f"k{number}"
            )
            await store.log_interaction(interaction, None)
        else:
            served = [ServedTreatment(f"r{number}", "t", "s", f"t_r{number}", number)]
            await store.record_served(project, "u", served, None)

    async def pages() -> list[Any]:
        store = SqliteStore(str(tmp_path / "store.db"))
        try:
            in_reading_order = ["Q"] * 40 + ["P"] * own
            if where == "read first":
                in_reading_order.reverse()
            stored = in_reading_order[::-1] if newest_first else in_reading_order
            for number, project in enumerate(stored):
                await store_one(store, project, number)
            listing: Callable[..., Any] = (
                inspection.list_interactions if logged else inspection.list_decisions
            )
            asked = {"project_id": "P", "newest_first": newest_first}
            return await _every_page(store, listing, request_type, asked)
        finally:
            await store.aclose()

    answered = asyncio.run(pages())
    assert [len(getattr(page, field)) for page in answered] == [7] * (own // 7) + [own % 7]
    assert not answered[-1].next_page_token


@pytest.mark.parametrize("table", ["interactions", "served"])
@pytest.mark.parametrize(
    ("newest_first", "after", "floor"),
    [(False, 5, 0), (True, 5, 0), (True, 0, 0), (False, 5, 9), (True, 0, 3), (True, 9, 3)],
)
def test_a_projects_next_record_is_found_by_one_seek_of_its_index(
    tmp_path: pathlib.Path, table: str, *, newest_first: bool, after: int, floor: int
) -> None:
    SqliteStore(str(tmp_path / "store.db")).close()
    seek = seek_of_next(table, SQLITE, after, newest_first=newest_first, floor=floor)
    plan = _plan(tmp_path / "store.db", seek)
    assert plan.startswith(f"SEARCH {table} USING COVERING INDEX {table}_by_project (project_id=?")


def test_filters_served_by_an_index_are_not_cut_short(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A user's or a tracking id's rows are few and read by index: one page holds them all.
    monkeypatch.setattr(filters, "SCAN_ROWS", 1)

    async def scenario() -> None:
        store = SqliteStore(str(tmp_path / "store.db"))
        try:
            stored = await fill(store)
            by_user: list[dict[str, Any]] = [
                {"user_id": "u1"},
                {"project_id": "P1", "user_id": "u2"},
            ]
            for asked in by_user:
                request = emulator_pb2.ListInteractionsRequest(**asked, page_size=1000)
                page = await store.read(
                    functools.partial(inspection.list_interactions, request=request)
                )
                assert not page.next_page_token
                listed = [found.interaction for found in page.interactions]
                assert listed == interactions_matching(stored, asked)
        finally:
            await store.aclose()

    asyncio.run(scenario())


@pytest.mark.parametrize("newest_first", [False, True], ids=["oldest-first", "newest-first"])
def test_a_bounded_read_in_sequence_order_is_one_range_of_the_primary_key(
    tmp_path: pathlib.Path, *, newest_first: bool
) -> None:
    # Either way, SQLite shows the range as a lower and an upper bound of the rowid.
    SqliteStore(str(tmp_path / "store.db")).close()
    rare = InteractionFilter(treatment_id="t", start_micros=1)
    query = interactions_query(
        "body",
        "P",
        5,
        rare,
        SQLITE,
        newest_first=newest_first,
        through=9 if not newest_first else 2,
    )
    assert _plan(tmp_path / "store.db", query).endswith(
        "USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)"
    )


def test_the_docs_give_the_bound_of_a_call_the_code_has() -> None:
    bound = f"{filters.SCAN_ROWS:,}"
    for doc in ("emulator.md", "server.md"):
        text = " ".join((ROOT / "docs" / doc).read_text().split())
        assert f"at most {bound}" in text, doc
