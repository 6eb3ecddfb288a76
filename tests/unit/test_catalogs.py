"""A project's compiled catalog: one compile a version, however many calls need it at once."""

from __future__ import annotations

import asyncio
import pathlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from auxia.decision.model import treatment_decision_service_pb2 as decisions
from auxia.decision.model import treatment_management_service_pb2 as management
from auxia_decision import ApiError, Code
from auxia_decision.server._domain import servicer as servicer_module
from auxia_decision.server._domain.catalog import Catalog, compile_catalog
from auxia_decision.server._domain.servicer import AnsweredDecision, ApiServicer
from auxia_decision.server._storage.sqlite_store import SqliteStore
from tests._world import KEY, World
from tests.unit.test_servicer import _insert_request

PROJECT = "PROJECT_ID"


@pytest.fixture
def file_world(tmp_path: pathlib.Path) -> Iterator[World]:
    """A world on a file: its reads run on threads of their own, two at a time."""
    running = World(store=SqliteStore(str(tmp_path / "world.db")))
    yield running
    running.close()


def _spy_compiles(
    monkeypatch: pytest.MonkeyPatch, before: Callable[[int], object] = lambda _n: None
) -> list[Catalog]:
    """Return the list each compile of a catalog adds its catalog to.

    ``before`` is called with the compile's number (from 0), on the store's
    reading thread, before it compiles.
    """
    compiled: list[Catalog] = []
    started = 0

    def compile_counted(*args: Any) -> Catalog:
        nonlocal started
        started += 1
        before(started - 1)
        compiled.append(compile_catalog(*args))
        return compiled[-1]

    monkeypatch.setattr(servicer_module, "compile_catalog", compile_counted)
    return compiled


def _versions(world: World, monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Return the versions the world's store says its projects are at, for the test to set."""
    versions = {PROJECT: 1}
    monkeypatch.setattr(world.store, "version", lambda project_id: versions.get(project_id, 0))
    return versions


@pytest.fixture
def compiled(world: World, monkeypatch: pytest.MonkeyPatch) -> list[Catalog]:
    """The compiles of the world's catalogs (``_spy_compiles``), its project at version 1."""
    _versions(world, monkeypatch)
    return _spy_compiles(monkeypatch)


def test_calls_that_need_a_changed_catalog_at_once_wait_for_one_compile(
    world: World, compiled: list[Catalog]
) -> None:

    async def at_once() -> list[Catalog]:
        return await asyncio.gather(*(world.servicer.catalog(PROJECT) for _ in range(20)))

    catalogs = world.run(at_once())
    assert len(compiled) == 1
    assert all(catalog is compiled[0] for catalog in catalogs)
    assert world.run(world.servicer.catalog(PROJECT)) is compiled[0]  # kept


def test_a_caller_that_gives_up_leaves_the_compile_to_the_others(
    world: World, compiled: list[Catalog]
) -> None:

    async def one_gives_up() -> Catalog:
        first = asyncio.ensure_future(world.servicer.catalog(PROJECT))
        second = asyncio.ensure_future(world.servicer.catalog(PROJECT))
        await asyncio.sleep(0)  # both wait for the compile
        first.cancel()
        return await second

    assert world.run(one_gives_up()) is compiled[0]
    assert len(compiled) == 1


def test_a_failed_compile_fails_its_callers_and_the_next_call_compiles_again(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail_first(number: int) -> None:
        if number == 0:
            raise ApiError(Code.UNAVAILABLE, "the store is busy")

    compiled = _spy_compiles(monkeypatch, fail_first)
    _versions(world, monkeypatch)

    async def at_once() -> list[Catalog | BaseException]:
        calls = (world.servicer.catalog(PROJECT) for _ in range(3))
        return await asyncio.gather(*calls, return_exceptions=True)

    failures = world.run(at_once())
    assert [type(failure) for failure in failures] == [ApiError] * 3
    assert world.run(world.servicer.catalog(PROJECT)) is compiled[0]


def test_a_compile_cancelled_before_it_started_leaves_the_next_call_its_own(
    world: World, compiled: list[Catalog]
) -> None:

    async def cancelled_at_once() -> Catalog:
        caller = asyncio.ensure_future(world.servicer.catalog(PROJECT))
        await asyncio.sleep(0)  # the caller made the compile's task, which has not run yet
        world.servicer._compiling[PROJECT][1].cancel()  # as a loop shutting down does
        with pytest.raises(asyncio.CancelledError):
            await caller
        return await world.servicer.catalog(PROJECT)

    assert world.run(cancelled_at_once()) is compiled[0]
    assert len(compiled) == 1


def test_a_compile_that_ends_after_a_later_version_s_is_not_kept(
    file_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The compile of version 1 is held up until the compile of version 2 is kept:
    # it must not put the older catalog back.
    held = _Held()
    compiled = _spy_compiles(monkeypatch, held.the_first)
    versions = _versions(file_world, monkeypatch)
    servicer = file_world.servicer

    async def older_ends_last() -> tuple[Catalog, Catalog]:
        older = asyncio.ensure_future(servicer.catalog(PROJECT))
        with held:
            await held.started()
            versions[PROJECT] = 2
            newer = await servicer.catalog(PROJECT)
        return await older, newer

    older, newer = file_world.run(older_ends_last())
    assert compiled == [newer, older]
    assert file_world.run(servicer.catalog(PROJECT)) is newer
    assert len(compiled) == 2


def test_a_call_is_explained_with_the_catalog_it_was_decided_with(
    file_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # X's catalog is compiled before a treatment is inserted and kept back until Y's,
    # compiled after, is kept: X was decided without the new treatment, and its
    # verdicts (a near miss's) must not name it.
    held = _Held()
    _spy_compiles(monkeypatch, held.the_first)
    store = file_world.store
    explained: list[set[str]] = []

    def listener(answered: AnsweredDecision) -> None:
        verdicts = servicer.verdicts_then(answered)
        assert verdicts is not None
        explained.append({verdict.treatment_id for verdict in verdicts})

    servicer = ApiServicer(store, clock=lambda: file_world.now, on_decision=listener)
    request = decisions.GetTreatmentsRequest(
        project_id=PROJECT,
        user_id="u",
        surfaces=[decisions.SurfaceRequest(surface="ARTICLE_PAGE")],
    )

    async def scenario() -> str:
        await servicer.load_keys()
        x = asyncio.ensure_future(servicer.invoke("GetTreatments", request, KEY))
        with held:
            await held.started()
            inserted = await servicer.invoke("InsertTreatment", _insert_request(), KEY)
            await servicer.invoke("GetTreatments", request, KEY)  # Y
        await x
        assert isinstance(inserted, management.InsertTreatmentResponse)
        return inserted.treatment.treatment_id

    new = file_world.run(scenario())
    y, x = explained
    assert new in y
    assert new not in x
    assert x == y - {new}


class _Held:
    """Holds the first compile (``the_first``) until its ``with`` block ends."""

    def __init__(self) -> None:
        self._started, self._let_go = threading.Event(), threading.Event()

    def the_first(self, number: int) -> None:
        if number == 0:
            self._started.set()
            self._let_go.wait(30)

    async def started(self) -> None:
        """Wait until the first compile has started (and is held)."""
        for _ in range(3_000):
            if self._started.is_set():
                return
            await asyncio.sleep(0.01)
        msg = "no compile started in 30 s"
        raise AssertionError(msg)

    def __enter__(self) -> None:
        return None

    def __exit__(self, *_: object) -> None:
        self._let_go.set()  # whatever the block did: no thread is left waiting
