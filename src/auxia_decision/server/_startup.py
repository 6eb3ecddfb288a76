"""Start-up's checks: every reason the server cannot start, as one line naming the thing.

The seed, the database file, each port and the clock's start time are
checked here; what is wrong is a ``StartupError`` whose message is one line
(the command line prints it and exits 2).
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import pathlib
import re
import resource
import socket
import sqlite3
from typing import TYPE_CHECKING, Final
from urllib.parse import unquote

import grpc

from auxia.decision.server import seed_pb2
from auxia_decision._errors import ApiError
from auxia_decision._extras import MissingExtraError, import_optional
from auxia_decision.server._domain.seed import checked_seed, load_seed
from auxia_decision.server._storage.sqlite_schema import UnusableFileError
from auxia_decision.server._storage.sqlite_store import SqliteStore
from auxia_decision.server._transport.runtime import bound_socket

if TYPE_CHECKING:
    # Imported when a PostgreSQL URL is given: psycopg is the [postgres] extra's.
    from auxia_decision.server._storage.postgres_store import PostgresStore


class StartupError(Exception):
    """The server could not start; the message is one line naming what is wrong."""


# A password given as a URL parameter (libpq reads ?password=...).
_PASSWORD_PARAMETER: Final = re.compile(r"(?i)(\bpassword=)([^&#]*)")


def open_files_limit() -> int:
    """Raise the process's limit of open files to its hard limit; return the limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


def seed_name(seed: pathlib.Path | seed_pb2.Seed | None) -> str:
    if isinstance(seed, seed_pb2.Seed):
        return "the seed"
    return "the default seed" if seed is None else f"the seed {seed}"


def one_line(error: BaseException) -> str:
    """Return an error as one line: a request error's violations joined by semicolons."""
    if isinstance(error, ApiError) and error.field_violations:
        return "; ".join(
            f"{violation.field}: {violation.description}"
            if violation.field
            else violation.description
            for violation in error.field_violations
        )
    return str(error).replace("\n", "; ")


def start_micros(moment: datetime.datetime | None) -> int | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        msg = f"the clock's start time {moment.isoformat()} needs a time zone (UTC: ...Z)"
        raise StartupError(msg)
    delta = moment - datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
    return delta // datetime.timedelta(microseconds=1)


def seed_of(given: pathlib.Path | seed_pb2.Seed | None) -> seed_pb2.Seed:
    """Return a checked seed: a copy of a message, a file's, or the default one.

    Raises StartupError, one line naming the seed and each bad field.
    """
    if isinstance(given, seed_pb2.Seed):
        try:
            return checked_seed(given)
        except ApiError as error:
            raise StartupError(f"the seed is invalid: {one_line(error)}") from None
    path = given
    try:
        return load_seed(path)
    except OSError as error:
        raise StartupError(f"{seed_name(path)} cannot be read: {error.strerror}") from None
    except (ApiError, ValueError) as error:
        raise StartupError(f"{seed_name(path)} is invalid: {one_line(error)}") from None


POSTGRES_SCHEMES: Final = ("postgresql://", "postgres://")
"""How a ``--db`` that names a PostgreSQL database starts."""


def is_postgres(db: str) -> bool:
    """Whether ``--db`` names a PostgreSQL database rather than a SQLite file."""
    return db.startswith(POSTGRES_SCHEMES)


def open_store(path: str, activity_cache_users: int) -> SqliteStore | PostgresStore:
    """Open the store's database, or raise StartupError naming the path and what is wrong.

    A ``postgresql://`` URL opens a PostgreSQL store (``[postgres]`` extra),
    whose tables are created if missing. A file that is not a usable SQLite
    database, or that a newer version of the server wrote, is left as it is.
    An older one is migrated.
    """
    if is_postgres(path):
        return _open_postgres(path, activity_cache_users)
    if path != ":memory:":
        file = pathlib.Path(path)
        if file.is_dir():
            raise StartupError(f"the database {path} is a directory, not a file")
        if not file.parent.is_dir():
            raise StartupError(f"the database {path} cannot be created: no folder {file.parent}")
    try:
        return SqliteStore(path, activity_cache_users=activity_cache_users)
    except UnusableFileError as error:
        raise StartupError(f"the database {path} cannot be used: {error}") from None
    except sqlite3.Error as error:
        reason = str(error)
        code = int(getattr(error, "sqlite_errorcode", 0)) & 0xFF
        if code in (sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT):
            reason = f"it is not a SQLite database, or it is damaged ({error})"
        elif code in (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM):
            reason = f"it cannot be opened for writing ({error})"
        raise StartupError(f"the database {path} cannot be used: {reason}") from None


def redacted(url: str) -> str:
    """Return a database URL without its passwords, fit for messages and logs.

    The userinfo's password (``_password_of``) and every ``password=``
    parameter show as ``***``.
    """
    split = _password_of(url)
    if split is not None:
        before, _, after = split
        url = f"{before}***{after}"
    return _PASSWORD_PARAMETER.sub(r"\1***", url)


def _password_of(url: str) -> tuple[str, str, str] | None:
    """Split a URL around its userinfo's password: (before it, it, after it); None if it has none.

    The userinfo runs to the URL's last ``@``, so that an unescaped ``#``,
    ``/`` or ``@`` in the password does not split it.
    """
    scheme, separator, rest = url.partition("://")
    if not separator or "@" not in rest:
        return None
    userinfo, _, host = rest.rpartition("@")
    user, colon, password = userinfo.partition(":")
    if not colon:
        return None
    return f"{scheme}{separator}{user}:", password, f"@{host}"


def password_apart(url: str) -> tuple[str, str | None]:
    """Return a database URL without its password, and the password (unescaped; None: none).

    What a process that starts a server gives it: the URL on its command
    line, which other users of the machine can read (``ps``), and the
    password in ``PGPASSWORD``, which they cannot. A password given both in
    the userinfo and as a ``password=`` parameter is the parameter's, as
    libpq reads them. A URL that libpq would read otherwise once its password
    is taken out (its shape is unusual) is returned whole, with None.
    """
    base, question, query = url.partition("?")
    without, password = base, None
    split = _password_of(base)
    if split is not None:
        before, password, after = split
        without = before.removesuffix(":") + after
        password = unquote(password)
    if question:
        kept = []
        for parameter in query.split("&"):
            name, _, value = parameter.partition("=")
            if name.lower() == "password":
                password = unquote(value)
            else:
                kept.append(parameter)
        if kept:
            without = f"{without}?{'&'.join(kept)}"
    if password is None or not _read_alike(url, without, password):
        return url, None
    return without, password


def _read_alike(url: str, without: str, password: str) -> bool:
    """Whether libpq reads ``without`` and ``password`` as the same connection as ``url``."""
    psycopg = import_optional("postgres", "psycopg")
    try:
        whole = psycopg.conninfo.conninfo_to_dict(url)
        apart = psycopg.conninfo.conninfo_to_dict(without)
    except psycopg.ProgrammingError:
        return False
    return bool(whole.pop("password", None) == password and whole == apart)


def _passwords(url: str) -> list[str]:
    """Return the passwords a database URL holds, as written and unescaped, to scrub from text.

    Passwords shorter than 3 characters are left out: scrubbing them would
    garble the text more than it hides.
    """
    found = [match.group(2) for match in _PASSWORD_PARAMETER.finditer(url)]
    split = _password_of(url)
    if split is not None:
        # libpq may split at the first @: each part of the password may be shown alone.
        found += [split[1], *split[1].split("@")]
    return [text for password in found for text in {password, unquote(password)} if len(text) >= 3]


def _scrubbed(text: str, url: str) -> str:
    """Return text (a driver's message) with the URL and its passwords shown as redacted."""
    text = text.replace(url, redacted(url))
    for password in sorted(_passwords(url), key=len, reverse=True):
        text = text.replace(password, "***")
    return text


def _open_postgres(url: str, activity_cache_users: int) -> PostgresStore:
    """Open a PostgreSQL store, or raise StartupError naming the database (not its password)."""
    name = redacted(url)
    try:
        psycopg = import_optional("postgres", "psycopg")
    except MissingExtraError as error:
        raise StartupError(f"the database {name} cannot be used: {error}") from None
    # psycopg is there: the store's modules, which import it, can be.
    from auxia_decision.server._storage.postgres_schema import NewerSchemaError  # noqa: PLC0415
    from auxia_decision.server._storage.postgres_store import PostgresStore  # noqa: PLC0415

    try:
        return PostgresStore(url, activity_cache_users=activity_cache_users)
    except NewerSchemaError as error:
        raise StartupError(f"the database {name} cannot be used: {error}") from None
    except psycopg.Error as error:
        lines = str(error).strip().splitlines()
        reason = _scrubbed(lines[0] if lines else type(error).__name__, url)
        raise StartupError(f"the database {name} cannot be used: {reason}") from None


def _reason(error: OSError) -> str:
    return "it is in use" if error.errno == errno.EADDRINUSE else str(error.strerror)


def check_ports(host: str, rest_port: int, grpc_port: int) -> None:
    """Raise StartupError naming every port that cannot be bound now; nothing stays bound.

    Called before the store is opened, so that a port in use leaves the
    database file as it was; ``bind_ports`` binds them for good.
    """
    if rest_port and rest_port == grpc_port:
        msg = f"the REST and the gRPC port are both {host}:{rest_port}: give each its own"
        raise StartupError(msg)
    problems: list[str] = []
    # A socket of our own tries the gRPC port, so that a port in use is one
    # line of ours rather than grpc's log line and then ours.
    for name, port in (("gRPC", grpc_port), ("REST", rest_port)):
        if port:
            try:
                bound_socket(host, port).close()
            except OSError as error:
                problems.append(f"the {name} port {host}:{port} cannot be bound: {_reason(error)}")
    if problems:
        raise StartupError("; ".join(problems))


def bind_ports(
    server: grpc.aio.Server, host: str, rest_port: int, grpc_port: int
) -> tuple[socket.socket, int]:
    """Bind the REST socket and the gRPC server's port; return the socket and the gRPC port.

    Raises StartupError naming every port that cannot be bound, with nothing
    left bound.
    """
    check_ports(host, rest_port, grpc_port)
    try:
        sock = bound_socket(host, rest_port)
    except OSError as error:
        msg = f"the REST port {host}:{rest_port} cannot be bound: {_reason(error)}"
        raise StartupError(msg) from None
    try:
        return sock, server.add_insecure_port(f"{host}:{grpc_port}")
    except RuntimeError:
        sock.close()
        msg = f"the gRPC port {host}:{grpc_port} cannot be bound: in use, or not an address here"
        raise StartupError(msg) from None
