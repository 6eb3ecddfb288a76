"""The fenced code blocks of the documentation, which tests run as written."""

from __future__ import annotations

import pathlib
import re
from typing import Final

_BLOCK: Final = re.compile(r"^```(\w*)\n(.*?)^```$", re.S | re.M)


def code_blocks(path: pathlib.Path, language: str, *, under: str | None = None) -> list[str]:
    """Return the fenced code blocks of a markdown file in a language, in order.

    ``under`` keeps those of one section: below the ``## `` heading of that
    title, up to the next such heading.
    """
    text = path.read_text()
    if under is not None:
        _, found, rest = text.partition(f"\n## {under}\n")
        assert found, f"{path.name} has no section {under!r}"
        text = rest.split("\n## ", 1)[0]
    return [block for lang, block in _BLOCK.findall(text) if lang == language]
