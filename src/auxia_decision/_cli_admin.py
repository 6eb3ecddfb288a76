"""``auxia-decision admin``: the emulator admin API of a running local server, from a shell.

Each subcommand is one or a few calls of ``io.auxia.decision.emulator.v1`` over
REST (``POST <base URL>/emulator/v1/<Method>``), with the admin key in the
``x-admin-key`` header (never in the URL): ``reset``, ``clock``, ``faults``,
``explain``, ``journal``, ``interactions`` and ``decisions``. Responses are
printed as proto3 JSON; the journal, the verdicts and the stored records as
lines for people (``--json`` for JSON).
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from google.protobuf import duration_pb2, json_format, timestamp_pb2
from google.protobuf.message import Message
from google.rpc import code_pb2

from auxia.decision.emulator.v1 import emulator_pb2
from auxia.decision.model import treatment_decision_service_pb2 as decisions
from auxia.decision.model import treatment_interaction_service_pb2 as interactions
from auxia_decision._codec import RestCodec
from auxia_decision._errors import ApiError, Code
from auxia_decision._extras import import_optional
from auxia_decision._journal_text import journal_text, verdict_lines
from auxia_decision._records_text import decision_lines, interaction_lines
from auxia_decision._routes import service_routes
from auxia_decision._sendable import check_base_url, check_key

ADMIN_KEY_ENV: Final = "AUXIA_EMULATOR_ADMIN_KEY"
BASE_URL_ENV: Final = "AUXIA_BASE_URL"
DEFAULT_LOCAL_URL: Final = "http://127.0.0.1:8080"
SERVICE: Final = emulator_pb2.DESCRIPTOR.services_by_name["EmulatorService"]
MAX_LIMIT: Final = 1000
"""The most records a listing's page holds (the admin API's largest page size)."""
M = TypeVar("M", bound=Message)


class UsageError(Exception):
    """An admin command cannot run as asked; the message is one line."""


def base_url(given: str | None, default: str) -> str:
    """Return ``--base-url``, else ``AUXIA_BASE_URL``, else ``default``; UsageError if not a URL."""
    url = given or os.environ.get(BASE_URL_ENV) or default
    source = "--base-url" if given else BASE_URL_ENV if os.environ.get(BASE_URL_ENV) else "URL"
    try:
        check_base_url(url, source, example=DEFAULT_LOCAL_URL)
    except ValueError as error:
        raise UsageError(str(error)) from None
    return url.rstrip("/")


class _Admin:
    """Calls of the admin API over REST, with the admin key in its header."""

    def __init__(self, args: argparse.Namespace) -> None:
        self._url = base_url(args.base_url, DEFAULT_LOCAL_URL)
        key = args.admin_key or os.environ.get(ADMIN_KEY_ENV)
        if not key:
            msg = f"no admin key: pass --admin-key or set {ADMIN_KEY_ENV}"
            raise UsageError(msg)
        try:
            check_key(key, "--admin-key" if args.admin_key else ADMIN_KEY_ENV)
        except ValueError as error:
            raise UsageError(str(error)) from None
        self._headers = {"content-type": "application/json", "x-admin-key": key}
        self._codec = RestCodec()
        self._paths = {route.name: route.path for route in service_routes(SERVICE)}
        self._http: Any = None
        """An ``httpx.Client`` once a call is made: one connection for a listing's pages."""

    def close(self) -> None:
        """Close the connection, if a call opened one."""
        if self._http is not None:
            self._http.close()

    def call(self, method: str, request: Message, response_type: type[M]) -> M:
        httpx = import_optional("client", "httpx")
        url = self._url + self._paths[method]
        if self._http is None:
            self._http = httpx.Client(timeout=30)
        try:
            answer = self._http.post(
                url, content=self._codec.encode(request), headers=self._headers
            )
        except httpx.TransportError as error:
            message = f"{method} at {self._url} failed: {type(error).__name__}: {error}"
            raise ApiError.without_answer(Code.UNAVAILABLE, message) from None
        if not answer.is_success:
            raise ApiError.from_http_response(
                answer.status_code, answer.headers.get("content-type", ""), answer.content
            )
        return self._codec.decode_response(answer.content, response_type)


def _print_json(message: Message) -> None:
    print(json_format.MessageToJson(message, indent=2))


def _reset(admin: _Admin, args: argparse.Namespace) -> None:
    request = emulator_pb2.ResetRequest(project_id=args.project_id)
    _print_json(admin.call("Reset", request, emulator_pb2.ResetResponse))


def _clock(admin: _Admin, args: argparse.Namespace) -> None:
    if args.freeze is None and args.advance is None and not args.real:
        _print_json(
            admin.call("GetClock", emulator_pb2.GetClockRequest(), emulator_pb2.GetClockResponse)
        )
        return
    request = emulator_pb2.SetClockRequest()
    if args.freeze is not None:
        request.freeze_time.FromDatetime(args.freeze)
    elif args.advance is not None:
        request.advance.CopyFrom(args.advance)
    else:
        request.real_time = True
    _print_json(admin.call("SetClock", request, emulator_pb2.SetClockResponse))


def _faults(admin: _Admin, args: argparse.Namespace) -> None:
    if args.action == "list":
        found = admin.call(
            "ListFaults", emulator_pb2.ListFaultsRequest(), emulator_pb2.ListFaultsResponse
        )
        _print_json(found)
    elif args.action == "clear":
        cleared = admin.call(
            "ClearFaults", emulator_pb2.ClearFaultsRequest(), emulator_pb2.ClearFaultsResponse
        )
        _print_json(cleared)
    else:
        if args.evolve and args.code is not None:
            msg = "--evolve answers calls that succeed: give it no --code"
            raise UsageError(msg)
        code = "OK" if args.evolve else args.code or "UNAVAILABLE"
        fault = emulator_pb2.Fault(
            method=args.method,
            code=code_pb2.Code.Value(code),
            http_status=args.http_status,
            message=args.message,
            evolve=args.evolve,
        )
        if args.fraction is not None:
            fault.fraction = args.fraction
            fault.random_seed = args.seed
        else:
            fault.count = args.count
        if args.delay is not None:
            fault.delay.CopyFrom(args.delay)
        request = emulator_pb2.CreateFaultRequest(fault=fault)
        _print_json(admin.call("CreateFault", request, emulator_pb2.Fault))


def _explain(admin: _Admin, args: argparse.Namespace) -> None:
    asked = args.decode(args.data, decisions.GetTreatmentsRequest)
    request = emulator_pb2.ExplainDecisionRequest(request=asked)
    if args.at is not None:
        request.decide_time.FromDatetime(args.at)
    explained = admin.call("ExplainDecision", request, emulator_pb2.ExplainDecisionResponse)
    if args.json:
        _print_json(explained)
        return
    print(f"as decided at {explained.decide_time.ToJsonString()} (the server's clock):")
    for line in verdict_lines(explained.verdicts, "  ") or ["  (no treatment)"]:
        print(line)


def _journal(admin: _Admin, args: argparse.Namespace) -> None:
    start, end = _window(args)
    request = emulator_pb2.ListJournalRequest(
        method=args.method,
        failed_only=args.failed,
        user_id=args.user,
        project_id=args.project_id,
        api_calls_only=args.api_only,
        page_size=args.limit,
        newest_first=True,
        start_time=start,
        end_time=end,
    )
    if args.code is not None:
        request.code = code_pb2.Code.Value(args.code)
    page = admin.call("ListJournal", request, emulator_pb2.ListJournalResponse)
    entries = list(reversed(page.entries))  # the newest `limit` calls, oldest first
    if args.json:
        _print_json(
            emulator_pb2.ListJournalResponse(
                entries=entries,
                dropped_count=page.dropped_count,
                next_page_token=page.next_page_token,
            )
        )
        return
    if page.next_page_token:
        print(f"(older calls not shown: --limit {args.limit} shows the newest {args.limit})")
    if page.dropped_count:
        print(f"(the journal dropped {page.dropped_count} older calls: serve --journal-size)")
    print(journal_text(entries))


@dataclass(frozen=True)
class _Records:
    """A listing of stored records that ``admin interactions`` or ``admin decisions`` prints."""

    method: str
    request_type: type[Message]
    response_type: type[Message]
    field: str
    """The response's repeated field of records, and the records' name in words."""
    lines: Callable[[Any], list[str]]

    def run(self, admin: _Admin, args: argparse.Namespace) -> None:
        """Print the newest ``--limit`` records matching the filters, oldest of them first."""
        filters = {
            "project_id": args.project_id,
            "user_id": args.user,
            "treatment_id": args.treatment,
            "treatment_tracking_id": args.tracking_id,
        }
        if "surface" in self.request_type.DESCRIPTOR.fields_by_name:
            filters["surface"] = args.surface
        if "interaction_type" in self.request_type.DESCRIPTOR.fields_by_name:
            filters["interaction_type"] = args.type
        start, end = _window(args)
        found: list[Any] = []
        token = ""
        told = False
        # A page may come back short (a filter no index serves reads a stretch of the
        # store a call): the pages are followed until `limit` are found or none are left.
        while True:
            asked = args.limit - len(found)
            request = self.request_type(
                **filters,
                start_time=start,
                end_time=end,
                page_size=asked,
                page_token=token,
                newest_first=True,
            )
            page: Any = admin.call(self.method, request, self.response_type)
            records = getattr(page, self.field)
            found.extend(records)
            token = page.next_page_token
            if not token or len(found) == args.limit:
                break
            if len(records) < asked and not told:
                # On a big store this may take many calls: say why it is quiet.
                print(_SEARCHING.format(records=self.field), file=sys.stderr, flush=True)
                told = True
        newest = found[::-1]  # the newest `limit`, oldest first
        if args.json:
            _print_json(self.response_type(**{self.field: newest, "next_page_token": token}))
            return
        _print_lines(self.lines(newest), self.field, args.limit, bool(token))


_SEARCHING: Final = (
    "(searching older {records}: the filters leave pages short, so each call reads a stretch "
    "of the store; Ctrl-C stops)"
)

_RECORDS: Final = {
    "interactions": _Records(
        "ListInteractions",
        emulator_pb2.ListInteractionsRequest,
        emulator_pb2.ListInteractionsResponse,
        "interactions",
        interaction_lines,
    ),
    "decisions": _Records(
        "ListDecisions",
        emulator_pb2.ListDecisionsRequest,
        emulator_pb2.ListDecisionsResponse,
        "decisions",
        decision_lines,
    ),
}


def _window(
    args: argparse.Namespace,
) -> tuple[timestamp_pb2.Timestamp | None, timestamp_pb2.Timestamp | None]:
    """Return a listing's ``start_time`` and ``end_time``: ``--since`` and ``--until``, if given."""
    return _timestamp(args.since), _timestamp(args.until)


def _timestamp(moment: datetime.datetime | None) -> timestamp_pb2.Timestamp | None:
    if moment is None:
        return None
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def _print_lines(lines: list[str], records: str, limit: int, more: bool) -> None:
    if more:
        # A token left says the store was not read to its end, not that an older one matches.
        print(f"(older {records} may be left out: --limit {limit} shows the newest {limit})")
    print("\n".join(lines) if lines else f"(no {records})")


def run(args: argparse.Namespace) -> int:
    """Run an admin subcommand; print what it answered."""
    admin = _Admin(args)
    try:
        args.admin_run(admin, args)
    except ApiError as error:
        print(error, file=sys.stderr)
        return 1
    finally:
        admin.close()
    return 0


def _time(text: str) -> datetime.datetime:
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        msg = f"not an RFC 3339 time with an offset (such as 2030-01-01T00:00:00Z): {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return moment


_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400}


_INTERACTION_TYPES: Final = [
    value.name
    for value in interactions.LogTreatmentInteractionRequest.InteractionType.DESCRIPTOR.values
    if value.number
]


def _interaction_type(text: str) -> int:
    """Parse an interaction type by its name, in any case."""
    name = text.upper()
    if name not in _INTERACTION_TYPES:
        msg = f"not an interactionType: {text!r} (one of {', '.join(_INTERACTION_TYPES)})"
        raise argparse.ArgumentTypeError(msg)
    return int(interactions.LogTreatmentInteractionRequest.InteractionType.Value(name))


def _limit(text: str) -> int:
    """Parse how many records to show: 1 to ``MAX_LIMIT`` (one page of the listing)."""
    try:
        limit = int(text)
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_LIMIT:
        msg = f"not a number from 1 to {MAX_LIMIT}: {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return limit


def _duration(text: str) -> duration_pb2.Duration:
    """Parse a duration: a number and a unit (``90s``, ``15m``, ``2h``, ``1d``)."""
    number, unit = text[:-1], text[-1:]
    try:
        seconds = float(number) * _UNITS[unit]
    except (KeyError, ValueError):
        msg = f"not a duration such as 90s, 15m, 2h or 1d: {text!r}"
        raise argparse.ArgumentTypeError(msg) from None
    duration = duration_pb2.Duration()
    duration.FromNanoseconds(round(seconds * 1e9))
    return duration


def _code(text: str) -> str:
    name = text.upper()
    if name not in code_pb2.Code.DESCRIPTOR.values_by_name:
        msg = f"not a google.rpc.Code name (UNAVAILABLE, INTERNAL, ...): {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return name


_Commands = argparse._SubParsersAction


Decode = Callable[[str, type[Message]], Message]
"""Decodes ``--data`` (JSON text, ``@FILE``, ``@-``) into a request; UsageError if not one."""


def add_admin(commands: _Commands[argparse.ArgumentParser], decode: Decode) -> None:
    """Add the ``admin`` command and its subcommands; ``decode`` reads ``--data``."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--base-url",
        help=f"the local server (default: {BASE_URL_ENV}, else {DEFAULT_LOCAL_URL})",
    )
    common.add_argument(
        "--admin-key",
        help=f"an admin key of the server's seed (default: {ADMIN_KEY_ENV}); sent in x-admin-key",
    )
    admin = commands.add_parser(
        "admin",
        help="drive a local server's emulator admin API: reset, clock, faults, explain, journal, "
        "interactions, decisions",
        description="Call the emulator admin API of a running local server over REST.",
    )
    admin.set_defaults(run=run, decode=decode)
    actions = admin.add_subparsers(dest="admin_command", required=True)
    reset = actions.add_parser(
        "reset", parents=[common], help="put the server back as its seed made it"
    )
    reset.add_argument("--project-id", default="", help="only this project")
    reset.set_defaults(admin_run=_reset)
    _add_clock(actions, common)
    _add_faults(actions, common)
    explain = actions.add_parser(
        "explain",
        parents=[common],
        help="why GetTreatments would (not) serve each treatment",
    )
    explain.add_argument(
        "--data", required=True, help="the GetTreatments request: @FILE.json, @- or JSON text"
    )
    explain.add_argument("--at", type=_time, help="decide as at this time of the server's clock")
    explain.add_argument("--json", action="store_true", help="print the response as JSON")
    explain.set_defaults(admin_run=_explain)
    _add_journal(actions, common)
    _add_records(actions, common)


def _add_clock(
    actions: _Commands[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    clock = actions.add_parser(
        "clock", parents=[common], help="read the server's clock, or change it"
    )
    change = clock.add_mutually_exclusive_group()
    change.add_argument(
        "--freeze", type=_time, metavar="TIME", help="freeze it at an RFC 3339 time"
    )
    change.add_argument(
        "--advance", type=_duration, metavar="DURATION", help="move it forward (90s, 2h, 1d)"
    )
    change.add_argument("--real", action="store_true", help="give it back to the system's time")
    clock.set_defaults(admin_run=_clock)


def _add_faults(
    actions: _Commands[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    faults = actions.add_parser("faults", help="arm, list or clear faults on the API's calls")
    kinds = faults.add_subparsers(dest="action", required=True)
    kinds.add_parser("list", parents=[common], help="the armed faults").set_defaults(
        admin_run=_faults
    )
    kinds.add_parser("clear", parents=[common], help="disarm every fault").set_defaults(
        admin_run=_faults
    )
    add = kinds.add_parser("add", parents=[common], help="arm a fault on a method's calls")
    add.add_argument("method", help="an Auxia API method (GetTreatments), or * for every one")
    add.add_argument("--code", type=_code, help="fail with this code (default: UNAVAILABLE)")
    add.add_argument(
        "--evolve",
        action="store_true",
        help="instead of failing, answer (over REST) as a newer API could: unknown fields "
        "at every depth, unknown enum values, a new optional object",
    )
    selection = add.add_mutually_exclusive_group()
    selection.add_argument("--count", type=int, default=1, help="the next N calls (default: 1)")
    selection.add_argument("--fraction", type=float, help="each call with this probability")
    add.add_argument("--seed", type=int, default=0, help="the random seed of --fraction")
    add.add_argument("--http-status", type=int, default=0, help="over REST, this HTTP status")
    add.add_argument("--message", default="", help="the error's message")
    add.add_argument("--delay", type=_duration, help="wait this long first (90s, 2h...)")
    add.set_defaults(admin_run=_faults)


def _add_journal(
    actions: _Commands[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    journal = actions.add_parser(
        "journal", parents=[common], help="the last calls the server answered, and why they failed"
    )
    journal.add_argument("--method", default="", help="only calls of this RPC")
    journal.add_argument("--failed", action="store_true", help="only calls that failed")
    journal.add_argument("--code", type=_code, help="only calls that ended with this code")
    journal.add_argument("--user", default="", help="only calls naming this userId")
    journal.add_argument("--project-id", default="", help="only calls naming this projectId")
    journal.add_argument("--api-only", action="store_true", help="leave out the admin API's calls")
    _add_page_arguments(journal, "calls")
    journal.set_defaults(admin_run=_journal)


def _add_page_arguments(listing: argparse.ArgumentParser, records: str) -> None:
    """Add ``--limit`` (one page of the newest) and ``--json`` to a listing's command."""
    listing.add_argument(
        "--limit",
        type=_limit,
        default=50,
        help=f"the newest N {records} (default: 50, at most {MAX_LIMIT})",
    )
    listing.add_argument("--json", action="store_true", help=f"print the {records} as JSON")
    times = {"calls": "that arrived", "interactions": "of an interactionTime", "decisions": "made"}
    listing.add_argument(
        "--since", type=_time, metavar="TIME", help=f"only those {times[records]} at TIME or after"
    )
    listing.add_argument(
        "--until", type=_time, metavar="TIME", help=f"only those {times[records]} before TIME"
    )


def _add_records(
    actions: _Commands[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    about = {
        "interactions": "the last interactions LogTreatmentInteraction stored",
        "decisions": "the last decisions of GetTreatments that served something",
    }
    for name, listing in _RECORDS.items():
        records = actions.add_parser(name, parents=[common], help=about[name])
        records.add_argument("--user", default="", help="only this userId's")
        records.add_argument("--project-id", default="", help="only this projectId's")
        records.add_argument("--treatment", default="", help="only those of this treatmentId")
        records.add_argument("--tracking-id", default="", help="only this treatmentTrackingId's")
        if name == "decisions":
            records.add_argument("--surface", default="", help="only those serving this surface")
        else:
            records.add_argument(
                "--type",
                type=_interaction_type,
                default=0,
                metavar="TYPE",
                help=f"only those of this interactionType ({', '.join(_INTERACTION_TYPES)})",
            )
        _add_page_arguments(records, name)
        records.set_defaults(admin_run=listing.run)
