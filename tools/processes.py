"""The processes of a running server, read from /proc (Linux)."""

from __future__ import annotations

import contextlib
import pathlib


def process_tree(pid: int) -> list[int]:
    """Return a process and its children (such as the server's writer process)."""
    children = []
    for entry in pathlib.Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                # After the command name: the state, then the parent's pid.
                fields = (entry / "stat").read_text().rpartition(")")[2].split()
                if int(fields[1]) == pid:
                    children.append(int(entry.name))
    return [pid, *children]
