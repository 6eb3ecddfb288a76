"""The reference server as a real process (`auxia-decision serve`) on loopback ports."""

from __future__ import annotations

import os
import pathlib
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from tests._repo import VENV_BIN

_READY = re.compile(
    r"REST on (http://127\.0\.0\.1:\d+)\n.*gRPC on (127\.0\.0\.1:\d+).*\n.*ready", re.S
)


@dataclass
class Served:
    """A running server process and its addresses."""

    process: subprocess.Popen[str]
    rest_url: str
    grpc_target: str
    output: str
    db: pathlib.Path | str
    """The server's database: a file, or ``:memory:``."""

    @property
    def rest_port(self) -> int:
        """Return the REST port."""
        return int(self.rest_url.rsplit(":", 1)[1])

    @property
    def grpc_port(self) -> int:
        """Return the gRPC port."""
        return int(self.grpc_target.rsplit(":", 1)[1])

    def stop(self, signum: int = signal.SIGTERM) -> tuple[int, str]:
        """Signal the server and return its exit status and remaining output."""
        self.process.send_signal(signum)
        try:
            out, err = self.process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            out, err = self.process.communicate()
        return self.process.returncode, out + err


def start(db: pathlib.Path | str, *extra: str, timeout: float = 30.0) -> Served:
    """Start `auxia-decision serve` on free ports and wait until it prints its addresses."""
    process = subprocess.Popen(
        [
            str(VENV_BIN / "auxia-decision"),
            "serve",
            "--rest-port",
            "0",
            "--grpc-port",
            "0",
            "--db",
            str(db),
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    output = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        output += line
        match = _READY.search(output)
        if match:
            return Served(process, match.group(1), match.group(2), output, db)
    process.kill()
    _, err = process.communicate()
    msg = f"the server did not start:\n{output}\n{err}"
    raise AssertionError(msg)


@contextmanager
def served(db: pathlib.Path | str, *extra: str) -> Iterator[Served]:
    """Run a server for the duration of the block, stopping it with SIGTERM."""
    running = start(db, *extra)
    try:
        yield running
    finally:
        if running.process.poll() is None:
            running.stop()
