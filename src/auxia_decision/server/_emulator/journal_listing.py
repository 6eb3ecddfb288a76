"""``ListJournal``: the journal's calls decoded, redacted and filtered, one page at a time.

A call is decoded only when it is listed: its route read from its path (REST)
or its service and method (gRPC), its request shown as received (the body's
text, or the message as proto3 JSON), its error as the ``google.rpc.Status``
the client got, and for a GetTreatments that served nothing the verdicts of
that moment (``RecentDecisions.near_miss``). Keys are redacted: the values of
the headers, metadata and query parameters that carry them, and any key of
the seed wherever it appears in what is shown.
"""

from __future__ import annotations

import base64
import json
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Final, cast

from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import DecodeError, Message
from google.rpc import code_pb2, error_details_pb2, status_pb2

from auxia.decision.emulator.v1 import emulator_pb2
from auxia_decision._codec import RestCodec
from auxia_decision._errors import ApiError
from auxia_decision._redaction import KEY_HEADERS, KEY_PARAMETERS, REDACTED
from auxia_decision._routes import Route, service_routes
from auxia_decision.server._emulator.inspection import Window, listing_window, page_token
from auxia_decision.server._emulator.journal import KEPT_BYTES, REST, Journal, Record

_GET_TREATMENTS: Final = "GetTreatments"
_JSON: Final = RestCodec()
Entry = emulator_pb2.JournalEntry


class JournalView:
    """How the journal's calls are shown: routes, keys to redact, near misses.

    Args:
        services: every service the transports serve (the API's, the admin API's).
        admin_service: the admin API's full name (``api_calls_only`` leaves it out).
        keys: the keys of the seed, redacted wherever they appear.
        near_miss: the verdicts of the moment of a GetTreatments that served
            nothing, by its response id, if kept.

    """

    def __init__(
        self,
        services: Iterable[ServiceDescriptor],
        admin_service: str,
        keys: Iterable[str],
        near_miss: Callable[[str], Sequence[emulator_pb2.Verdict] | None],
    ) -> None:
        self._by_path: dict[str, Route] = {}
        self._by_name: dict[tuple[str, str], Route] = {}
        for service in services:
            for route in service_routes(service):
                self._by_path[route.path] = route
                self._by_name[service.full_name, route.name] = route
        self._admin_service = admin_service
        # Longest first, so that a key holding another is redacted whole.
        self._keys = sorted({key for key in keys if len(key) >= 4}, key=len, reverse=True)
        self._near_miss = near_miss

    def page(
        self, journal: Journal, request: emulator_pb2.ListJournalRequest
    ) -> emulator_pb2.ListJournalResponse:
        """Return one page of the calls that match a request's filters."""
        window = listing_window(request)
        response = emulator_pb2.ListJournalResponse(
            dropped_count=journal.dropped, capacity=journal.capacity
        )
        for record in _in_order(journal.records(), window, newest_first=request.newest_first):
            arrived = journal.server_time(record[2])
            if not window.holds(arrived):
                continue
            entry = self.entry(record, arrived)
            if not self._matches(entry, request):
                continue
            if len(response.entries) == window.size:
                response.next_page_token = page_token(request, response.entries[-1].sequence)
                break
            response.entries.append(entry)
        return response

    def _matches(self, entry: Entry, request: emulator_pb2.ListJournalRequest) -> bool:
        method = request.method.removeprefix("/").replace("/", ".")
        return (
            (not method or method in (entry.method, f"{entry.service}.{entry.method}"))
            and (not request.HasField("code") or entry.code == request.code)
            and (not request.failed_only or entry.code != code_pb2.OK)
            and (not request.http_status or entry.http_status == request.http_status)
            and (not request.project_id or entry.project_id == request.project_id)
            and (not request.user_id or entry.user_id == request.user_id)
            and not (request.api_calls_only and entry.service == self._admin_service)
        )

    def entry(self, record: Record, arrived: int) -> Entry:
        """Return one recorded call, which arrived at ``arrived`` (µs), decoded and redacted."""
        sequence, transport, began, answered, first, second, query, headers = record[:8]
        request, ended, answer = record[8:]
        entry = Entry(sequence=sequence)
        entry.receive_time.FromMicroseconds(arrived)
        entry.duration.FromNanoseconds(answered - began)
        entry.headers.extend(self._header(_str(name), value) for name, value in headers)
        if transport == REST:
            route = self._rest(entry, first, second, query)
            assert isinstance(ended, int)
            entry.http_status = ended
            if ended >= 400 and answer is not None:
                self._set_error(
                    entry, ApiError.from_http_response(ended, "application/json", answer)
                )
            fields = _json_object(request)
            entry.request = self._redact(request.decode("utf-8", "replace"))
        else:
            route = self._by_name.get((first, second))
            entry.transport = Entry.GRPC
            entry.service, entry.method = first, second
            entry.target = f"/{first}/{second}"
            message = _parsed(route.request_type if route else None, request)
            fields = {}
            if message is None:
                entry.request = base64.b64encode(request[:KEPT_BYTES]).decode()
            else:
                fields = _plain_fields(message)
                entry.request = self._redact(_JSON.encode(message).decode())
            if isinstance(ended, bytes):
                self._set_error(entry, ApiError.from_status(status_pb2.Status.FromString(ended)))
        entry.request = self._cut(entry.request)
        entry.request_truncated = len(request) > KEPT_BYTES
        entry.project_id = self._redact(_text(fields.get("projectId", fields.get("project_id"))))
        entry.user_id = self._redact(_text(fields.get("userId", fields.get("user_id"))))
        if entry.code == code_pb2.OK and answer is not None:
            self._answered(entry, transport, route, answer)
        return entry

    def _rest(self, entry: Entry, method: str, path: str, query: bytes) -> Route | None:
        """Fill in what a REST call's request line says; return its route, if any."""
        route = self._by_path.get(path)
        entry.transport = Entry.REST
        if route is not None:
            entry.service = route.method.containing_service.full_name
            entry.method = route.name
        shown = _redacted_query(query)
        entry.target = self._redact(f"{method} {path}{'?' + shown if shown else ''}")
        return route

    def _answered(self, entry: Entry, transport: int, route: Route | None, answer: bytes) -> None:
        """Show the answer of a call that succeeded, and a GetTreatments' near miss."""
        if transport == REST:
            shown = answer.decode("utf-8", "replace")
            fields = _json_object(answer)
        else:
            response = _parsed(route.response_type if route else None, answer)
            shown = "" if response is None else _JSON.encode(response).decode()
            fields = {} if response is None else _plain_fields(response)
        entry.response = self._cut(self._redact(shown))
        if route is not None and route.name == _GET_TREATMENTS:
            served = fields.get("userTreatments", fields.get("user_treatments"))
            response_id = _text(fields.get("responseId", fields.get("response_id")))
            near_miss = None if served or not response_id else self._near_miss(response_id)
            entry.verdicts.extend(near_miss or ())

    def _redact(self, text: str) -> str:
        for key in self._keys:
            if key in text:
                text = text.replace(key, REDACTED)
        return text

    def _cut(self, text: str) -> str:
        """Return redacted text cut to ``KEPT_BYTES``, a key cut short at its end redacted too.

        The journal keeps a body's first bytes only: a key they end in the
        middle of is no longer whole for ``_redact`` to find.
        """
        if len(text) <= KEPT_BYTES:
            return text
        text = text[:KEPT_BYTES]
        for key in self._keys:
            for length in range(min(len(key) - 1, len(text)), 1, -1):
                if text.endswith(key[:length]):
                    return text[:-length] + REDACTED
        return text

    def _header(self, name: str, value: str | bytes) -> Entry.Header:
        """Return a header or metadata entry as shown: a key header's value, or a key, redacted."""
        if name.lower() in KEY_HEADERS:
            return Entry.Header(name=name, value=REDACTED)
        if isinstance(value, bytes):
            shown = (
                base64.b64encode(value).decode()
                if name.endswith("-bin")
                else value.decode("latin-1")
            )
        else:
            shown = value
        return Entry.Header(name=name, value=self._redact(shown))

    def _set_error(self, entry: Entry, error: ApiError) -> None:
        """Set the error a call was answered with, any key in its words redacted."""
        status = error.status
        status.message = self._redact(status.message)
        for detail in status.details:
            if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad_request = error_details_pb2.BadRequest()
                detail.Unpack(bad_request)
                for violation in bad_request.field_violations:
                    violation.description = self._redact(violation.description)
                    violation.field = self._redact(violation.field)
                detail.Pack(bad_request)
        entry.error.CopyFrom(status)
        entry.code = cast(code_pb2.Code.ValueType, status.code)


def _in_order(records: list[Record], window: Window, *, newest_first: bool) -> Iterator[Record]:
    """Yield the records of a page's order, from after its page token."""
    if newest_first:
        return (r for r in reversed(records) if not window.after or r[0] < window.after)
    return (r for r in records if r[0] > window.after)


def _str(name: str | bytes) -> str:
    return name if isinstance(name, str) else name.decode("latin-1")


def _redacted_query(query: bytes) -> str:
    if not query:
        return ""
    pairs = urllib.parse.parse_qsl(query.decode("latin-1"), keep_blank_values=True)
    return urllib.parse.urlencode(
        [(name, REDACTED if name.lower() in KEY_PARAMETERS else value) for name, value in pairs],
        safe="<>",
    )


def _json_object(body: bytes) -> dict[str, Any]:
    """Return a JSON object's members, or nothing for anything else (malformed, cut, ...)."""
    try:
        found = json.loads(body)
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def _parsed(message_type: type[Message] | None, data: bytes) -> Message | None:
    if message_type is None or len(data) > KEPT_BYTES:
        return None
    try:
        return message_type.FromString(data)
    except DecodeError:
        return None


def _plain_fields(message: Message) -> dict[str, Any]:
    """Return the fields of a message that the journal reads (ids, what was served)."""
    names = ("project_id", "user_id", "response_id", "user_treatments")
    return {
        name: getattr(message, name) for name in names if name in message.DESCRIPTOR.fields_by_name
    }


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""
