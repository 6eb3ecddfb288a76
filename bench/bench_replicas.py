"""Replicas on PostgreSQL against one server on SQLite: throughput, p99, CPU per request, losses.

``make bench-replicas`` runs it. It starts a throwaway PostgreSQL server of
its own (``tools/postgres.py``: Debian's PostgreSQL, durable settings: fsync
on, as the SQLite store's ``synchronous=FULL``), then for each setup

- ``sqlite``: one ``auxia-decision serve`` on a SQLite file,
- ``postgres-1``: one on a PostgreSQL database,
- ``postgres-2``: two on one PostgreSQL database, each loaded by a generator
  of its own with half the connections (a load balancer's even split),

on a fresh store holding the world of ``bench/decision_world.py`` (24 LIVE
treatments, 1,000 users with 20 interactions each), it loads
LogTreatmentInteraction, then GetTreatments, then GetTreatments under a fault
that fails a fraction of them (``FAULT``, armed through the admin API) over
REST (``tools.loadgen``, other processes), and records requests/s, p99, the CPU time per request of
the servers (their process trees) and of PostgreSQL (its whole process tree:
backends, WAL writer, checkpointer), and checks the store against the
answers: every acknowledged interaction stored once, every treatment served
stored. The setups run in turn, ``--rounds`` times; the median round is
reported, with a paper estimate of N machines from the CPU per request, in
``bench/results/replicas.md``. It exits 1 if anything was lost or a server
answered 5xx.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import pathlib
import platform
import signal
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

import httpx
import psycopg

from auxia_decision.server._ready import wait_for_ready_file
from bench._report import publish
from bench.decision_world import ADMIN_KEY, write_history, write_seed
from tests._stored import stored_tracking_ids
from tools.loadgen import LoadResult, collect, is_server_error, reconcile, spawn
from tools.postgres import Postgres, postgres_bin, running_postgres
from tools.processes import serve_command, tree_cpu_seconds

ROOT: Final = pathlib.Path(__file__).resolve().parent.parent
RESULTS: Final = ROOT / "bench" / "results" / "replicas.md"
SETUPS: Final = ("sqlite", "postgres-1", "postgres-2")
WORKLOADS: Final = ("log", "decide", "decide-fault")
_TITLES: Final = {
    "sqlite": "1 replica, SQLite",
    "postgres-1": "1 replica, PostgreSQL",
    "postgres-2": "2 replicas, PostgreSQL",
}
_METHODS: Final = {
    "log": "LogTreatmentInteraction",
    "decide": "GetTreatments",
    "decide-fault": "GetTreatments, 1% failed by a fault",
}
FAULT: Final = {
    "method": "GetTreatments",
    "fraction": 0.01,
    "randomSeed": 26,
    "code": "RESOURCE_EXHAUSTED",
}
"""The fault of ``decide-fault``: 1% of the calls answered 429, as a rate limit would."""
USERS: Final = 1_000
"""The users of the world, as `make bench-server`'s."""
_READY_TIMEOUT: Final = 60.0
# The throwaway server's durable settings: WAL flushed at each commit, as in production.
_POSTGRES_SETTINGS: Final = {"fsync": "on", "synchronous_commit": "on", "max_connections": "100"}


@dataclass
class Measurement:
    """One setup under one workload, in one round."""

    setup: str
    workload: str
    loads: list[LoadResult]
    server_cpu: float
    database_cpu: float
    lost: int = 0
    duplicated: int = 0
    served_missing: int = 0

    @property
    def requests(self) -> int:
        """How many requests were answered."""
        return sum(load.requests - load.statuses.get("no answer", 0) for load in self.loads)

    @property
    def throughput(self) -> float:
        """Requests answered per second, all generators together."""
        return self.requests / max(load.elapsed for load in self.loads)

    @property
    def p99(self) -> float:
        """The worst p99 of the generators, in ms."""
        return max(load.latency_ms.get("p99", float("nan")) for load in self.loads)

    @property
    def server_errors(self) -> int:
        """How many answers were server failures (5xx)."""
        return sum(load.count(is_server_error) for load in self.loads)

    def per_request_us(self, seconds: float) -> float:
        """Return CPU seconds as µs per answered request."""
        return seconds / self.requests * 1e6 if self.requests else float("nan")


@dataclass
class _Replicas:
    """The server processes of one setup."""

    processes: list[subprocess.Popen[str]] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)
    logs: list[pathlib.Path] = field(default_factory=list)

    def cpu_seconds(self) -> float:
        return sum(tree_cpu_seconds(process.pid) for process in self.processes)

    def stop(self) -> None:
        for process in self.processes:
            process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _start(db: str, count: int, seed: pathlib.Path, workdir: pathlib.Path) -> _Replicas:
    replicas = _Replicas()
    for number in range(count):
        log = workdir / f"server-{number}.log"
        ready = workdir / f"ready-{number}.json"
        ready.unlink(missing_ok=True)
        with log.open("w") as out:
            process = subprocess.Popen(  # noqa: S603 - our own server
                serve_command(db, "--seed", str(seed), "--ready-file", str(ready)),
                stdout=out,
                stderr=out,
                text=True,
            )
        replicas.processes.append(process)
        replicas.logs.append(log)
        info = wait_for_ready_file(ready, process, _READY_TIMEOUT)
        if info is None:
            replicas.stop()
            msg = f"the server did not start: see {log}"
            raise RuntimeError(msg)
        replicas.urls.append(info.rest_url)
    return replicas


def _store(setup: str, postgres: Postgres, workdir: pathlib.Path, number: int) -> str:
    """Return a fresh store of a setup, holding the world's history."""
    if setup == "sqlite":
        for stale in workdir.glob("world.db*"):
            stale.unlink()
        db = str(workdir / "world.db")
    else:
        name = f"world_{number}"
        postgres.drop_database(name)
        db = postgres.create_database(name)
    write_history(db, USERS)
    return db


def _served_rows(db: str) -> int:
    if db.startswith("postgresql://"):
        with psycopg.connect(db) as connection:
            row = connection.execute("SELECT count(*) FROM served").fetchone()
        return 0 if row is None else int(row[0])
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as connection:
        return int(connection.execute("SELECT COUNT(*) FROM served").fetchone()[0])


def _load(
    replicas: _Replicas, workload: str, requests: int, connections: int, time_limit: float
) -> list[LoadResult]:
    """Load every replica at once, splitting requests and connections evenly."""
    count = len(replicas.urls)
    faulted = workload == "decide-fault"
    if faulted:
        _admin(replicas.urls[0], "CreateFault", {"fault": FAULT})
    generators = [
        spawn(
            "rest",
            url,
            requests=requests // count,
            connections=max(1, connections // count),
            time_limit=time_limit,
            tag=f"{workload}-{number}",
            workload="decide" if faulted else workload,
        )
        for number, url in enumerate(replicas.urls)
    ]
    try:
        return [collect(generator, timeout=time_limit + 120) for generator in generators]
    finally:
        if faulted:
            _admin(replicas.urls[-1], "ClearFaults", {})


def _admin(url: str, method: str, document: dict[str, object]) -> None:
    """Call the emulator admin API of a replica; raise unless it answers 200."""
    answer = httpx.post(
        f"{url}/emulator/v1/{method}", json=document, headers={"x-admin-key": ADMIN_KEY}
    )
    answer.raise_for_status()


def measure(
    setup: str, postgres: Postgres, workdir: pathlib.Path, args: argparse.Namespace, number: int
) -> list[Measurement]:
    """Run both workloads on a fresh store of one setup; check what it stored."""
    db = _store(setup, postgres, workdir, number)
    seed = write_seed(workdir / "decision-seed.json")
    replicas = _start(db, 2 if setup == "postgres-2" else 1, seed, workdir)
    database = postgres.postmaster_pid()
    measured = []
    try:
        for workload in args.workloads.split(","):
            served_before = _served_rows(db)
            server_before = replicas.cpu_seconds()
            database_before = tree_cpu_seconds(database) if setup != "sqlite" and database else 0
            loads = _load(replicas, workload, args.requests, args.connections, args.time_limit)
            server_cpu = replicas.cpu_seconds() - server_before
            database_cpu = (
                tree_cpu_seconds(database) - database_before
                if setup != "sqlite" and database
                else 0.0
            )
            measured.append(Measurement(setup, workload, loads, server_cpu, database_cpu))
            if workload != "log":
                answered = sum(load.served for load in loads)
                measured[-1].served_missing = answered - (_served_rows(db) - served_before)
    finally:
        replicas.stop()
    stored = stored_tracking_ids(db)
    for found in measured:
        if found.workload == "log":
            for index, load in enumerate(found.loads):
                checked = reconcile(load, stored, f"log-{index}")
                found.lost += checked.lost
                found.duplicated += checked.duplicated
    return measured


def _median(runs: list[Measurement]) -> Measurement:
    ordered = sorted(runs, key=lambda run: run.throughput)
    return ordered[(len(ordered) - 1) // 2]


def report(runs: dict[tuple[str, str], list[Measurement]], args: argparse.Namespace) -> str:
    """Return the Markdown report: the table, the target, and the paper estimate."""
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    best = {key: _median(found) for key, found in runs.items()}
    lines = [
        "# Replicas on PostgreSQL",
        "",
        f"Written by `make bench-replicas` on {now}: {args.requests:,} requests per setup and "
        f"workload, {args.connections} connections in all (two replicas: half each, from a "
        f"generator each), {args.rounds} round(s), the median round shown. The world of "
        "`bench/decision_world.py` (24 LIVE treatments, 1,000 users with 20 interactions "
        "each, written through the store's own API) on a fresh store per setup; PostgreSQL "
        f"{_postgres_version()} is a throwaway server on the same machine with fsync on "
        "(`tools/postgres.py`). Server CPU sums the replicas' process trees (the SQLite "
        "server's includes its writer process); database CPU is PostgreSQL's whole process "
        f"tree. Machine: {os.cpu_count()} CPUs, {platform.python_implementation()} "
        f"{platform.python_version()} on {platform.system()}; every process (generators, "
        "servers, PostgreSQL) shares it.",
        "",
        "| setup | method | requests/s | p99 ms | server CPU µs/request "
        "| database CPU µs/request | lost | answers |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for (setup, workload), found in best.items():
        statuses: dict[str, int] = {}
        for load in found.loads:
            for status, count in load.statuses.items():
                statuses[status] = statuses.get(status, 0) + count
        database = "-" if setup == "sqlite" else f"{found.per_request_us(found.database_cpu):.0f}"
        lost = found.lost + found.duplicated + max(found.served_missing, 0)
        lines.append(
            f"| {_TITLES[setup]} | {_METHODS[workload]} | {found.throughput:,.0f} "
            f"| {found.p99:.1f} | {found.per_request_us(found.server_cpu):.0f} | {database} "
            f"| {lost} | {', '.join(f'{n:,} {s}' for s, n in sorted(statuses.items()))} |"
        )
    lines += _target(runs) + _paper(best)
    return "\n".join(lines) + "\n"


def _postgres_version() -> str:
    return postgres_bin().parent.name


def _target(runs: dict[tuple[str, str], list[Measurement]]) -> list[str]:
    sqlite = runs.get(("sqlite", "log"), [])
    postgres = runs.get(("postgres-1", "log"), [])
    if not sqlite or not postgres:
        return []
    ratios = [p.throughput / s.throughput for s, p in zip(sqlite, postgres, strict=False)]
    ordered = sorted(ratios)
    median = ordered[(len(ordered) - 1) // 2]
    verdict = "met" if median >= 0.5 else "NOT met"
    return [
        "",
        "## Target",
        "",
        f"- One replica on PostgreSQL, LogTreatmentInteraction, against one on SQLite in the "
        f"same round: **{median:.0%}** (rounds: {', '.join(f'{r:.0%}' for r in ratios)}); "
        f"target ≥ 50%: {verdict}.",
    ]


def _paper(best: dict[tuple[str, str], Measurement]) -> list[str]:
    """Return what N machines would give, from the CPU per request measured here."""
    lines = [
        "",
        "## N machines, on paper",
        "",
        "From the CPU per request measured above (two replicas, so that the sync and the "
        "group commit pay for sharing), with one server process per core on the replicas' "
        "machines and one PostgreSQL machine: the replicas scale out, PostgreSQL does not.",
        "",
        "| method | server µs/request | database µs/request | requests/s per replica core "
        "| requests/s per database core | replica cores one database core keeps up with |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for workload in WORKLOADS:
        found = best.get(("postgres-2", workload)) or best.get(("postgres-1", workload))
        if found is None or not found.requests:
            continue
        server = found.per_request_us(found.server_cpu)
        database = found.per_request_us(found.database_cpu)
        lines.append(
            f"| {_METHODS[workload]} | {server:.0f} | {database:.0f} | {1e6 / server:,.0f} "
            f"| {1e6 / database:,.0f} | {server / database:.1f} |"
        )
    lines += [
        "",
        "A database with K cores keeps up with about K times the last column of replica "
        "cores, while its one WAL stream keeps up: every commit's WAL is written and flushed "
        "in order by one writer (group commit puts many transactions in one flush, and each "
        "replica's batch is one statement). Past that, the known ways: partition by project "
        "(a database per group of projects, the replicas routing by `projectId`: nothing a "
        "decision reads crosses projects), `synchronous_commit = off` where losing the last "
        "moments of acknowledged writes in a crash of the database is acceptable, or a "
        "distributed engine on the same wire protocol, which needs the watermark of "
        "docs/replicas.md rebuilt on its own commit timestamps (`pg_current_snapshot` and "
        "`xid8` are PostgreSQL's).",
    ]
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, print the report and write it to ``--out``."""
    parser = argparse.ArgumentParser(prog="python -m bench.bench_replicas", description=__doc__)
    parser.add_argument("--requests", type=int, default=40_000, help="per setup and workload")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--time-limit", type=float, default=300.0, help="seconds per load")
    parser.add_argument("--setups", default=",".join(SETUPS))
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--out", type=pathlib.Path, default=RESULTS)
    args = parser.parse_args(argv)
    unknown = set(args.workloads.split(",")) - set(WORKLOADS)
    if unknown:
        parser.error(f"--workloads: {', '.join(sorted(unknown))} not among {', '.join(WORKLOADS)}")
    chosen = [setup for setup in SETUPS if setup in args.setups.split(",")]
    runs: dict[tuple[str, str], list[Measurement]] = {}
    with (
        tempfile.TemporaryDirectory(prefix="bench-replicas-") as tmp,
        running_postgres(_POSTGRES_SETTINGS) as postgres,
    ):
        number = 0
        for round_number in range(args.rounds):
            for setup in chosen:
                number += 1
                for found in measure(setup, postgres, pathlib.Path(tmp), args, number):
                    runs.setdefault((found.setup, found.workload), []).append(found)
                    print(
                        f"round {round_number + 1}: {_TITLES[setup]}, {_METHODS[found.workload]}: "
                        f"{found.throughput:,.0f} requests/s",
                        file=sys.stderr,
                        flush=True,
                    )
    publish(report(runs, args), args.out)
    faulty = [
        found
        for measured in runs.values()
        for found in measured
        if found.server_errors or found.lost or found.duplicated or found.served_missing
    ]
    for found in faulty:
        print(f"FAILED: {_TITLES[found.setup]}, {_METHODS[found.workload]}: {found}")
    return 1 if faulty else 0


if __name__ == "__main__":
    sys.exit(main())
