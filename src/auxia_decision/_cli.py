"""The ``auxia-decision`` command line."""

from __future__ import annotations

import argparse
import pathlib
import sys
from collections.abc import Sequence

from google.protobuf import json_format

from auxia_decision._codec import RestCodec
from auxia_decision._errors import ApiError
from auxia_decision._extras import MissingExtraError, import_optional
from auxia_decision._protos import descriptor_set_path, proto_include_path
from auxia_decision._routes import DEFAULT_BASE_URL, route_for, routes
from auxia_decision._validation import validate
from auxia_decision._version import __version__


def _read(source: str) -> bytes:
    """Read ``@FILE``, ``FILE``, ``-`` (stdin) or, for ``--data``, literal JSON."""
    if source == "-":
        return sys.stdin.buffer.read()
    return pathlib.Path(source.removeprefix("@")).read_bytes()


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
    data = args.data.encode() if not args.data.startswith("@") else _read(args.data)
    client_module = import_optional("client", "auxia_decision._client")
    try:
        request = RestCodec().decode_request(data, route.request_type)
        with client_module.Client(base_url=args.base_url) as client:
            response = client.call(route.name, request)
    except ApiError as error:
        print(error, file=sys.stderr)
        return 1
    except ValueError as error:  # no API key
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json_format.MessageToJson(response, indent=2))
    return 0


def _serve(args: argparse.Namespace) -> int:
    # Imported here: the server's dependencies (the [server] extra) are not
    # needed by the other commands.
    import logging  # noqa: PLC0415

    from auxia_decision.server import ServerConfig, run_event_loop, serve  # noqa: PLC0415

    logging.basicConfig(level=args.log_level, format="%(asctime)s %(name)s %(message)s")
    config = ServerConfig(
        host=args.host,
        grpc_port=args.grpc_port,
        rest_port=args.rest_port,
        db=args.db,
        seed=args.seed,
    )
    try:
        run_event_loop(serve(config))
    except ApiError as error:
        print(f"error: the seed is invalid:\n{error}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


def _protos(args: argparse.Namespace) -> int:
    print(descriptor_set_path() if args.descriptor_set else proto_include_path())
    return 0


def _parser() -> argparse.ArgumentParser:
    methods = ", ".join(route.name for route in routes())
    parser = argparse.ArgumentParser(
        prog="auxia-decision", description="Tools for the Auxia decisioning API."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    check = commands.add_parser(
        "validate",
        help="validate a request JSON file",
        description="Print every violation of a request with its JSON path; exit 1 if invalid.",
    )
    check.add_argument("method", help=f"the RPC: {methods}")
    check.add_argument("file", help="the request JSON file, or - for standard input")
    check.set_defaults(run=_validate)

    call = commands.add_parser(
        "call",
        help="call the API and print the response JSON",
        description="Send a request (API key from AUXIA_API_KEY) and print the response.",
    )
    call.add_argument("method", help=f"the RPC: {methods}")
    call.add_argument("--data", required=True, help="the request: @FILE.json, @- or JSON text")
    call.add_argument("--base-url", default=DEFAULT_BASE_URL, help="default: %(default)s")
    call.set_defaults(run=_call)

    serve = commands.add_parser(
        "serve",
        help="run the local REST + gRPC reference server",
        description="Serve the API over REST and gRPC from an embedded SQLite store.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    serve.add_argument("--grpc-port", type=int, default=50051, help="default: %(default)s")
    serve.add_argument("--rest-port", type=int, default=8080, help="default: %(default)s")
    serve.add_argument(
        "--db",
        default="auxia-decision.db",
        help="SQLite file, kept across restarts, or :memory: (default: %(default)s)",
    )
    serve.add_argument(
        "--seed",
        type=pathlib.Path,
        help="seed file (proto JSON of io.auxia.decision.server.Seed); default: the docs' world",
    )
    serve.add_argument(
        "--log-level",
        default="WARNING",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="INFO logs one line per REST call (default: %(default)s)",
    )
    serve.set_defaults(run=_serve)

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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit status."""
    args = _parser().parse_args(argv)
    try:
        status: int = args.run(args)
    except KeyError as error:  # unknown method
        print(f"error: {error.args[0]}", file=sys.stderr)
        return 2
    except MissingExtraError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return status


if __name__ == "__main__":
    sys.exit(main())
