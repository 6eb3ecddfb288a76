"""The requests of a load: LogTreatmentInteraction and GetTreatments, each distinct by index."""

from __future__ import annotations

import json
from typing import Final

from auxia.decision.model import treatment_interaction_service_pb2 as interactions

REST_PATH: Final = "/v1/LogTreatmentInteraction"
GRPC_METHOD: Final = "/io.auxia.decision.model.TreatmentInteractionService/LogTreatmentInteraction"
DEFAULT_KEY: Final = "TEST_API_KEY"
PROJECT_ID: Final = "PROJECT_ID"
_INTERACTION_TIME: Final = 1_732_312_345_123_456


def tracking_id(tag: str, index: int) -> str:
    """Return the ``treatmentTrackingId`` of request ``index`` of a run tagged ``tag``."""
    return f"{tag}-{index}"


_BODY_START: Final = (
    f'{{"projectId":"{PROJECT_ID}","userId":"USER_ID","treatmentTrackingId":"'
).encode()
_BODY_END: Final = (
    '","treatmentId":"TREATMENT_ID","surface":"SURFACE","interactionType":"CLICKED",'
    f'"interactionTimeMicros":"{_INTERACTION_TIME}","actionName":"ACTION_NAME"}}'
).encode()


def rest_body(tag: str, index: int) -> bytes:
    """Return the JSON body of request ``index``: the docs' sample with a unique tracking id."""
    return _BODY_START + tracking_id(tag, index).encode() + _BODY_END


DECIDE_PATH: Final = "/v1/GetTreatments"
DECISION_SURFACES: Final = ("HOME_SCREEN", "CART_SCREEN", "ARTICLE_PAGE")
COUNTRIES: Final = ("US", "DE", "FR", "GB")


def user_id(index: int) -> str:
    """Return the id of user ``index`` of a decision world."""
    return f"u{index}"


def user_attributes(index: int) -> list[dict[str, object]]:
    """Return the contextual attributes user ``index`` sends, as a production client does."""
    return [
        {"key": "country", "stringValue": COUNTRIES[index % len(COUNTRIES)]},
        {"key": "age", "integerValue": 16 + index % 50},
        {"key": "subscriber", "boolValue": index % 3 == 0},
        {"key": "daily_article_count", "integerValue": index % 7},
        {"key": "current_screen", "stringValue": "article"},
    ]


def decide_body(index: int, users: int, stride: int = 1) -> bytes:
    """Return GetTreatments request ``index``: of one of ``users`` users, for one surface.

    The user is ``index * stride`` modulo ``users``: a stride spreads a run
    shorter than the users over all of them.
    """
    user = index * stride % users
    document = {
        "projectId": PROJECT_ID,
        "userId": user_id(user),
        "contextualAttributes": user_attributes(user),
        "surfaces": [
            {
                "surface": DECISION_SURFACES[index % len(DECISION_SURFACES)],
                "maximumTreatmentCount": 1,
            }
        ],
        "languageCode": "en",
    }
    return json.dumps(document, separators=(",", ":")).encode()


_SERVED: Final = b'"treatmentTrackingId"'


def grpc_request(tag: str, index: int) -> interactions.LogTreatmentInteractionRequest:
    """Return request ``index`` as a message: the same content as ``rest_body``."""
    return interactions.LogTreatmentInteractionRequest(
        project_id=PROJECT_ID,
        user_id="USER_ID",
        treatment_tracking_id=tracking_id(tag, index),
        treatment_id="TREATMENT_ID",
        surface="SURFACE",
        interaction_type=interactions.LogTreatmentInteractionRequest.CLICKED,
        interaction_time_micros=_INTERACTION_TIME,
        action_name="ACTION_NAME",
    )
