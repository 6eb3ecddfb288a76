"""Java for the tests: Debian's JDK and libraries, the jar ``make dist-java`` builds, JUnit 5.

Without Debian's packages the tests that need them fail with the line to
install them (``make system-packages``), never skip.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
from dataclasses import dataclass
from typing import Final

import pytest

from tools.dist_java import CLASSPATH, DEBIAN_PACKAGES, QUICK_JVM

QUICK_RUN: Final = tuple(option.removeprefix("-J") for option in QUICK_JVM)
"""The same options for a test's own short-lived JVM."""
QUICK_ENV: Final = {"JAVA_TOOL_OPTIONS": " ".join(QUICK_RUN)}
"""The same for every JVM of a script run as written (javac's, java's)."""
JUNIT: Final = pathlib.Path("/usr/share/java/junit-platform-console-standalone.jar")
"""Debian's junit5: the JUnit Platform console launcher, with Jupiter."""


@dataclass(frozen=True)
class JavaDist:
    """The jars of ``make dist-java``, built once for the session."""

    jar: pathlib.Path
    sources: pathlib.Path

    @property
    def classpath(self) -> list[pathlib.Path]:
        """Return what a consumer puts on its classpath: the jar, protobuf, its util, Gson."""
        return [self.jar, *CLASSPATH]


def require(tool: str) -> str:
    """Return the path of a JDK tool; fail the test with how to install it if missing."""
    path = shutil.which(tool)
    if path is None:
        pytest.fail(
            f"{tool} is not on PATH: run `make system-packages` (Debian's {DEBIAN_PACKAGES})",
            pytrace=False,
        )
    return path


def joined(paths: list[pathlib.Path]) -> str:
    """Return paths as one classpath."""
    return ":".join(str(path) for path in paths)


def checked(
    args: list[str], cwd: pathlib.Path, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run a command; fail the test with its output unless it exits 0."""
    result = subprocess.run(
        args,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )
    if result.returncode != 0:
        pytest.fail(
            f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}",
            pytrace=False,
        )
    return result


def compile_java(
    sources: list[pathlib.Path], out: pathlib.Path, classpath: list[pathlib.Path]
) -> pathlib.Path:
    """Compile Java sources into ``out`` against a classpath (JUnit included); return ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    checked(
        [
            require("javac"),
            *QUICK_JVM,
            "-d",
            str(out),
            "-cp",
            joined([*classpath, JUNIT]),
            *map(str, sources),
        ],
        out,
    )
    return out
