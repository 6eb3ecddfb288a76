"""GetTreatments, GetTreatment and GetAllTreatments on the default seed's world, in process.

The world (docs/decisions.md): treatments WELCOME_BACK (HOME_SCREEN, at most 3
views in 7 days), CART_REMINDER (CART_SCREEN, never after a dismissal),
SUBSCRIBE_OFFER and SIGN_IN_GATE (ARTICLE_PAGE, one exclusion group) and
DONATION_ASK (HOME_SCREEN and ARTICLE_PAGE, adults), all LIVE since 2024.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest

from auxia.decision.model import data_field_pb2, treatment_pb2
from auxia.decision.model import treatment_decision_service_pb2 as decisions
from auxia.decision.model import treatment_interaction_service_pb2 as interactions
from auxia.decision.model import treatment_management_service_pb2 as management
from auxia_decision import ApiError, Code, RestCodec
from auxia_decision.server._domain.catalog import compile_catalog
from auxia_decision.server._domain.decisions import (
    response_id,
    response_of_tracking_id,
    tracking_id,
)
from auxia_decision.server._domain.servicer import as_message
from auxia_decision.server._storage.seam import StoredTreatment
from tests._fixtures import REQUESTS
from tests._world import World, micros

CODEC = RestCodec()
_DECODE_FIELDS = CODEC.request_fields_decoder(decisions.GetTreatmentsRequest)
assert _DECODE_FIELDS is not None
DECODE_FIELDS = _DECODE_FIELDS
DAY = 86_400_000_000
Interaction = interactions.LogTreatmentInteractionRequest


def get_treatments(world: World, **document: Any) -> decisions.GetTreatmentsResponse:
    return call_get_treatments(world, document, via_fields=False)


def call_get_treatments(
    world: World, document: dict[str, Any], *, via_fields: bool
) -> decisions.GetTreatmentsResponse:
    """Call GetTreatments with a request decoded from JSON: as a message, or as the REST
    gateway does, as its constructor's arguments where the codec is sure of them."""
    body = json.dumps({"projectId": "PROJECT_ID", "userId": "reader-1", **document})
    if via_fields:
        fields = DECODE_FIELDS(body)
        if fields is None:  # as the gateway, the message decides what the fields do not
            request = CODEC.decode_request(body, decisions.GetTreatmentsRequest)
            response = world.call("GetTreatments", request)
        else:
            answer = world.call_fields("GetTreatments", decisions.GetTreatmentsRequest, fields)
            response = as_message(decisions.GetTreatmentsResponse, answer)
    else:
        request = CODEC.decode_request(body, decisions.GetTreatmentsRequest)
        response = world.call("GetTreatments", request)
    assert isinstance(response, decisions.GetTreatmentsResponse)
    return response


def served(response: decisions.GetTreatmentsResponse) -> list[tuple[str, str, int]]:
    return [(t.surface, t.treatment_id, t.rank) for t in response.user_treatments]


def log(
    world: World,
    treatment: decisions.UserTreatment,
    kind: Interaction.InteractionType.ValueType,
    user_id: str = "reader-1",
) -> None:
    world.call(
        "LogTreatmentInteraction",
        Interaction(
            project_id="PROJECT_ID",
            user_id=user_id,
            treatment_tracking_id=treatment.treatment_tracking_id,
            treatment_id=treatment.treatment_id,
            surface=treatment.surface,
            interaction_type=kind,
            interaction_time_micros=world.now,
        ),
    )


ADULT = [{"key": "age", "integerValue": 34}]
READER = [
    {"key": "country", "stringValue": "US"},
    {"key": "subscriber", "boolValue": False},
    {"key": "daily_article_count", "integerValue": 5},
    {"key": "age", "integerValue": 34},
]


def test_the_production_clients_call_gets_one_treatment_with_everything_it_reads(
    world: World,
) -> None:
    text = REQUESTS["GetTreatments"].text()
    request = CODEC.decode_request(text, decisions.GetTreatmentsRequest)
    response = world.call("GetTreatments", request)
    assert isinstance(response, decisions.GetTreatmentsResponse)
    (chosen,) = response.user_treatments
    assert chosen.surface == "ARTICLE_PAGE"
    assert chosen.rank == 1
    assert chosen.treatment_tracking_id == f"{chosen.treatment_id}_{response.response_id}"
    assert chosen.content_language_code == "en"
    assert chosen.treatment_type == "IN_APP_CONTENT"
    content = json.loads(chosen.treatment_content)
    assert set(content) >= {"title", "cta_name", "cta_link"}
    # The same user gets the same order every time.
    again = world.call("GetTreatments", request)
    assert isinstance(again, decisions.GetTreatmentsResponse)
    assert [t.treatment_id for t in again.user_treatments] == [chosen.treatment_id]
    assert again.response_id != response.response_id


def test_one_treatment_per_exclusion_group_and_per_response(world: World) -> None:
    response = get_treatments(
        world,
        contextualAttributes=READER,
        surfaces=[
            {"surface": "ARTICLE_PAGE", "maximumTreatmentCount": 5},
            {"surface": "HOME_SCREEN", "maximumTreatmentCount": 5},
        ],
    )
    article = [t.treatment_id for t in response.user_treatments if t.surface == "ARTICLE_PAGE"]
    home = [t.treatment_id for t in response.user_treatments if t.surface == "HOME_SCREEN"]
    # SUBSCRIBE_OFFER and SIGN_IN_GATE are both eligible, in one group: one of them.
    assert len(set(article) & {"SUBSCRIBE_OFFER", "SIGN_IN_GATE"}) == 1
    assert "DONATION_ASK" in article
    # DONATION_ASK is also a HOME_SCREEN treatment, but served once a response.
    assert home == ["WELCOME_BACK"]
    assert [t.rank for t in response.user_treatments if t.surface == "ARTICLE_PAGE"] == [1, 2]


def test_different_users_get_different_orders(world: World) -> None:
    firsts = {
        get_treatments(
            world,
            userId=f"user-{index}",
            contextualAttributes=READER,
            surfaces=[{"surface": "ARTICLE_PAGE"}],
        )
        .user_treatments[0]
        .treatment_id
        for index in range(40)
    }
    assert firsts == {"SUBSCRIBE_OFFER", "SIGN_IN_GATE", "DONATION_ASK"}


def test_a_rule_without_its_attribute_does_not_hold(world: World) -> None:
    response = get_treatments(world, surfaces=[{"surface": "ARTICLE_PAGE"}])
    assert response.user_treatments == []  # no age, no subscriber flag: nobody is eligible
    home = get_treatments(world, surfaces=[{"surface": "HOME_SCREEN", "maximumTreatmentCount": 3}])
    assert served(home) == [("HOME_SCREEN", "WELCOME_BACK", 1)]


def test_dismissed_once_then_never_shown_again(world: World) -> None:
    first = get_treatments(world, surfaces=[{"surface": "CART_SCREEN"}])
    (reminder,) = first.user_treatments
    assert reminder.treatment_id == "CART_REMINDER"
    log(world, reminder, Interaction.VIEWED)
    assert served(get_treatments(world, surfaces=[{"surface": "CART_SCREEN"}])) == [
        ("CART_SCREEN", "CART_REMINDER", 1)
    ]
    log(world, reminder, Interaction.DISMISSED)
    assert get_treatments(world, surfaces=[{"surface": "CART_SCREEN"}]).user_treatments == []
    world.now += 29 * DAY
    assert get_treatments(world, surfaces=[{"surface": "CART_SCREEN"}]).user_treatments == []
    world.now += 2 * DAY  # the rule counts dismissals of the last 30 days
    assert len(get_treatments(world, surfaces=[{"surface": "CART_SCREEN"}]).user_treatments) == 1
    # Another user was never suppressed.
    other = get_treatments(world, userId="reader-2", surfaces=[{"surface": "CART_SCREEN"}])
    assert len(other.user_treatments) == 1


def test_at_most_three_views_in_seven_days(world: World) -> None:
    ask = {"surfaces": [{"surface": "HOME_SCREEN"}]}
    for _ in range(3):
        (welcome,) = get_treatments(world, **ask).user_treatments
        assert welcome.treatment_id == "WELCOME_BACK"
        log(world, welcome, Interaction.VIEWED)
        world.now += DAY
    assert get_treatments(world, **ask).user_treatments == []
    world.now += 4 * DAY  # the first view leaves the window
    assert len(get_treatments(world, **ask).user_treatments) == 1


def test_the_language_of_the_content_and_a_language_without_content(world: World) -> None:
    german = get_treatments(world, surfaces=[{"surface": "HOME_SCREEN"}], languageCode="de")
    (welcome,) = german.user_treatments
    assert welcome.content_language_code == "de"
    assert json.loads(welcome.treatment_content)["title"] == "Willkommen zurück!"
    french = get_treatments(world, surfaces=[{"surface": "HOME_SCREEN"}], languageCode="fr")
    assert french.user_treatments == []


def test_a_surface_that_cannot_reach_its_minimum_gets_nothing(world: World) -> None:
    response = get_treatments(
        world,
        contextualAttributes=ADULT,
        surfaces=[
            {"surface": "ARTICLE_PAGE", "maximumTreatmentCount": 3, "minimumTreatmentCount": 2}
        ],
    )
    assert response.user_treatments == []  # only DONATION_ASK is eligible
    enough = get_treatments(
        world,
        contextualAttributes=READER,
        surfaces=[
            {"surface": "ARTICLE_PAGE", "maximumTreatmentCount": 3, "minimumTreatmentCount": 2}
        ],
    )
    assert len(enough.user_treatments) == 2


def test_served_treatments_count_as_sent(world: World) -> None:
    # A rule on SENT: the treatment is served at most twice a day.
    fields = world.call(
        "GetDataFields",
        CODEC.decode_request(
            json.dumps(
                {
                    "projectId": "PROJECT_ID",
                    "dataFieldParams": [
                        {
                            "treatmentDataFieldParams": {
                                "treatmentInteractionType": "SENT",
                                "treatmentId": "DONATION_ASK",
                                "dailyCountAggregation": {"windowName": "LAST_1D"},
                            }
                        }
                    ],
                }
            ),
            management.GetDataFieldsByParamsRequest,
        ),
    )
    assert isinstance(fields, management.GetDataFieldsByParamsResponse)
    sent_field = fields.data_fields[0].data_field_id
    world.call(
        "UpdateTreatment",
        CODEC.decode_request(
            json.dumps(
                {
                    "projectId": "PROJECT_ID",
                    "treatmentId": "DONATION_ASK",
                    "lastModifiedBy": "tester",
                    "eligibilityRules": {
                        "rules": [
                            {
                                "dataFieldId": str(sent_field),
                                "condition": "LESS_THAN",
                                "rhsValue": "2",
                            }
                        ]
                    },
                    "shouldPublish": True,
                }
            ),
            management.UpdateTreatmentRequest,
        ),
    )
    ask = {"surfaces": [{"surface": "ARTICLE_PAGE"}]}
    assert [served(get_treatments(world, **ask)) for _ in range(3)] == [
        [("ARTICLE_PAGE", "DONATION_ASK", 1)],
        [("ARTICLE_PAGE", "DONATION_ASK", 1)],
        [],
    ]


def test_the_clock_decides_what_is_live(world: World) -> None:
    world.now = micros("2023-06-01T00:00:00Z")  # before the seed's treatments start
    assert get_treatments(world, surfaces=[{"surface": "HOME_SCREEN"}]).user_treatments == []


@pytest.mark.parametrize(
    ("document", "fields"),
    [
        ({"surfaces": []}, ["surfaces"]),
        ({"surfaces": [{"surface": "NOWHERE"}]}, ["surfaces[0].surface"]),
        ({"surfaces": [{"surface": "HOME_SCREEN", "maximumTreatmentCount": -1}]},
         ["surfaces[0].maximumTreatmentCount"]),
        ({"surfaces": [{"surface": "HOME_SCREEN", "minimumTreatmentCount": -2}]},
         ["surfaces[0].minimumTreatmentCount"]),
        ({"surfaces": [{"surface": "HOME_SCREEN", "maximumTreatmentCount": 2,
                        "minimumTreatmentCount": 3}]}, ["surfaces[0].minimumTreatmentCount"]),
        ({"surfaces": [{"surface": "HOME_SCREEN"}],
          "contextualAttributes": [{"key": "age", "integerValue": 1},
                                   {"key": "age", "integerValue": 2}]},
         ["contextualAttributes[1].key"]),
        ({"surfaces": [{"surface": "HOME_SCREEN"}],
          "contextualAttributes": [{"key": "age"}]}, ["contextualAttributes[0].stringValue"]),
        ({"surfaces": [{"surface": "HOME_SCREEN"}],
          "contextualAttributes": [{"key": "age", "stringValue": "34"}]},
         ["contextualAttributes[0].stringValue"]),
        ({"surfaces": [{"surface": "HOME_SCREEN"}],
          "contextualAttributes": [{"key": "subscriber", "integerValue": 1}]},
         ["contextualAttributes[0].integerValue"]),

        ({"surfaces": [{"surface": "NOWHERE"}],
          "contextualAttributes": [{"key": "age", "integerValue": 1},
                                   {"key": "age", "integerValue": 2}]},
         ["surfaces[0].surface", "contextualAttributes[1].key"]),
    ],
    ids=[
        "no surface", "unknown surface", "negative maximum", "negative minimum",
        "minimum above maximum", "a key twice", "no value", "age as a string",
        "a boolean as a number", "a surface and an attribute at once",
    ],
)  # fmt: skip
@pytest.mark.parametrize("via_fields", [False, True], ids=["message", "fields"])
def test_bad_requests_name_the_field(
    world: World, document: dict[str, Any], fields: list[str], via_fields: bool
) -> None:
    with pytest.raises(ApiError) as caught:
        call_get_treatments(world, document, via_fields=via_fields)
    assert caught.value.code is Code.INVALID_ARGUMENT
    assert [v.field for v in caught.value.field_violations] == fields


@pytest.mark.parametrize("surface", ["HOME_SCREEN", "CART_SCREEN", "ARTICLE_PAGE"])
@pytest.mark.parametrize("user", ["reader-1", "reader-2", "reader-3"])
def test_the_fields_are_decided_as_the_message_is(world: World, surface: str, user: str) -> None:
    other = World()
    try:
        asked = {
            "userId": user,
            "surfaces": [{"surface": surface, "maximumTreatmentCount": 2}],
            "contextualAttributes": READER,
        }
        from_message = call_get_treatments(world, asked, via_fields=False)
        from_fields = call_get_treatments(other, asked, via_fields=True)
        assert served(from_fields) == served(from_message) != []
    finally:
        other.close()


def test_an_attribute_with_two_values_is_refused_by_the_codec() -> None:
    body = {
        "projectId": "PROJECT_ID",
        "userId": "u",
        "surfaces": [{"surface": "HOME_SCREEN"}],
        "contextualAttributes": [{"key": "age", "integerValue": 1, "stringValue": "1"}],
    }
    with pytest.raises(ApiError) as caught:
        CODEC.decode_request(json.dumps(body), decisions.GetTreatmentsRequest)
    assert caught.value.field_violations[0].field == "contextualAttributes[0].stringValue"


# GetTreatment and GetAllTreatments.


def test_get_treatment_returns_it_with_statuses_or_not_found(world: World) -> None:
    response = world.call(
        "GetTreatment",
        management.GetTreatmentRequest(project_id="PROJECT_ID", treatment_id="CART_REMINDER"),
    )
    assert isinstance(response, management.GetTreatmentResponse)
    assert response.treatment.status == treatment_pb2.TreatmentPb.LIVE
    assert response.treatment.versions[0].status == treatment_pb2.TreatmentVersionPb.LIVE
    with pytest.raises(ApiError) as caught:
        world.call(
            "GetTreatment",
            management.GetTreatmentRequest(project_id="PROJECT_ID", treatment_id="NOPE"),
        )
    assert caught.value.code is Code.NOT_FOUND


def _all(world: World, **document: Any) -> management.GetAllTreatmentsResponse:
    request = CODEC.decode_request(
        json.dumps({"projectId": "PROJECT_ID", **document}), management.GetAllTreatmentsRequest
    )
    response = world.call("GetAllTreatments", request)
    assert isinstance(response, management.GetAllTreatmentsResponse)
    return response


def _ids(response: management.GetAllTreatmentsResponse) -> list[str]:
    return [t.treatment_id for t in response.treatments]


def test_get_all_treatments_filters_by_type_surface_and_tag(world: World) -> None:
    assert _ids(_all(world)) == [
        "CART_REMINDER", "DONATION_ASK", "SIGN_IN_GATE", "SUBSCRIBE_OFFER", "TREATMENT_ID",
        "WELCOME_BACK",
    ]  # fmt: skip
    assert _ids(_all(world, treatmentFilter={"treatmentTypeName": "IN_APP_CONTENT_CARD"})) == [
        "TREATMENT_ID"
    ]
    article = _all(world, treatmentVersionFilter={"surface": {"surfaceNames": ["ARTICLE_PAGE"]}})
    assert _ids(article) == ["DONATION_ASK", "SIGN_IN_GATE", "SUBSCRIBE_OFFER"]
    tagged = _all(world, treatmentVersionFilter={"tag": {"tags": ["christmas_coupons"]}})
    assert _ids(tagged) == ["TREATMENT_ID"]


def test_get_all_treatments_pages_through_with_tokens(world: World) -> None:
    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        page = _all(world, pageSize=4, pageToken=token)
        seen += _ids(page)
        pages += 1
        token = page.next_page_token
        if not token:
            break
    assert pages == 2
    assert seen == _ids(_all(world))
    with pytest.raises(ApiError) as caught:
        _all(world, pageSize=4, pageToken=_all(world, pageSize=2).next_page_token,
             treatmentFilter={"treatmentTypeName": "IN_APP_CONTENT"})  # fmt: skip
    assert [v.field for v in caught.value.field_violations] == ["pageToken"]
    for bad in ({"pageToken": "garbage!"}, {"pageSize": -1}):
        with pytest.raises(ApiError):
            _all(world, **bad)


def test_response_ids_are_time_ordered_version_7_uuids(world: World) -> None:
    before = time.time_ns() // 1_000_000
    ids = [
        get_treatments(world, surfaces=[{"surface": "HOME_SCREEN"}]).response_id for _ in range(50)
    ]
    after = time.time_ns() // 1_000_000
    assert len(set(ids)) == 50
    for found in ids:
        parsed = uuid.UUID(found)
        assert (parsed.version, parsed.variant, str(parsed)) == (7, uuid.RFC_4122, found)
        assert before <= parsed.int >> 80 <= after
    # By the millisecond: ids of one millisecond may come in any order.
    assert [uuid.UUID(found).int >> 80 for found in ids] == sorted(
        uuid.UUID(found).int >> 80 for found in ids
    )


def test_the_response_of_a_tracking_id_is_read_back() -> None:
    response = response_id()
    for treatment in ("WELCOME_BACK", "A", "with_under_scores", ""):
        assert response_of_tracking_id(tracking_id(treatment, response)) == response


_Params = data_field_pb2.DataFieldParams
_Activity = _Params.TreatmentDataFieldParams


def _activity_field(
    kind: _Activity.TreatmentInteractionType.ValueType, **given: Any
) -> tuple[data_field_pb2.DataFieldParams, str]:
    return _Params(
        treatment_data_field_params=_Activity(treatment_interaction_type=kind, **given)
    ), "INTEGER"


def test_a_catalog_counts_the_kinds_of_every_activity_field_its_rules_name() -> None:
    # What the store keeps exact for the decisions (Store.fold_kinds): every aggregation.
    fields = {
        1: _activity_field(
            _Activity.SENT,
            treatment_id="X",
            daily_count_aggregation=data_field_pb2.DailyCountAggregation(window_name="LAST_7D"),
        ),
        2: _activity_field(
            _Activity.CLICKED,
            surface_id="S",
            first_timestamp_aggregation=data_field_pb2.FirstTimestampAggregation(),
        ),
        3: _activity_field(
            _Activity.DISMISSED,
            latest_timestamp_aggregation=data_field_pb2.LatestTimestampAggregation(),
        ),
        4: _activity_field(
            _Activity.SNOOZED,
            days_since_first_timestamp_aggregation=data_field_pb2.DaysSinceFirstTimestampAggregation(),
        ),
        5: _activity_field(
            _Activity.SWIPE,
            days_since_last_timestamp_aggregation=data_field_pb2.DaysSinceLastTimestampAggregation(),
        ),
        6: (
            _Params(
                user_attribute_data_field_params=_Params.UserAttributeDataFieldParams(
                    property_name="age"
                )
            ),
            "INTEGER",
        ),
        7: _activity_field(
            _Activity.VIEWED,
            daily_count_aggregation=data_field_pb2.DailyCountAggregation(window_name="LAST_1D"),
        ),
    }
    rules = [
        treatment_pb2.EligibilityRulePb(
            data_field_id=field, condition=treatment_pb2.Condition.LESS_THAN, rhs_value="1"
        )
        for field in (1, 2, 3, 4, 5, 6, 99)  # 7 named by no rule; 99 no field at all
    ]
    treatment = treatment_pb2.TreatmentPb(
        treatment_id="T",
        treatment_type=treatment_pb2.TreatmentTypePb(name="TYPE"),
        versions=[
            treatment_pb2.TreatmentVersionPb(
                eligibility_rules=treatment_pb2.EligibilityRulesListPb(rules=rules[:3])
            ),
            treatment_pb2.TreatmentVersionPb(
                eligibility_rules=treatment_pb2.EligibilityRulesListPb(rules=rules[3:])
            ),
        ],
    )
    catalog = compile_catalog("P", [], {}, fields, [StoredTreatment(treatment, [True, False])])
    assert catalog.kinds_read == {
        _Activity.SENT,
        _Activity.CLICKED,
        _Activity.DISMISSED,
        _Activity.SNOOZED,
        _Activity.SWIPE,
    }
