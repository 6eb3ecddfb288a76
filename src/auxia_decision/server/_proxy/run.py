"""``auxia-decision proxy`` and ``auxia-decision drift-check``: start-up, the run, the summary."""

from __future__ import annotations

import asyncio
import errno
import os
import pathlib
import resource
import signal
import sys
from dataclasses import dataclass
from typing import IO, Final

from auxia_decision.server._proxy.checks import check_exchange, method_of
from auxia_decision.server._proxy.findings import Report, Tally
from auxia_decision.server._proxy.forward import ProxyApp, Upstream, UpstreamUrlError
from auxia_decision.server._proxy.recording import (
    Exchange,
    RecordingError,
    read_recording,
    redacted_line,
)
from auxia_decision.server._transport.http import HttpLimits, protocol_with
from auxia_decision.server._transport.runtime import bound_socket, start_rest

DEFAULT_PORT: Final = 8081
NAME: Final = "auxia-decision proxy"


class ProxyStartupError(Exception):
    """The proxy cannot start: one line naming the thing."""


@dataclass(frozen=True)
class ProxyConfig:
    """What the proxy forwards to, where it listens and what it writes."""

    upstream: str
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    report: pathlib.Path | None = None
    """Where findings go, as JSON lines (appended); None: only the summary."""
    record: pathlib.Path | None = None
    """Where exchanges go, as JSON lines (appended), keys redacted; None: nowhere."""
    timeout: float = 30.0
    """The seconds the upstream has to answer a call."""


class _Inspector:
    """Checks each exchange, reports its findings and records it."""

    def __init__(self, report: Report, record: IO[str] | None) -> None:
        self.report = report
        self._record = record

    def __call__(self, exchange: Exchange, failure: str) -> None:
        self.report.add(check_exchange(exchange, failure))
        if self._record is not None:
            named = exchange._replace(method=method_of(exchange))
            self._record.write(redacted_line(named))
            self._record.flush()


def _open(path: pathlib.Path | None, what: str) -> IO[str] | None:
    """Open a file to append to, created readable by its owner alone (bodies may be personal)."""
    if path is None:
        return None
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        return os.fdopen(descriptor, "a", encoding="utf-8")
    except OSError as error:
        msg = f"the {what} file {path} cannot be written: {error.strerror}"
        raise ProxyStartupError(msg) from None


async def run_proxy(config: ProxyConfig, out: IO[str] = sys.stdout) -> Tally:
    """Forward calls until SIGINT or SIGTERM; return what was found.

    Prints one line once it listens (its URL and the upstream's). Raises
    ProxyStartupError, one line, when the upstream URL is not one, the port
    cannot be bound or a file cannot be written; nothing is left open.
    """
    try:
        upstream = Upstream.parse(config.upstream)
    except UpstreamUrlError as error:
        raise ProxyStartupError(str(error)) from None
    opened: list[IO[str]] = []
    try:
        report_file = _open(config.report, "report")
        if report_file is not None:
            opened.append(report_file)
        record_file = _open(config.record, "record")
        if record_file is not None:
            opened.append(record_file)
        try:
            sock = bound_socket(config.host, config.port)
        except OSError as error:
            reason = "it is in use" if error.errno == errno.EADDRINUSE else error.strerror
            msg = f"the proxy port {config.host}:{config.port} cannot be bound: {reason}"
            raise ProxyStartupError(msg) from None
        report = Report(report_file)
        app = ProxyApp(upstream, _Inspector(report, record_file), config.timeout)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        try:
            descriptors = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
            protocol = protocol_with(HttpLimits(), descriptors)
            server, task = await start_rest(app, sock, protocol, default_headers=False)
            port = sock.getsockname()[1]
            host = f"[{config.host}]" if ":" in config.host else config.host
            print(f"{NAME}: http://{host}:{port} -> {upstream.url}", file=out, flush=True)
            await stop.wait()
            server.should_exit = True
            await task
        finally:
            sock.close()
            app.close()
        return report.tally
    finally:
        for stream in opened:
            stream.close()


def drift_check(recording: pathlib.Path, out: IO[str] = sys.stdout) -> Tally:
    """Check every exchange of a recording against the installed schema; print the findings.

    Exchanges the upstream failed (the proxy answered 502 or 504) are counted
    but not checked: they say nothing of the schema. Raises RecordingError
    naming the file and line that is not a recorded exchange, or OSError.
    """
    tally = Tally()
    with recording.open(encoding="utf-8") as stream:
        for exchange in read_recording(stream, str(recording)):
            findings = [] if exchange.error else check_exchange(exchange)
            tally.add(findings)
            out.write("".join(found.json_line() for found in findings))
    return tally


__all__ = ["ProxyConfig", "ProxyStartupError", "RecordingError", "drift_check", "run_proxy"]
