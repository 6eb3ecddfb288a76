"""Measure what the local server costs a consuming test suite: start, reset, fixture overhead.

- start: ``LocalServer().start()`` in this process (imports already done), the
  first start in a fresh interpreter (imports included), and as a subprocess;
- reset: one ``reset()`` after a test's worth of calls (ten interactions and
  a decision), over the admin API as the fixture makes it;
- a suite of 200 tests: 200 empty tests run by pytest in a subprocess, once
  asking for the ``auxia_server`` fixture and once not; the difference is all
  that the emulator costs the suite: imports, the session's server started and
  stopped, and a reset before every test.

Targets (the emulator issue): start in-process < 300 ms, reset < 100 ms, and
< 10 s of overhead for 200 tests. Writes ``bench/results/emulator.md``.

Run: ``make bench-emulator``.
"""

from __future__ import annotations

import argparse
import pathlib
import platform
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from typing import Final

from auxia.decision.model import treatment_decision_service_pb2 as decisions
from auxia.decision.model import treatment_interaction_service_pb2 as interactions
from auxia_decision.server import LocalServer
from bench._report import publish

DEFAULT_OUTPUT: Final = pathlib.Path(__file__).parent / "results" / "emulator.md"
Interaction = interactions.LogTreatmentInteractionRequest

_SUITE_TEST: Final = """
def test_{index}(server):
    pass
"""
_WITH_FIXTURE: Final = """
import pytest

@pytest.fixture
def server(auxia_server):
    return auxia_server
"""
_WITHOUT: Final = """
import pytest

@pytest.fixture
def server():
    return None
"""
_FIRST_START: Final = """
import time
started = time.perf_counter()
from auxia_decision.server import LocalServer
server = LocalServer().start()
print((time.perf_counter() - started) * 1000)
server.stop()
"""


def _ms(seconds: float) -> float:
    return seconds * 1000


def start_times(runs: int, *, in_process: bool) -> list[float]:
    """Return the milliseconds each of ``runs`` starts took (stops not counted)."""
    times = []
    for _ in range(runs):
        server = LocalServer(in_process=in_process)
        started = time.perf_counter()
        server.start()
        times.append(_ms(time.perf_counter() - started))
        server.stop()
    return times


def first_start_times(runs: int) -> list[float]:
    """Return the milliseconds of a first start in fresh interpreters, imports included."""
    return [
        float(
            subprocess.run(  # noqa: S603 - this interpreter, our script
                [sys.executable, "-c", _FIRST_START],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
        )
        for _ in range(runs)
    ]


def reset_times(runs: int) -> list[float]:
    """Return the milliseconds of each reset after a test's worth of calls."""
    times = []
    with LocalServer() as server, server.client() as client:
        for run in range(runs):
            for index in range(10):
                client.log_treatment_interaction(
                    Interaction(
                        project_id="PROJECT_ID",
                        user_id=f"user-{run}",
                        treatment_tracking_id=f"T{index}",
                        interaction_type=Interaction.VIEWED,
                        interaction_time_micros=1_700_000_000_000_000 + index,
                    )
                )
            client.get_treatments(
                decisions.GetTreatmentsRequest(
                    project_id="PROJECT_ID",
                    user_id=f"user-{run}",
                    surfaces=[decisions.SurfaceRequest(surface="CART_SCREEN")],
                )
            )
            started = time.perf_counter()
            server.reset()
            times.append(_ms(time.perf_counter() - started))
    return times


def suite_seconds(folder: pathlib.Path, tests: int, conftest: str) -> float:
    """Return the wall time of pytest running ``tests`` small tests with a conftest."""
    folder.mkdir()
    (folder / "conftest.py").write_text(textwrap.dedent(conftest))
    for index in range(tests):
        (folder / f"test_{index:03}.py").write_text(_SUITE_TEST.format(index=index))
    started = time.perf_counter()
    subprocess.run(  # noqa: S603 - this interpreter's pytest
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(folder)],
        cwd=folder,
        capture_output=True,
        check=True,
    )
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    """Measure, print the report and write it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=11, help="starts of each kind")
    parser.add_argument("--resets", type=int, default=200)
    parser.add_argument("--tests", type=int, default=200, help="tests in the suite")
    parser.add_argument("--suite-rounds", type=int, default=3)
    parser.add_argument("--output", type=pathlib.Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)

    LocalServer().start().stop()  # imports and first-use costs, out of the in-process figures
    in_process = start_times(args.runs, in_process=True)
    first = first_start_times(max(3, args.runs // 2))
    as_subprocess = start_times(max(3, args.runs // 2), in_process=False)
    resets = reset_times(args.resets)
    suites: dict[str, list[float]] = {"fixture": [], "without": []}
    with tempfile.TemporaryDirectory() as scratch:
        for round_number in range(args.suite_rounds):
            for name, conftest in (("fixture", _WITH_FIXTURE), ("without", _WITHOUT)):
                folder = pathlib.Path(scratch) / f"{name}-{round_number}"
                suites[name].append(suite_seconds(folder, args.tests, conftest))
    overheads = [
        with_fixture - without
        for with_fixture, without in zip(suites["fixture"], suites["without"], strict=True)
    ]
    median = statistics.median
    rows = [
        ("start in-process (imports done)", f"{median(in_process):.0f} ms", "< 300 ms"),
        ("first start in a fresh interpreter, imports included", f"{median(first):.0f} ms", ""),
        ("start as a subprocess", f"{median(as_subprocess):.0f} ms", ""),
        (
            "reset after ten interactions and a decision",
            f"{median(resets):.1f} ms (p99 {sorted(resets)[int(len(resets) * 0.99) - 1]:.1f})",
            "< 100 ms",
        ),
        (
            f"suite of {args.tests} empty tests asking for `auxia_server`",
            f"{median(suites['fixture']):.2f} s",
            "",
        ),
        (
            f"the same {args.tests} tests without it",
            f"{median(suites['without']):.2f} s",
            "",
        ),
        (
            f"emulator overhead for {args.tests} tests: start, stop, {args.tests} resets "
            "(the difference, each round)",
            f"{median(overheads):.2f} s ({', '.join(f'{o:.2f}' for o in overheads)})",
            "< 10 s",
        ),
    ]
    lines = [
        "# The local server in a test suite",
        "",
        "Produced by `make bench-emulator` (`bench/bench_emulator.py`); medians, this machine.",
        f"Starts: {args.runs} in this process, {max(3, args.runs // 2)} in fresh interpreters "
        f"and as subprocesses; {args.resets} resets; {args.suite_rounds} rounds of each suite, "
        "run by pytest in a subprocess.",
        "",
        f"- Python {platform.python_version()} ({platform.python_implementation()}) on "
        f"{platform.system()} {platform.machine()}",
        "",
        "| what | measured | target |",
        "| --- | ---: | --- |",
        *(f"| {what} | {measured} | {target} |" for what, measured, target in rows),
    ]
    publish("\n".join(lines) + "\n", args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
