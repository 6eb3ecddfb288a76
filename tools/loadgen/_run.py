"""Running a load: in this process, or in another one whose JSON result is collected."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, Final

from auxia_decision.server import run_event_loop
from tools.loadgen._http1 import run_rest
from tools.loadgen._http2 import run_grpc
from tools.loadgen._requests import DEFAULT_KEY, tracking_id
from tools.loadgen._tally import LoadResult, Tally, percentiles

_GRACE_SECONDS: Final = 10.0
_ROOT: Final = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def generate(
    transport: str,
    address: str,
    *,
    requests: int,
    connections: int,
    time_limit: float,
    key: str = DEFAULT_KEY,
    tag: str = "load",
    channels: int = 4,
    workload: str = "log",
    users: int = 1000,
    user_stride: int = 1,
) -> LoadResult:
    """Run one closed-loop load in this process and return what it saw.

    ``workload`` is ``log`` (LogTreatmentInteraction, REST or gRPC) or
    ``decide`` (GetTreatments over REST, for ``users`` users, request ``i``
    of user ``i * user_stride`` modulo ``users``).
    """
    tally = Tally(total=requests, deadline=time.monotonic() + time_limit)
    cpu_before = os.times()
    started = time.perf_counter()
    if transport == "rest":
        runner = run_rest(
            address,
            tally,
            connections,
            key=key,
            tag=tag,
            workload=workload,
            users=users,
            user_stride=user_stride,
        )
    else:
        runner = run_grpc(
            address, tally, connections=connections, key=key, tag=tag, channels=channels
        )
    # A server that stops answering must not hang the run: past its time
    # limit and a grace period, what is still unanswered counts as lost.
    run_event_loop(_bounded(runner, time_limit + _GRACE_SECONDS))
    elapsed = time.perf_counter() - started
    unanswered = tally.next_index - sum(tally.statuses.values())
    if unanswered > 0:
        tally.statuses["no answer"] = tally.statuses.get("no answer", 0) + unanswered
        tally.first_failure = tally.first_failure or "no answer within the time limit"
    cpu_after = os.times()
    return LoadResult(
        transport=transport,
        requests=tally.next_index,
        acknowledged=sorted(tally.acknowledged),
        statuses=dict(sorted(tally.statuses.items())),
        elapsed=elapsed,
        latency_ms=percentiles(tally.latencies_ns),
        cpu_seconds=(cpu_after.user - cpu_before.user) + (cpu_after.system - cpu_before.system),
        first_failure=tally.first_failure,
        served=tally.served,
    )


async def _bounded(runner: Coroutine[Any, Any, None], seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(runner, seconds)


def spawn(
    transport: str,
    address: str,
    *,
    requests: int,
    connections: int,
    time_limit: float,
    key: str = DEFAULT_KEY,
    tag: str = "load",
    workload: str = "log",
    users: int = 1000,
    user_stride: int = 1,
) -> subprocess.Popen[str]:
    """Start ``generate`` in a separate Python process; ``collect`` returns its result."""
    command = [
        sys.executable,
        "-m",
        "tools.loadgen",
        transport,
        address,
        "--requests",
        str(requests),
        "--connections",
        str(connections),
        "--time-limit",
        str(time_limit),
        "--key",
        key,
        "--tag",
        tag,
        "--workload",
        workload,
        "--users",
        str(users),
        "--user-stride",
        str(user_stride),
    ]
    return subprocess.Popen(  # noqa: S603  # our own interpreter and module
        command, cwd=_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def collect(process: subprocess.Popen[str], timeout: float) -> LoadResult:
    """Wait for a spawned generator and return its result (kill it past ``timeout``)."""
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        msg = f"the load generator did not finish within {timeout} s:\n{err}"
        raise RuntimeError(msg) from None
    if process.returncode != 0:
        msg = f"the load generator failed ({process.returncode}):\n{err}"
        raise RuntimeError(msg)
    return LoadResult(**json.loads(out))


def run_in_process(
    transport: str,
    address: str,
    *,
    requests: int,
    connections: int,
    time_limit: float,
    key: str = DEFAULT_KEY,
    tag: str = "load",
    workload: str = "log",
    users: int = 1000,
    user_stride: int = 1,
) -> LoadResult:
    """Run ``generate`` in a separate Python process and return its result."""
    process = spawn(
        transport,
        address,
        requests=requests,
        connections=connections,
        time_limit=time_limit,
        key=key,
        tag=tag,
        workload=workload,
        users=users,
        user_stride=user_stride,
    )
    return collect(process, timeout=time_limit + 2 * _GRACE_SECONDS + 30)


@dataclass(frozen=True)
class Reconciliation:
    """What a store holds of one run, request by request, against what was acknowledged."""

    acknowledged: int
    stored: int
    """Rows of the run in the store."""
    lost: int
    """Acknowledged requests with no row."""
    duplicated: int
    """Rows beyond the first of a request."""
    stored_unacknowledged: int
    """Requests with a row whose answer never reached the generator (allowed: not lost)."""

    @property
    def exact(self) -> bool:
        """Whether every acknowledged request has exactly one row, and nothing else is stored."""
        return self.lost == 0 and self.duplicated == 0 and self.stored_unacknowledged == 0


def reconcile(result: LoadResult, stored_ids: list[str], tag: str) -> Reconciliation:
    """Compare the rows of run ``tag`` with the requests it saw acknowledged."""
    prefix = f"{tag}-"
    counts = collections.Counter(i for i in stored_ids if i.startswith(prefix))
    acknowledged = {tracking_id(tag, index) for index in result.acknowledged}
    return Reconciliation(
        acknowledged=len(acknowledged),
        stored=sum(counts.values()),
        lost=len(acknowledged - counts.keys()),
        duplicated=sum(n - 1 for n in counts.values()),
        stored_unacknowledged=len(counts.keys() - acknowledged),
    )
