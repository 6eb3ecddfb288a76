"""Where a benchmark's report goes: printed, and written to its file under results/."""

from __future__ import annotations

import pathlib


def publish(text: str, output: pathlib.Path) -> None:
    """Print a report and write it to ``output``, creating its folder if needed."""
    print(text)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
