"""GetTreatments through the validation proxy against the same server called directly.

``make bench-proxy`` runs it: the reference server starts in the decision
world of ``bench/decision_world.py`` (as ``make bench-server``'s GetTreatments
target) and ``auxia-decision proxy`` in front of it, each a process on
127.0.0.1, the proxy writing its report. Then, round after round, the same
load generator (``tools.loadgen``, another process) calls the server directly
and through the proxy, back to back: with one connection for the latency
each call gains (p50 through the proxy less p50 direct), and with
``--connections`` for throughput (through the proxy over direct). A single
GetTreatments call waits for its decision's commit, which hides small
delays, so the latency is also measured in front of the bare ASGI app of
``bench/peers`` (it answers at once): there the proxy's own share shows. The median
round is reported; the report goes to ``bench/results/proxy.md``. It exits 1
when an answer is not 200 (the proxy's 502/504 included).
"""

from __future__ import annotations

import argparse
import datetime
import os
import pathlib
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from bench._report import publish
from bench.bench_server import TARGETS, USERS, ServerProcess
from bench.decision_world import write_history, write_seed
from tools.loadgen import LoadResult, run_in_process
from tools.processes import tree_cpu_seconds

ROOT: Final = pathlib.Path(__file__).resolve().parent.parent
RESULTS: Final = ROOT / "bench" / "results" / "proxy.md"
CLI: Final = pathlib.Path(sys.executable).parent / "auxia-decision"
LATENCY_TARGET_MS: Final = 1.0
THROUGHPUT_TARGET: Final = 0.5
_DECIDE: Final = next(target for target in TARGETS if target.key == "decide")
_CEILING: Final = next(target for target in TARGETS if target.key == "asgi-decide")


class ProxyProcess:
    """``auxia-decision proxy`` in front of an upstream, on a free loopback port."""

    def __init__(self, upstream: str, report: pathlib.Path) -> None:
        self.process = subprocess.Popen(  # noqa: S603 - our own executable
            [
                str(CLI),
                "proxy",
                "--upstream",
                upstream,
                "--rest-port",
                "0",
                "--report",
                str(report),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        banner = self.process.stdout.readline()
        if not banner.startswith("auxia-decision proxy: http://"):
            self.process.kill()
            msg = f"the proxy did not start: {banner}{self.process.communicate()[1]}"
            raise RuntimeError(msg)
        self.url = banner.split()[2]

    def stop(self) -> str:
        """Stop it with SIGTERM; return its summary."""
        self.process.send_signal(signal.SIGTERM)
        _, err = self.process.communicate(timeout=30)
        return err


@dataclass
class Round:
    """One round: latency (one connection) and throughput, direct and through the proxy."""

    direct_latency: LoadResult
    proxied_latency: LoadResult
    bare_latency: LoadResult
    proxied_bare_latency: LoadResult
    direct: LoadResult
    proxied: LoadResult
    proxy_cpu_us: float
    """The proxy's CPU time per request of the throughput run."""

    @property
    def added_p50_ms(self) -> float:
        """Return what the proxy adds to the p50 latency of one call."""
        return self.proxied_latency.latency_ms["p50"] - self.direct_latency.latency_ms["p50"]

    @property
    def added_p50_bare_ms(self) -> float:
        """Return what the proxy adds to the p50 latency of one call to the bare app."""
        return self.proxied_bare_latency.latency_ms["p50"] - self.bare_latency.latency_ms["p50"]

    @property
    def throughput_ratio(self) -> float:
        """Return throughput through the proxy over throughput direct."""
        return self.proxied.throughput / self.direct.throughput


def _load(address: str, requests: int, connections: int, time_limit: float) -> LoadResult:
    return run_in_process(
        "rest",
        address,
        requests=requests,
        connections=connections,
        time_limit=time_limit,
        tag="run",
        workload="decide",
    )


def _proxied(proxy: ProxyProcess, args: argparse.Namespace) -> tuple[LoadResult, float]:
    """Load the proxy; return the load and the proxy's CPU seconds meanwhile."""
    before = tree_cpu_seconds(proxy.process.pid)
    proxied = _load(proxy.url, args.requests, args.connections, args.time_limit)
    return proxied, tree_cpu_seconds(proxy.process.pid) - before


def measure(args: argparse.Namespace, workdir: pathlib.Path) -> tuple[list[Round], str]:
    """Run the rounds; return them and the proxy's summary."""
    db = workdir / "decide.db"
    seed = write_seed(workdir / "decision-seed.json")
    write_history(db, USERS)
    server = ServerProcess(_DECIDE, db, workdir / "server.log", seed)
    bare = ServerProcess(_CEILING, workdir / "bare.db", workdir / "bare.log", None)
    rounds = []
    try:
        proxy = ProxyProcess(server.address, workdir / "report.jsonl")
        bare_proxy = ProxyProcess(bare.address, workdir / "bare-report.jsonl")
        try:
            for address in (server.address, proxy.url, bare.address, bare_proxy.url):  # warm-up
                _load(address, args.warmup, args.connections, args.time_limit)
            for number in range(args.rounds):
                one = [
                    _load(address, args.latency_requests, 1, args.time_limit)
                    for address in (server.address, proxy.url, bare.address, bare_proxy.url)
                ]
                # Every other round goes through the proxy first: neither side of the ratio
                # always runs second on a machine whose speed drifts.
                if number % 2:
                    proxied, cpu = _proxied(proxy, args)
                    direct = _load(server.address, args.requests, args.connections, args.time_limit)
                else:
                    direct = _load(server.address, args.requests, args.connections, args.time_limit)
                    proxied, cpu = _proxied(proxy, args)
                direct_one, proxied_one, bare_one, proxied_bare_one = one
                measured = Round(
                    direct_one,
                    proxied_one,
                    bare_one,
                    proxied_bare_one,
                    direct,
                    proxied,
                    cpu / proxied.requests * 1e6,
                )
                rounds.append(measured)
                print(
                    f"round {number + 1}: +{measured.added_p50_ms:.2f} ms p50 "
                    f"(+{measured.added_p50_bare_ms:.2f} ms in front of the bare app), "
                    f"{measured.throughput_ratio:.0%} throughput",
                    file=sys.stderr,
                    flush=True,
                )
        finally:
            bare_proxy.stop()
            summary = proxy.stop()
    finally:
        bare.stop()
        server.stop()
    return rounds, summary


def report(rounds: list[Round], summary: str, args: argparse.Namespace) -> str:
    """Return the Markdown report."""
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    median = sorted(rounds, key=lambda r: r.throughput_ratio)[(len(rounds) - 1) // 2]
    added = statistics.median(r.added_p50_ms for r in rounds)
    added_bare = statistics.median(r.added_p50_bare_ms for r in rounds)
    ratio = statistics.median(r.throughput_ratio for r in rounds)
    latency_verdict = "met" if max(added, added_bare) <= LATENCY_TARGET_MS else "NOT met"
    throughput_verdict = "met" if ratio >= THROUGHPUT_TARGET else "NOT met"
    lines = [
        "# GetTreatments through the validation proxy",
        "",
        f"Written by `make bench-proxy` on {now}: the reference server in the world of "
        "`bench/decision_world.py` and `auxia-decision proxy --report FILE` in front of it, "
        "each a process on 127.0.0.1; the load generator `tools/loadgen` (GetTreatments, "
        "closed loop) calls the server directly and through the proxy back to back, "
        f"{args.latency_requests:,} calls on one connection for latency, then "
        f"{args.requests:,} calls on {args.connections} keep-alive connections for "
        f"throughput, after {args.warmup:,} of warm-up each; {args.rounds} round(s), "
        "the median shown. Every call is checked by the proxy (request and answer) "
        "after its answer is sent. A single GetTreatments call waits for its decision's "
        "commit, which hides small delays: the latency is also measured in front of the bare "
        "ASGI app of `bench/peers` (GetTreatments bodies, answered `{}` at once), where the "
        "proxy's own share shows.",
        "",
        f"Machine: {os.cpu_count()} CPUs, {platform.python_implementation()} "
        f"{platform.python_version()} on {platform.system()}.",
        "",
        "| run | requests/s | p50 ms | p99 ms | answers |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for title, load in (
        ("direct, 1 connection", median.direct_latency),
        ("through the proxy, 1 connection", median.proxied_latency),
        ("bare ASGI app, 1 connection", median.bare_latency),
        ("bare ASGI app through the proxy, 1 connection", median.proxied_bare_latency),
        (f"direct, {args.connections} connections", median.direct),
        (f"through the proxy, {args.connections} connections", median.proxied),
    ):
        answers = ", ".join(f"{n:,} {status}" for status, n in load.statuses.items())
        lines.append(
            f"| {title} | {load.throughput:,.0f} | {load.latency_ms['p50']:.2f} "
            f"| {load.latency_ms['p99']:.2f} | {answers} |"
        )
    lines += [
        "",
        "## Against the targets",
        "",
        f"- Latency the proxy adds, p50, one connection: **{added:.2f} ms** to GetTreatments "
        "(rounds: "
        + ", ".join(f"{r.added_p50_ms:.2f}" for r in rounds)
        + f"), **{added_bare:.2f} ms** in front of the bare app (rounds: "
        + ", ".join(f"{r.added_p50_bare_ms:.2f}" for r in rounds)
        + f"); target ≤ {LATENCY_TARGET_MS:.0f} ms: {latency_verdict}",
        f"- Throughput through the proxy vs direct: **{ratio:.0%}** (rounds: "
        + ", ".join(f"{r.throughput_ratio:.0%}" for r in rounds)
        + f"); target ≥ {THROUGHPUT_TARGET:.0%}: {throughput_verdict}",
        f"- The proxy's CPU per call (throughput runs, median round): {median.proxy_cpu_us:.0f} µs",
        "",
        "The proxy's summary on exit (no finding expected: the generator's calls are valid):",
        "",
        "```",
        summary.strip(),
        "```",
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, print the report and write it to ``--out``."""
    parser = argparse.ArgumentParser(prog="python -m bench.bench_proxy", description=__doc__)
    parser.add_argument("--requests", type=int, default=20_000, help="per throughput run")
    parser.add_argument("--latency-requests", type=int, default=3_000, help="per latency run")
    parser.add_argument("--warmup", type=int, default=2_000)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--rounds", type=int, default=6, help="even: as many rounds go through the proxy first"
    )
    parser.add_argument("--time-limit", type=float, default=120.0, help="seconds per run")
    parser.add_argument("--out", type=pathlib.Path, default=RESULTS)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-proxy-") as tmp:
        rounds, summary = measure(args, pathlib.Path(tmp))
    publish(report(rounds, summary, args), args.out)
    failed = [
        load
        for measured in rounds
        for load in (measured.direct, measured.proxied)
        if set(load.statuses) != {"200"}
    ]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
