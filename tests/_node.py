"""Node.js for the tests: ``ts/`` installed from its lockfile, and scripts spoken to by lines.

Node.js 20+ and npm are required: without them the tests that need them
fail with the line to install them, never skip.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
from typing import IO, Any

import pytest

from tests._repo import ROOT, run

TS = ROOT / "ts"
MIN_NODE_MAJOR = 20


def require(tool: str) -> str:
    """Return the path of ``node`` or ``npm``; fail the test with how to install it if missing."""
    path = shutil.which(tool)
    if path is None:
        pytest.fail(
            f"{tool} is not on PATH: these tests need Node.js >= {MIN_NODE_MAJOR} and npm "
            "(Debian: apt-get install nodejs npm)",
            pytrace=False,
        )
    return path


def checked(args: list[str], cwd: pathlib.Path) -> subprocess.CompletedProcess[str]:
    """Run a command; fail the test with its output if it fails."""
    result = run(args, cwd, check=False)
    if result.returncode != 0:
        pytest.fail(
            f"{' '.join(args)} failed ({result.returncode}) in {cwd}:\n"
            f"{result.stdout}\n{result.stderr}",
            pytrace=False,
        )
    return result


def install_ts() -> str:
    """Install ``ts/`` from its lockfile (``npm ci``); return the ``node`` to run its scripts."""
    node = require("node")
    npm = require("npm")
    version = checked([node, "--version"], ROOT).stdout.strip()
    if int(version.lstrip("v").split(".")[0]) < MIN_NODE_MAJOR:
        pytest.fail(f"Node.js {version} is too old: need >= {MIN_NODE_MAJOR}", pytrace=False)
    checked([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], TS)
    return node


PRISM = TS / "prism"


def install_prism() -> list[str]:
    """Install Prism from ``ts/prism``'s lockfile; return the command that runs its CLI.

    Its packages' install scripts are not run (the one it has sends
    installation analytics); the CLI needs none.
    """
    node = require("node")
    npm = require("npm")
    checked([npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"], PRISM)
    return [node, str(PRISM / "node_modules" / "@stoplight" / "prism-cli" / "dist" / "index.js")]


class LineScript:
    """A running script (Node.js, or a JVM) that answers each JSON line with one JSON line.

    Args:
        args: the command (``node``, the script, its arguments).
        stderr: the file the script's standard error goes to.

    """

    def __init__(self, args: list[str], stderr: pathlib.Path) -> None:
        self._stderr = stderr
        with stderr.open("w") as errors:
            self._process = subprocess.Popen(
                args,
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=errors,
                text=True,
                encoding="utf-8",
                env={**os.environ, "NODE_NO_WARNINGS": "1"},
            )

    def _pipes(self) -> tuple[IO[str], IO[str]]:
        assert self._process.stdin is not None
        assert self._process.stdout is not None
        return self._process.stdin, self._process.stdout

    def ask(self, question: Any) -> dict[str, Any]:
        """Send one JSON value as a line; return the JSON line that answers it."""
        stdin, stdout = self._pipes()
        stdin.write(json.dumps(question) + "\n")
        stdin.flush()
        line = stdout.readline()
        if not line:
            self._process.wait(timeout=10)
            pytest.fail(
                f"{self._process.args!r} exited ({self._process.returncode}):\n"
                f"{self._stderr.read_text()}"
            )
        answer: dict[str, Any] = json.loads(line)
        return answer

    def close(self) -> None:
        """End the script (it exits at the end of its input); fail if it failed."""
        stdin, stdout = self._pipes()
        stdin.close()
        self._process.wait(timeout=30)
        stdout.close()
        assert self._process.returncode == 0, self._stderr.read_text()
