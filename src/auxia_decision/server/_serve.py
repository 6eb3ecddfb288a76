"""``auxia-decision serve``: run the server until told to stop, telling its starter where it is.

Once both ports serve it prints a banner for people (``ready_message``) and,
when asked, writes the ready file of the start contract (``_ready``) for
programs. It stops cleanly on SIGINT or SIGTERM and, with
``exit_with_parent``, when the process that started it is gone.
"""

from __future__ import annotations

import asyncio
import gc
import os
import pathlib
import signal
import stat
import sys
from typing import Final

from auxia_decision.server._assembly import RunningServer, ServerConfig, start_server
from auxia_decision.server._emulator.console import PREFIX as CONSOLE
from auxia_decision.server._ready import (
    ReadyFileError,
    ReadyInfo,
    check_writable,
    remove_ready_file,
    write_ready_file,
)
from auxia_decision.server._startup import StartupError, redacted

PARENT_POLL_SECONDS: Final = 0.25
"""How often the server looks for its parent with ``exit_with_parent``."""


def ready_message(running: RunningServer) -> str:
    """Return what ``serve`` prints once it listens: addresses and a curl line to paste."""
    rest = f"http://{running.host}:{running.rest_port}"
    return "\n".join(
        [
            f"auxia-decision: REST on {rest}",
            f"auxia-decision: gRPC on {running.host}:{running.grpc_port} "
            "(health checking and reflection on)",
            "Try:",
            f"  curl -sS -X POST {rest}/v1/LogTreatmentInteraction \\",
            "    -H 'Content-Type: application/json' -H 'x-api-key: TEST_API_KEY' \\",
            '    -d \'{"projectId": "PROJECT_ID", "treatmentTrackingId": "T1", '
            '"interactionType": "VIEWED", "interactionTimeMicros": "1732312345123456"}\'',
            f"  buf curl --http2-prior-knowledge --protocol grpc "
            f"http://{running.host}:{running.grpc_port}/"
            "io.auxia.decision.model.TreatmentManagementService/GetDataFields \\",
            '    -H \'x-api-key: API_KEY\' -d \'{"projectId": "PROJECT_ID", '
            '"dataFieldParams": [{"userAttributeDataFieldParams": '
            '{"propertyName": "country"}}]}\'',
            f"auxia-decision: console on {rest}{CONSOLE} (the seed's admin key opens it)",
            f"auxia-decision: emulator admin API on {rest}/emulator/v1/ and gRPC "
            "(x-admin-key: see the seed), health on /healthz",
            "auxia-decision: ready (Ctrl-C to stop)",
        ]
    )


async def serve(
    config: ServerConfig,
    *,
    ready_file: pathlib.Path | None = None,
    exit_with_parent: bool = False,
) -> None:
    """Run the server until SIGINT or SIGTERM, then stop it cleanly.

    Args:
        config: where the server listens and what it stores.
        ready_file: where to write the ready file once both ports serve
            (removed on stop); None: no file.
        exit_with_parent: also stop, as on SIGTERM, once the process that
            started this one is gone (however it ended), or once standard input
            is closed when it is a pipe.

    Raises StartupError, one line, when the server cannot start or the ready
    file cannot be written; nothing is left running.

    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    if exit_with_parent:
        _stop_with_parent(loop, stop)
    if ready_file is not None:
        try:
            check_writable(ready_file)
        except ReadyFileError as error:
            raise StartupError(str(error)) from None
        remove_ready_file(ready_file, os.getpid())
    running = await start_server(config)
    migration = running.store.migration
    if migration is not None:
        print(
            f"auxia-decision: migrated the database {redacted(config.db)} from schema version "
            f"{migration.from_version} to {migration.to_version} ({migration.rows:,} rows) "
            f"in {migration.seconds:.1f} s",
            file=sys.stderr,
            flush=True,
        )
    info = ReadyInfo.of(running.host, running.rest_port, running.grpc_port, running.seed)
    # What start-up made (modules, codecs, the seed's configuration) lives as
    # long as the process: out of the garbage collector's full collections,
    # whose pauses would otherwise grow with it (bench/NOTES.md, "Cold reads").
    gc.freeze()
    try:
        # The banner first: once the ready file is there, the banner is too.
        print(ready_message(running), flush=True)
        if ready_file is not None:
            try:
                write_ready_file(ready_file, info)
            except ReadyFileError as error:
                raise StartupError(str(error)) from None
        await stop.wait()
        print("auxia-decision: stopping", file=sys.stderr, flush=True)
    finally:
        await running.stop()
        if ready_file is not None:
            remove_ready_file(ready_file, info.pid)


def _stop_with_parent(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    """Set ``stop`` once this process's parent is gone, or its stdin (a pipe) is closed.

    A parent that dies, even by SIGKILL, leaves this process to another
    parent (init, or a subreaper): its parent's id changes. A closed pipe on
    standard input is seen at once.
    """
    parent = os.getppid()

    def look() -> None:
        if os.getppid() != parent:
            stop.set()
        else:
            loop.call_later(PARENT_POLL_SECONDS, look)

    look()
    try:
        is_pipe = stat.S_ISFIFO(os.fstat(0).st_mode)
    except OSError:
        is_pipe = False
    if is_pipe:

        def read_stdin() -> None:
            try:
                data = os.read(0, 4096)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                loop.remove_reader(0)
                stop.set()

        os.set_blocking(0, False)
        loop.add_reader(0, read_stdin)
