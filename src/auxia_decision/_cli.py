"""The ``auxia-decision`` command line."""

from __future__ import annotations

import argparse
import datetime
import os
import pathlib
import sys
import urllib.parse
from collections.abc import Sequence
from typing import NoReturn

from google.protobuf import json_format
from google.protobuf.message import Message

from auxia_decision._cli_admin import UsageError, add_admin, base_url
from auxia_decision._cli_proxy import add_proxy
from auxia_decision._cli_types import port, seconds
from auxia_decision._codec import RestCodec
from auxia_decision._errors import ApiError
from auxia_decision._extras import MissingExtraError, import_optional
from auxia_decision._protos import descriptor_set_path, proto_include_path
from auxia_decision._routes import DEFAULT_BASE_URL, route_for, routes
from auxia_decision._sendable import check_key
from auxia_decision._validation import validate
from auxia_decision._version import __version__

_STOPPED_BY_A_CLOSED_PIPE = 141
"""The exit status when the output's reader went away: a shell's for a process SIGPIPE ended."""


def _read(source: str) -> bytes:
    """Read ``FILE`` or ``@FILE``, or standard input for ``-`` or ``@-``."""
    name = source.removeprefix("@")
    if name == "-":
        return sys.stdin.buffer.read()
    try:
        return pathlib.Path(name).read_bytes()
    except OSError as error:
        raise UsageError(f"cannot read {name}: {error.strerror}") from None


def _request(data: str, request_type: type[Message]) -> Message:
    """Decode ``--data`` (JSON text, ``@FILE`` or ``@-``) into a request; raise ApiError if bad.

    JSON text that is a file's name is a usage mistake: UsageError says to
    write ``@`` before it.
    """
    text = _read(data) if data.startswith("@") else data.encode()
    try:
        return RestCodec().decode_request(text, request_type)
    except ApiError as error:
        if data.startswith("@") or not _looks_like_a_file(data):
            raise
        msg = f"--data {data} is not JSON ({error.message}): to send the file, pass --data @{data}"
        raise UsageError(msg) from None


def _looks_like_a_file(data: str) -> bool:
    stripped = data.strip()
    return (
        bool(stripped)
        and stripped[0] not in '{["'
        and (pathlib.Path(stripped).is_file() or stripped.endswith(".json"))
    )


def _validate(args: argparse.Namespace) -> int:
    route = route_for(args.method)
    try:
        request = RestCodec().decode_request(_read(args.file), route.request_type)
    except ApiError as error:
        print(error, file=sys.stderr)
        return 1
    result = validate(request)
    for warning in result.warnings:
        print(f"warning: {warning.field}: {warning.description}", file=sys.stderr)
    if result.errors:
        print(ApiError.invalid_argument(result.errors), file=sys.stderr)
        return 1
    print(f"valid {route.request_type.DESCRIPTOR.name}")
    return 0


def _call(args: argparse.Namespace) -> int:
    route = route_for(args.method)
    client_module = import_optional("client", "auxia_decision._client")
    api_key = args.api_key or os.environ.get(client_module.API_KEY_ENV)
    if not api_key:
        msg = f"no API key: pass --api-key or set {client_module.API_KEY_ENV}"
        raise UsageError(msg)
    try:
        check_key(api_key, "--api-key" if args.api_key else client_module.API_KEY_ENV)
    except ValueError as error:
        raise UsageError(str(error)) from None
    url = base_url(args.base_url, DEFAULT_BASE_URL)
    try:
        request = _request(args.data, route.request_type)
        with client_module.Client(api_key=api_key, base_url=url) as client:
            response = client.call(route.name, request)
    except ApiError as error:
        print(error, file=sys.stderr)
        return 1
    print(json_format.MessageToJson(response, indent=2))
    return 0


def _serve_command(args: argparse.Namespace) -> int:
    # Imported here: the server's dependencies (the [server] extra) are not
    # needed by the other commands.
    import logging  # noqa: PLC0415

    from auxia_decision.server import (  # noqa: PLC0415
        HttpLimits,
        ServerConfig,
        StartupError,
        run_event_loop,
        serve,
    )

    logging.basicConfig(level=args.log_level, format="%(asctime)s %(name)s %(message)s")
    config = ServerConfig(
        host=args.host,
        grpc_port=args.grpc_port,
        rest_port=args.rest_port,
        db=args.db,
        seed=args.seed,
        limits=HttpLimits(
            idle_timeout=args.idle_timeout,
            request_timeout=args.request_timeout,
            max_connections=args.max_connections,
        ),
        frozen_at=args.clock,
        activity_cache_users=(
            ServerConfig.activity_cache_users
            if args.activity_cache_users is None
            else args.activity_cache_users
        ),
        journal_size=(
            ServerConfig.journal_size if args.journal_size is None else args.journal_size
        ),
        allowed_hosts=tuple(args.allowed_host),
        cors_origins=tuple(args.cors_origin),
    )
    try:
        run_event_loop(
            serve(config, ready_file=args.ready_file, exit_with_parent=args.exit_with_parent)
        )
    except StartupError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


def _clock(text: str) -> datetime.datetime | None:
    """Parse ``--clock``: ``real``, or an RFC 3339 time with its offset to freeze at."""
    if text == "real":
        return None
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        msg = (
            "neither real nor an RFC 3339 time with an offset "
            f"(such as 2030-01-01T00:00:00Z): {text!r}"
        )
        raise argparse.ArgumentTypeError(msg)
    try:
        moment.astimezone(datetime.UTC)
    except OverflowError:
        msg = f"a time from 0001-01-01 to 9999-12-31 in UTC, not {text!r}"
        raise argparse.ArgumentTypeError(msg) from None
    return moment


def _env(args: argparse.Namespace) -> int:
    from auxia_decision.server._ready import ReadyFileError, read_ready_file  # noqa: PLC0415

    try:
        info = read_ready_file(args.ready_file)
    except ReadyFileError as error:
        raise UsageError(str(error)) from None
    print(info.export_lines())
    return 0


def _count(text: str) -> int:
    """Parse a count: a whole number, 0 or more."""
    if not text.isdigit():
        msg = f"not a whole number of 0 or more: {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return int(text)


def _protos(args: argparse.Namespace) -> int:
    print(descriptor_set_path() if args.descriptor_set else proto_include_path())
    return 0


class _OneLineErrors(argparse.ArgumentParser):
    """A parser that says a mistake in one line, pointing to ``--help``, not the whole usage."""

    def error(self, message: str) -> NoReturn:
        """Print the mistake in one line and exit 2."""
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = _OneLineErrors(
        prog="auxia-decision", description="Tools for the Auxia decisioning API."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    methods = ", ".join(route.name for route in routes())
    _add_validate(commands, methods)
    _add_call(commands, methods)
    _add_serve(commands)
    _add_env(commands)
    _add_protos(commands)
    add_admin(commands, _request)
    add_proxy(commands)
    return parser


# argparse's type of what add_subparsers() returns.
_Commands = argparse._SubParsersAction


def _add_validate(commands: _Commands[argparse.ArgumentParser], methods: str) -> None:
    check = commands.add_parser(
        "validate",
        help="validate a request JSON file",
        description="Print every violation of a request with its JSON path; exit 1 if invalid.",
    )
    check.add_argument("method", help=f"the RPC: {methods}")
    check.add_argument("file", help="the request JSON file, or - for standard input")
    check.set_defaults(run=_validate)


def _add_call(commands: _Commands[argparse.ArgumentParser], methods: str) -> None:
    call = commands.add_parser(
        "call",
        help="call the API and print the response JSON",
        description="Send a request and print the response.",
    )
    call.add_argument("method", help=f"the RPC: {methods}")
    call.add_argument("--data", required=True, help="the request: @FILE.json, @- or JSON text")
    call.add_argument(
        "--base-url",
        help=f"where the API is served (default: AUXIA_BASE_URL, else {DEFAULT_BASE_URL})",
    )
    call.add_argument(
        "--api-key",
        help="the API key (default: AUXIA_API_KEY, which other users cannot see in ps)",
    )
    call.set_defaults(run=_call)


def _add_serve(commands: _Commands[argparse.ArgumentParser]) -> None:
    serve = commands.add_parser(
        "serve",
        help="run the local REST + gRPC reference server",
        description="Serve the API over REST and gRPC from an embedded SQLite store "
        "or a PostgreSQL database.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    serve.add_argument("--grpc-port", type=port, default=50051, help="default: %(default)s")
    serve.add_argument("--rest-port", type=port, default=8080, help="default: %(default)s")
    serve.add_argument(
        "--db",
        default="auxia-decision.db",
        help="SQLite file, kept across restarts, :memory:, or a postgresql:// URL shared by any "
        "number of servers ([postgres] extra; see docs/replicas.md) (default: %(default)s)",
    )
    serve.add_argument(
        "--seed",
        type=pathlib.Path,
        help="seed file (proto JSON of io.auxia.decision.server.Seed); default: the docs' world",
    )
    serve.add_argument(
        "--clock",
        type=_clock,
        default=None,
        metavar="real|TIME",
        help="real: the system's time (the default); an RFC 3339 time such as "
        "2030-01-01T00:00:00Z: start frozen at it (the emulator admin API moves it)",
    )
    serve.add_argument(
        "--activity-cache-users",
        type=_count,
        default=None,
        metavar="N",
        help="how many users' activity to keep in memory, the least recently decided "
        "for going first (default: 50,000); the rest is read "
        "from the database when a decision needs it",
    )
    serve.add_argument(
        "--ready-file",
        type=pathlib.Path,
        metavar="PATH",
        help="once both ports serve, write there (atomically, mode 0600) one JSON object: "
        "restUrl, grpcTarget, pid, projectId, apiKey, adminKey; removed on stop",
    )
    serve.add_argument(
        "--exit-with-parent",
        action="store_true",
        help="stop, as on SIGTERM, once the process that started this one is gone, "
        "or once standard input is closed when it is a pipe",
    )
    _add_limits(serve)
    _add_web(serve)
    serve.add_argument(
        "--journal-size",
        type=_count,
        default=None,
        metavar="N",
        help="how many of the last calls the request journal keeps for the emulator admin "
        "API's ListJournal and the console; 0: no journal (default: 200)",
    )
    serve.add_argument(
        "--log-level",
        default="WARNING",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="INFO logs one line per REST or gRPC call (default: %(default)s)",
    )
    serve.set_defaults(run=_serve_command)


def _add_limits(serve: argparse.ArgumentParser) -> None:
    serve.add_argument(
        "--idle-timeout",
        type=seconds,
        default=5.0,
        help="seconds a REST connection may stay silent (default: %(default)s)",
    )
    serve.add_argument(
        "--request-timeout",
        type=seconds,
        default=30.0,
        help="seconds from a REST request's first byte to its last (default: %(default)s)",
    )
    serve.add_argument(
        "--max-connections",
        type=int,
        help="open REST connections at most (default: the open-files limit less 1,024)",
    )


def _add_web(serve: argparse.ArgumentParser) -> None:
    serve.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="answer REST requests whose Host is NAME (repeatable; .NAME: it and its "
        "subdomains; '*': any host); localhost, IP addresses and --host are always answered, "
        "and other names get 403 so that no web page can reach the server by DNS rebinding",
    )
    serve.add_argument(
        "--cors-origin",
        action="append",
        default=[],
        type=_origin,
        metavar="ORIGIN",
        help="give REST answers to requests from ORIGIN (such as http://localhost:3000) CORS "
        "headers, and answer their preflight (repeatable; '*': any origin); none by default",
    )


def _origin(text: str) -> str:
    """Parse ``--cors-origin``: ``*``, or a scheme, a host and a port, as browsers send Origin."""
    parts = urllib.parse.urlsplit(text)
    if text != "*" and (
        parts.scheme not in ("http", "https")
        or not parts.netloc
        or parts.path
        or parts.query
        or parts.fragment
    ):
        msg = f"not an origin such as http://localhost:3000 (no path, no trailing slash): {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return text


def _add_env(commands: _Commands[argparse.ArgumentParser]) -> None:
    env = commands.add_parser(
        "env",
        help="print the environment a client needs to call a running local server",
        description="Print, in sh syntax, the AUXIA_* variables of a server's ready file: "
        'eval "$(auxia-decision env --ready-file PATH)".',
    )
    env.add_argument(
        "--ready-file",
        type=pathlib.Path,
        required=True,
        metavar="PATH",
        help="the file given to serve --ready-file",
    )
    env.set_defaults(run=_env)


def _add_protos(commands: _Commands[argparse.ArgumentParser]) -> None:
    protos = commands.add_parser("protos", help="where the .proto files are installed")
    what = protos.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "--include-path",
        action="store_true",
        help="print the folder to pass to protoc -I or to a buf workspace",
    )
    what.add_argument(
        "--descriptor-set",
        action="store_true",
        help="print the path of the FileDescriptorSet (source info and imports included)",
    )
    protos.set_defaults(run=_protos)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit status."""
    args = _parser().parse_args(argv)
    try:
        status: int = args.run(args)
        sys.stdout.flush()
    except BrokenPipeError:
        # What reads the output has gone (`| head`): stop, quietly, as on SIGPIPE.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return _STOPPED_BY_A_CLOSED_PIPE
    except KeyError as error:  # unknown method
        print(f"error: {error.args[0]}", file=sys.stderr)
        return 2
    except (MissingExtraError, UsageError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return status


if __name__ == "__main__":
    sys.exit(main())
