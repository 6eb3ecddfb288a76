"""The ``proxy`` and ``drift-check`` commands: the validation proxy, and re-checks of recordings.

Both load the server's parts only when run (the ``[server]`` extra).
"""

from __future__ import annotations

import argparse
import pathlib
import sys

from auxia_decision._cli_types import port, seconds
from auxia_decision._extras import require


def _proxy(args: argparse.Namespace) -> int:
    require("server", "uvicorn", "httptools")
    from auxia_decision.server._proxy.run import (  # noqa: PLC0415
        NAME,
        ProxyConfig,
        ProxyStartupError,
        run_proxy,
    )
    from auxia_decision.server._transport.runtime import run_event_loop  # noqa: PLC0415

    config = ProxyConfig(
        upstream=args.upstream,
        host=args.host,
        port=args.rest_port,
        report=args.report,
        record=args.record,
        timeout=args.timeout,
    )
    try:
        tally = run_event_loop(run_proxy(config))
    except ProxyStartupError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(tally.summary(NAME), file=sys.stderr, flush=True)
    return 0


def _drift_check(args: argparse.Namespace) -> int:
    from auxia_decision.server._proxy.run import RecordingError, drift_check  # noqa: PLC0415

    try:
        tally = drift_check(args.recording)
    except RecordingError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"error: cannot read {args.recording}: {error.strerror}", file=sys.stderr)
        return 2
    print(tally.summary(f"drift-check {args.recording}"), file=sys.stderr, flush=True)
    return 1 if tally.findings else 0


def add_proxy(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``proxy`` and ``drift-check`` commands."""
    proxy = commands.add_parser(
        "proxy",
        help="forward calls to an API and report where they depart from the schema",
        description="Forward every call unchanged to --upstream and answer its answers "
        "unchanged; report, as JSON lines, each way a request differs from what the local "
        "server accepts and each way an answer differs from the schema. Ctrl-C or SIGTERM "
        "stops it and prints a summary by method and kind (docs/proxy.md).",
    )
    proxy.add_argument(
        "--upstream", required=True, help="the API's URL (https://apis.auxia.io, http://...)"
    )
    proxy.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    proxy.add_argument("--rest-port", type=port, default=8081, help="default: %(default)s")
    proxy.add_argument(
        "--report",
        type=pathlib.Path,
        metavar="FILE",
        help="append each finding to FILE (JSON lines)",
    )
    proxy.add_argument(
        "--record",
        type=pathlib.Path,
        metavar="FILE",
        help="append each exchange to FILE (JSON lines, keys redacted), for drift-check",
    )
    proxy.add_argument(
        "--timeout",
        type=seconds,
        default=30.0,
        help="seconds the upstream has to answer; then the caller gets 504 (default: %(default)s)",
    )
    proxy.set_defaults(run=_proxy)
    check = commands.add_parser(
        "drift-check",
        help="re-check a recording of proxy --record against the installed schema",
        description="Check every exchange of a recording as the proxy would now: print each "
        "finding as a JSON line, a summary on standard error; exit 1 if any.",
    )
    check.add_argument("recording", type=pathlib.Path, help="the file proxy --record wrote")
    check.set_defaults(run=_drift_check)
