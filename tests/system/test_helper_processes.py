"""The writer and reader processes start side by side, at start and when a store starts afresh."""

from __future__ import annotations

import asyncio
import os
import pathlib
import shutil
import sqlite3

import pytest

from auxia_decision.server._storage.sqlite_store import SqliteStore
from tests._processes import exists
from tools.processes import process_tree


def test_both_start_and_start_again_with_a_new_file(path: str) -> None:
    async def scenario() -> tuple[list[int | None], list[int | None]]:
        store = SqliteStore(path)
        try:
            await store.start_helpers()
            before = [store.writer_pid, store.reader_pid]
            await store.replace(None, lambda repository: repository.delete_everything())
            return before, [store.writer_pid, store.reader_pid]
        finally:
            store.close()

    before, after = asyncio.run(scenario())
    assert None not in before
    assert None not in after
    assert set(before).isdisjoint(after)
    assert not any(exists(pid) for pid in before if pid is not None)


def test_helpers_that_cannot_open_the_file_fail_the_start_and_leave_no_process(
    tmp_path: pathlib.Path,
) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    before = process_tree(os.getpid())  # a session's servers (PostgreSQL) may be running

    async def scenario() -> None:
        store = SqliteStore(str(folder / "store.db"))
        try:
            await store.run(lambda repository: repository.project_ids())
            shutil.rmtree(folder)  # the store's thread keeps its file open; the helpers cannot
            await store.start_helpers()
        finally:
            store.close()

    with pytest.raises(sqlite3.OperationalError, match="unable to open database file"):
        asyncio.run(scenario())
    assert process_tree(os.getpid()) == before


@pytest.mark.parametrize("starting", ["start", "whole Reset"])
def test_helpers_still_starting_when_the_store_closes_leave_no_process(
    path: str, starting: str
) -> None:
    # A shutdown during a start, or during a whole Reset's new file: the loop ends, and
    # what was still starting is cancelled with it, as a server's shutdown does.
    before = process_tree(os.getpid())

    async def scenario() -> None:
        store = SqliteStore(path)
        if starting == "whole Reset":
            await store.start_helpers()
        work = (
            store.start_helpers()
            if starting == "start"
            else store.replace(None, lambda repository: repository.delete_everything())
        )
        under_way = asyncio.ensure_future(work)
        await asyncio.sleep(0.01)  # processes spawned, their handshakes under way
        store.close()
        assert not under_way.done()  # left to the loop's end, which cancels it

    asyncio.run(scenario())
    assert process_tree(os.getpid()) == before
