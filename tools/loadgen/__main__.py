"""``python -m tools.loadgen``: run a load against a loopback server, print its result as JSON."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict

from tools.loadgen import DEFAULT_KEY, generate


def main(argv: Sequence[str] | None = None) -> int:
    """Run a load from the command line and print its result as JSON."""
    parser = argparse.ArgumentParser(
        prog="python -m tools.loadgen",
        description="A closed-loop load generator (see tools/loadgen/README.md).",
    )
    parser.add_argument("transport", choices=["rest", "grpc"])
    parser.add_argument("address", help="http://HOST:PORT for rest, HOST:PORT for grpc")
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--time-limit", type=float, default=60.0, help="seconds")
    parser.add_argument("--key", default=DEFAULT_KEY)
    parser.add_argument("--tag", default="load")
    parser.add_argument("--workload", choices=["log", "decide"], default="log")
    parser.add_argument("--users", type=int, default=1000, help="users of the decide workload")
    parser.add_argument(
        "--user-stride", type=int, default=1, help="request i is of user i * stride mod users"
    )
    args = parser.parse_args(argv)
    if args.workload == "decide" and args.transport != "rest":
        parser.error("the decide workload runs over REST")
    host = args.address.removeprefix("http://").rpartition(":")[0]
    if host not in ("127.0.0.1", "localhost", "[::1]") and not host.startswith("127."):
        parser.error("the load generator only targets loopback addresses")
    result = generate(
        args.transport,
        args.address,
        requests=args.requests,
        connections=args.connections,
        time_limit=args.time_limit,
        key=args.key,
        tag=args.tag,
        workload=args.workload,
        users=args.users,
        user_stride=args.user_stride,
    )
    json.dump(asdict(result), sys.stdout)
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
