"""Optional parts of the package, installed with extras, and the error when one is missing."""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType
from typing import Final

DISTRIBUTION: Final = "auxia-decision-api"

EXTRAS: Final = {
    "grpc": "gRPC support (the *_pb2_grpc stubs, rich error details)",
    "client": "the REST client (Client, AsyncClient)",
    "server": "the reference server (auxia-decision serve, LocalServer, the auxia_server fixture)",
    "postgres": "serving from PostgreSQL (auxia-decision serve --db postgresql://...)",
}
"""What each extra enables; ``all`` installs every one."""


class MissingExtraError(ImportError):
    """An optional part of the package was used without the extra that installs it.

    Args:
        extra: the extra that installs the part (``server``).
        missing: the top-level module that could not be imported.

    """

    def __init__(self, extra: str, missing: str) -> None:
        self.extra = extra
        super().__init__(
            f"{EXTRAS[extra]} needs the [{extra}] extra, which is not installed "
            f"(no module named {missing!r}): pip install '{DISTRIBUTION}[{extra}]'",
            name=missing,
        )


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent is missing, or made unimportable
        return False


def require(extra: str, *modules: str) -> None:
    """Raise MissingExtraError unless every module that ``extra`` installs can be found.

    Nothing is imported: only the presence of each top-level module is checked.
    """
    for module in modules:
        if not _installed(module):
            raise MissingExtraError(extra, module)


def import_optional(extra: str, module: str) -> ModuleType:
    """Import a module that needs ``extra``; raise MissingExtraError naming it when missing."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        missing = (error.name or module).partition(".")[0]
        if missing == "auxia_decision":
            raise
        raise MissingExtraError(extra, missing) from error
