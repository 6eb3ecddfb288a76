"""The documented semantics of each RPC, through the transport-independent servicer."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from google.protobuf.message import Message

from auxia.decision.model import data_field_pb2, treatment_pb2
from auxia.decision.model import treatment_interaction_service_pb2 as interactions
from auxia.decision.model import treatment_management_service_pb2 as management
from auxia_decision import ApiError, Code, RestCodec
from tests._fixtures import FIXTURES
from tests._world import OTHER_KEY, World, micros

CODEC = RestCodec()
Treatment = treatment_pb2.TreatmentPb
Version = treatment_pb2.TreatmentVersionPb


def _doc(name: str) -> dict[str, Any]:
    document = json.loads((FIXTURES / "docs" / f"{name}.json").read_text())
    assert isinstance(document, dict)
    return document


def _insert_request(**changes: Any) -> management.InsertTreatmentRequest:
    body = _doc("insert_treatment_request")
    body.update(changes)
    for key in [key for key, value in body.items() if value is None]:
        del body[key]
    return CODEC.decode_request(json.dumps(body), management.InsertTreatmentRequest)


def _update_request(**changes: Any) -> management.UpdateTreatmentRequest:
    body = {"project_id": "PROJECT_ID", "last_modified_by": "EDITOR"}
    body.update(changes)
    return CODEC.decode_request(json.dumps(body), management.UpdateTreatmentRequest)


def _insert(world: World, **changes: Any) -> Treatment:
    response = world.call("InsertTreatment", _insert_request(**changes))
    assert isinstance(response, management.InsertTreatmentResponse)
    return response.treatment


def _update(world: World, **changes: Any) -> Treatment:
    response = world.call("UpdateTreatment", _update_request(**changes))
    assert isinstance(response, management.UpdateTreatmentResponse)
    return response.treatment


def _error(world: World, method: str, request: Message, api_key: str = "TEST_API_KEY") -> ApiError:
    with pytest.raises(ApiError) as caught:
        world.call(method, request, api_key)
    return caught.value


def _violations(error: ApiError) -> list[tuple[str, str]]:
    return [(v.field, v.description) for v in error.field_violations]


# InsertTreatment


def test_insert_creates_a_treatment_with_one_published_version(world: World) -> None:
    treatment = _insert(world)
    assert treatment.project_id == "PROJECT_ID"
    assert treatment.treatment_id
    assert treatment.name == "CCB treatment"
    assert treatment.treatment_type.name == "IN_APP_CONTENT"
    assert len(treatment.versions) == 1
    version = treatment.versions[0]
    assert version.status == Version.LIVE  # published, inside 2017..2027
    assert treatment.status == Treatment.LIVE
    assert [tag.name for tag in version.tags] == ["christmas_coupons"]
    assert version.target_action.event_id == 123
    assert [rule.rhs_value for rule in version.eligibility_rules.rules] == ["18", "US"]
    assert treatment.external_treatment_id == "EXTERNAL_TREATMENT_ID"
    assert treatment.last_modified_by == "USER_EMAIL"
    assert treatment.last_modified_timestamp.ToMicroseconds() == world.now
    assert treatment.modification_source == Treatment.API
    assert treatment.mutual_exclusion_group.name == "MUTUAL_EXCLUSION_GROUP"
    assert treatment.mutual_exclusion_group.project_id == 1


def test_insert_without_should_publish_is_a_draft(world: World) -> None:
    treatment = _insert(world, should_publish=None)
    assert treatment.versions[0].status == Version.DRAFT
    assert treatment.status == Treatment.DRAFT


def test_insert_needs_an_existing_treatment_type(world: World) -> None:
    error = _error(world, "InsertTreatment", _insert_request(treatment_type_name="NOPE"))
    assert _violations(error) == [("treatmentTypeName", 'the project has no treatment type "NOPE"')]


def test_insert_checks_content_against_the_type_all_at_once(world: World) -> None:
    content = {
        "content_by_language": [
            {
                "language_code": {"language_code": "en"},
                "content_fields": [
                    {"field_name": "title", "string_value": "x" * 51},
                    {"field_name": "cta_link", "string_value": "http://a"},
                ],
            },
            {"language_code": {"language_code": "xx"}, "content_fields": []},
        ],
        "language_agnostic_content_fields": [{"field_name": "subtitle", "string_value": "s"}],
    }
    error = _error(world, "InsertTreatment", _insert_request(content=content))
    assert _violations(error) == [
        (
            "content.contentByLanguage[0].contentFields[0].stringValue",
            "51 characters is longer than the limit of 50 for title",
        ),
        (
            "content.contentByLanguage[0].contentFields[1].fieldName",
            '"cta_link" is not a language-specific content field of treatment type '
            '"IN_APP_CONTENT" (allowed: body, cta_name, title); it is a language-agnostic '
            "field of the type",
        ),
        (
            "content.contentByLanguage[1].languageCode.languageCode",
            '"xx" is not a supported language code (de, en, es, fr, ja, pt-BR)',
        ),
        (
            "content.languageAgnosticContentFields[0].fieldName",
            '"subtitle" is not a language-agnostic content field of treatment type '
            '"IN_APP_CONTENT" (allowed: cta_link, image_link)',
        ),
    ]


def test_insert_refuses_a_language_or_a_content_field_given_twice(world: World) -> None:
    title = {"field_name": "title", "string_value": "t"}
    content = {
        "content_by_language": [
            {"language_code": {"language_code": "en"}, "content_fields": [title, title]},
            {"language_code": {"language_code": "en"}, "content_fields": [title]},
        ],
    }
    error = _error(world, "InsertTreatment", _insert_request(content=content))
    assert _violations(error) == [
        ("content.contentByLanguage[0].contentFields[1].fieldName", '"title" is set twice'),
        ("content.contentByLanguage[1].languageCode.languageCode", '"en" appears twice'),
    ]


def test_removed_surfaces_must_exactly_match_the_type_surfaces(world: World) -> None:
    request = _insert_request(removed_surfaces={"surfaces": [{"name": "surface"}]})
    error = _error(world, "InsertTreatment", request)
    assert _violations(error) == [
        (
            "removedSurfaces.surfaces[0].name",
            '"surface" is not a surface of treatment type "IN_APP_CONTENT" '
            "(surfaces: ARTICLE_PAGE, CART_SCREEN, HOME_SCREEN, SURFACE)",
        )
    ]


def test_eligibility_rules_need_existing_data_fields_and_parseable_values(world: World) -> None:
    rules = {
        "rules": [
            {"data_field_id": 1, "condition": "GREATER_THAN", "rhs_value": "many"},
            {"data_field_id": 99, "condition": "EQUALS", "rhs_value": "1"},
        ]
    }
    error = _error(world, "InsertTreatment", _insert_request(eligibility_rules=rules))
    assert _violations(error) == [
        (
            "eligibilityRules.rules[0].rhsValue",
            '"many" is not a value of data field 1, whose type is INTEGER',
        ),
        (
            "eligibilityRules.rules[1].dataFieldId",
            "the project has no data field 99: resolve it with GetDataFields first",
        ),
    ]


def test_mutual_exclusion_group_is_created_once_and_reused(world: World) -> None:
    first = _insert(world, external_treatment_id="A", mutual_exclusion_group="G")
    second = _insert(world, external_treatment_id="B", mutual_exclusion_group="G")
    third = _insert(world, external_treatment_id="C", mutual_exclusion_group="H")
    group = first.mutual_exclusion_group.mutual_exclusion_group_id
    assert second.mutual_exclusion_group.mutual_exclusion_group_id == group
    assert third.mutual_exclusion_group.mutual_exclusion_group_id != group


def test_duplicate_external_treatment_id_already_exists(world: World) -> None:
    first = _insert(world)
    error = _error(world, "InsertTreatment", _insert_request())
    assert error.code is Code.ALREADY_EXISTS
    assert first.treatment_id in error.message


def test_update_to_a_taken_external_id_fails_and_loses_no_treatment(world: World) -> None:
    first = _insert(world, external_treatment_id="A")
    second = _insert(world, external_treatment_id="B")
    error = _error(
        world,
        "UpdateTreatment",
        _update_request(treatment_id=second.treatment_id, external_treatment_id="A"),
    )
    assert error.code is Code.INVALID_ARGUMENT
    assert [v.field for v in error.field_violations] == ["externalTreatmentId"]
    # Both treatments are still there, each with its own external id.
    for treatment, external_id in ((first, "A"), (second, "B")):
        found = _update(world, external_treatment_id=external_id)
        assert found.treatment_id == treatment.treatment_id


# UpdateTreatment


def test_update_by_treatment_id_keeps_unset_fields(world: World) -> None:
    created = _insert(world, should_publish=None)
    world.now += 1_000_000
    updated = _update(world, treatment_id=created.treatment_id, name="Renamed")
    assert updated.name == "Renamed"
    assert updated.description == created.description
    assert updated.mutual_exclusion_group == created.mutual_exclusion_group
    assert updated.versions[0].content == created.versions[0].content
    assert updated.versions[0].eligibility_rules == created.versions[0].eligibility_rules
    assert updated.last_modified_by == "EDITOR"
    assert updated.last_modified_timestamp.ToMicroseconds() == world.now


def test_update_by_external_treatment_id(world: World) -> None:
    created = _insert(world)
    updated = _update(world, external_treatment_id="EXTERNAL_TREATMENT_ID", description="new")
    assert updated.treatment_id == created.treatment_id
    assert updated.description == "new"


def test_update_of_an_unknown_treatment_is_not_found(world: World) -> None:
    error = _error(world, "UpdateTreatment", _update_request(treatment_id="missing"))
    assert error.code is Code.NOT_FOUND
    assert error.http_status == 404


def test_update_without_any_identifier_is_invalid(world: World) -> None:
    error = _error(world, "UpdateTreatment", _update_request())
    assert _violations(error) == [
        ("treatmentId", "required: set treatmentId or externalTreatmentId")
    ]


def test_empty_eligibility_rules_replace_the_rules(world: World) -> None:
    created = _insert(world, should_publish=None)
    updated = _update(world, treatment_id=created.treatment_id, eligibility_rules={})
    assert updated.versions[-1].HasField("eligibility_rules")
    assert list(updated.versions[-1].eligibility_rules.rules) == []


def test_empty_mutual_exclusion_group_clears_it(world: World) -> None:
    created = _insert(world)
    assert created.HasField("mutual_exclusion_group")
    updated = _update(world, treatment_id=created.treatment_id, mutual_exclusion_group="")
    assert not updated.HasField("mutual_exclusion_group")


def test_omitted_and_empty_tags_both_clear_the_tags(world: World) -> None:
    created = _insert(world, should_publish=None)
    assert len(created.versions[0].tags) == 1
    omitted = _update(world, treatment_id=created.treatment_id)
    assert list(omitted.versions[-1].tags) == []
    tagged = _update(world, treatment_id=created.treatment_id, tags=[{"name": "t"}])
    assert [tag.name for tag in tagged.versions[-1].tags] == ["t"]
    emptied = _update(world, treatment_id=created.treatment_id, tags=[])
    assert list(emptied.versions[-1].tags) == []


def test_update_of_a_published_version_adds_a_draft_version(world: World) -> None:
    created = _insert(world, tags=[])
    content = {"content_by_language": [{"language_code": {"language_code": "fr"}}]}
    updated = _update(world, treatment_id=created.treatment_id, content=content)
    assert [v.status for v in updated.versions] == [Version.LIVE, Version.DRAFT]
    assert updated.status == Treatment.LIVE
    published = _update(world, treatment_id=created.treatment_id, should_publish=True)
    assert [v.status for v in published.versions] == [Version.LIVE, Version.LIVE]


def test_update_changing_nothing_of_a_published_version_adds_no_version(world: World) -> None:
    created = _insert(world, tags=[])
    updated = _update(world, treatment_id=created.treatment_id, name="Renamed")
    assert len(updated.versions) == 1


def test_update_checks_content_against_the_treatment_type(world: World) -> None:
    content = {"language_agnostic_content_fields": [{"field_name": "title", "string_value": "x"}]}
    error = _error(
        world, "UpdateTreatment", _update_request(treatment_id="TREATMENT_ID", content=content)
    )
    assert [v for v, _ in _violations(error)] == [
        "content.languageAgnosticContentFields[0].fieldName"
    ]


# Statuses derived from publish state, launch window and the clock.


def test_statuses_follow_the_clock(world: World) -> None:
    created = _insert(
        world,
        start_timestamp="2030-01-01T00:00:00Z",
        end_timestamp="2031-01-01T00:00:00Z",
    )
    assert created.versions[0].status == Version.SCHEDULED
    assert created.status == Treatment.SCHEDULED
    world.now = micros("2030-06-01T00:00:00Z")
    live = _update(world, treatment_id=created.treatment_id, tags=[{"name": "christmas_coupons"}])
    assert live.status == Treatment.LIVE
    world.now = micros("2031-01-01T00:00:00Z")
    archived = _update(
        world, treatment_id=created.treatment_id, tags=[{"name": "christmas_coupons"}]
    )
    assert archived.versions[0].status == Version.ARCHIVED
    assert archived.status == Treatment.ARCHIVED


# GetDataFields


def _resolve(world: World, text: str) -> list[tuple[int, str]]:
    request = CODEC.decode_request(text, management.GetDataFieldsByParamsRequest)
    response = world.call("GetDataFields", request)
    assert isinstance(response, management.GetDataFieldsByParamsResponse)
    return [(field.data_field_id, field.data_field_type) for field in response.data_fields]


def test_get_data_fields_resolves_the_docs_sample(world: World) -> None:
    text = (FIXTURES / "docs/get_data_fields_request.corrected.json").read_text()
    # The seed resolves the sample's fields first (1, 3 and 4), then the rules' own.
    assert _resolve(world, text) == [(1, "INTEGER"), (3, "INTEGER"), (4, "TIMESTAMP_SECONDS")]
    assert _resolve(world, text) == [(1, "INTEGER"), (3, "INTEGER"), (4, "TIMESTAMP_SECONDS")]


def test_same_params_get_the_same_id_whatever_the_order_or_name_style(world: World) -> None:
    camel = (
        '{"projectId": "PROJECT_ID", "dataFieldParams": [{"eventDataFieldParams": '
        '{"eventSchemaName": "Play", "propertyValueByPropertyName": {"a": {"longValue": "1"},'
        ' "b": {"stringValue": "x"}}, "firstTimestampAggregation": {}}}]}'
    )
    snake = (
        '{"data_field_params": [{"event_data_field_params": {"first_timestamp_aggregation": {},'
        ' "property_value_by_property_name": {"b": {"string_value": "x"}, "a": {"long_value": 1}},'
        ' "event_schema_name": "Play"}}], "project_id": "PROJECT_ID"}'
    )
    first = _resolve(world, camel)
    assert first == [(10, "TIMESTAMP_SECONDS")]  # the seed resolves 1 to 9
    assert _resolve(world, snake) == first


def test_unknown_user_attribute_and_bad_window_are_invalid(world: World) -> None:
    request = CODEC.decode_request(
        json.dumps(
            {
                "projectId": "PROJECT_ID",
                "dataFieldParams": [
                    {"userAttributeDataFieldParams": {"propertyName": "shoe_size"}},
                ],
            }
        ),
        management.GetDataFieldsByParamsRequest,
    )
    error = _error(world, "GetDataFields", request)
    assert _violations(error) == [
        (
            "dataFieldParams[0].userAttributeDataFieldParams.propertyName",
            'the project has no user attribute "shoe_size"',
        )
    ]
    request.data_field_params[
        0
    ].treatment_data_field_params.daily_count_aggregation.window_name = "LAST_WEEK"
    request.data_field_params[
        0
    ].treatment_data_field_params.treatment_interaction_type = (
        data_field_pb2.DataFieldParams.TreatmentDataFieldParams.VIEWED
    )
    error = _error(world, "GetDataFields", request)
    assert _violations(error) == [
        (
            "dataFieldParams[0].treatmentDataFieldParams.dailyCountAggregation.windowName",
            '"LAST_WEEK" is not a window LAST_<N>D with N from 1 to 365',
        )
    ]


def test_data_field_ids_are_per_project(world: World) -> None:
    text = (
        '{"projectId": "OTHER_PROJECT_ID", "dataFieldParams": [{"treatmentDataFieldParams": '
        '{"treatmentInteractionType": "CLICKED", "latestTimestampAggregation": {}}}]}'
    )
    request = CODEC.decode_request(text, management.GetDataFieldsByParamsRequest)
    response = world.call("GetDataFields", request, OTHER_KEY)
    assert isinstance(response, management.GetDataFieldsByParamsResponse)
    assert [field.data_field_id for field in response.data_fields] == [1]


# LogTreatmentInteraction


def test_every_accepted_interaction_is_stored(world: World) -> None:
    text = (FIXTURES / "examples/log_treatment_interaction_request.json").read_text()
    request = CODEC.decode_request(text, interactions.LogTreatmentInteractionRequest)
    for _ in range(3):
        assert world.call("LogTreatmentInteraction", request) == (
            interactions.LogTreatmentInteractionResponse()
        )
    stored = world.store.run_sync(lambda repository: repository.interactions("PROJECT_ID"))
    assert stored == [request] * 3


# Authentication and authorization


@pytest.mark.parametrize(
    ("api_key", "code"),
    [
        (None, Code.UNAUTHENTICATED),
        ("", Code.UNAUTHENTICATED),
        ("WRONG_KEY", Code.UNAUTHENTICATED),
        (OTHER_KEY, Code.PERMISSION_DENIED),
    ],
)
def test_keys_belong_to_a_project(world: World, api_key: str | None, code: Code) -> None:
    text = (FIXTURES / "examples/log_treatment_interaction_request.json").read_text()
    request = CODEC.decode_request(text, interactions.LogTreatmentInteractionRequest)
    with pytest.raises(ApiError) as caught:
        world.run(world.servicer.invoke("LogTreatmentInteraction", request, api_key))
    assert caught.value.code is code
    if api_key:
        assert api_key not in str(caught.value)
    stored = world.store.run_sync(lambda repository: repository.interactions("PROJECT_ID"))
    assert stored == []


def test_unknown_keys_on_a_shared_store_share_the_readings_of_the_keys(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On a shared store a key not loaded is looked for again (another replica's start may
    # have added it), in a reading started after the call: the calls that arrive while one
    # runs share the next. 200 at once: the first reading, then one for all the others.
    servicer = world.servicer
    monkeypatch.setattr(servicer, "_shared", True)
    world.run(servicer.load_keys())
    load_keys = servicer.load_keys
    readings: list[int] = []
    release = asyncio.Event()

    async def counted() -> None:
        readings.append(len(readings))
        if len(readings) == 1:
            await release.wait()  # the others arrive meanwhile
        await load_keys()

    monkeypatch.setattr(servicer, "load_keys", counted)

    async def flood() -> list[object]:
        calls = [asyncio.ensure_future(servicer.authenticate(f"UNKNOWN_{n}")) for n in range(200)]
        await asyncio.sleep(0)  # every call has asked
        release.set()
        return await asyncio.gather(*calls, return_exceptions=True)

    refused = world.run(flood())
    assert {error.code for error in refused if isinstance(error, ApiError)} == {
        Code.UNAUTHENTICATED
    }
    assert len(refused) == 200
    assert len(readings) == 2
