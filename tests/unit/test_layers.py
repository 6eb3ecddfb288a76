"""The layers of the package, read from the imports of its modules.

The library imports nothing of the server nor anything an extra installs at
import time; the server's rules reach storage only through the seam of
``_storage`` and know no SQL; nothing imports the CLI. The entry points (the
command line, ``python -m``, the pytest plugin) sit on top of both; the pytest
plugin imports the server only when a test asks for it.
"""

from __future__ import annotations

import ast
import pathlib
from typing import Final

import pytest

from tests._repo import ROOT

PACKAGE: Final = ROOT / "src" / "auxia_decision"
# The entry points, on top of the library and the server.
ENTRY_POINTS: Final = ("_cli.py", "__main__.py", "pytest_plugin.py")
# Everything but the server and the entry points.
LIBRARY: Final = sorted(
    path
    for path in PACKAGE.rglob("*.py")
    if "server" not in path.relative_to(PACKAGE).parts and path.name not in ENTRY_POINTS
)
SERVER: Final = sorted((PACKAGE / "server").rglob("*.py"))
# The server's rules: what they may know of storage is the seam, _storage.
RULES: Final = (
    "_domain/servicer",
    "_domain/treatments",
    "_domain/data_fields",
    "_domain/seed",
    "_domain/auth",
    "_storage/seam",
    "_emulator/admin_api",
    "_emulator/inspection",
    "_emulator/faults",
)
SQL_MODULES: Final = {
    "sqlite3",
    "auxia_decision.server._storage.sqlite_repository",
    "auxia_decision.server._storage.sqlite_store",
    "auxia_decision.server._storage.database_thread",
    "auxia_decision.server._storage.writer_process",
}


def _imports(path: pathlib.Path, *, top_level_only: bool) -> set[str]:
    """Return the modules a file imports (at its top level only, or anywhere)."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _name(path: pathlib.Path) -> str:
    return str(path.relative_to(PACKAGE))


@pytest.mark.parametrize("path", LIBRARY, ids=_name)
def test_the_library_never_imports_the_server(path: pathlib.Path) -> None:
    imported = _imports(path, top_level_only=False)
    assert not {name for name in imported if name.startswith("auxia_decision.server")}


@pytest.mark.parametrize("path", [p for p in LIBRARY if p.name != "_client.py"], ids=_name)
def test_the_library_imports_no_extra_at_import_time(path: pathlib.Path) -> None:
    imported = {name.partition(".")[0] for name in _imports(path, top_level_only=True)}
    assert not imported & {"httpx", "grpc", "uvicorn", "orjson", "uvloop", "httptools"}


@pytest.mark.parametrize("module", RULES)
def test_the_rules_of_the_server_know_no_sql(module: str) -> None:
    imported = _imports(PACKAGE / "server" / f"{module}.py", top_level_only=False)
    assert not imported & SQL_MODULES


@pytest.mark.parametrize("path", [*LIBRARY, *SERVER], ids=_name)
def test_nothing_imports_the_command_line(path: pathlib.Path) -> None:
    assert "auxia_decision._cli" not in _imports(path, top_level_only=False)


def test_the_pytest_plugin_loads_neither_the_server_nor_an_extra() -> None:
    # pytest loads it in every run of every project that installs the package.
    imported = _imports(PACKAGE / "pytest_plugin.py", top_level_only=True)
    assert not {name for name in imported if name.startswith("auxia_decision.server")}
    assert not {name.partition(".")[0] for name in imported} & {
        "httpx",
        "grpc",
        "uvicorn",
        "orjson",
        "uvloop",
        "httptools",
    }
