"""The processes of a running server, read from /proc (Linux)."""

from __future__ import annotations

import contextlib
import os
import pathlib
import sys
import time

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


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


def tree_memory_mib(pid: int, field: str = "VmRSS") -> float:
    """Return a memory figure of ``/proc/PID/status`` summed over a process tree, in MiB.

    ``VmRSS`` is what is resident now, ``VmHWM`` the peak.
    """
    total = 0
    for member in process_tree(pid):
        with contextlib.suppress(OSError):
            for line in (pathlib.Path("/proc") / str(member) / "status").read_text().splitlines():
                if line.startswith(f"{field}:"):
                    total += int(line.split()[1])
    return total / 1024


def serve_command(db: str | os.PathLike[str], *extra: str) -> list[str]:
    """Return the command line of ``auxia-decision serve`` on free ports with this database.

    The executable is the one installed beside this interpreter.
    """
    executable = pathlib.Path(sys.executable).parent / "auxia-decision"
    return [
        str(executable),
        "serve",
        "--rest-port",
        "0",
        "--grpc-port",
        "0",
        "--db",
        os.fspath(db),
        *extra,
    ]


def running(pid: int) -> bool:
    """Whether a process runs: it exists and has not exited (a zombie waits only to be reaped)."""
    try:
        status = pathlib.Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


def gone_within(pids: list[int], seconds: float) -> bool:
    """Wait until none of the processes runs; return False if some still run after ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not any(running(pid) for pid in pids):
            return True
        time.sleep(0.02)
    return False


def tree_cpu_seconds(pid: int) -> float:
    """Return the CPU time (user + system) a process and its children have used so far."""
    total = 0
    for member in process_tree(pid):
        with contextlib.suppress(OSError):
            fields = pathlib.Path(f"/proc/{member}/stat").read_text().rpartition(")")[2]
            utime, stime = fields.split()[11:13]
            total += int(utime) + int(stime)
    return total / _CLOCK_TICKS
