"""The docs are true to the tree: every file they name in backticks exists, every test too."""

from __future__ import annotations

import pathlib
import re
from typing import Final

import pytest

from tests._repo import ROOT

DOCS: Final = sorted([ROOT / "README.md", *ROOT.glob("docs/*.md"), *ROOT.glob("bench/*.md")])
_NAMED: Final = re.compile(r"`([\w./-]+\.(?:py|md|proto|json|yaml|mjs|toml|binpb))(?:::(\w+))?`")
# Where a doc's relative names are read from: the root, the package, the doc's own folder.
_BASES: Final = (
    ROOT,
    ROOT / "src" / "auxia_decision",
    ROOT / "src" / "auxia_decision" / "server",
    ROOT / "generated",
    ROOT / "third_party" / "googleapis",
    ROOT / "tests" / "unit",
    ROOT / "tests",
)
# Files that docs name but that are made, not kept (by a run, a build, a consumer), or were.
_MADE: Final = frozenset({"auxia-decision.db", "server/_transport.py"})


def _found(name: str, doc: pathlib.Path) -> pathlib.Path | None:
    for base in (*_BASES, doc.parent):
        candidate = base / name
        if candidate.exists():
            return candidate
    return None


def _named(doc: pathlib.Path) -> list[tuple[str, str | None]]:
    return [(match[1], match[2]) for match in _NAMED.finditer(doc.read_text())]


@pytest.mark.parametrize("doc", DOCS, ids=lambda doc: str(doc.relative_to(ROOT)))
def test_every_file_a_doc_names_exists(doc: pathlib.Path) -> None:
    missing = [
        name
        for name, _ in _named(doc)
        if "/" in name
        and not name.startswith("/")  # a URL's path
        and not name.startswith("../")  # outside the tree (the team's ../shared/api-docs)
        and "..." not in name  # a pattern
        and name not in _MADE
        and _found(name, doc) is None
    ]
    assert not missing


@pytest.mark.parametrize("doc", DOCS, ids=lambda doc: str(doc.relative_to(ROOT)))
def test_every_test_a_doc_names_exists(doc: pathlib.Path) -> None:
    missing = []
    for name, test in _named(doc):
        if test is None:
            continue
        found = _found(name, doc)
        if found is None or f"def {test}(" not in found.read_text():
            missing.append(f"{name}::{test}")
    assert not missing


def test_the_readme_names_every_debian_package_make_test_installs() -> None:
    makefile = (ROOT / "Makefile").read_text()
    found = re.search(r"^DEBIAN_PACKAGES := (.+)$", makefile, re.MULTILINE)
    assert found is not None
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert [name for name in found[1].split() if f"`{name}`" not in readme] == []
