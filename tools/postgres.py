"""A throwaway PostgreSQL server: its own data folder, a free loopback port, gone after.

The tests' ``postgres`` fixture and ``make bench-replicas`` start one with
Debian's ``postgresql`` package (``initdb``, ``pg_ctl``). PostgreSQL refuses
to run as root: as root, its data folder is given to the ``postgres`` user
and its commands run as that user (``runuser``). It listens on 127.0.0.1
only, with its unix socket in its own folder, and trusts local connections:
nothing else on the machine is touched.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from typing import Final

SUPERUSER: Final = "postgres"
"""The superuser of the throwaway server (and the system user it runs as under root)."""
_START_SECONDS: Final = 60


def postgres_bin() -> pathlib.Path:
    """Return the folder of the newest installed PostgreSQL's programs (Debian's layout)."""
    found = sorted(
        pathlib.Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda path: int(path.parent.parent.name) if path.parent.parent.name.isdigit() else 0,
    )
    if not found:
        msg = (
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): "
            "apt-get install postgresql, or run make system-packages"
        )
        raise FileNotFoundError(msg)
    return found[-1].parent


def free_port() -> int:
    """Return a TCP port of 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Postgres:
    """A PostgreSQL server of its own, in a temporary folder, on a free loopback port.

    ``start`` makes and starts it; ``stop`` and ``start`` again restart it on
    the same port and data (an outage, as tests make one); ``close`` stops it
    and removes its folder.

    Args:
        settings: ``postgresql.conf`` settings given on its command line,
            beside the listening ones (``fsync=off`` for tests that need
            no crash of the machine survived).

    """

    def __init__(self, settings: dict[str, str] | None = None) -> None:
        self.bin = postgres_bin()
        self.folder = pathlib.Path(tempfile.mkdtemp(prefix="auxia-postgres-"))
        self.data = self.folder / "data"
        self.sockets = self.folder / "sockets"
        self.log = self.folder / "postgres.log"
        self.port = free_port()
        self.settings = dict(settings or {})
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            # PostgreSQL will not run as root: its folder and processes are postgres's.
            self._as_user = ["runuser", "-u", SUPERUSER, "--"]
            self.folder.chmod(0o755)
        self.sockets.mkdir()
        if self._as_user:
            shutil.chown(self.folder, SUPERUSER)
            shutil.chown(self.sockets, SUPERUSER)

    def url(self, database: str = SUPERUSER) -> str:
        """Return the URL of a database of this server, as ``serve --db`` takes it."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - PostgreSQL's own programs
            [*self._as_user, *args], capture_output=True, text=True, check=check, timeout=120
        )

    def start(self) -> None:
        """Make the server's data folder the first time, then start it and wait until it serves."""
        if not self.data.exists():
            self._run(
                str(self.bin / "initdb"),
                "-D",
                str(self.data),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            )
        options = [
            f"-p {self.port}",
            f"-k {self.sockets}",
            "-c listen_addresses=127.0.0.1",
            *(f"-c {name}={value}" for name, value in self.settings.items()),
        ]
        started = self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            " ".join(options),
            "-w",
            "-t",
            str(_START_SECONDS),
            "start",
            check=False,
        )
        if started.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            msg = f"PostgreSQL did not start: {started.stdout}{started.stderr}{log[-2000:]}"
            raise RuntimeError(msg)

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``immediate``: as by a crash, without a checkpoint)."""
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def running(self) -> bool:
        """Whether the server runs."""
        status = self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "status", check=False)
        return status.returncode == 0

    def postmaster_pid(self) -> int | None:
        """Return the server's main process id, or None when it does not run."""
        try:
            return int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def psql(self, sql: str, database: str = SUPERUSER) -> str:
        """Run SQL with psql as the superuser; return what it printed (unaligned, tuples only)."""
        result = self._run(
            str(self.bin / "psql"),
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            SUPERUSER,
            "-d",
            database,
            "-c",
            sql,
        )
        return result.stdout

    def create_database(self, name: str) -> str:
        """Create an empty database; return its URL."""
        self.psql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop a database, ending the sessions still connected to it."""
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        """Stop the server if it runs and remove its folder."""
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            if self.running():
                self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)


@contextlib.contextmanager
def running_postgres(settings: dict[str, str] | None = None) -> Iterator[Postgres]:
    """Run a throwaway PostgreSQL server for the duration of the block."""
    server = Postgres(settings)
    try:
        server.start()
        yield server
    finally:
        server.close()


def wait_until_serving(server: Postgres, timeout: float = 30.0) -> None:
    """Wait until the server accepts connections again (after ``start``)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            server.psql("SELECT 1")
        except subprocess.CalledProcessError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
        else:
            return


def settings_for_tests() -> dict[str, str]:
    """Return the settings of a test's server: quick, and losing nothing a process crash can lose.

    Without fsync, a commit survives PostgreSQL's own crash (its writes are
    in the kernel) but not the machine's: what the tests need, at less cost.
    """
    return {"fsync": "off", "full_page_writes": "off", "max_connections": "200"}


__all__: Sequence[str] = (
    "SUPERUSER",
    "Postgres",
    "free_port",
    "postgres_bin",
    "running_postgres",
    "settings_for_tests",
    "wait_until_serving",
)
