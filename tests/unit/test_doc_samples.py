"""Every JSON sample of the API documentation parses into its message type."""

from __future__ import annotations

import pytest
from google.protobuf import json_format

from auxia.decision.model import treatment_management_service_pb2
from tests._fixtures import BROKEN, PARSEABLE, Sample


@pytest.mark.parametrize("sample", PARSEABLE, ids=lambda s: s.name)
def test_sample_parses_and_round_trips(sample: Sample) -> None:
    message = json_format.Parse(sample.text(), sample.message_type())
    assert message.ByteSize() > 0 or sample.message_type.DESCRIPTOR.fields == []
    for preserving in (False, True):
        emitted = json_format.MessageToJson(message, preserving_proto_field_name=preserving)
        assert json_format.Parse(emitted, sample.message_type()) == message


@pytest.mark.parametrize(
    ("name", "error"),
    [
        # MutualExclusionGroupPb.project_id is an int64; the sample holds a
        # string placeholder.
        (
            "insert_treatment_response",
            "Failed to parse treatment field: Failed to parse projectId field: "
            "invalid literal for int() with base 10: 'PROJECT_ID'..",
        ),
        (
            "update_treatment_response",
            "Failed to parse treatment field: Failed to parse projectId field: "
            "invalid literal for int() with base 10: 'PROJECT_ID'..",
        ),
        # The second data_field_params element is never closed: its
        # daily_count_aggregation landed inside the property map.
        (
            "get_data_fields_request",
            "Failed to load JSON: Expecting property name enclosed in double quotes: "
            "line 25 column 1 (char 428).",
        ),
    ],
)
def test_literal_sample_fails_with_the_precise_error(name: str, error: str) -> None:
    sample = BROKEN[name]
    with pytest.raises(json_format.ParseError) as caught:
        json_format.Parse(sample.text(), sample.message_type())
    assert str(caught.value) == error


def test_corrected_get_data_fields_request_moves_the_aggregation_out_of_the_map() -> None:
    corrected = next(s for s in PARSEABLE if s.name == "get_data_fields_request.corrected")
    request = json_format.Parse(
        corrected.text(), treatment_management_service_pb2.GetDataFieldsByParamsRequest()
    )
    event = request.data_field_params[1].event_data_field_params
    assert event.event_schema_name == "Stream Finished"
    assert list(event.property_value_by_property_name) == ["duration_seconds"]
    assert event.property_value_by_property_name["duration_seconds"].long_value == 1800
    assert event.daily_count_aggregation.window_name == "LAST_14D"
    assert [p.WhichOneof("params") for p in request.data_field_params] == [
        "treatment_data_field_params",
        "event_data_field_params",
        "user_attribute_data_field_params",
    ]


def test_corrected_response_twins_differ_from_the_docs_only_in_the_placeholder() -> None:
    for name in ("insert_treatment_response", "update_treatment_response"):
        literal = BROKEN[name].text()
        corrected = next(s for s in PARSEABLE if s.name == f"{name}.corrected").text()
        assert literal.replace('"projectId": "PROJECT_ID",\n"mutualExclusionGroupId"', "") == (
            corrected.replace('"projectId": "1",\n"mutualExclusionGroupId"', "")
        )
