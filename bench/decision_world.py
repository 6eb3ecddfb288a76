"""The world GetTreatments is benchmarked in: a seed, and users with a history.

24 LIVE treatments over the three surfaces of the load generator's requests,
each with two or three eligibility rules, one of them on how often the user
viewed it in the last 7 days, the others on the contextual attributes the
generator sends; two mutual exclusion groups. Each of the generator's users
has logged 20 interactions (mostly views, a few dismissals) over the last
fortnight, written to the database before the server starts, so that every
server measured reads the same history.
"""

from __future__ import annotations

import asyncio
import json
import pathlib
import time
from typing import Any, Final

from auxia.decision.model import treatment_interaction_service_pb2 as interactions
from auxia_decision.server import run_event_loop
from auxia_decision.server._startup import open_store
from auxia_decision.server._storage.activity import DEFAULT_CAPACITY
from tools.loadgen import DECISION_SURFACES, PROJECT_ID, user_id

TREATMENTS: Final = 24
ADMIN_KEY: Final = "BENCH_ADMIN_KEY"
"""The admin key of the world's seed (a bench arms faults with it)."""
HISTORY_PER_USER: Final = 20
_DAY_MICROS: Final = 86_400_000_000
_FIRST_VIEW_FIELD: Final = 6
"""The data field of treatment 0's views in the last 7 days: 5 attribute fields come first."""
_ATTRIBUTE_RULES: Final = (
    (1, "NOT_EQUALS", "FR"),  # country
    (2, "GREATER_THAN_OR_EQUALS", "18"),  # age
    (3, "EQUALS", "false"),  # subscriber
    (4, "GREATER_THAN_OR_EQUALS", "2"),  # daily_article_count
    (2, "LESS_THAN", "60"),  # age
)


def treatment_id(index: int) -> str:
    """Return the id of treatment ``index`` of the world."""
    return f"T{index:02d}"


def seed() -> dict[str, Any]:
    """Return the seed of the world, as proto JSON of ``io.auxia.decision.server.Seed``."""
    data_fields: list[dict[str, Any]] = [
        {"userAttributeDataFieldParams": {"propertyName": name}}
        for name in ("country", "age", "subscriber", "daily_article_count", "plan")
    ]
    data_fields += [
        {
            "treatmentDataFieldParams": {
                "treatmentInteractionType": "VIEWED",
                "treatmentId": treatment_id(index),
                "dailyCountAggregation": {"windowName": "LAST_7D"},
            }
        }
        for index in range(TREATMENTS)
    ]
    return {
        "adminKeys": [ADMIN_KEY],
        "projects": [
            {
                "projectId": PROJECT_ID,
                "numericProjectId": "1",
                "apiKeys": ["TEST_API_KEY"],
                "supportedLanguageCodes": ["en"],
                "treatmentTypes": [_CARD],
                "userAttributeTypes": [
                    {"propertyName": "country", "dataFieldType": "STRING"},
                    {"propertyName": "age", "dataFieldType": "INTEGER"},
                    {"propertyName": "subscriber", "dataFieldType": "BOOLEAN"},
                    {"propertyName": "daily_article_count", "dataFieldType": "INTEGER"},
                    {"propertyName": "plan", "dataFieldType": "STRING"},
                ],
                "dataFields": data_fields,
                "treatments": [_treatment(index) for index in range(TREATMENTS)],
            }
        ],
    }


# The one treatment type of the world: a card on any of its surfaces.
_CARD: Final[dict[str, Any]] = {
    "name": "CARD",
    "deliveryType": "IN_APP",
    "languageSpecificContentFieldTypes": [
        {"fieldName": "title", "valueLengthLimit": 80, "dataType": "STRING"},
        {"fieldName": "cta_name", "valueLengthLimit": 40, "dataType": "STRING"},
    ],
    "languageAgnosticContentFieldTypes": [
        {"fieldName": "cta_link", "valueLengthLimit": 200, "dataType": "STRING"}
    ],
    "surfaces": [{"name": name} for name in DECISION_SURFACES],
}


def _rules(index: int) -> list[dict[str, str]]:
    """Return treatment ``index``'s rules: fewer than 3 views in 7 days, and one or two more."""
    rules = [
        {
            "dataFieldId": str(_FIRST_VIEW_FIELD + index),
            "condition": "LESS_THAN",
            "rhsValue": "3",
        }
    ]
    for offset in range(1 + index % 2):  # one or two attribute rules besides
        data_field, condition, value = _ATTRIBUTE_RULES[(index + offset) % len(_ATTRIBUTE_RULES)]
        rules.append({"dataFieldId": str(data_field), "condition": condition, "rhsValue": value})
    return rules


def _treatment(index: int) -> dict[str, Any]:
    """Return the seed's treatment ``index``: LIVE on one surface, one in four in a group."""
    surface = DECISION_SURFACES[index % len(DECISION_SURFACES)]
    insert: dict[str, Any] = {
        "name": f"Treatment {index}",
        "description": f"Treatment {index} of the benchmark's world",
        "treatmentTypeName": "CARD",
        "lastModifiedBy": "bench@auxia.io",
        "startTimestamp": "2024-01-01T00:00:00Z",
        "removedSurfaces": {
            "surfaces": [{"name": name} for name in DECISION_SURFACES if name != surface]
        },
        "content": {
            "contentByLanguage": [
                {
                    "languageCode": {"languageCode": "en"},
                    "contentFields": [
                        {"fieldName": "title", "stringValue": f"Title of treatment {index}"},
                        {"fieldName": "cta_name", "stringValue": "Read more"},
                    ],
                }
            ],
            "languageAgnosticContentFields": [
                {"fieldName": "cta_link", "stringValue": f"https://example.com/t/{index}"}
            ],
        },
        "eligibilityRules": {"rules": _rules(index)},
        "shouldPublish": True,
    }
    if index % 4 == 0:
        insert["mutualExclusionGroup"] = f"GROUP_{index % 8 // 4}"
    return {"treatmentId": treatment_id(index), "insert": insert}


def write_seed(path: pathlib.Path) -> pathlib.Path:
    """Write the world's seed to ``path``; return it."""
    path.write_text(json.dumps(seed(), indent=1))
    return path


def write_history(db: pathlib.Path | str, users: int, *, now_micros: int | None = None) -> int:
    """Write ``HISTORY_PER_USER`` interactions of each of ``users`` users into a new store.

    They are logged through the store's own API (``log_interaction``: on a
    SQLite file, committed by its writer process; on a ``postgresql://`` URL,
    by the PostgreSQL store), as the server logs them. Returns how many were
    written.
    """
    now = time.time_ns() // 1000 if now_micros is None else now_micros

    async def write() -> int:
        store = open_store(str(db), DEFAULT_CAPACITY)
        try:
            await store.start_writer()
            written = 0
            for first in range(0, users, _USERS_PER_PASS):
                waiters = [
                    store.log_interaction(request, None)
                    for user in range(first, min(users, first + _USERS_PER_PASS))
                    for request in _history(user, now)
                ]
                await asyncio.gather(*waiters)
                written += len(waiters)
            return written
        finally:
            await store.aclose()

    return run_event_loop(write())


_USERS_PER_PASS: Final = 1_000


def _history(user: int, now: int) -> list[interactions.LogTreatmentInteractionRequest]:
    """Return the interactions user ``user`` logged over the last fortnight."""
    found = []
    for number in range(HISTORY_PER_USER):
        index = (user * 7 + number * 5) % TREATMENTS
        kind = (
            interactions.LogTreatmentInteractionRequest.DISMISSED
            if number % 10 == 9
            else interactions.LogTreatmentInteractionRequest.VIEWED
        )
        found.append(
            interactions.LogTreatmentInteractionRequest(
                project_id=PROJECT_ID,
                user_id=user_id(user),
                treatment_tracking_id=f"history-{user}-{number}",
                treatment_id=treatment_id(index),
                surface=DECISION_SURFACES[index % len(DECISION_SURFACES)],
                interaction_type=kind,
                interaction_time_micros=now - (number % 14) * _DAY_MICROS,
            )
        )
    return found
