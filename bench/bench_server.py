"""Load benchmark of the reference server's LogTreatmentInteraction and GetTreatments.

``make bench-server`` runs it: for each target (the reference server over
REST and over gRPC, the bare ASGI ceiling, the FastAPI + pydantic peer and
the bare grpc.aio servicer; then GetTreatments on the reference server, its
ceiling and its FastAPI peer, in the world of ``bench/decision_world.py``)
it starts the server as a process on 127.0.0.1,
warms it up, sends ``--requests`` requests with the same load generator
(``tools.loadgen``, another process), records requests/s, p50/p99 latency,
the server's peak RSS and CPU time, stops the server with SIGTERM and checks
the store row by row against the acknowledged requests. The targets run in
turn, ``--rounds`` times, every other round in reverse order, so that each
ratio compares runs made back to back, each side going first as often (a
shared machine drifts); the median round is reported. Then the request
journal's cost (``measure_journal``): REST and GetTreatments, each with its
journal and without, both servers up at once and loaded in alternate slices.
It prints the ratios and writes the report to ``bench/results/server.md``; it
exits 1 if a store lost, duplicated or added a row, or a server answered 5xx.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import importlib.metadata
import os
import pathlib
import platform
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from auxia_decision.server._emulator.journal import DEFAULT_SIZE as JOURNAL_SIZE
from auxia_decision.server._ready import wait_for_ready_file
from bench._report import publish
from bench.decision_world import write_history, write_seed
from tests._stored import stored_tracking_ids
from tools.loadgen import (
    LoadResult,
    Reconciliation,
    is_server_error,
    reconcile,
    run_in_process,
)
from tools.processes import serve_command, tree_cpu_seconds, tree_memory_mib

ROOT: Final = pathlib.Path(__file__).resolve().parent.parent
RESULTS: Final = ROOT / "bench" / "results" / "server.md"
_READY_TIMEOUT: Final = 60.0
_STOP_TIMEOUT: Final = 30.0
_PACKAGES: Final = (
    "uvicorn",
    "httptools",
    "uvloop",
    "grpcio",
    "protobuf",
    "fastapi",
    "starlette",
    "pydantic",
)


@dataclass(frozen=True)
class Target:
    """A server to measure: how to start it, what it speaks and how its rows are encoded."""

    key: str
    title: str
    transport: str
    module: str
    """``auxia-decision`` for the reference server, else a ``bench.peers`` module."""
    stored_body: str | None
    """``proto`` or ``json`` for a server that stores each request, None for a bare one."""
    workload: str = "log"
    """What the generator sends: ``log`` (LogTreatmentInteraction) or ``decide`` (GetTreatments)."""
    world: bool = False
    """Whether the server starts in the decision world: its seed, and users with a history."""
    serve_args: tuple[str, ...] = ()
    """More flags of ``auxia-decision serve`` (``--journal-size 0``)."""

    def command(
        self, db: pathlib.Path, seed: pathlib.Path | None, ready_file: pathlib.Path
    ) -> list[str]:
        """Return the command line that starts the server on free ports."""
        if self.module == "auxia-decision":
            command = serve_command(db, *self.serve_args)
        else:
            command = [sys.executable, "-m", self.module, "--port", "0", "--db", str(db)]
        command += ["--ready-file", str(ready_file)]
        if self.world and seed is not None:
            command += ["--seed", str(seed)]
        return command


NO_JOURNAL: Final = ("--journal-size", "0")
"""The flags of a server that keeps no request journal (the journal's cost is the ratio)."""
# Each server runs right after its ceiling: the ratios compare runs back to back.
TARGETS: Final = (
    Target("asgi", "bare ASGI app (ceiling)", "rest", "bench.peers.bare_asgi", None),
    Target("rest", "auxia-decision REST", "rest", "auxia-decision", "proto"),
    Target("fastapi", "FastAPI + pydantic (peer)", "rest", "bench.peers.fastapi_peer", "json"),
    Target("bare-grpc", "bare grpc.aio servicer (ceiling)", "grpc", "bench.peers.bare_grpc", None),
    Target("grpc", "auxia-decision gRPC", "grpc", "auxia-decision", "proto"),
    Target(
        "asgi-decide",
        "bare ASGI app (ceiling), GetTreatments bodies",
        "rest",
        "bench.peers.bare_asgi",
        None,
        workload="decide",
    ),
    Target(
        "decide",
        "auxia-decision REST GetTreatments",
        "rest",
        "auxia-decision",
        None,
        workload="decide",
        world=True,
    ),
    Target(
        "fastapi-decide",
        "FastAPI + pydantic GetTreatments (peer)",
        "rest",
        "bench.peers.fastapi_decisions",
        None,
        workload="decide",
        world=True,
    ),
)
USERS: Final = 1000
"""The users of the decision world, each with a history of ``HISTORY_PER_USER`` interactions."""


@dataclass
class Measurement:
    """One measured run of one target."""

    target: Target
    load: LoadResult
    peak_rss_mib: float
    server_cpu_seconds: float
    reconciliation: Reconciliation | None
    served: tuple[int, int] | None = None
    """For GetTreatments: treatments the answers held (warm-up included), and rows stored."""

    @property
    def server_errors(self) -> int:
        """Return how many answers were server failures (5xx, INTERNAL, ...)."""
        return self.load.count(is_server_error)


class ServerProcess:
    """A server started as a child process, with its address once its ready file says so."""

    def __init__(
        self, target: Target, db: pathlib.Path, log: pathlib.Path, seed: pathlib.Path | None
    ) -> None:
        self.log = log.open("w")
        ready_file = log.with_suffix(".ready.json")
        # A peer leaves its ready file behind: the last round's would name a dead server.
        ready_file.unlink(missing_ok=True)
        self.process = subprocess.Popen(  # noqa: S603  # our own executables
            target.command(db, seed, ready_file),
            cwd=ROOT,
            stdout=self.log,
            stderr=self.log,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            info = wait_for_ready_file(ready_file, self.process, _READY_TIMEOUT)
        except TimeoutError:
            info = None
        if info is None:
            self.kill()
            msg = f"the server did not start: see {log}"
            raise RuntimeError(msg)
        self.address = info.rest_url if target.transport == "rest" else info.grpc_target

    def cpu_seconds(self) -> float:
        """Return the CPU time (user + system) the server and its children have used so far."""
        return tree_cpu_seconds(self.process.pid)

    def peak_rss_mib(self) -> float:
        """Return the peak resident set sizes (VmHWM) of the server and its children, in MiB."""
        return tree_memory_mib(self.process.pid, "VmHWM")

    def stop(self) -> int:
        """Stop the server with SIGTERM (SIGKILL if it does not stop) and return its status."""
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()
        self.log.close()
        return self.process.returncode

    def kill(self) -> None:
        """Kill the server and reap it."""
        self.process.kill()
        self.process.wait()


def measure(
    target: Target,
    workdir: pathlib.Path,
    *,
    requests: int,
    warmup: int,
    connections: int,
    time_limit: float,
) -> Measurement:
    """Start the target, warm it up, load it, stop it and check its store."""
    seed = write_seed(workdir / "decision-seed.json") if target.world else None
    server, db = _started(target, workdir, target.key, seed)
    try:
        warmed = _warmed(target, server, warmup, connections=connections, time_limit=time_limit)
        measured = _measured(
            target, server, requests, "run", connections=connections, time_limit=time_limit
        )
    finally:
        status = server.stop()
    _check_exit(status, server, target.title)
    _check_stored(target, db, [("run", measured)], warmed)
    return measured


def _started(
    target: Target, workdir: pathlib.Path, name: str, seed: pathlib.Path | None
) -> tuple[ServerProcess, pathlib.Path]:
    """Start a target's server on a new database ``<name>.db`` (its world's, if it has one)."""
    db = workdir / f"{name}.db"
    for stale in workdir.glob(f"{name}.db*"):
        stale.unlink()
    if target.world:
        write_history(db, USERS)
    return ServerProcess(target, db, workdir / f"{name}.log", seed), db


def _warmed(
    target: Target, server: ServerProcess, warmup: int, *, connections: int, time_limit: float
) -> int:
    """Warm a server up with its target's requests; return the treatments their answers held."""
    if not warmup:
        return 0
    return _load(
        target, server, warmup, "warmup", connections=connections, time_limit=time_limit
    ).served


def _measured(
    target: Target,
    server: ServerProcess,
    requests: int,
    tag: str,
    *,
    connections: int,
    time_limit: float,
) -> Measurement:
    """Load a server with its target's requests; return what the run saw and cost the server."""
    cpu_before = server.cpu_seconds()
    load = _load(target, server, requests, tag, connections=connections, time_limit=time_limit)
    cpu = server.cpu_seconds() - cpu_before
    return Measurement(target, load, server.peak_rss_mib(), cpu, None)


def _check_exit(status: int, server: ServerProcess, title: str) -> None:
    """Raise if a server stopped with a status other than 0."""
    if status != 0:
        msg = f"{title} exited with status {status}; see {server.log.name}"
        raise RuntimeError(msg)


def _check_stored(
    target: Target, db: pathlib.Path, runs: list[tuple[str, Measurement]], warmed: int
) -> None:
    """Check a server's store against its runs (tag, run), once it has stopped.

    Its rows by tracking id; for GetTreatments, every treatment the answers
    held, warm-up included (noted on the last run).
    """
    if target.stored_body is not None:
        ids = stored_tracking_ids(db, body=target.stored_body)
        for tag, measured in runs:
            measured.reconciliation = reconcile(measured.load, ids, tag)
    if target.world:
        answered = warmed + sum(measured.load.served for _, measured in runs)
        runs[-1][1].served = (answered, _served_rows(db))


def _load(
    target: Target,
    server: ServerProcess,
    requests: int,
    tag: str,
    *,
    connections: int,
    time_limit: float,
) -> LoadResult:
    """Send a server its target's requests with the load generator; return what it saw."""
    return run_in_process(
        target.transport,
        server.address,
        requests=requests,
        connections=connections,
        time_limit=time_limit,
        tag=tag,
        workload=target.workload,
    )


@dataclass
class JournalCost:
    """A target with its request journal and without, loaded in alternate slices."""

    on: list[Measurement]
    """The slices of the server with its journal (of the default size)."""
    off: list[Measurement]
    """The slices of the same server started with ``--journal-size 0``."""

    @staticmethod
    def _throughput(slices: list[Measurement]) -> float:
        answered = sum(m.load.throughput * m.load.elapsed for m in slices)
        elapsed = sum(m.load.elapsed for m in slices)
        return answered / elapsed if elapsed > 0 else 0.0

    @property
    def ratio(self) -> float:
        """Return the median of the pairs' ratios (as the rounds' ratios are reported).

        A burst of the machine's noise that slows one slice moves one pair's
        ratio, not the median; it would move the ratio over all the slices
        (``overall``) by its weight in time.
        """
        return statistics.median(self.pair_ratios())

    @property
    def overall(self) -> float:
        """Return the throughput with the journal against without, over all the slices."""
        return self._throughput(self.on) / self._throughput(self.off)

    def pair_ratios(self) -> list[float]:
        """Return each pair of slices' ratio (run back to back)."""
        return [
            on.load.throughput / off.load.throughput
            for on, off in zip(self.on, self.off, strict=True)
        ]

    def row(self) -> str:
        """Return the report's table row: throughputs, server CPU, the ratio and its spread."""
        on, off = self.on[0].target, self.off[0].target
        cpu = [
            statistics.median(_cpu_per_request_us(m.server_cpu_seconds, m.load) for m in slices)
            for slices in (self.on, self.off)
        ]
        pairs = self.pair_ratios()
        return (
            f"| {on.title} / {off.title} | {self._throughput(self.on):,.0f} "
            f"| {self._throughput(self.off):,.0f} | {cpu[0]:.0f} | {cpu[1]:.0f} "
            f"| {self.ratio:.1%} | {self.overall:.1%} | {min(pairs):.0%} to {max(pairs):.0%} |"
        )


def measure_journal(
    target: Target,
    workdir: pathlib.Path,
    *,
    requests: int,
    slices: int,
    warmup: int,
    connections: int,
    time_limit: float,
) -> JournalCost:
    """Load a target with its journal and without, in alternate slices; check their stores.

    Both servers run at once; each slice loads one of them while the other
    idles, and every other pair of slices goes in the other order. A
    machine's speed drifting by a tenth within seconds (bench/NOTES.md)
    then weighs on both sides alike, which two runs one after the other,
    each tens of seconds long, do not.
    """
    off = dataclasses.replace(
        target,
        key=f"{target.key}-nojournal",
        title=f"{target.title}, no journal",
        serve_args=(*target.serve_args, *NO_JOURNAL),
    )
    sides = (target, off)
    seed = write_seed(workdir / "decision-seed.json") if target.world else None
    servers: dict[str, tuple[ServerProcess, pathlib.Path]] = {}
    runs: dict[str, list[tuple[str, Measurement]]] = {side.key: [] for side in sides}
    warmed: dict[str, int] = {}
    try:
        for side in sides:
            server, db = _started(side, workdir, f"journal-{side.key}", seed)
            servers[side.key] = (server, db)
            warmed[side.key] = _warmed(
                side, server, warmup, connections=connections, time_limit=time_limit
            )
        for number in range(slices):
            for side in sides if number % 2 == 0 else sides[::-1]:
                tag = f"slice{number}"
                measured = _measured(
                    side,
                    servers[side.key][0],
                    requests // slices,
                    tag,
                    connections=connections,
                    time_limit=time_limit,
                )
                runs[side.key].append((tag, measured))
    finally:
        statuses = {key: server.stop() for key, (server, _) in servers.items()}
    for side in sides:
        server, db = servers[side.key]
        _check_exit(statuses[side.key], server, side.title)
        _check_stored(side, db, runs[side.key], warmed[side.key])
    return JournalCost(
        [measured for _, measured in runs[target.key]],
        [measured for _, measured in runs[off.key]],
    )


def _served_rows(db: pathlib.Path) -> int:
    """Return how many served treatments a store holds."""
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as connection:
        return int(connection.execute("SELECT COUNT(*) FROM served").fetchone()[0])


def _median_run(runs: list[Measurement]) -> Measurement:
    ordered = sorted(runs, key=lambda run: run.load.throughput)
    return ordered[(len(ordered) - 1) // 2]


def _cpu_per_request_us(seconds: float, load: LoadResult) -> float:
    answered = load.requests - load.statuses.get("no answer", 0)
    return seconds / answered * 1e6 if answered else float("nan")


def _versions() -> str:
    found = []
    for name in _PACKAGES:
        try:
            found.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            found.append(f"{name} (not installed)")
    return ", ".join(found)


# (what, ours, baseline, target, unit): the ratios the issue sets a target for.
RATIOS: Final = (
    ("REST vs the FastAPI + pydantic peer", "rest", "fastapi", 2.0, "x"),
    ("REST vs the bare ASGI ceiling", "rest", "asgi", 0.6, "%"),
    ("gRPC vs the bare grpc.aio servicer", "grpc", "bare-grpc", 0.6, "%"),
    ("GetTreatments vs the FastAPI + pydantic peer", "decide", "fastapi-decide", 2.0, "x"),
    ("GetTreatments vs the bare ASGI ceiling", "decide", "asgi-decide", 0.35, "%"),
)
JOURNAL_TARGET: Final = 0.95
"""The throughput with the request journal (of the default size) against without, at least."""
JOURNAL_TARGETS: Final = {
    "rest": "REST with the request journal vs without",
    "decide": "GetTreatments with the request journal vs without",
}
"""The targets whose journal's cost is measured (``measure_journal``), and its ratio's name."""
P99_TARGETS: Final = {"decide": 10.0}
"""p99 latency targets in milliseconds, by target."""


def _ratios(runs: dict[str, list[Measurement]]) -> list[tuple[str, list[float], float, str]]:
    """Return each ratio of the issue, round by round (both sides of a ratio ran back to back)."""
    found = []
    for what, ours, baseline, target, unit in RATIOS:
        if runs.get(ours) and runs.get(baseline):
            per_round = [
                mine.load.throughput / theirs.load.throughput
                for mine, theirs in zip(runs[ours], runs[baseline], strict=True)
            ]
            found.append((what, per_round, target, unit))
    return found


def _shown(value: float, unit: str) -> str:
    return f"{value:.2f}x" if unit == "x" else f"{value:.0%}"


def report(
    runs: dict[str, list[Measurement]],
    journal: dict[str, JournalCost],
    args: argparse.Namespace,
) -> str:
    """Return the Markdown report of a benchmark run."""
    best = {key: _median_run(measured) for key, measured in runs.items() if measured}
    lines = [*_introduction(args), *_table(best.values()), "", "## Ratios", ""]
    lines += _ratio_lines(runs, best)
    lines += [_journal_line(key, cost) for key, cost in journal.items()]
    if args.rounds > 1:
        lines += ["", "Requests/s, round by round:", ""]
        for every_round in filter(None, runs.values()):
            rates = ", ".join(f"{run.load.throughput:,.0f}" for run in every_round)
            lines.append(f"- {every_round[0].target.title}: {rates}")
    if journal:
        lines += _journal_section(journal, args)
    lines += _nothing_lost(runs)
    if journal:
        lines += _journal_stored(journal)
    return "\n".join(lines) + "\n"


def _journal_line(key: str, cost: JournalCost) -> str:
    """Return the ratio line of a journal's cost against its target."""
    verdict = "met" if cost.ratio >= JOURNAL_TARGET else "NOT met"
    return (
        f"- {JOURNAL_TARGETS[key]}: **{cost.ratio:.0%}** (alternate slices, below); "
        f"target ≥ {JOURNAL_TARGET:.0%}: {verdict}"
    )


def _journal_section(journal: dict[str, JournalCost], args: argparse.Namespace) -> list[str]:
    """Return how the journal's cost was measured, and what each side did."""
    return [
        "",
        "## The request journal's cost",
        "",
        f"Each target with its journal ({JOURNAL_SIZE:,} calls, the default) and without "
        "(`--journal-size 0`): both servers started at once, warmed up, then loaded in "
        f"{args.journal_slices} alternate slices of "
        f"{args.journal_requests // args.journal_slices:,} "
        "requests each (every other pair in the other order), so that the machine's drift weighs "
        "on both alike. Each pair of slices run back to back gives a ratio of requests/s; the "
        "ratio held to the target is their median (as the rounds' ratios above), beside the "
        "ratio over all the slices and the pairs' spread.",
        "",
        "| target (with / without journal) | requests/s with | requests/s without "
        "| server CPU µs/request with | without | ratio (median of pairs) | over all slices "
        "| pairs' ratios |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
        *(cost.row() for cost in journal.values()),
    ]


def _journal_stored(journal: dict[str, JournalCost]) -> list[str]:
    """Return the stores of the journal's slices read back, each side's slices together."""
    lines = [
        "",
        "The journal's slices, each server's store read back the same way (its slices together; "
        "for GetTreatments, the treatments its answers held against its `served` rows):",
        "",
        "| server | acknowledged | rows | lost | duplicated | stored, not acknowledged "
        "| treatments answered | served rows | 5xx |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for cost in journal.values():
        for slices in (cost.on, cost.off):
            found = [m.reconciliation for m in slices if m.reconciliation is not None]
            served = [m.served for m in slices if m.served is not None]
            counts = [
                f"{sum(getattr(r, name) for r in found):,}" if found else "-"
                for name in (
                    "acknowledged",
                    "stored",
                    "lost",
                    "duplicated",
                    "stored_unacknowledged",
                )
            ]
            answered = [f"{sum(a for a, _ in served):,}", f"{sum(b for _, b in served):,}"]
            errors = sum(m.server_errors for m in slices)
            lines.append(
                f"| {slices[0].target.title} | {' | '.join(counts)} "
                f"| {' | '.join(answered) if served else '- | -'} | {errors} |"
            )
    return lines


def _introduction(args: argparse.Namespace) -> list[str]:
    """Return what the report measured, how, and on what machine."""
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return [
        "# LogTreatmentInteraction and GetTreatments under load",
        "",
        f"Written by `make bench-server` on {now}: {args.requests:,} requests per target "
        f"after {args.warmup:,} of warm-up, {args.connections} concurrent "
        f"(REST: {args.connections} keep-alive HTTP/1.1 connections; gRPC: "
        f"{args.connections} concurrent calls over 4 HTTP/2 connections), "
        f"{args.rounds} round(s), the median round shown. The generator is "
        "`tools/loadgen`, one process on uvloop, closed loop, every request a distinct "
        "`treatmentTrackingId`; each server is its own process on 127.0.0.1 (a server's "
        "peak RSS and CPU time include its child processes: the reference server's "
        "interactions writer and activity reader, the FastAPI peer's interactions writer). "
        "GetTreatments runs in the world of "
        f"`bench/decision_world.py`: 24 LIVE treatments over 3 surfaces with 2 or 3 rules each "
        f"(one on the user's views), {USERS:,} users with 20 past interactions each, every request "
        "one surface, at most one treatment, as the production client asks.",
        "",
        f"Machine: {os.cpu_count()} CPUs, {platform.python_implementation()} "
        f"{platform.python_version()} on {platform.system()}; {_versions()}.",
        "",
    ]


def _table(measured_runs: Iterable[Measurement]) -> list[str]:
    """Return the table of the median round of each target."""
    lines = [
        "| target | requests/s | p50 ms | p99 ms | peak RSS MiB "
        "| server CPU µs/request | generator CPU µs/request | answers |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for measured in measured_runs:
        load = measured.load
        answers = ", ".join(f"{n:,} {status}" for status, n in load.statuses.items())
        lines.append(
            f"| {measured.target.title} | {load.throughput:,.0f} "
            f"| {load.latency_ms.get('p50', float('nan')):.1f} "
            f"| {load.latency_ms.get('p99', float('nan')):.1f} "
            f"| {measured.peak_rss_mib:.0f} "
            f"| {_cpu_per_request_us(measured.server_cpu_seconds, load):.0f} "
            f"| {_cpu_per_request_us(load.cpu_seconds, load):.0f} | {answers} |"
        )
    return lines


def _ratio_lines(runs: dict[str, list[Measurement]], best: dict[str, Measurement]) -> list[str]:
    """Return each ratio and p99 against its target, with the rounds' ratios."""
    lines = []
    for what, per_round, target, unit in _ratios(runs):
        reached = statistics.median(per_round)
        verdict = "met" if reached >= target else "NOT met"
        rounds = ""
        if len(per_round) > 1:
            rounds = " (rounds: " + ", ".join(_shown(r, unit) for r in per_round) + ")"
        lines.append(
            f"- {what}: **{_shown(reached, unit)}**{rounds}; "
            f"target ≥ {_shown(target, unit)}: {verdict}"
        )
    for key, limit in P99_TARGETS.items():
        if key in best:
            p99 = best[key].load.latency_ms.get("p99", float("nan"))
            verdict = "met" if p99 < limit else "NOT met"
            lines.append(
                f"- {best[key].target.title} p99: **{p99:.1f} ms**; target < {limit:.0f} ms: "
                f"{verdict}"
            )
    return lines


def _nothing_lost(runs: dict[str, list[Measurement]]) -> list[str]:
    """Return the reconciliation of every run: stored rows against acknowledged requests."""
    lines = [
        "",
        "## Nothing lost",
        "",
        "After each run the server was stopped with SIGTERM and its SQLite file read back: "
        "one row per acknowledged request, by tracking id.",
        "",
        "| target | acknowledged | rows | lost | duplicated | stored, not acknowledged | 5xx |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for measured_runs in runs.values():
        for measured in measured_runs:
            found = measured.reconciliation
            if found is None:
                continue
            lines.append(
                f"| {measured.target.title} | {found.acknowledged:,} | {found.stored:,} "
                f"| {found.lost} | {found.duplicated} | {found.stored_unacknowledged} "
                f"| {measured.server_errors} |"
            )
    decided = [m for measured in runs.values() for m in measured if m.served is not None]
    if decided:
        lines += [
            "",
            "GetTreatments: every treatment an acknowledged answer held (warm-up included) "
            "has its row in the `served` table.",
            "",
            "| target | treatments answered | rows | lost | 5xx |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        for measured in decided:
            assert measured.served is not None
            answered, rows = measured.served
            lines.append(
                f"| {measured.target.title} | {answered:,} | {rows:,} "
                f"| {max(0, answered - rows)} | {measured.server_errors} |"
            )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, print the report and write it to ``--out``."""
    parser = argparse.ArgumentParser(prog="python -m bench.bench_server", description=__doc__)
    parser.add_argument("--requests", type=int, default=100_000, help="per target and round")
    parser.add_argument("--warmup", type=int, default=5_000, help="requests before measuring")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument(
        "--rounds", type=int, default=5, help="targets run in turn, round after round"
    )
    parser.add_argument("--time-limit", type=float, default=300.0, help="seconds per run")
    parser.add_argument("--targets", default=",".join(t.key for t in TARGETS))
    parser.add_argument(
        "--journal-requests",
        type=int,
        default=300_000,
        help="requests a side for the journal's cost of rest and decide (0: not measured)",
    )
    parser.add_argument(
        "--journal-slices", type=int, default=60, help="the alternate slices of those requests"
    )
    parser.add_argument("--out", type=pathlib.Path, default=RESULTS)
    args = parser.parse_args(argv)
    chosen = [t for t in TARGETS if t.key in args.targets.split(",")]
    runs: dict[str, list[Measurement]] = {t.key: [] for t in chosen}
    with tempfile.TemporaryDirectory(prefix="bench-server-") as tmp:
        for round_number in range(args.rounds):
            # Every other round runs the targets in reverse: the two sides of a ratio take
            # turns at going first, so that a machine speeding up or slowing down through a
            # round favours neither.
            for target in chosen if round_number % 2 == 0 else chosen[::-1]:
                measured = measure(
                    target,
                    pathlib.Path(tmp),
                    requests=args.requests,
                    warmup=args.warmup,
                    connections=args.connections,
                    time_limit=args.time_limit,
                )
                runs[target.key].append(measured)
                print(
                    f"round {round_number + 1}: {target.title}: "
                    f"{measured.load.throughput:,.0f} requests/s, {measured.load.statuses}",
                    file=sys.stderr,
                    flush=True,
                )
        journal = {
            target.key: measure_journal(
                target,
                pathlib.Path(tmp),
                requests=args.journal_requests,
                slices=args.journal_slices,
                warmup=args.warmup,
                connections=args.connections,
                time_limit=args.time_limit,
            )
            for target in chosen
            if target.key in JOURNAL_TARGETS and args.journal_requests > 0
        }
        for key, cost in journal.items():
            print(f"{JOURNAL_TARGETS[key]}: {cost.ratio:.1%}", file=sys.stderr, flush=True)
    publish(report(runs, journal, args), args.out)
    every_slice = [m for cost in journal.values() for m in (*cost.on, *cost.off)]
    faulty = [
        m
        for m in [*(m for measured in runs.values() for m in measured), *every_slice]
        if m.server_errors
        or (m.reconciliation is not None and not m.reconciliation.exact)
        or (m.served is not None and m.served[0] != m.served[1])
    ]
    for m in faulty:
        print(f"FAILED: {m.target.title}: {dataclasses.asdict(m.reconciliation or m.load)}")
    return 1 if faulty else 0


if __name__ == "__main__":
    sys.exit(main())
