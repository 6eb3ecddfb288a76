"""What the emulator admin API lists: logged interactions and served decisions, paged.

Each listing reads one moment of the store (``Store.read``) and writes
nothing. Page tokens are the sequence number of the last record of the page
(of a decision: its first row the filters select) and a digest of the
request's filters and order: opaque to callers, and checked on the way back,
so that a token given with other filters is refused rather than listing
other records from where it points.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Container, Iterable, Iterator
from dataclasses import dataclass
from operator import attrgetter
from typing import Final

from auxia.decision.emulator.v1 import emulator_pb2
from auxia_decision._errors import ApiError, FieldViolation, violation
from auxia_decision.server._domain.decisions import response_of_tracking_id
from auxia_decision.server._storage.seam import (
    InteractionFilter,
    Repository,
    ServedFilter,
    ServedRow,
)

DEFAULT_PAGE_SIZE: Final = 100
MAX_PAGE_SIZE: Final = 1000
_MAX_SEQUENCE: Final = 2**63 - 1
"""The greatest sequence number a store holds (SQLite's and PostgreSQL's 64-bit integers)."""
_ROWS_AT_ONCE: Final = 100
"""How many selected served rows a listing takes at once, their decisions read in one query."""


_Listing = (
    emulator_pb2.ListInteractionsRequest
    | emulator_pb2.ListDecisionsRequest
    | emulator_pb2.ListJournalRequest
)
"""The requests that list records: each has paging and a time window."""


@dataclass(frozen=True, slots=True)
class Window:
    """A listing's page and time window, checked."""

    after: int
    """The sequence number the page starts after (0: the first page)."""
    size: int
    start: int | None
    """Inclusive, in microseconds since the Unix epoch; None: unbounded."""
    end: int | None
    """Exclusive, in microseconds since the Unix epoch; None: unbounded."""

    def holds(self, time_micros: int) -> bool:
        """Whether a time is within the window."""
        return (self.start is None or time_micros >= self.start) and (
            self.end is None or time_micros < self.end
        )


def page_token(request: _Listing, sequence: int) -> str:
    """Return the token of the page after record ``sequence``, for this request's filters."""
    return f"{sequence}.{_filters_digest(request)}"


def _filters_digest(request: _Listing) -> str:
    """Return a digest of what a listing asks for but its page: its type, filters and order."""
    asked = type(request).FromString(request.SerializeToString())
    asked.ClearField("page_token")
    asked.ClearField("page_size")
    named = asked.DESCRIPTOR.full_name.encode() + b"\0"
    return hashlib.blake2b(
        named + asked.SerializeToString(deterministic=True), digest_size=6
    ).hexdigest()


def listing_window(request: _Listing) -> Window:
    """Check a listing's paging and time fields; raise INVALID_ARGUMENT naming each bad one."""
    violations: list[FieldViolation] = []
    after = 0
    if request.page_token:
        sequence, _, digest = request.page_token.partition(".")
        if (
            not (sequence.isascii() and sequence.isdigit())
            or len(sequence) > len(str(_MAX_SEQUENCE))  # no int() of thousands of digits
            or not 0 < int(sequence) <= _MAX_SEQUENCE
        ):
            violations.append(
                violation("pageToken", "is not a page token of this listing: pass next_page_token")
            )
        elif digest != _filters_digest(request):
            violations.append(
                violation(
                    "pageToken",
                    "was given for other filters or another order: pass next_page_token "
                    "with the filters and order of the request it came with",
                )
            )
        else:
            after = int(sequence)
    start = request.start_time.ToMicroseconds() if request.HasField("start_time") else None
    end = request.end_time.ToMicroseconds() if request.HasField("end_time") else None
    if start is not None and end is not None and end < start:
        violations.append(violation("endTime", "must not be before startTime"))
    if violations:
        raise ApiError.invalid_argument(violations)
    size = min(request.page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    return Window(after, size, start, end)


def list_interactions(
    repository: Repository, request: emulator_pb2.ListInteractionsRequest
) -> emulator_pb2.ListInteractionsResponse:
    """Return one page of the logged interactions that match a request's filters."""
    window = listing_window(request)
    matching = InteractionFilter(
        user_id=request.user_id,
        tracking_id=request.treatment_tracking_id,
        treatment_id=request.treatment_id,
        interaction_type=request.interaction_type,
        start_micros=window.start,
        end_micros=window.end,
    )
    response = emulator_pb2.ListInteractionsResponse()
    listing = repository.logged_interactions(
        request.project_id, window.after, matching, newest_first=request.newest_first
    )
    for sequence, interaction in listing:
        if len(response.interactions) == window.size:
            response.next_page_token = page_token(request, response.interactions[-1].sequence)
            return response
        response.interactions.add(sequence=sequence, interaction=interaction)
    if listing.resume_after:  # a page cut short: the rest is further on
        response.next_page_token = page_token(request, listing.resume_after)
    return response


def _decision(rows: list[ServedRow]) -> emulator_pb2.ServedDecision:
    """Return the decision whose served rows (all of one response) these are."""
    first = rows[0]
    decision = emulator_pb2.ServedDecision(
        project_id=first.project_id, user_id=first.user_id, response_id=first.served.response_id
    )
    decision.decide_time.FromMicroseconds(first.served.time_micros)
    for row in rows:
        decision.served_treatments.add(
            treatment_id=row.served.treatment_id,
            surface=row.served.surface,
            treatment_tracking_id=row.served.tracking_id,
        )
    return decision


def list_decisions(
    repository: Repository, request: emulator_pb2.ListDecisionsRequest
) -> emulator_pb2.ListDecisionsResponse:
    """Return one page of the served decisions that match a request's filters."""
    window = listing_window(request)
    response = emulator_pb2.ListDecisionsResponse()
    selecting = _selecting(request, window)
    if selecting is None:
        return response
    rows = repository.served_rows(
        request.project_id, window.after, selecting, newest_first=request.newest_first
    )
    last_sequence = 0
    for sequence, decision in _matching_decisions(repository, request, selecting, rows):
        if len(response.decisions) == window.size:
            response.next_page_token = page_token(request, last_sequence)
            return response
        response.decisions.append(decision)
        last_sequence = sequence
    if rows.resume_after:  # a page cut short: the rest is further on
        response.next_page_token = page_token(request, rows.resume_after)
    return response


def _selecting(request: emulator_pb2.ListDecisionsRequest, window: Window) -> ServedFilter | None:
    """Return the filter of the served rows that lead to a request's decisions; None: no row.

    A decision's rows share its user, its time and its response, and a
    tracking id names its response (``tracking_id``): those filters select
    rows. A treatment or a surface holds when any row of the decision has it:
    the first one given selects rows. Each row selected leads to its decision,
    read whole (by response) and checked against every filter. A decision's
    sequence is that of its first row selected, so a decision whose rows other
    decisions' rows interleave (replicas writing at once) is listed once.
    """
    tracking, treatment, surface = (
        request.treatment_tracking_id,
        request.treatment_id,
        request.surface,
    )
    response_id = response_of_tracking_id(tracking) if tracking else ""
    if tracking and not response_id:
        return None  # no tracking id the server made ends with "_"
    return ServedFilter(
        user_id=request.user_id,
        response_id=response_id,
        treatment_id="" if tracking else treatment,
        surface="" if tracking or treatment else surface,
        start_micros=window.start,
        end_micros=window.end,
    )


def _matching_decisions(
    repository: Repository,
    request: emulator_pb2.ListDecisionsRequest,
    selecting: ServedFilter,
    rows: Iterable[ServedRow],
) -> Iterator[tuple[int, emulator_pb2.ServedDecision]]:
    """Yield (sequence, decision) for the decisions whose selected rows are ``rows``.

    In the rows' order (oldest or newest first); each decision is read whole
    and checked against every filter of the request. The decisions of
    ``_ROWS_AT_ONCE`` rows are read in one query a project.
    """
    rows = iter(rows)
    # Each decision read by (project, response): the sequence of its first row
    # selected and its rows, until it is listed (then None).
    known: dict[tuple[str, str], tuple[int, list[ServedRow]] | None] = {}
    while chunk := list(itertools.islice(rows, _ROWS_AT_ONCE)):
        for key, whole in _decisions_of(repository, chunk, known).items():
            known[key] = (next(r for r in whole if _selects(selecting, r)).sequence, whole)
        for row in chunk:
            key = (row.project_id, row.served.response_id)
            found = known[key]
            # Listed at its first row selected; newest first, that row comes last.
            if found is not None and found[0] == row.sequence:
                known[key] = None
                decision = _decision(found[1])
                if _serves_as_asked(decision, request):
                    yield row.sequence, decision


def _decisions_of(
    repository: Repository, rows: list[ServedRow], known: Container[tuple[str, str]]
) -> dict[tuple[str, str], list[ServedRow]]:
    """Return the whole decisions of some rows, those not ``known`` yet, by (project, response).

    One query for each project of the rows.
    """
    wanted: dict[str, dict[str, None]] = {}  # the responses of each project, once each
    for row in rows:
        if (row.project_id, row.served.response_id) not in known:
            wanted.setdefault(row.project_id, {})[row.served.response_id] = None
    decisions: dict[tuple[str, str], list[ServedRow]] = {}
    for project_id, response_ids in wanted.items():
        for row in repository.decisions_rows(project_id, list(response_ids)):
            decisions.setdefault((project_id, row.served.response_id), []).append(row)
    for whole in decisions.values():
        whole.sort(key=attrgetter("sequence"))
    return decisions


def _selects(selecting: ServedFilter, row: ServedRow) -> bool:
    """Whether a treatment or surface filter selects a row of a decision.

    The other filters of ``selecting`` hold for every row of a decision it read.
    """
    served = row.served
    return selecting.treatment_id in ("", served.treatment_id) and selecting.surface in (
        "",
        served.surface,
    )


def _serves_as_asked(
    decision: emulator_pb2.ServedDecision, request: emulator_pb2.ListDecisionsRequest
) -> bool:
    """Whether, for each of a request's treatment filters, a treatment of the decision matches."""
    served = decision.served_treatments
    return (
        (
            not request.treatment_tracking_id
            or any(s.treatment_tracking_id == request.treatment_tracking_id for s in served)
        )
        and (
            not request.treatment_id or any(s.treatment_id == request.treatment_id for s in served)
        )
        and (not request.surface or any(s.surface == request.surface for s in served))
    )
