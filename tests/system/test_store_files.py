"""The server on store files of other versions: an older one is migrated, a newer one refused."""

from __future__ import annotations

import pathlib
import sqlite3
import subprocess

import pytest

from auxia_decision.server._storage.sqlite_schema import SCHEMA_VERSION, NewerSchemaError
from auxia_decision.server._storage.sqlite_store import SqliteStore
from tools.processes import serve_command


@pytest.mark.parametrize(("fixture", "version", "rows"), [("v0", 0, 58), ("v1", 1, 54)])
def test_the_server_says_it_migrated_and_how_long_it_took(
    request: pytest.FixtureRequest, fixture: str, version: int, rows: int
) -> None:
    old: pathlib.Path = request.getfixturevalue(fixture)
    finished = subprocess.run(
        serve_command(old, "--exit-with-parent"),
        input="",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr
    lines = [line for line in finished.stderr.splitlines() if "migrated" in line]
    assert len(lines) == 1
    assert lines[0].startswith(
        f"auxia-decision: migrated the database {old} from schema version {version} to "
        f"{SCHEMA_VERSION} ({rows} rows) in "
    )
    assert lines[0].endswith(" s")


def test_a_file_of_a_newer_schema_is_refused_in_one_line_and_left_alone(
    tmp_path: pathlib.Path,
) -> None:
    newer = tmp_path / "newer.db"
    with sqlite3.connect(newer) as connection:
        connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    before = newer.read_bytes()
    with pytest.raises(NewerSchemaError):
        SqliteStore(str(newer))
    with pytest.raises(NewerSchemaError):
        SqliteStore(str(newer))
    finished = subprocess.run(
        serve_command(newer),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert finished.returncode == 2
    assert finished.stderr == (
        f"error: the database {newer} cannot be used: it was written by a newer "
        f"auxia-decision (schema version {SCHEMA_VERSION + 1}; this one reads versions up to "
        f"{SCHEMA_VERSION})\n"
    )
    assert newer.read_bytes() == before
