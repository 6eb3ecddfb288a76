"""Copies of this source tree, for tests that run the toolchain on a modified schema."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess

ROOT = pathlib.Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"


def tracked_files() -> list[str]:
    """Return the tree's files that git tracks or would track (not ignored)."""
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [line for line in out.splitlines() if (ROOT / line).is_file()]


def copy_tree(destination: pathlib.Path) -> pathlib.Path:
    """Copy the source tree (not .git) to destination, sharing this checkout's venv."""
    for name in tracked_files():
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    (destination / ".venv").symlink_to(ROOT / ".venv")
    # The shared venv was installed for this tree's pyproject.toml: tell make
    # so, or it would try to rebuild the venv inside the copy.
    stamp = (ROOT / ".venv" / ".installed").stat()
    os.utime(destination / "pyproject.toml", ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    return destination


def run(
    args: list[str], cwd: pathlib.Path, *, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run a command with the venv first on PATH and return its captured output."""
    env = {**os.environ, "PATH": f"{VENV_BIN}:{os.environ['PATH']}"}
    return subprocess.run(args, cwd=cwd, env=env, check=check, capture_output=True, text=True)
