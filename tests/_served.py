"""The reference server as a real process (`auxia-decision serve`) on loopback ports."""

from __future__ import annotations

import atexit
import os
import pathlib
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from auxia_decision.server._ready import wait_for_ready_file
from tools.processes import serve_command

_FOLDERS = pathlib.Path(tempfile.mkdtemp(prefix="served-"))
"""Where each server's folder is: removed with what is in it when this process exits, so that
a server a test killed, or that stopped by itself, leaves nothing behind."""
atexit.register(shutil.rmtree, _FOLDERS, ignore_errors=True)


@dataclass
class Served:
    """A running server process and its addresses."""

    process: subprocess.Popen[str]
    rest_url: str
    grpc_target: str
    output: str
    db: pathlib.Path | str
    """The server's database: a file, or ``:memory:``."""
    folder: pathlib.Path
    """Where its ready file is; removed by ``stop``."""

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
        shutil.rmtree(self.folder, ignore_errors=True)
        return self.process.returncode, out + err


def start(
    db: pathlib.Path | str,
    *extra: str,
    ready_file: pathlib.Path | None = None,
    timeout: float = 30.0,
) -> Served:
    """Start `auxia-decision serve` on free ports; return once its ready file is written.

    ``output`` is what it printed up to then: the banner. The ready file is
    ``ready_file``, or one in a folder of its own.
    """
    folder = pathlib.Path(tempfile.mkdtemp(dir=_FOLDERS))
    ready_file = ready_file or folder / "ready.json"
    process = subprocess.Popen(
        serve_command(db, "--ready-file", str(ready_file), *extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    try:
        info = wait_for_ready_file(ready_file, process, timeout)
    except TimeoutError:
        process.kill()
        info = None
    if info is None:
        out, err = process.communicate()
        shutil.rmtree(folder, ignore_errors=True)
        msg = f"the server did not start:\n{out}\n{err}"
        raise AssertionError(msg)
    output = ""
    while "auxia-decision: ready" not in output:
        output += process.stdout.readline()
    return Served(process, info.rest_url, info.grpc_target, output, db, folder)


@contextmanager
def served(db: pathlib.Path | str, *extra: str) -> Iterator[Served]:
    """Run a server for the duration of the block, stopping it with SIGTERM."""
    running = start(db, *extra)
    try:
        yield running
    finally:
        if running.process.poll() is None:
            running.stop()
