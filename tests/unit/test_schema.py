"""The schema, read from the generated descriptors, equals the API documentation.

Each row is transcribed from ../shared/api-docs: field name, number, type,
label and the oneof it belongs to. ``optional`` marks the documented proto3
``optional`` keyword. Presence is derived from the row the way protobuf
defines it, and compared with what the descriptor reports.
"""

from __future__ import annotations

from typing import NamedTuple

import pytest
from google.api import annotations_pb2, field_behavior_pb2, http_pb2
from google.protobuf import descriptor_pool
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor

from auxia.decision.model import (
    data_field_pb2,
    oneof_behavior_pb2,
    treatment_decision_service_pb2,
    treatment_interaction_service_pb2,
    treatment_management_service_pb2,
    treatment_pb2,
)

PACKAGE = "io.auxia.decision.model"

_ = (data_field_pb2, treatment_pb2)  # imported for their descriptors


class Field(NamedTuple):
    name: str
    number: int
    type: str  # a scalar type name, or the full name of a message or enum
    repeated: bool = False
    optional: bool = False  # the proto3 `optional` keyword
    oneof: str | None = None


def f(name: str, number: int, type_: str, *flags: str, oneof: str | None = None) -> Field:
    return Field(name, number, type_, "repeated" in flags, "optional" in flags, oneof)


P = PACKAGE + "."
TS = "google.protobuf.Timestamp"
DFP = P + "DataFieldParams."
TDFP = DFP + "TreatmentDataFieldParams"
EDFP = DFP + "EventDataFieldParams"

DOCUMENTED: dict[str, list[Field]] = {
    "TreatmentPb": [
        f("project_id", 1, "string"),
        f("treatment_id", 2, "string"),
        f("treatment_type", 3, P + "TreatmentTypePb"),
        f("name", 4, "string"),
        f("description", 5, "string"),
        f("versions", 6, P + "TreatmentVersionPb", "repeated"),
        f("status", 7, P + "TreatmentPb.Status"),
        f("last_modified_by", 8, "string"),
        f("last_modified_timestamp", 9, TS),
        f("modification_source", 10, P + "TreatmentPb.ModificationSource"),
        f("external_treatment_id", 11, "string"),
        f("mutual_exclusion_group", 12, P + "MutualExclusionGroupPb", "optional"),
    ],
    "TreatmentVersionPb": [
        f("status", 1, P + "TreatmentVersionPb.Status"),
        f("tags", 2, P + "TagPb", "repeated"),
        f("start_timestamp", 3, TS),
        f("end_timestamp", 4, TS),
        f("content", 5, P + "ContentPb"),
        f("eligibility_rules", 6, P + "EligibilityRulesListPb"),
        f("removed_surfaces", 7, P + "RemovedSurfacesListPb"),
        f("target_action", 8, P + "TargetActionPb"),
    ],
    "TagPb": [f("name", 1, "string")],
    "ContentPb": [
        f("content_by_language", 1, P + "ContentPb.ContentByLanguagePb", "repeated"),
        f(
            "language_agnostic_content_fields",
            2,
            P + "ContentPb.TreatmentContentFieldPb",
            "repeated",
        ),
    ],
    "ContentPb.ContentByLanguagePb": [
        f("language_code", 1, P + "ContentPb.LanguageCodePb"),
        f("content_fields", 2, P + "ContentPb.TreatmentContentFieldPb", "repeated"),
    ],
    "ContentPb.TreatmentContentFieldPb": [
        f("field_name", 1, "string"),
        f("string_value", 2, "string", oneof="field_value"),
    ],
    "ContentPb.LanguageCodePb": [f("language_code", 1, "string")],
    "TargetActionPb": [f("event_id", 1, "int64")],
    "EligibilityRulesListPb": [f("rules", 1, P + "EligibilityRulePb", "repeated")],
    "MutualExclusionGroupPb": [
        f("project_id", 1, "int64"),
        f("mutual_exclusion_group_id", 2, "int64"),
        f("name", 3, "string"),
    ],
    "RemovedSurfacesListPb": [f("surfaces", 1, P + "SurfacePb", "repeated")],
    "TreatmentTypePb": [
        f("project_id", 1, "string"),
        f("name", 2, "string"),
        f("delivery_type", 3, P + "DeliveryType"),
        f(
            "language_specific_content_field_types",
            4,
            P + "TreatmentContentFieldTypePb",
            "repeated",
        ),
        f(
            "language_agnostic_content_field_types",
            5,
            P + "TreatmentContentFieldTypePb",
            "repeated",
        ),
        f("surfaces", 6, P + "SurfacePb", "repeated"),
    ],
    "SurfacePb": [f("name", 1, "string")],
    "TreatmentContentFieldTypePb": [
        f("field_name", 1, "string"),
        f("value_length_limit", 2, "int32"),
        f("data_type", 3, P + "ContentFieldDataType"),
    ],
    "EligibilityRulePb": [
        f("data_field_id", 1, "int64"),
        f("condition", 2, P + "Condition"),
        f("rhs_value", 3, "string"),
    ],
    "DataFieldParams": [
        f(
            "user_attribute_data_field_params",
            1,
            DFP + "UserAttributeDataFieldParams",
            oneof="params",
        ),
        f("treatment_data_field_params", 2, TDFP, oneof="params"),
        f("event_data_field_params", 3, EDFP, oneof="params"),
    ],
    "DataFieldParams.UserAttributeDataFieldParams": [f("property_name", 1, "string")],
    "DataFieldParams.TreatmentDataFieldParams": [
        f("treatment_interaction_type", 1, TDFP + ".TreatmentInteractionType"),
        f("treatment_id", 2, "string", oneof="aggregate_by"),
        f("surface_id", 3, "string", oneof="aggregate_by"),
        f("is_distinct_interaction", 4, "bool"),
        f("daily_count_aggregation", 5, P + "DailyCountAggregation", oneof="aggregation"),
        f("first_timestamp_aggregation", 6, P + "FirstTimestampAggregation", oneof="aggregation"),
        f("latest_timestamp_aggregation", 7, P + "LatestTimestampAggregation", oneof="aggregation"),
        f(
            "days_since_first_timestamp_aggregation",
            8,
            P + "DaysSinceFirstTimestampAggregation",
            oneof="aggregation",
        ),
        f(
            "days_since_last_timestamp_aggregation",
            9,
            P + "DaysSinceLastTimestampAggregation",
            oneof="aggregation",
        ),
    ],
    "DataFieldParams.EventDataFieldParams": [
        f("event_schema_name", 1, "string"),
        f(
            "property_value_by_property_name",
            2,
            EDFP + ".PropertyValueByPropertyNameEntry",
            "repeated",
        ),
        f("daily_count_aggregation", 3, P + "DailyCountAggregation", oneof="aggregation"),
        f("first_timestamp_aggregation", 4, P + "FirstTimestampAggregation", oneof="aggregation"),
        f("latest_timestamp_aggregation", 5, P + "LatestTimestampAggregation", oneof="aggregation"),
        f(
            "days_since_first_timestamp_aggregation",
            6,
            P + "DaysSinceFirstTimestampAggregation",
            oneof="aggregation",
        ),
        f(
            "days_since_last_timestamp_aggregation",
            7,
            P + "DaysSinceLastTimestampAggregation",
            oneof="aggregation",
        ),
    ],
    "DataFieldParams.PropertyValuePb": [
        f("long_value", 1, "int64", oneof="property_value"),
        f("double_value", 2, "double", oneof="property_value"),
        f("string_value", 3, "string", oneof="property_value"),
        f("boolean_value", 4, "bool", oneof="property_value"),
        f("timestamp_value", 5, TS, oneof="property_value"),
    ],
    "DailyCountAggregation": [f("window_name", 1, "string")],
    "FirstTimestampAggregation": [],
    "LatestTimestampAggregation": [],
    "DaysSinceFirstTimestampAggregation": [],
    "DaysSinceLastTimestampAggregation": [],
    "ResolvedDataFieldPb": [
        f("data_field_id", 1, "int64"),
        f("data_field_params", 2, P + "DataFieldParams"),
        f("data_field_type", 3, "string"),
    ],
    "InsertTreatmentRequest": [
        f("project_id", 1, "string"),
        f("name", 2, "string"),
        f("description", 3, "string"),
        f("target_action", 15, P + "TargetActionPb", "optional"),
        f("treatment_type_name", 4, "string"),
        f("removed_surfaces", 14, P + "RemovedSurfacesListPb", "optional"),
        f("last_modified_by", 5, "string"),
        f("start_timestamp", 6, TS),
        f("end_timestamp", 7, TS),
        f("content", 8, P + "ContentPb"),
        f("tags", 9, P + "TagPb", "repeated"),
        f("external_treatment_id", 10, "string", "optional"),
        f("should_publish", 11, "bool", "optional"),
        f("eligibility_rules", 12, P + "EligibilityRulesListPb", "optional"),
        f("mutual_exclusion_group", 13, "string", "optional"),
    ],
    "InsertTreatmentResponse": [f("treatment", 1, P + "TreatmentPb")],
    "UpdateTreatmentRequest": [
        f("project_id", 1, "string"),
        f("treatment_id", 2, "string"),
        f("name", 3, "string", "optional"),
        f("description", 4, "string", "optional"),
        f("target_action", 15, P + "TargetActionPb", "optional"),
        f("removed_surfaces", 14, P + "RemovedSurfacesListPb", "optional"),
        f("last_modified_by", 5, "string"),
        f("start_timestamp", 6, TS),
        f("end_timestamp", 7, TS),
        f("content", 8, P + "ContentPb", "optional"),
        f("tags", 9, P + "TagPb", "repeated"),
        f("external_treatment_id", 10, "string", "optional"),
        f("should_publish", 11, "bool", "optional"),
        f("eligibility_rules", 12, P + "EligibilityRulesListPb", "optional"),
        f("mutual_exclusion_group", 13, "string", "optional"),
    ],
    "UpdateTreatmentResponse": [f("treatment", 1, P + "TreatmentPb")],
    "GetDataFieldsByParamsRequest": [
        f("project_id", 1, "string"),
        f("data_field_params", 2, P + "DataFieldParams", "repeated"),
    ],
    "GetDataFieldsByParamsResponse": [f("data_fields", 1, P + "ResolvedDataFieldPb", "repeated")],
    # The REST doc gives JSON names and types but no field numbers: these are
    # ours, in documented order (README, Spec notes).
    "LogTreatmentInteractionRequest": [
        f("project_id", 1, "string"),
        f("user_id", 2, "string"),
        f("treatment_tracking_id", 3, "string"),
        f("treatment_id", 4, "string"),
        f("surface", 5, "string"),
        f("interaction_type", 6, P + "LogTreatmentInteractionRequest.InteractionType"),
        f("interaction_time_micros", 7, "int64"),
        f("action_name", 8, "string"),
    ],
    "LogTreatmentInteractionResponse": [],
    # GetTreatments (decisioning.md): JSON names and types are published, field
    # numbers are ours, in documented order.
    "GetTreatmentsRequest": [
        f("project_id", 1, "string"),
        f("user_id", 2, "string"),
        f("contextual_attributes", 3, P + "ContextualAttribute", "repeated"),
        f("surfaces", 4, P + "SurfaceRequest", "repeated"),
        f("language_code", 5, "string"),
    ],
    "ContextualAttribute": [
        f("key", 1, "string"),
        f("string_value", 2, "string", oneof="value"),
        f("bool_value", 3, "bool", oneof="value"),
        f("integer_value", 4, "int64", oneof="value"),
    ],
    "SurfaceRequest": [
        f("surface", 1, "string"),
        f("maximum_treatment_count", 2, "int64"),
        f("minimum_treatment_count", 3, "int64"),
    ],
    "GetTreatmentsResponse": [
        f("response_id", 1, "string"),
        f("user_treatments", 2, P + "UserTreatment", "repeated"),
    ],
    "UserTreatment": [
        f("treatment_id", 1, "string"),
        f("treatment_tracking_id", 2, "string"),
        f("rank", 3, "int64"),
        f("content_language_code", 4, "string"),
        f("treatment_content", 5, "string"),
        f("treatment_type", 6, "string"),
        f("surface", 7, "string"),
    ],
    # GetTreatment: published with its numbers.
    "GetTreatmentRequest": [f("project_id", 1, "string"), f("treatment_id", 2, "string")],
    "GetTreatmentResponse": [f("treatment", 1, P + "TreatmentPb")],
    # GetAllTreatments: the filters are published with their numbers; the
    # request and response are ours.
    "TreatmentFilter": [f("treatment_type_name", 1, "string")],
    "TreatmentVersionFilter": [
        f("surface", 1, P + "TreatmentVersionFilter.SurfaceFilter"),
        f("tag", 2, P + "TreatmentVersionFilter.TagFilter"),
    ],
    "TreatmentVersionFilter.SurfaceFilter": [f("surface_names", 1, "string", "repeated")],
    "TreatmentVersionFilter.TagFilter": [f("tags", 1, "string", "repeated")],
    "GetAllTreatmentsRequest": [
        f("project_id", 1, "string"),
        f("treatment_filter", 2, P + "TreatmentFilter"),
        f("treatment_version_filter", 3, P + "TreatmentVersionFilter"),
        f("page_size", 4, "int32"),
        f("page_token", 5, "string"),
    ],
    "GetAllTreatmentsResponse": [
        f("treatments", 1, P + "TreatmentPb", "repeated"),
        f("next_page_token", 2, "string"),
    ],
}

DOCUMENTED_ENUMS: dict[str, list[tuple[str, int]]] = {
    "TreatmentPb.Status": [
        ("STATUS_UNSPECIFIED", 0),
        ("LIVE", 1),
        ("DRAFT", 2),
        ("SCHEDULED", 3),
        ("ARCHIVED", 4),
        ("PAUSED", 5),
    ],
    "TreatmentPb.ModificationSource": [
        ("MODIFICATION_SOURCE_UNSPECIFIED", 0),
        ("AUXIA_CONSOLE", 1),
        ("API", 2),
    ],
    "TreatmentVersionPb.Status": [
        ("STATUS_UNSPECIFIED", 0),
        ("LIVE", 1),
        ("DRAFT", 2),
        ("SCHEDULED", 3),
        ("ARCHIVED", 4),
    ],
    "ContentFieldDataType": [("CONTENT_FIELD_DATA_TYPE_UNSPECIFIED", 0), ("STRING", 1)],
    "DeliveryType": [
        ("DELIVERY_TYPE_UNSPECIFIED", 0),
        ("EMAIL", 1),
        ("IN_APP", 2),
        ("NOTIFICATION", 3),
    ],
    "Condition": [
        ("UNSPECIFIED_CONDITION", 0),
        ("LESS_THAN", 1),
        ("LESS_THAN_OR_EQUALS", 2),
        ("GREATER_THAN", 3),
        ("GREATER_THAN_OR_EQUALS", 4),
        ("EQUALS", 5),
        ("NOT_EQUALS", 6),
    ],
    "DataFieldParams.TreatmentDataFieldParams.TreatmentInteractionType": [
        ("TREATMENT_INTERACTION_TYPE_UNSPECIFIED", 0),
        ("SENT", 1),
        ("VIEWED", 2),
        ("CLICKED", 3),
        ("SNOOZED", 4),
        ("DISMISSED", 5),
        ("CTA_COMPLETED", 6),
        ("SWIPE", 7),
    ],
    # Value names are the documented strings; the numbers are ours.
    "LogTreatmentInteractionRequest.InteractionType": [
        ("INTERACTION_TYPE_UNSPECIFIED", 0),
        ("VIEWED", 1),
        ("CLICKED", 2),
        ("SNOOZED", 3),
        ("DISMISSED", 4),
        ("CTA_COMPLETED", 5),
        ("SWIPE", 6),
    ],
}

POOL = descriptor_pool.Default()


def _message(name: str) -> Descriptor:
    return POOL.FindMessageTypeByName(P + name)


def _type_name(field: FieldDescriptor) -> str:
    if field.message_type is not None:
        return field.message_type.full_name
    if field.enum_type is not None:
        return field.enum_type.full_name
    names = {
        FieldDescriptor.TYPE_STRING: "string",
        FieldDescriptor.TYPE_INT64: "int64",
        FieldDescriptor.TYPE_INT32: "int32",
        FieldDescriptor.TYPE_BOOL: "bool",
        FieldDescriptor.TYPE_DOUBLE: "double",
    }
    return names[field.type]


def _documented_presence(field: Field) -> bool:
    if field.repeated:
        return False
    is_message = "." in field.type and field.type.removeprefix(P) not in DOCUMENTED_ENUMS
    return field.optional or field.oneof is not None or is_message


def _all_messages() -> set[str]:
    found: set[str] = set()

    def walk(message: Descriptor) -> None:
        if message.GetOptions().map_entry:
            return
        found.add(message.full_name.removeprefix(P))
        for nested in message.nested_types:
            walk(nested)

    for module in (
        data_field_pb2,
        treatment_pb2,
        treatment_management_service_pb2,
        treatment_interaction_service_pb2,
        treatment_decision_service_pb2,
    ):
        for message in module.DESCRIPTOR.message_types_by_name.values():
            walk(message)
    return found


def test_every_message_is_documented_and_every_documented_message_exists() -> None:
    assert _all_messages() == set(DOCUMENTED)


@pytest.mark.parametrize("message_name", sorted(DOCUMENTED))
def test_message_fields_match_the_documentation(message_name: str) -> None:
    message = _message(message_name)
    expected = DOCUMENTED[message_name]
    assert [field.name for field in message.fields] == [field.name for field in expected]
    for want in expected:
        got = message.fields_by_name[want.name]
        assert got.number == want.number, want.name
        assert _type_name(got) == want.type, want.name
        assert got.is_repeated == want.repeated, want.name
        assert got.has_presence == _documented_presence(want), want.name
        real_oneof = got.containing_oneof
        if want.optional:
            # proto3 `optional` is a synthetic oneof of its own.
            assert real_oneof is not None
            assert real_oneof.name == "_" + want.name
        elif want.oneof is None:
            assert real_oneof is None, want.name
        else:
            assert real_oneof is not None
            assert real_oneof.name == want.oneof, want.name


@pytest.mark.parametrize("enum_name", sorted(DOCUMENTED_ENUMS))
def test_enum_values_match_the_documentation(enum_name: str) -> None:
    enum: EnumDescriptor = POOL.FindEnumTypeByName(P + enum_name)
    assert [(v.name, v.number) for v in enum.values] == DOCUMENTED_ENUMS[enum_name]


def test_map_entry_of_property_values() -> None:
    entry = _message("DataFieldParams.EventDataFieldParams.PropertyValueByPropertyNameEntry")
    assert entry.GetOptions().map_entry
    assert _type_name(entry.fields_by_name["key"]) == "string"
    assert _type_name(entry.fields_by_name["value"]) == DFP + "PropertyValuePb"


def test_log_treatment_interaction_json_names_are_the_documented_ones() -> None:
    message = _message("LogTreatmentInteractionRequest")
    assert [field.json_name for field in message.fields] == [
        "projectId",
        "userId",
        "treatmentTrackingId",
        "treatmentId",
        "surface",
        "interactionType",
        "interactionTimeMicros",
        "actionName",
    ]


HTTP_RULES = {
    "TreatmentManagementService.InsertTreatment": (
        "/v1/InsertTreatment",
        "InsertTreatmentRequest",
        "InsertTreatmentResponse",
    ),
    "TreatmentManagementService.UpdateTreatment": (
        "/v1/UpdateTreatment",
        "UpdateTreatmentRequest",
        "UpdateTreatmentResponse",
    ),
    "TreatmentManagementService.GetDataFields": (
        "/v1/GetDataFields",
        "GetDataFieldsByParamsRequest",
        "GetDataFieldsByParamsResponse",
    ),
    "TreatmentInteractionService.LogTreatmentInteraction": (
        "/v1/LogTreatmentInteraction",
        "LogTreatmentInteractionRequest",
        "LogTreatmentInteractionResponse",
    ),
    "TreatmentDecisionService.GetTreatments": (
        "/v1/GetTreatments",
        "GetTreatmentsRequest",
        "GetTreatmentsResponse",
    ),
    "TreatmentManagementService.GetTreatment": (
        "/v1/GetTreatment",
        "GetTreatmentRequest",
        "GetTreatmentResponse",
    ),
    "TreatmentManagementService.GetAllTreatments": (
        "/v1/GetAllTreatments",
        "GetAllTreatmentsRequest",
        "GetAllTreatmentsResponse",
    ),
}


@pytest.mark.parametrize("method_name", sorted(HTTP_RULES))
def test_http_rules_are_the_documented_paths(method_name: str) -> None:
    method = POOL.FindMethodByName(P + method_name)
    path, request, response = HTTP_RULES[method_name]
    rule: http_pb2.HttpRule = method.GetOptions().Extensions[annotations_pb2.http]
    assert rule.post == path
    assert rule.body == "*"
    assert method.input_type.full_name == P + request
    assert method.output_type.full_name == P + response


def _behaviors(message_name: str, field_name: str) -> list[int]:
    field = _message(message_name).fields_by_name[field_name]
    return list(field.GetOptions().Extensions[field_behavior_pb2.field_behavior])


REQUIRED = field_behavior_pb2.REQUIRED
OPTIONAL = field_behavior_pb2.OPTIONAL
OUTPUT_ONLY = field_behavior_pb2.OUTPUT_ONLY


@pytest.mark.parametrize(
    ("message_name", "field_name", "behavior"),
    [
        ("InsertTreatmentRequest", "project_id", REQUIRED),
        ("InsertTreatmentRequest", "name", REQUIRED),
        ("InsertTreatmentRequest", "description", REQUIRED),
        ("InsertTreatmentRequest", "treatment_type_name", REQUIRED),
        ("InsertTreatmentRequest", "last_modified_by", REQUIRED),
        ("InsertTreatmentRequest", "start_timestamp", REQUIRED),
        ("InsertTreatmentRequest", "content", REQUIRED),
        ("InsertTreatmentRequest", "end_timestamp", OPTIONAL),
        ("InsertTreatmentRequest", "mutual_exclusion_group", OPTIONAL),
        ("UpdateTreatmentRequest", "project_id", REQUIRED),
        ("UpdateTreatmentRequest", "last_modified_by", REQUIRED),
        # Documented "Required." but either it or external_treatment_id is.
        ("UpdateTreatmentRequest", "treatment_id", OPTIONAL),
        ("UpdateTreatmentRequest", "external_treatment_id", OPTIONAL),
        ("GetDataFieldsByParamsRequest", "project_id", REQUIRED),
        ("GetDataFieldsByParamsRequest", "data_field_params", REQUIRED),
        ("LogTreatmentInteractionRequest", "project_id", REQUIRED),
        ("LogTreatmentInteractionRequest", "treatment_tracking_id", REQUIRED),
        ("LogTreatmentInteractionRequest", "interaction_type", REQUIRED),
        ("LogTreatmentInteractionRequest", "interaction_time_micros", REQUIRED),
        # Documented "Required" but "optional until clients are migrated".
        ("LogTreatmentInteractionRequest", "user_id", OPTIONAL),
        ("LogTreatmentInteractionRequest", "treatment_id", OPTIONAL),
        ("LogTreatmentInteractionRequest", "surface", OPTIONAL),
        ("LogTreatmentInteractionRequest", "action_name", OPTIONAL),
        ("TreatmentPb", "status", OUTPUT_ONLY),
        ("TreatmentVersionPb", "status", OUTPUT_ONLY),
        ("EligibilityRulePb", "data_field_id", REQUIRED),
        ("EligibilityRulePb", "condition", REQUIRED),
        ("EligibilityRulePb", "rhs_value", REQUIRED),
        ("TreatmentTypePb", "delivery_type", REQUIRED),
        ("DataFieldParams.UserAttributeDataFieldParams", "property_name", REQUIRED),
    ],
)
def test_field_behavior_matches_the_documented_label(
    message_name: str, field_name: str, behavior: int
) -> None:
    assert _behaviors(message_name, field_name) == [behavior]


def test_every_field_has_exactly_one_behavior_or_is_a_oneof_member_or_response_wrapper() -> None:
    unannotated = []
    for name, fields in DOCUMENTED.items():
        for field in fields:
            behaviors = _behaviors(name, field.name)
            annotated = field.oneof is None and not name.endswith("Response")
            if annotated and len(behaviors) != 1:
                unannotated.append(f"{name}.{field.name}")
    assert unannotated == []


@pytest.mark.parametrize(
    ("message_name", "oneof_name", "required"),
    [
        ("DataFieldParams", "params", True),
        ("DataFieldParams.TreatmentDataFieldParams", "aggregation", True),
        ("DataFieldParams.TreatmentDataFieldParams", "aggregate_by", False),
        ("DataFieldParams.EventDataFieldParams", "aggregation", True),
        ("DataFieldParams.PropertyValuePb", "property_value", False),
        ("ContentPb.TreatmentContentFieldPb", "field_value", False),
    ],
)
def test_documented_required_oneofs_are_marked(
    message_name: str, oneof_name: str, required: bool
) -> None:
    oneof = _message(message_name).oneofs_by_name[oneof_name]
    assert oneof.GetOptions().Extensions[oneof_behavior_pb2.oneof_required] is required


def test_file_options_name_the_package_for_other_languages() -> None:
    for module in (
        data_field_pb2,
        oneof_behavior_pb2,
        treatment_pb2,
        treatment_management_service_pb2,
        treatment_interaction_service_pb2,
        treatment_decision_service_pb2,
    ):
        file = module.DESCRIPTOR
        assert file.package == PACKAGE
        assert file.name.startswith("auxia/decision/model/")
        options = file.GetOptions()
        assert options.java_package == PACKAGE
        assert options.java_multiple_files
        assert options.go_package.endswith(";modelpb")
        assert options.csharp_namespace == "Io.Auxia.Decision.Model"


@pytest.mark.parametrize(
    ("message_name", "json_names"),
    [
        (
            "GetTreatmentsRequest",
            ["projectId", "userId", "contextualAttributes", "surfaces", "languageCode"],
        ),
        ("ContextualAttribute", ["key", "stringValue", "boolValue", "integerValue"]),
        ("SurfaceRequest", ["surface", "maximumTreatmentCount", "minimumTreatmentCount"]),
        ("GetTreatmentsResponse", ["responseId", "userTreatments"]),
        (
            "UserTreatment",
            [
                "treatmentId",
                "treatmentTrackingId",
                "rank",
                "contentLanguageCode",
                "treatmentContent",
                "treatmentType",
                "surface",
            ],
        ),
    ],
)
def test_get_treatments_json_names_are_the_documented_ones(
    message_name: str, json_names: list[str]
) -> None:
    assert [field.json_name for field in _message(message_name).fields] == json_names
