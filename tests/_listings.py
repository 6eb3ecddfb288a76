"""The emulator's listings against a plain model of what was stored, on any store.

``fill`` stores random decisions (one to three treatments each) and
interactions in two projects through a store's own API, and returns what it
stored; ``LISTED_DECISIONS`` and ``LISTED_INTERACTIONS`` are the filters the
tests list by; ``all_pages`` follows a listing's pages; ``decisions_matching``
and ``interactions_matching`` say what a listing should return, from what was
stored alone.
"""

from __future__ import annotations

import asyncio
import functools
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

from google.protobuf.timestamp_pb2 import Timestamp

from auxia.decision.emulator.v1 import emulator_pb2
from auxia.decision.model import treatment_interaction_service_pb2 as interactions
from auxia_decision.server._emulator.inspection import list_decisions, list_interactions
from auxia_decision.server._storage import filters
from auxia_decision.server._storage.seam import Repository, ServedTreatment, Store

PROJECTS: Final = ("P1", "P2")
USERS: Final = ("u1", "u2", "u3")
TREATMENTS: Final = ("A", "B", "C", "D")
SURFACES: Final = ("S1", "S2", "S3")
START: Final = 1_764_000_000_000_000
"""The first record's time, in µs since the epoch; each next one is a minute later."""
MINUTE: Final = 60_000_000
DECISIONS: Final = 60
INTERACTIONS: Final = 60


_KINDS: Final = (
    interactions.LogTreatmentInteractionRequest.VIEWED,
    interactions.LogTreatmentInteractionRequest.CLICKED,
    interactions.LogTreatmentInteractionRequest.DISMISSED,
)


@dataclass(frozen=True)
class Stored:
    """What ``fill`` stored, in the order it was stored."""

    decisions: list[emulator_pb2.ServedDecision]
    interactions: list[interactions.LogTreatmentInteractionRequest]


async def fill(store: Store, seed: int = 0) -> Stored:
    """Store random decisions and interactions through a store's API; return them."""
    rng = random.Random(seed)
    decisions: list[emulator_pb2.ServedDecision] = []
    logged: list[interactions.LogTreatmentInteractionRequest] = []
    for number in range(DECISIONS):
        project, user = rng.choice(PROJECTS), rng.choice(USERS)
        time = START + number * MINUTE
        decision = emulator_pb2.ServedDecision(
            project_id=project, user_id=user, response_id=f"r{number}"
        )
        decision.decide_time.FromMicroseconds(time)
        for treatment in rng.sample(TREATMENTS, rng.randint(1, 3)):
            decision.served_treatments.add(
                treatment_id=treatment,
                surface=rng.choice(SURFACES),
                treatment_tracking_id=f"{treatment}_r{number}",
            )
        decisions.append(decision)
    for number in range(INTERACTIONS):
        served = rng.choice(decisions).served_treatments[0]
        logged.append(
            interactions.LogTreatmentInteractionRequest(
                project_id=rng.choice(PROJECTS),
                user_id=rng.choice(USERS),
                treatment_tracking_id=served.treatment_tracking_id,
                treatment_id=served.treatment_id,
                surface=served.surface,
                interaction_type=rng.choice(_KINDS),
                interaction_time_micros=START + number * MINUTE,
            )
        )
    # A few at a time: decisions of several users share each write.
    for first in range(0, DECISIONS, 7):
        await asyncio.gather(*(_record(store, d) for d in decisions[first : first + 7]))
    for first in range(0, INTERACTIONS, 7):
        await asyncio.gather(*(store.log_interaction(i, None) for i in logged[first : first + 7]))
    return Stored(decisions, logged)


def _record(store: Store, decision: emulator_pb2.ServedDecision) -> Awaitable[None]:
    time = decision.decide_time.ToMicroseconds()
    served = [
        ServedTreatment(
            decision.response_id, s.treatment_id, s.surface, s.treatment_tracking_id, time
        )
        for s in decision.served_treatments
    ]
    return store.record_served(decision.project_id, decision.user_id, served, None)


def _at(micros: int) -> Timestamp:
    stamp = Timestamp()
    stamp.FromMicroseconds(micros)
    return stamp


LISTED_DECISIONS: Final[list[dict[str, Any]]] = [
    {},
    {"project_id": "P1"},
    {"user_id": "u2"},
    {"project_id": "P2", "user_id": "u1"},
    {"treatment_tracking_id": "D_r7"},
    {"treatment_tracking_id": "nowhere"},
    {"treatment_id": "C"},
    {"project_id": "P1", "treatment_id": "A"},
    {"surface": "S2"},
    {"treatment_id": "A", "surface": "S3"},
    {"treatment_id": "D", "user_id": "u3", "project_id": "P2"},
    {"treatment_tracking_id": "A_r7", "surface": "S1"},
    {
        "treatment_id": "B",
        "start_time": _at(START + 10 * MINUTE),
        "end_time": _at(START + 40 * MINUTE),
    },
    {"surface": "S1", "start_time": _at(START + 50 * MINUTE)},
]
"""Filters of ListDecisions: none, those a decision's rows share, and its treatments'."""

LISTED_INTERACTIONS: Final[list[dict[str, Any]]] = [
    {},
    {"project_id": "P2"},
    {"user_id": "u1"},
    {"treatment_tracking_id": "C_r43"},
    {"treatment_id": "B"},
    {
        "project_id": "P1",
        "treatment_id": "C",
        "interaction_type": interactions.LogTreatmentInteractionRequest.CLICKED,
    },
    {"interaction_type": interactions.LogTreatmentInteractionRequest.DISMISSED},
    {"user_id": "u2", "treatment_id": "A"},
    {"treatment_id": "D", "end_time": _at(START + 30 * MINUTE)},
]
"""Filters of ListInteractions."""


def decisions_matching(stored: Stored, asked: dict[str, Any]) -> list[emulator_pb2.ServedDecision]:
    """Return the stored decisions a ListDecisions request of these filters lists, in order."""
    request = emulator_pb2.ListDecisionsRequest(**asked)

    def holds(decision: emulator_pb2.ServedDecision) -> bool:
        time = decision.decide_time.ToMicroseconds()
        served = decision.served_treatments
        return (
            request.project_id in ("", decision.project_id)
            and request.user_id in ("", decision.user_id)
            and (not request.HasField("start_time") or time >= request.start_time.ToMicroseconds())
            and (not request.HasField("end_time") or time < request.end_time.ToMicroseconds())
            and (
                not request.treatment_tracking_id
                or any(s.treatment_tracking_id == request.treatment_tracking_id for s in served)
            )
            and (
                not request.treatment_id
                or any(s.treatment_id == request.treatment_id for s in served)
            )
            and (not request.surface or any(s.surface == request.surface for s in served))
        )

    listed = [decision for decision in stored.decisions if holds(decision)]
    return listed[::-1] if request.newest_first else listed


def interactions_matching(
    stored: Stored, asked: dict[str, Any]
) -> list[interactions.LogTreatmentInteractionRequest]:
    """Return the stored interactions a ListInteractions request of these filters lists."""
    request = emulator_pb2.ListInteractionsRequest(**asked)

    def holds(logged: interactions.LogTreatmentInteractionRequest) -> bool:
        time = logged.interaction_time_micros
        return (
            request.project_id in ("", logged.project_id)
            and request.user_id in ("", logged.user_id)
            and request.treatment_tracking_id in ("", logged.treatment_tracking_id)
            and request.treatment_id in ("", logged.treatment_id)
            and (
                not request.interaction_type or request.interaction_type == logged.interaction_type
            )
            and (not request.HasField("start_time") or time >= request.start_time.ToMicroseconds())
            and (not request.HasField("end_time") or time < request.end_time.ToMicroseconds())
        )

    listed = [logged for logged in stored.interactions if holds(logged)]
    return listed[::-1] if request.newest_first else listed


INTERLEAVED: Final = [
    # (served_id, project, user, response, treatment, surface, tracking id, time)
    (10, "P1", "u1", "D", "X", "S1", "X_D", START),
    (11, "P1", "u2", "E", "X", "S1", "X_E", START),
    (12, "P1", "u1", "D", "Y", "S2", "Y_D", START),
    (13, "P1", "u2", "E", "Z", "S2", "Z_E", START),
    (14, "P2", "u3", "D", "Y", "S1", "Y_D", START),
    (15, "P2", "u3", "D", "X", "S2", "X_D", START),
]
"""Served rows two replicas could write at once: decisions D and E of P1 interleaved, and
a decision of P2 with D's response id (response ids are unique per project only here)."""

INTERLEAVED_LISTED: Final[list[tuple[dict[str, Any], list[tuple[str, str]]]]] = [
    ({}, [("P1", "D"), ("P1", "E"), ("P2", "D")]),
    ({"treatment_id": "X"}, [("P1", "D"), ("P1", "E"), ("P2", "D")]),
    ({"treatment_id": "Y"}, [("P1", "D"), ("P2", "D")]),
    ({"surface": "S2"}, [("P1", "D"), ("P1", "E"), ("P2", "D")]),
    ({"project_id": "P1", "surface": "S2", "treatment_id": "Z"}, [("P1", "E")]),
    ({"treatment_tracking_id": "Y_D"}, [("P1", "D"), ("P2", "D")]),
    ({"treatment_tracking_id": "X_D", "project_id": "P2"}, [("P2", "D")]),
    ({"treatment_tracking_id": "X_"}, []),
    ({"user_id": "u2", "treatment_id": "Z"}, [("P1", "E")]),
]
"""ListDecisions filters over ``INTERLEAVED``, and the (project, response) each lists, in order."""


async def all_decisions(
    store: Store, asked: dict[str, Any], page_size: int
) -> list[emulator_pb2.ServedDecision]:
    """Return what ListDecisions lists for these filters, every page followed."""
    return await _all_pages(
        store,
        lambda token: emulator_pb2.ListDecisionsRequest(
            **asked, page_size=page_size, page_token=token
        ),
        list_decisions,
        "decisions",
    )


async def all_interactions(
    store: Store, asked: dict[str, Any], page_size: int
) -> list[interactions.LogTreatmentInteractionRequest]:
    """Return what ListInteractions lists for these filters, every page followed."""
    listed = await _all_pages(
        store,
        lambda token: emulator_pb2.ListInteractionsRequest(
            **asked, page_size=page_size, page_token=token
        ),
        list_interactions,
        "interactions",
    )
    return [found.interaction for found in listed]


def _page(listing: Callable[[Repository, Any], Any], request: Any, repository: Repository) -> Any:
    return listing(repository, request)


async def _all_pages(
    store: Store,
    request_of: Callable[[str], Any],
    listing: Callable[[Repository, Any], Any],
    field: str,
) -> list[Any]:
    found: list[Any] = []
    token = ""
    while True:
        page = await store.read(functools.partial(_page, listing, request_of(token)))
        found.extend(getattr(page, field))
        token = page.next_page_token
        if not token:
            return found


def seek_of_next(
    table: str, dialect: filters.Dialect, after: int, *, newest_first: bool, floor: int = 0
) -> filters.Query:
    """Return the query a listing of project P runs to find its next record past ``after``.

    ``floor``: P's records at and below it are hidden (a Reset's).
    """
    sequence = "interaction_id" if table == "interactions" else "served_id"
    asked: list[filters.Query] = []

    def read(query: filters.Query) -> Any:
        asked.append(query)
        return iter([(None,)])

    filters._next_sequence(
        read, (table, sequence, dialect.mark), ("P", after, floor), newest_first=newest_first
    )
    (query,) = asked
    return query
