"""Measure the emulator as a Node test suite meets it, and what the npm package installs.

The server is the wheel built from this checkout, installed with its
``[server]`` extra into a fresh environment with its bytecode compiled, as
``pipx install`` or ``pip install`` leave it; its ``auxia-decision`` is the
one on PATH.

- from Node (``polyglot_start.mjs``, with the tarball of ``make dist-ts``
  installed in an empty npm project): ``startEmulator()`` to a served
  GetTreatments, and ``stop()``, over several starts;
- the same server started from Python (``auxia-decision serve`` as a
  subprocess until its ready file is written, with the CPU time it used,
  which other work on the machine inflates less than the wall time), with its
  bytecode and without (``PYTHONDONTWRITEBYTECODE`` and an empty
  ``PYTHONPYCACHEPREFIX``: an install that compiled none, in an environment
  that writes none): where a start's time goes;
- the imports of ``auxia-decision serve`` that cost most (``-X importtime``,
  one run, cumulative);
- ``npm install`` of the tarball into an empty project: what it adds, with
  sizes on disk.

Targets (issue 24): ``startEmulator()`` to a served GetTreatments ≤ 500 ms
(median), ``stop()`` ≤ 300 ms. Writes ``bench/results/polyglot.md``.

Run: ``make bench-polyglot``.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Final

from auxia_decision._version import __version__
from bench._report import publish
from tools.installs import Install, build_wheel, install, locked_constraints

ROOT: Final = pathlib.Path(__file__).resolve().parent.parent
SERVE: Final = ["serve", "--rest-port", "0", "--grpc-port", "0", "--db", ":memory:"]
SCRIPT: Final = pathlib.Path(__file__).parent / "polyglot_start.mjs"
DEFAULT_OUTPUT: Final = pathlib.Path(__file__).parent / "results" / "polyglot.md"
_IMPORT_LINE: Final = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)$", re.M)


def _env(server: Install) -> dict[str, str]:
    """Return this process's environment with the server's install first on PATH."""
    path = f"{server.venv / 'bin'}:{os.environ['PATH']}"
    return {**os.environ, "PATH": path, "NODE_NO_WARNINGS": "1"}


def _run(args: list[str], cwd: pathlib.Path, env: dict[str, str] | None = None) -> str:
    return subprocess.run(  # noqa: S603 - node, npm and our command
        args, cwd=cwd, env=env, capture_output=True, text=True, check=True
    ).stdout


def server_install(folder: pathlib.Path) -> Install:
    """Install this checkout's wheel with ``[server]``, its bytecode compiled as pip does."""
    wheel = build_wheel(folder / "wheel")
    installed = install(wheel, "server", folder, locked_constraints(folder))
    (site,) = (installed.venv / "lib").glob("python3*/site-packages")
    _run([str(installed.python), "-m", "compileall", "-q", "-j", "0", str(site)], folder)
    return installed


def _size(path: pathlib.Path) -> int:
    """Return the bytes of the files under a folder."""
    return sum(file.stat().st_size for file in path.rglob("*") if file.is_file())


def install_tarball(tarball: pathlib.Path, project: pathlib.Path) -> tuple[float, dict[str, int]]:
    """Install the tarball into an empty npm project; return the seconds and each package's size."""
    project.mkdir()
    (project / "package.json").write_text('{"name": "bench", "private": true}\n')
    started = time.perf_counter()
    _run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error", str(tarball)], project)
    seconds = time.perf_counter() - started
    modules = project / "node_modules"
    sizes = {
        f"{scope.name}/{package.name}": _size(package)
        for scope in sorted(modules.iterdir())
        if scope.name.startswith("@")
        for package in sorted(scope.iterdir())
    }
    sizes |= {
        entry.name: _size(entry)
        for entry in sorted(modules.iterdir())
        if entry.is_dir() and not entry.name.startswith((".", "@"))
    }
    return seconds, sizes


def node_times(project: pathlib.Path, server: Install, runs: int) -> dict[str, list[float]]:
    """Return the milliseconds of each start, first call and stop, measured by Node."""
    shutil.copy(SCRIPT, project / SCRIPT.name)
    output = _run(["node", SCRIPT.name, str(runs)], project, _env(server))
    times: dict[str, list[float]] = json.loads(output)
    return times


def _cpu_ms(pid: int) -> float:
    """Return the CPU time (user and system) a running process has used, in milliseconds."""
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15 of stat
    return ticks * 1000 / os.sysconf("SC_CLK_TCK")


def python_start_times(
    server: Install, runs: int, *, bytecode: bool
) -> tuple[list[float], list[float]]:
    """Return the wall and CPU milliseconds of ``auxia-decision serve`` until its ready file."""
    walls, cpus = [], []
    with tempfile.TemporaryDirectory() as scratch:
        ready = pathlib.Path(scratch) / "ready.json"
        env = dict(os.environ)
        if not bytecode:
            env |= {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONPYCACHEPREFIX": scratch}
        for _ in range(runs):
            started = time.perf_counter()
            process = subprocess.Popen(  # noqa: S603 - our command
                [str(server.command), *SERVE, "--ready-file", str(ready)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=env,
            )
            while not ready.exists():
                if process.poll() is not None:
                    msg = f"auxia-decision serve exited ({process.returncode})"
                    raise RuntimeError(msg)
                time.sleep(0.002)
            walls.append((time.perf_counter() - started) * 1000)
            cpus.append(_cpu_ms(process.pid))
            process.terminate()
            process.wait()
    return walls, cpus


def costly_imports(server: Install, top: int) -> list[tuple[str, float]]:
    """Return the top-level imports of ``auxia-decision serve`` that cost most (ms, cumulative)."""
    with tempfile.TemporaryDirectory() as scratch:
        ready = pathlib.Path(scratch) / "ready.json"
        command = [str(server.python), "-X", "importtime", str(server.command), *SERVE]
        process = subprocess.Popen(  # noqa: S603 - the install's interpreter, our command
            [*command, "--ready-file", str(ready)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        while not ready.exists() and process.poll() is None:
            time.sleep(0.01)
        process.terminate()
        _, stderr = process.communicate()
    # Each module once, at the shallowest depth it appears: what importing it cost in all.
    shallow: dict[str, tuple[int, float]] = {}
    for _, cumulative, indent, name in _IMPORT_LINE.findall(stderr):
        depth = len(indent)
        if name not in shallow or depth < shallow[name][0]:
            shallow[name] = (depth, int(cumulative) / 1000)
    ranked = sorted(
        ((name, ms) for name, (depth, ms) in shallow.items() if depth <= 5),
        key=lambda item: -item[1],
    )
    return ranked[:top]


def _stats(values: list[float]) -> str:
    ordered = sorted(values)
    return f"{statistics.median(values):.0f} ms (min {ordered[0]:.0f}, max {ordered[-1]:.0f})"


def main(argv: list[str] | None = None) -> int:
    """Measure, print the report and write it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="starts of each kind")
    parser.add_argument("--output", type=pathlib.Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    tarball = ROOT / "dist" / f"auxia-decision-api-{__version__}.tgz"
    if not tarball.is_file():
        print(f"no {tarball}: run make dist-ts first", file=sys.stderr)
        return 2

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as scratch:
        server = server_install(pathlib.Path(scratch) / "server")
        project = pathlib.Path(scratch) / "project"
        install_seconds, sizes = install_tarball(tarball, project)
        node_version = _run(["node", "--version"], project).strip()
        # Round by round, so that other work on the machine weighs on each kind alike.
        times: dict[str, list[float]] = {"start": [], "firstCall": [], "stop": []}
        compiled, compiled_cpu, uncompiled, uncompiled_cpu = [], [], [], []
        for _ in range(args.runs):
            for key, values in node_times(project, server, 1).items():
                times[key] += values
            wall, cpu = python_start_times(server, 1, bytecode=True)
            compiled += wall
            compiled_cpu += cpu
            wall, cpu = python_start_times(server, 1, bytecode=False)
            uncompiled += wall
            uncompiled_cpu += cpu
        imports = costly_imports(server, 12)
    load_after = os.getloadavg()[0]

    to_served = [
        start + call for start, call in zip(times["start"], times["firstCall"], strict=True)
    ]
    rows = [
        ("`startEmulator()` to a served GetTreatments", _stats(to_served), "≤ 500 ms"),
        ("… of which `startEmulator()` (its ready file read)", _stats(times["start"]), ""),
        ("… of which the first GetTreatments", _stats(times["firstCall"]), ""),
        ("`stop()`, until the server has exited", _stats(times["stop"]), "≤ 300 ms"),
        ("`auxia-decision serve` from Python, spawn to ready file", _stats(compiled), ""),
        ("… the CPU time it used until then", _stats(compiled_cpu), ""),
        ("the same without bytecode: spawn to ready file", _stats(uncompiled), ""),
        ("… the CPU time it used until then", _stats(uncompiled_cpu), ""),
    ]
    total = sum(sizes.values())
    lines = [
        "# Every language's emulator: the npm package from Node",
        "",
        "Produced by `make bench-polyglot` (`bench/bench_polyglot.py`,",
        f"`bench/polyglot_start.mjs`); {args.runs} rounds of one start of each kind (from Node,",
        "after one not counted in the same process; from Python with and without bytecode);",
        "this machine.",
        "",
        f"- Node.js {node_version}; Python {platform.python_version()} "
        f"({platform.python_implementation()}) on {platform.system()} {platform.machine()}, "
        f"{os.cpu_count()} cores",
        f"- load average {load_before:.1f} before, {load_after:.1f} after (other work on the "
        "machine slows every start alike)",
        "",
        "| what | measured | target |",
        "| --- | ---: | --- |",
        *(f"| {what} | {measured} | {target} |" for what, measured, target in rows),
        "",
        "## Where a start's time goes",
        "",
        "The imports of `auxia-decision serve` that cost most, cumulative (`-X importtime`, one",
        "start, which the measuring slows):",
        "",
        "| module | ms |",
        "| --- | ---: |",
        *(f"| `{name}` | {ms:.0f} |" for name, ms in imports),
        "",
        "## `npm install` of the tarball into an empty project",
        "",
        f"`{tarball.name}`: {tarball.stat().st_size / 1024:.0f} KiB. Installed in "
        f"{install_seconds:.1f} s (npm's cache warm); what it adds to `node_modules`:",
        "",
        "| package | on disk |",
        "| --- | ---: |",
        *(f"| `{name}` | {size / 1024:.0f} KiB |" for name, size in sizes.items()),
        f"| all | {total / 1024:.0f} KiB |",
    ]
    publish("\n".join(lines) + "\n", args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
