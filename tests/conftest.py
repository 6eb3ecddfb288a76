"""Fixtures shared by the unit and the system tests.

``tests/unit`` runs in-process (its fixtures: ``tests/unit/conftest.py``);
``tests/system`` starts server processes, runs the toolchain and installs the
wheel (``tests/system/conftest.py``). Helpers that are not fixtures live
beside this file: ``_fixtures`` (the documentation's samples), ``_served``
(a server process), ``_world`` (an in-process servicer with a settable clock),
``_repo`` (copies of this tree), ``_stored`` (the rows a store's file holds),
``_java`` (the JDK and JUnit for the Java jar, which the ``java_dist`` fixture
builds), ``_http_server`` (a scripted HTTP server for the clients' tests),
``tools.loadgen`` (load) and ``tools.postgres`` (a throwaway PostgreSQL server).
"""

from __future__ import annotations

import pathlib
import shutil
from typing import Final

import pytest

from tests._repo import ROOT

V0: Final = ROOT / "tests" / "fixtures" / "stores" / "v0.db"
"""A small store written by the server of schema version 0 (before the activity columns)."""


V1: Final = ROOT / "tests" / "fixtures" / "stores" / "v1.db"
"""A small store written by the server of schema version 1 (before the listings' indexes)."""


V2: Final = ROOT / "tests" / "fixtures" / "stores" / "v2.db"
"""A small store written by the server of schema version 2 (before the indexes by project)."""


V3: Final = ROOT / "tests" / "fixtures" / "stores" / "v3.db"
"""A small store written by the server of schema version 3 (before the records' floors)."""


@pytest.fixture
def v0(tmp_path: pathlib.Path) -> pathlib.Path:
    """A copy of the schema-0 store, for a test to open (and migrate)."""
    copy = tmp_path / "v0.db"
    shutil.copy(V0, copy)
    return copy


@pytest.fixture
def v1(tmp_path: pathlib.Path) -> pathlib.Path:
    """A copy of the schema-1 store, for a test to open (and migrate)."""
    copy = tmp_path / "v1.db"
    shutil.copy(V1, copy)
    return copy


@pytest.fixture
def v2(tmp_path: pathlib.Path) -> pathlib.Path:
    """A copy of the schema-2 store, for a test to open (and migrate)."""
    copy = tmp_path / "v2.db"
    shutil.copy(V2, copy)
    return copy


@pytest.fixture
def v3(tmp_path: pathlib.Path) -> pathlib.Path:
    """A copy of the schema-3 store, for a test to open (and migrate)."""
    copy = tmp_path / "v3.db"
    shutil.copy(V3, copy)
    return copy
