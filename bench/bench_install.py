"""Measure what each way of installing the package adds to an empty environment.

The wheel built from this checkout is installed into fresh virtual
environments (core, each extra, ``[all]``) with the locked dependency
versions; for each the report gives the distributions installed, their size on
disk and how long ``import auxia_decision`` takes (``-X importtime``, median
of several fresh interpreters). Writes ``bench/results/install.md``.

Run: ``make bench-install``.
"""

from __future__ import annotations

import argparse
import pathlib
import platform
import re
import statistics
import subprocess
import sys
import tempfile
from typing import Final

from bench._report import publish
from tools.installs import (
    FLAVOURS,
    Install,
    build_wheel,
    build_wheel_at,
    install,
    locked_constraints,
)

DEFAULT_OUTPUT: Final = pathlib.Path(__file__).parent / "results" / "install.md"
_TOTAL_IMPORT: Final = re.compile(r"import time:\s+\d+ \|\s+(\d+) \| auxia_decision$", re.M)


def import_microseconds(installed: Install, runs: int) -> float:
    """Return the median cumulative time of ``import auxia_decision`` in fresh interpreters."""
    times = []
    for _ in range(runs):
        result = subprocess.run(  # noqa: S603 - the environment's own interpreter
            [str(installed.python), "-X", "importtime", "-c", "import auxia_decision"],
            capture_output=True,
            text=True,
            check=True,
        )
        match = _TOTAL_IMPORT.search(result.stderr)
        assert match is not None, result.stderr
        times.append(float(match.group(1)))
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    """Install each flavour, measure it, print the report and write it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--import-runs", type=int, default=11)
    parser.add_argument(
        "--baseline-ref",
        help="also measure the plain install of this git commit's wheel (the 'before' row)",
    )
    parser.add_argument("--output", type=pathlib.Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        folder = pathlib.Path(scratch)
        wheel = build_wheel(folder / "wheel")
        constraints = locked_constraints(folder)
        measured = [(flavour, extras, wheel) for flavour, extras in FLAVOURS.items()]
        if args.baseline_ref:
            baseline = build_wheel_at(args.baseline_ref, folder / "baseline")
            measured.append((f"baseline-{args.baseline_ref}", "", baseline))
        for flavour, extras, built in measured:
            installed = install(built, flavour, folder, constraints, extras=extras)
            names = sorted(installed.packages())
            size = installed.site_packages_bytes() / 2**20
            started = import_microseconds(installed, args.import_runs) / 1000
            rows.append((flavour, extras, size, started, names))
    core_size = rows[0][2]
    lines = [
        "# Install size",
        "",
        "Produced by `make bench-install` (`bench/bench_install.py`): the wheel built from "
        "this checkout, installed with uv into an empty virtual environment for each way "
        "of installing it, with the versions of `uv.lock`. *MiB* is the size on disk of "
        "everything installed; *import ms* is the median time of `import auxia_decision` "
        f"in {args.import_runs} fresh interpreters (`-X importtime`, cumulative).",
        "",
        f"- Python {platform.python_version()} ({platform.python_implementation()}) on "
        f"{platform.system()} {platform.machine()}",
        "",
        "| install | MiB | x core | import ms | distributions |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for flavour, extras, size, started, packages in rows:
        if flavour.startswith("baseline-"):
            name = f"before: `auxia-decision-api` at {flavour.removeprefix('baseline-')}"
        elif extras:
            name = f"`auxia-decision-api{extras}`"
        else:
            name = "`auxia-decision-api` (core)"
        lines.append(
            f"| {name} | {size:.1f} | {size / core_size:.1f} | {started:.1f} | "
            f"{len(packages)}: {', '.join(packages)} |"
        )
    publish("\n".join(lines) + "\n", args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
