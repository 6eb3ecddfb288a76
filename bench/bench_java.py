"""Measure AuxiaEmulator, the Java harness: start to a served GetTreatments, and close.

The jar is built as ``make dist-java`` builds it and ``bench/java/BenchEmulator.java``
runs in one JVM: each run times ``AuxiaEmulator.builder().start()`` to the
answer of a GetTreatments that served a treatment, then ``close()``. The
baseline, in this process on the same machine, is the bare server: ``auxia-decision
serve`` started with the same flags, its ready file awaited, the same
GetTreatments sent with httpx, then SIGTERM and wait; its runs alternate with
the JVM's, so that both see the same load. The difference is what the
harness adds.

Targets (the polyglot issue): start to served ≤ 1 s median over 10 starts,
close ≤ 600 ms (twice Node's). Writes ``bench/results/polyglot-java.md``.

Run: ``make bench-java``.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import platform
import signal
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from typing import Final

import httpx

from auxia_decision.server._ready import wait_for_ready_file
from bench._report import publish
from tools.dist_java import CLASSPATH, build, tool
from tools.processes import serve_command

ROOT: Final = pathlib.Path(__file__).resolve().parent.parent
COMMAND: Final = ROOT / ".venv" / "bin" / "auxia-decision"
DEFAULT_OUTPUT: Final = pathlib.Path(__file__).parent / "results" / "polyglot-java.md"
START_TARGET_MS: Final = 1000.0
CLOSE_TARGET_MS: Final = 600.0


def _ms(seconds: float) -> float:
    return seconds * 1000


def _bare_run(run: int, folder: pathlib.Path) -> tuple[float, float]:
    """Start the bare server, wait for its ready file, GetTreatments, stop; return both times."""
    ready = folder / f"ready-{run}.json"
    began = time.perf_counter()
    process = subprocess.Popen(  # noqa: S603 - our own server
        serve_command(":memory:", "--ready-file", str(ready), "--exit-with-parent"),
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    info = wait_for_ready_file(ready, process, 60)
    assert info is not None
    answer = httpx.post(
        f"{info.rest_url}/v1/GetTreatments",
        headers={"x-api-key": info.api_key},
        json={
            "projectId": info.project_id,
            "userId": f"bench-{run}",
            "surfaces": [{"surface": "CART_SCREEN"}],
        },
    )
    assert len(answer.json()["userTreatments"]) == 1, answer.text
    served = time.perf_counter()
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)
    stopped = time.perf_counter()
    assert process.stdin is not None
    process.stdin.close()
    return _ms(served - began), _ms(stopped - served)


@dataclass
class Figures:
    """Milliseconds per run: start to a served GetTreatments, and stop."""

    starts: list[float] = field(default_factory=list)
    stops: list[float] = field(default_factory=list)

    def add(self, start: float, stop: float) -> None:
        """Add one run's figures."""
        self.starts.append(start)
        self.stops.append(stop)


def measure(runs: int, folder: pathlib.Path) -> tuple[Figures, Figures]:
    """Return the bare server's figures and AuxiaEmulator's, their runs alternating."""
    jar, _ = build(folder / "dist")
    classes = folder / "classes"
    classpath = ":".join(str(path) for path in (jar, *CLASSPATH))
    source = pathlib.Path(__file__).parent / "java" / "BenchEmulator.java"
    subprocess.run(  # noqa: S603 - the JDK
        [tool("javac"), "-d", str(classes), "-cp", classpath, str(source)], check=True
    )
    bare, java = Figures(), Figures()
    with subprocess.Popen(  # noqa: S603 - the JDK
        [tool("java"), "-cp", f"{classpath}:{classes}", "BenchEmulator", str(COMMAND)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as harness:
        assert harness.stdin is not None
        assert harness.stdout is not None
        for run in range(runs):
            bare.add(*_bare_run(run, folder))
            harness.stdin.write("run\n")
            harness.stdin.flush()
            start, stop = harness.stdout.readline().split()
            java.add(float(start), float(stop))
        harness.stdin.close()
    assert harness.returncode == 0
    return bare, java


def _verdict(value: float, target: float) -> str:
    return f"≤ {target:.0f} ms {'✓' if value <= target else '✗'}"


def report(runs: int) -> str:
    """Measure the bare server, then the Java harness; return the report."""
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-java-") as temporary:
        bare, java = measure(runs, pathlib.Path(temporary))
    starts, closes = java.starts, java.stops
    bare_starts, bare_stops = bare.starts, bare.stops
    java_version = subprocess.run(  # noqa: S603 - the JDK
        [tool("java"), "-version"], capture_output=True, text=True, check=True
    ).stderr.splitlines()[0]
    start, close = statistics.median(starts), statistics.median(closes)
    bare_start, bare_stop = statistics.median(bare_starts), statistics.median(bare_stops)
    lines = [
        "# AuxiaEmulator (Java): start and close",
        "",
        "Produced by `make bench-java` (`bench/bench_java.py`); medians over "
        f"{runs} starts in one JVM, this machine.",
        "The baseline is the bare server, `auxia-decision serve` with the same flags, "
        "started and stopped from Python (httpx), each run alternating with one of the JVM's.",
        "",
        f"- {java_version}; Python {platform.python_version()} on "
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, load average "
        f"{load:.1f} at the start (other work on the machine slows both alike)",
        "",
        "| what | measured | baseline (bare server) | ratio | target |",
        "| --- | ---: | ---: | ---: | --- |",
        f"| `start()` to a served GetTreatments | {start:.0f} ms | {bare_start:.0f} ms "
        f"| {start / bare_start:.2f}x | {_verdict(start, START_TARGET_MS)} |",
        f"| the same, first start (classes loaded) | {starts[0]:.0f} ms |  |  |  |",
        f"| `close()` | {close:.0f} ms (max {max(closes):.0f}) | {bare_stop:.0f} ms "
        f"| {close / bare_stop:.2f}x | {_verdict(close, CLOSE_TARGET_MS)} |",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    """Run the benchmark and write its report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--output", type=pathlib.Path, default=DEFAULT_OUTPUT)
    arguments = parser.parse_args()
    publish(report(arguments.runs), arguments.output)


if __name__ == "__main__":
    main()
