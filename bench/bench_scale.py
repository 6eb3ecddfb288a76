"""What the reference server costs as its store grows: start, memory, decisions, writes, Reset.

``make bench-scale`` runs it: for worlds of 1,000, 100,000 and 1,000,000
users (``--users``), each with 20 interactions logged over a fortnight
(``bench/decision_world.py``, written through the store's own API), it
starts ``auxia-decision serve`` on the world's file and measures the time to
ready (its ready file, then ``/healthz`` 200), the RSS of its processes once
ready, after 20,000 GetTreatments spread over all users (every user new to
the activity cache: cold) and after the same again (warm), the requests/s and
p99 of both, LogTreatmentInteraction/s, the database's size, and a Reset of
the whole server against deleting a copy of its files (made just before).
The report goes to
``bench/results/scale.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import itertools
import json
import os
import pathlib
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

import httpx

from auxia_decision.server import EmulatorAdmin
from auxia_decision.server._ready import ReadyInfo, wait_for_ready_file
from auxia_decision.server._storage.activity import DEFAULT_CAPACITY
from bench._report import publish
from bench.decision_world import HISTORY_PER_USER, write_history
from bench.decision_world import seed as world_seed
from tools.loadgen import LoadResult, is_server_error, run_in_process
from tools.processes import serve_command, tree_memory_mib

ROOT: Final = pathlib.Path(__file__).resolve().parent.parent
RESULTS: Final = ROOT / "bench" / "results" / "scale.md"
WORLDS: Final = (1_000, 100_000, 1_000_000)
DECISIONS: Final = 20_000
WRITES: Final = 20_000
CONNECTIONS: Final = 64
_TIME_LIMIT: Final = 300.0
_ADMIN_KEY: Final = "BENCH_ADMIN_KEY"


@dataclass
class Scale:
    """What one world measured."""

    users: int
    interactions: int
    build_seconds: float
    database_mib: float = 0.0
    start_seconds: float = 0.0
    rss_ready: float = 0.0
    rss_cold: float = 0.0
    rss_warm: float = 0.0
    cold: LoadResult | None = None
    warm: LoadResult | None = None
    writes: LoadResult | None = None
    reset_seconds: float = 0.0
    delete_seconds: float = 0.0


def measure(users: int, workdir: pathlib.Path, *, decisions: int, writes: int) -> Scale:
    """Build a world of ``users`` users, serve it, load it, reset it and delete it."""
    db = workdir / f"world-{users}.db"
    for stale in workdir.glob(f"world-{users}.db*"):
        stale.unlink()
    seed = workdir / "decision-seed.json"
    seed.write_text(json.dumps({**world_seed(), "adminKeys": [_ADMIN_KEY]}))
    started = time.perf_counter()
    written = write_history(db, users)
    scale = Scale(users, written, time.perf_counter() - started)
    ready_file = workdir / f"ready-{users}.json"
    log = (workdir / f"server-{users}.log").open("w")
    command = serve_command(db, "--seed", str(seed), "--ready-file", str(ready_file))
    started = time.perf_counter()
    server = subprocess.Popen(command, stdout=log, stderr=log)  # noqa: S603 - our own server
    try:
        info = wait_for_ready_file(ready_file, server, 600)
        if info is None:
            msg = f"the server did not start: see {log.name}"
            raise RuntimeError(msg)
        httpx.get(f"{info.rest_url}/healthz").raise_for_status()
        scale.start_seconds = time.perf_counter() - started
        scale.rss_ready = tree_memory_mib(server.pid)
        stride = max(1, users // decisions)
        for phase in ("cold", "warm"):
            load = run_in_process(
                "rest",
                info.rest_url,
                requests=decisions,
                connections=CONNECTIONS,
                time_limit=_TIME_LIMIT,
                tag=phase,
                workload="decide",
                users=users,
                user_stride=stride,
            )
            setattr(scale, phase, load)
            setattr(scale, f"rss_{phase}", tree_memory_mib(server.pid))
        scale.writes = run_in_process(
            "rest",
            info.rest_url,
            requests=writes,
            connections=CONNECTIONS,
            time_limit=_TIME_LIMIT,
            tag="writes",
        )
        scale.database_mib = _size_mib(db)
        scale.delete_seconds = _delete_a_copy(db)
        scale.reset_seconds = _reset(info)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=120)
        log.close()
    for file in workdir.glob(f"world-{users}.db*"):
        file.unlink()
    return scale


def _delete_a_copy(db: pathlib.Path) -> float:
    """Copy a database's files, then delete the copies; return how long deleting took."""
    copies = []
    for file in sorted(db.parent.glob(f"{db.name}*")):
        copy = file.with_name(f"copy-{file.name}")
        shutil.copyfile(file, copy)
        copies.append(copy)
    os.sync()  # the copies on disk, as the file is, not in the page cache only
    started = time.perf_counter()
    for copy in copies:
        copy.unlink()
    return time.perf_counter() - started


def _reset(info: ReadyInfo) -> float:
    """Reset the whole server through the admin API; return how long it took."""
    assert info.admin_key is not None
    admin = EmulatorAdmin(info.grpc_target, info.admin_key, timeout=600)
    try:
        started = time.perf_counter()
        admin.reset()
        return time.perf_counter() - started
    finally:
        admin.close()


def _size_mib(db: pathlib.Path) -> float:
    """Return the size of a database and its write-ahead log, in MiB."""
    return sum(path.stat().st_size for path in db.parent.glob(f"{db.name}*")) / 2**20


def _rate(load: LoadResult | None) -> str:
    return "-" if load is None else f"{load.throughput:,.0f}"


def _p99(load: LoadResult | None) -> str:
    return "-" if load is None else f"{load.latency_ms.get('p99', float('nan')):.1f}"


def report(scales: list[Scale], args: argparse.Namespace) -> str:
    """Return the Markdown report of a run."""
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# The reference server as its store grows",
        "",
        f"Written by `make bench-scale` on {now}: worlds of `bench/decision_world.py` "
        f"(24 LIVE treatments, {HISTORY_PER_USER} interactions per user over a fortnight, "
        "written through the store's own API), each served by `auxia-decision serve` on its "
        f"file with the default activity cache; {args.decisions:,} GetTreatments spread over "
        f"all users, twice (cold: every user new to the cache; warm: again), then "
        f"{args.writes:,} LogTreatmentInteraction, {CONNECTIONS} connections "
        "(`tools/loadgen`); RSS sums the server and its writer and reader processes; "
        '"deleting the file" deletes a copy of the database\'s files made before the Reset '
        "(written in one go, a copy may be quicker to delete than the file). Machine: "
        f"{os.cpu_count()} CPUs, {platform.python_implementation()} "
        f"{platform.python_version()} on {platform.system()}.",
        "",
        "| users | interactions | database MiB | start s | RSS ready MiB | RSS after cold "
        "| RSS after warm | GetTreatments/s cold | p99 ms cold | GetTreatments/s warm "
        "| p99 ms warm | LogTreatmentInteraction/s | Reset s | deleting the file s |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
        "| ---: | ---: |",
    ]
    for scale in scales:
        lines.append(
            f"| {scale.users:,} | {scale.interactions:,} | {scale.database_mib:,.0f} "
            f"| {scale.start_seconds:.2f} | {scale.rss_ready:.0f} | {scale.rss_cold:.0f} "
            f"| {scale.rss_warm:.0f} | {_rate(scale.cold)} | {_p99(scale.cold)} "
            f"| {_rate(scale.warm)} | {_p99(scale.warm)} | {_rate(scale.writes)} "
            f"| {scale.reset_seconds:.2f} | {scale.delete_seconds:.2f} |"
        )
    lines += ["", "## How each figure grows, and why", ""]
    lines += _growth(scales, args.decisions)
    lines += ["", "## Targets", ""]
    lines += _targets(scales)
    errors = sum(
        load.count(is_server_error) + load.statuses.get("no answer", 0)
        for scale in scales
        for load in (scale.cold, scale.warm, scale.writes)
        if load is not None
    )
    lines += ["", f"Server errors and unanswered requests over every run: {errors}."]
    return "\n".join(lines) + "\n"


def _each(scales: list[Scale], figure: Callable[[Scale], str]) -> str:
    """Return a figure of every world, in order of size: "a, b and c"."""
    return _each_figure([figure(scale) for scale in scales])


def _each_figure(figures: list[str]) -> str:
    return figures[0] if len(figures) == 1 else f"{', '.join(figures[:-1])} and {figures[-1]}"


def _growth(scales: list[Scale], decisions: int) -> list[str]:
    """Return how each figure of the table moves from world to world, and why, in this run."""
    measured = [s for s in scales if s.cold and s.warm and s.writes]
    if not measured:
        return ["No world was measured to the end."]
    users = _each(measured, lambda s: f"{s.users:,}")
    cached = min(decisions, max(s.users for s in measured))
    return [
        f"For {users} users, in this run: **the database** grows with what it holds, "
        f"{_bytes_an_interaction(measured)}: the request as stored, the columns rules and "
        "listings read, and an entry in each index (the table's own, by user, by tracking id, "
        "by project). "
        f"**Start** does not grow ({_each(measured, lambda s: f'{s.start_seconds:.2f}')} s): "
        "start-up reads the configuration and not one interaction. "
        f"**RSS once ready** does not either ({_each(measured, lambda s: f'{s.rss_ready:.0f}')} "
        "MiB); after the passes it has grown by the users they cached "
        f"({_each(measured, lambda s: f'+{s.rss_warm - s.rss_ready:.0f}')} MiB), at most "
        f'{cached:,} here, a few tuples and bytes each (bench/NOTES.md, "Cold reads"), and '
        f"never more than the cache's {DEFAULT_CAPACITY:,} (`--activity-cache-users`), "
        "whatever the store holds. "
        "**GetTreatments warm** barely moves "
        f"({_each(measured, lambda s: f'{s.warm.throughput if s.warm else 0:,.0f}')}/s): a "
        "cached user costs a decision the same in any store. **Cold** falls as the store grows "
        f"({_each(measured, lambda s: _share(s.cold, s.warm))} of the warm pass): each cold "
        "request waits for the reader process to read the user's rows by index and for the "
        "event loop to take them in, and a bigger file has more of its pages to find; the "
        "1,000-user world's cold pass is cold for its first 1,000 requests only. **p99** "
        f"follows the throughput: {CONNECTIONS} requests in flight at N/s wait "
        f'{CONNECTIONS}/N s on average (Little\'s law; bench/NOTES.md, "Cold reads"). '
        "**LogTreatmentInteraction** barely moves "
        f"({_each(measured, lambda s: f'{s.writes.throughput if s.writes else 0:,.0f}')}/s): "
        "a row goes at the end of its table, and into indexes one level deeper at most. "
        f"**A Reset** does not grow ({_each(measured, lambda s: f'{s.reset_seconds:.2f}')} s): "
        "it starts a new file and deletes the old one in the background, while deleting the "
        f"file grows with its size ({_each(measured, lambda s: f'{s.delete_seconds:.2f}')} s)."
    ]


def _bytes_an_interaction(scales: list[Scale]) -> str:
    """Return what the database grew by an interaction, from each world to the next."""
    if len(scales) == 1:
        (only,) = scales
        return f"{only.database_mib * 2**20 / only.interactions:,.0f} bytes an interaction"
    grown = [
        (big.database_mib - small.database_mib) * 2**20 / (big.interactions - small.interactions)
        for small, big in itertools.pairwise(scales)
    ]
    steps = [f"{step:,.0f}" for step in grown]
    return f"{_each_figure(steps)} bytes an interaction from each world to the next"


def _share(part: LoadResult | None, whole: LoadResult | None) -> str:
    """Return one pass's throughput as a share of another's."""
    if part is None or whole is None or not whole.throughput:
        return "-"
    return f"{part.throughput / whole.throughput:.0%}"


def _targets(scales: list[Scale]) -> list[str]:
    """Return each target of the scale issue that the run's worlds can check."""
    by_users = {scale.users: scale for scale in scales}
    base = by_users.get(1_000)
    found = []

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    big = by_users.get(100_000)
    if big is not None and big.cold is not None and big.warm is not None:
        rss = max(big.rss_cold, big.rss_warm)
        found.append(
            f"- 100,000 users: ready in **{big.start_seconds:.2f} s** (≤ 1 s: "
            f"{verdict(big.start_seconds <= 1)}); RSS at most **{rss:.0f} MiB** (≤ 250: "
            f"{verdict(rss <= 250)}); p99 "
            f"**{_p99(big.cold)} ms** cold, **{_p99(big.warm)} ms** warm (< 10: "
            f"{verdict(max(big.cold.latency_ms['p99'], big.warm.latency_ms['p99']) < 10)})"
        )
        if base is not None and base.warm is not None and base.cold is not None:
            warm = big.warm.throughput / base.warm.throughput
            cold = big.cold.throughput / base.cold.throughput
            cold_of_warm = big.cold.throughput / base.warm.throughput
            found.append(
                f"- 100,000 users' GetTreatments/s against the 1,000-user world's, pass by pass: "
                f"**{warm:.0%}** warm, **{cold:.0%}** cold (the 1,000 users' cold pass is cold "
                f"for its first 1,000 requests only; against their warm pass: "
                f"**{cold_of_warm:.0%}**) (≥ 80%: {verdict(warm >= 0.8)} warm, "
                f"{verdict(cold >= 0.8)} cold)"
            )
    huge = by_users.get(1_000_000)
    if huge is not None and huge.cold is not None:
        rss = max(huge.rss_cold, huge.rss_warm)
        found.append(
            f"- 1,000,000 users: RSS at most **{rss:.0f} MiB** (≤ 300: {verdict(rss <= 300)}); "
            f"p99 **{_p99(huge.cold)} ms** cold (< 15: "
            f"{verdict(huge.cold.latency_ms['p99'] < 15)}); Reset **{huge.reset_seconds:.2f} s** "
            f"against deleting the file **{huge.delete_seconds:.2f} s** (not longer: "
            f"{verdict(huge.reset_seconds <= huge.delete_seconds)})"
        )
    return found


def main(argv: Sequence[str] | None = None) -> int:
    """Run the scale benchmark and write its report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, nargs="+", default=list(WORLDS))
    parser.add_argument("--decisions", type=int, default=DECISIONS)
    parser.add_argument("--writes", type=int, default=WRITES)
    parser.add_argument("--output", type=pathlib.Path, default=RESULTS)
    args = parser.parse_args(argv)
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="bench-scale-"))
    try:
        scales = []
        for users in args.users:
            scale = measure(users, workdir, decisions=args.decisions, writes=args.writes)
            print(dataclasses.replace(scale, cold=None, warm=None, writes=None), flush=True)
            scales.append(scale)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    publish(report(scales, args), args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
