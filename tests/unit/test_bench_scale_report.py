"""``make bench-scale``'s report: how each figure grows is told with the run's own figures."""

from __future__ import annotations

import argparse

from bench.bench_scale import Scale, report
from tools.loadgen import LoadResult


def _load(per_second: float, p99: float) -> LoadResult:
    requests = 20_000
    return LoadResult(
        transport="rest",
        requests=requests,
        acknowledged=list(range(requests)),
        statuses={"200": requests},
        elapsed=requests / per_second,
        latency_ms={"p50": p99 / 2, "p90": p99 / 1.5, "p99": p99, "max": p99 * 2},
        cpu_seconds=1.0,
    )


def _world(users: int, mib: float, cold: float, warm: float) -> Scale:
    return Scale(
        users=users,
        interactions=users * 20,
        build_seconds=1.0,
        database_mib=mib,
        start_seconds=0.4,
        rss_ready=85,
        rss_cold=85 + min(users, 20_000) / 1_000,
        rss_warm=86 + min(users, 20_000) / 1_000,
        cold=_load(cold, 12.0),
        warm=_load(warm, 9.0),
        writes=_load(20_000, 8.0),
        reset_seconds=0.12,
        delete_seconds=users / 1e6,
    )


def _growth(text: str) -> str:
    after = text.partition("## How each figure grows, and why\n\n")[2]
    return after.partition("\n\n## Targets")[0]


def test_each_figure_s_growth_is_told_with_the_run_s_figures() -> None:
    scales = [
        _world(1_000, 20_000 * 180 / 2**20, 12_000, 12_000),
        _world(100_000, 400, 6_000, 11_000),
    ]
    growth = _growth(report(scales, argparse.Namespace(decisions=20_000, writes=20_000)))
    told = [
        "For 1,000 and 100,000 users",
        # 400 MiB against 3.4 MiB, for 1,980,000 more interactions
        "210 bytes an interaction from each world to the next",
        "(+2 and +21 MiB), at most 20,000 here",
        "(12,000 and 11,000/s)",
        "(100% and 55% of the warm pass)",
        "deleting the file grows with its size (0.00 and 0.10 s)",
    ]
    assert [figures for figures in told if figures not in growth] == []


def test_a_run_that_measured_no_world_to_the_end_says_so() -> None:
    unfinished = Scale(users=1_000, interactions=20_000, build_seconds=1.0)
    text = report([unfinished], argparse.Namespace(decisions=20_000, writes=20_000))
    assert _growth(text) == "No world was measured to the end."
