"""A project's compiled catalog: one compile a version, however many calls need it at once."""

from __future__ import annotations

import asyncio
import pathlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from auxia_decision import ApiError, Code
from auxia_decision.server._domain import servicer as servicer_module
from auxia_decision.server._domain.catalog import Catalog, compile_catalog
from auxia_decision.server._storage.sqlite_store import SqliteStore
from tests._world import World

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


def test_calls_that_need_a_changed_catalog_at_once_wait_for_one_compile(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    compiled = _spy_compiles(monkeypatch)
    _versions(world, monkeypatch)

    async def at_once() -> list[Catalog]:
        return await asyncio.gather(*(world.servicer.catalog(PROJECT) for _ in range(20)))

    catalogs = world.run(at_once())
    assert len(compiled) == 1
    assert all(catalog is compiled[0] for catalog in catalogs)
    assert world.run(world.servicer.catalog(PROJECT)) is compiled[0]  # kept


def test_a_caller_that_gives_up_leaves_the_compile_to_the_others(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    compiled = _spy_compiles(monkeypatch)
    _versions(world, monkeypatch)

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


def test_a_compile_that_ends_after_a_later_version_s_is_not_kept(
    file_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The compile of version 1 is held up until the compile of version 2 is kept:
    # it must not put the older catalog back.
    started, let_go = threading.Event(), threading.Event()

    def hold_the_first(number: int) -> None:
        if number == 0:
            started.set()
            let_go.wait(30)

    compiled = _spy_compiles(monkeypatch, hold_the_first)
    versions = _versions(file_world, monkeypatch)
    servicer = file_world.servicer

    async def older_ends_last() -> tuple[Catalog, Catalog]:
        older = asyncio.ensure_future(servicer.catalog(PROJECT))
        while not started.is_set():  # its compile has started
            await asyncio.sleep(0.01)
        versions[PROJECT] = 2
        newer = await servicer.catalog(PROJECT)
        let_go.set()
        return await older, newer

    older, newer = file_world.run(older_ends_last())
    assert compiled == [newer, older]
    assert file_world.run(servicer.catalog(PROJECT)) is newer
    assert len(compiled) == 2
