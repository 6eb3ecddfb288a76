"""The layers of the package, read from the imports of its modules.

The library imports nothing of the server nor anything an extra installs at
import time; nothing imports the CLI; the pytest plugin imports the server
only when a test asks for it.

Inside the server, each folder is a room with the rooms it may import
(``MAY_IMPORT``): storage and the transports stand on the library alone, the
domain reaches storage only through its seam, the emulator plugs into the
domain and the transports through the interfaces they own, the validation
proxy stands on the library and the transports' runtime, and the modules
at the top (the assembly, ``LocalServer``, the command's run) put them
together. Every module of the server is in a room.
"""

from __future__ import annotations

import ast
import pathlib
from typing import Final

import pytest

from tests._repo import ROOT

PACKAGE: Final = ROOT / "src" / "auxia_decision"
SERVER: Final = PACKAGE / "server"
# The entry points, on top of the library and the server.
ENTRY_POINTS: Final = (
    "_cli.py",
    "_cli_admin.py",
    "_cli_proxy.py",
    "__main__.py",
    "pytest_plugin.py",
)
# Everything but the server and the entry points.
LIBRARY: Final = sorted(
    path
    for path in PACKAGE.rglob("*.py")
    if "server" not in path.relative_to(PACKAGE).parts and path.name not in ENTRY_POINTS
)
SERVER_MODULES: Final = sorted(SERVER.rglob("*.py"))
EXTRAS: Final = frozenset({"httpx", "grpc", "uvicorn", "orjson", "uvloop", "httptools"})

ROOMS: Final = ("_domain", "_storage", "_transport", "_emulator", "_proxy")
"""The server's folders; its top-level modules assemble them."""
MAY_IMPORT: Final[dict[str, frozenset[str]]] = {
    "_storage": frozenset({"_storage"}),
    "_transport": frozenset({"_transport"}),
    "_domain": frozenset({"_domain", "_storage.seam"}),
    "_emulator": frozenset({"_emulator", "_domain", "_storage.seam", "_transport.bindings"}),
    "_proxy": frozenset({"_proxy", "_transport.runtime", "_transport.http", "_transport.asgi"}),
}
"""What of the server each room may import: rooms, or single modules of a room."""
KNOWS_NO_SQL: Final = ("_domain", "_transport", "_emulator", "_proxy")


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


def _room(path: pathlib.Path) -> str:
    """Return the room of a server module: its folder, or "" for the top-level modules."""
    parts = path.relative_to(SERVER).parts
    return parts[0] if len(parts) > 1 else ""


def _server_imports(path: pathlib.Path) -> set[str]:
    """Return what of the server a module imports, below ``auxia_decision.server.``."""
    prefix = "auxia_decision.server."
    return {
        name.removeprefix(prefix)
        for name in _imports(path, top_level_only=False)
        if name.startswith(prefix)
    }


def _allowed(imported: str, allowed: frozenset[str]) -> bool:
    return any(imported == entry or imported.startswith(f"{entry}.") for entry in allowed)


@pytest.mark.parametrize("path", LIBRARY, ids=_name)
def test_the_library_never_imports_the_server(path: pathlib.Path) -> None:
    imported = _imports(path, top_level_only=False)
    assert not {name for name in imported if name.startswith("auxia_decision.server")}


@pytest.mark.parametrize("path", [p for p in LIBRARY if p.name != "_client.py"], ids=_name)
def test_the_library_imports_no_extra_at_import_time(path: pathlib.Path) -> None:
    imported = {name.partition(".")[0] for name in _imports(path, top_level_only=True)}
    assert not imported & EXTRAS


def test_every_module_of_the_server_is_in_a_room_or_on_top() -> None:
    rooms = {_room(path) for path in SERVER_MODULES}
    assert rooms == {"", *ROOMS}
    assert set(MAY_IMPORT) == set(ROOMS)
    for room in ROOMS:
        assert (SERVER / room / "__init__.py").is_file()


@pytest.mark.parametrize("path", [p for p in SERVER_MODULES if _room(p) in MAY_IMPORT], ids=_name)
def test_each_room_imports_only_what_it_may(path: pathlib.Path) -> None:
    allowed = MAY_IMPORT[_room(path)]
    assert not {name for name in _server_imports(path) if not _allowed(name, allowed)}


@pytest.mark.parametrize("path", [p for p in SERVER_MODULES if _room(p) in KNOWS_NO_SQL], ids=_name)
def test_the_domain_the_transports_and_the_emulator_know_no_sql(path: pathlib.Path) -> None:
    assert "sqlite3" not in _imports(path, top_level_only=False)


@pytest.mark.parametrize("path", [*LIBRARY, *SERVER_MODULES], ids=_name)
def test_nothing_imports_the_command_line(path: pathlib.Path) -> None:
    assert "auxia_decision._cli" not in _imports(path, top_level_only=False)


def test_the_pytest_plugin_loads_neither_the_server_nor_an_extra() -> None:
    # pytest loads it in every run of every project that installs the package.
    imported = _imports(PACKAGE / "pytest_plugin.py", top_level_only=True)
    assert not {name for name in imported if name.startswith("auxia_decision.server")}
    assert not {name.partition(".")[0] for name in imported} & EXTRAS
