"""The fenced code blocks of the documentation, which tests run as written."""

from __future__ import annotations

import pathlib
import re
from typing import Final

_BLOCK: Final = re.compile(r"^```(\w*)\n(.*?)^```$", re.S | re.M)


def code_blocks(path: pathlib.Path, language: str) -> list[str]:
    """Return the fenced code blocks of a markdown file in a language, in order."""
    return [text for lang, text in _BLOCK.findall(path.read_text()) if lang == language]
