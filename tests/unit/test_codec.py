"""The REST JSON codec: the PROTO3_JSON profile, strict requests, lenient responses."""

from __future__ import annotations

import json

import pytest
from google.protobuf import json_format

from auxia.decision.model import (
    treatment_interaction_service_pb2 as interactions,
)
from auxia.decision.model import (
    treatment_management_service_pb2 as management,
)
from auxia.decision.model import treatment_pb2
from auxia_decision import ApiError, Code, JsonProfile, RestCodec
from tests._fixtures import BROKEN, PARSEABLE, Sample

CODEC = RestCodec()
BOTH_CODECS = pytest.mark.parametrize(
    "codec", [CODEC, RestCodec(fast=False)], ids=["fast", "generic"]
)
"""The fast codec and the generic one, which must agree."""


def _violations(error: ApiError) -> list[tuple[str, str]]:
    return [(v.field, v.description) for v in error.field_violations]


def _log(**fields: object) -> bytes:
    body: dict[str, object] = {
        "projectId": "PROJECT_ID",
        "treatmentTrackingId": "T1",
        "interactionType": "CLICKED",
        "interactionTimeMicros": 1732312345123456,
    }
    body.update(fields)
    return json.dumps(body).encode()


def test_encode_is_proto3_json_with_camel_case_int64_strings_and_enum_names() -> None:
    request = interactions.LogTreatmentInteractionRequest(
        project_id="P",
        interaction_type=interactions.LogTreatmentInteractionRequest.SWIPE,
        interaction_time_micros=2**62,
    )
    assert json.loads(CODEC.encode(request)) == {
        "projectId": "P",
        "interactionType": "SWIPE",
        "interactionTimeMicros": str(2**62),
    }


def test_encode_timestamps_as_rfc3339_and_omits_unset_fields() -> None:
    request = management.UpdateTreatmentRequest(project_id="P")
    request.start_timestamp.FromJsonString("2017-01-15T01:30:15.010Z")
    assert json.loads(CODEC.encode(request)) == {
        "projectId": "P",
        "startTimestamp": "2017-01-15T01:30:15.010Z",
    }


def test_encode_keeps_explicit_presence_of_optional_fields() -> None:
    request = management.UpdateTreatmentRequest(mutual_exclusion_group="", should_publish=False)
    assert json.loads(CODEC.encode(request)) == {"shouldPublish": False, "mutualExclusionGroup": ""}


def test_proto_field_name_profile_writes_the_docs_curl_style() -> None:
    codec = RestCodec(JsonProfile(use_proto_field_names=True))
    request = management.GetDataFieldsByParamsRequest(project_id="P")
    assert json.loads(codec.encode(request)) == {"project_id": "P"}


def test_decode_accepts_both_name_styles_and_int64_as_number_or_string() -> None:
    camel = CODEC.decode_request(_log(), interactions.LogTreatmentInteractionRequest)
    snake = CODEC.decode_request(
        b'{"project_id": "PROJECT_ID", "treatment_tracking_id": "T1",'
        b' "interaction_type": "CLICKED", "interaction_time_micros": "1732312345123456"}',
        interactions.LogTreatmentInteractionRequest,
    )
    assert camel == snake
    assert camel.interaction_time_micros == 1732312345123456


def test_decode_int64_extremes_exactly() -> None:
    for value in (2**63 - 1, -(2**63)):
        decoded = CODEC.decode_request(
            _log(interactionTimeMicros=value), interactions.LogTreatmentInteractionRequest
        )
        assert decoded.interaction_time_micros == value


# The forms of an integer proto3 JSON reads, and what each holds. Written with a
# fraction or an exponent, a value must be an integer, and at most 2^53 in
# magnitude, where a double (which parsers read such a text as) holds it exactly.
INTEGER_FORMS = [
    (1732312345123456, 1732312345123456),
    ("1732312345123456", 1732312345123456),
    ("1.732312345123456e15", 1732312345123456),
    ("1732312345123456.000", 1732312345123456),
    ("17323123451234560E-1", 1732312345123456),
    ("0001732312345123456", 1732312345123456),
    (1.732312345123456e15, 1732312345123456),
    ("-0", 0),
    ("0e999999999999", 0),
    ("9007199254740992.0", 2**53),
    (str(2**63 - 1), 2**63 - 1),
]


@pytest.mark.parametrize(("value", "expected"), INTEGER_FORMS, ids=repr)
@BOTH_CODECS
def test_an_int64_is_read_in_every_form_of_proto3_json(
    value: object, expected: int, codec: RestCodec
) -> None:
    decoded = codec.decode_request(
        _log(interactionTimeMicros=value), interactions.LogTreatmentInteractionRequest
    )
    assert decoded.interaction_time_micros == expected


# Texts Python's int() or float() would read, but that are no JSON number
# (proto3 JSON reads an integer's string as one), or hold no integer exactly.
NOT_INTEGERS = [
    ("1_000", 'expected an integer, got "1_000"'),
    ("+5", 'expected an integer, got "+5"'),
    ("\t5", 'expected an integer, got "\\t5"'),
    ("5 ", 'expected an integer, got "5 "'),
    ("\u0665", 'expected an integer, got "\\u0665"'),
    ("5.", 'expected an integer, got "5."'),
    (".5e1", 'expected an integer, got ".5e1"'),
    ("0x10", 'expected an integer, got "0x10"'),
    ("1.00000000000000001", 'expected an integer, got "1.00000000000000001"'),
    ("1e-99999999", 'expected an integer, got "1e-99999999"'),
    ("1e99999999", f"1e99999999 is out of the int64 range [{-(2**63)}, {2**63 - 1}]"),
    (
        "9007199254740993.0",
        '"9007199254740993.0" has a fraction or an exponent and is beyond 2^53, where it '
        "cannot be read exactly: write the integer's decimal digits alone",
    ),
]


@pytest.mark.parametrize(("value", "description"), NOT_INTEGERS, ids=repr)
@BOTH_CODECS
def test_other_integer_texts_are_a_400_naming_them(
    value: str, description: str, codec: RestCodec
) -> None:
    body = _log(interactionTimeMicros=value)
    with pytest.raises(ApiError) as caught:
        codec.decode_request(body, interactions.LogTreatmentInteractionRequest)
    assert _violations(caught.value) == [("interactionTimeMicros", description)]


@pytest.mark.parametrize(("value", "expected"), [("SWIPE", 6), (6, 6), (6.0, 6), ("06", 6)])
def test_an_enum_is_read_by_name_or_number(value: object, expected: int) -> None:
    decoded = CODEC.decode_request(
        _log(interactionType=value), interactions.LogTreatmentInteractionRequest
    )
    assert decoded.interaction_type == expected


@pytest.mark.parametrize("value", ["+6", " 6", "6.0", "6_0", 6.5, "\ud800", "SWIPE\udfff"])
def test_an_enum_is_not_read_from_other_numbers(value: object) -> None:
    with pytest.raises(ApiError):
        CODEC.decode_request(
            _log(interactionType=value), interactions.LogTreatmentInteractionRequest
        )


@pytest.mark.parametrize("digits", [22, 5_000])
def test_an_enum_number_of_many_digits_is_refused_as_given(digits: int) -> None:
    # Python's int() refuses 4,300 digits: such a number was a ValueError, not a refusal.
    number = "9" * digits
    with pytest.raises(ApiError) as caught:
        CODEC.decode_request(
            _log(interactionType=number), interactions.LogTreatmentInteractionRequest
        )
    assert ("interactionType", f"enum number {number} is out of the int32 range") in (
        _violations(caught.value)
    )


def test_an_integer_literal_past_what_python_reads_is_refused_in_our_words() -> None:
    body = '{"projectId": "P", "interactionTimeMicros": ' + "9" * 5_000 + "}"
    with pytest.raises(ApiError) as caught:
        CODEC.decode_request(body, interactions.LogTreatmentInteractionRequest)
    assert _violations(caught.value) == [
        ("", "malformed JSON: an integer of 5000 digits: at most 4300 are read")
    ]


# The REQUIRED fields a LogTreatmentInteraction body of a projectId alone lacks:
# reported with the errors that keep the body from being read.
MISSING = [
    ("treatmentTrackingId", "required"),
    ("interactionType", "required"),
    ("interactionTimeMicros", "required"),
]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            _log(bogus=1),
            [("bogus", 'unknown field "bogus" in LogTreatmentInteractionRequest')],
        ),
        (
            _log(interactionType="TAPPED"),
            [
                (
                    "interactionType",
                    'unknown value "TAPPED" of InteractionType: expected one of '
                    "INTERACTION_TYPE_UNSPECIFIED, VIEWED, CLICKED, SNOOZED, DISMISSED, "
                    "CTA_COMPLETED, SWIPE",
                )
            ],
        ),
        (_log(projectId=7), [("projectId", "expected a string, got a number")]),
        (
            _log(interactionTimeMicros="soon"),
            [("interactionTimeMicros", 'expected an integer, got "soon"')],
        ),
        (
            _log(interactionTimeMicros=2**63),
            [
                (
                    "interactionTimeMicros",
                    f"{2**63} is out of the int64 range [{-(2**63)}, {2**63 - 1}]",
                )
            ],
        ),
        (
            _log(interactionTimeMicros=1.5),
            [("interactionTimeMicros", "expected an integer, got 1.5")],
        ),
        (
            b'{"projectId": "a", "projectId": "b"}',
            [("projectId", 'the key "projectId" appears more than once'), *MISSING],
        ),
        (
            b'{"projectId": "a", "project_id": "b"}',
            [("projectId", 'set twice, as "projectId" and as "project_id"'), *MISSING],
        ),
        (
            b"[1, 2]",
            [("", "expected a JSON object (LogTreatmentInteractionRequest), got an array")],
        ),
    ],
)
def test_strict_request_errors_name_the_json_path(
    body: bytes, expected: list[tuple[str, str]]
) -> None:
    with pytest.raises(ApiError) as caught:
        CODEC.decode_request(body, interactions.LogTreatmentInteractionRequest)
    assert caught.value.code is Code.INVALID_ARGUMENT
    assert caught.value.http_status == 400
    assert _violations(caught.value) == expected


def test_nested_errors_are_all_reported_with_array_indices() -> None:
    body = {
        "projectId": "P",
        "dataFieldParams": [
            {"userAttributeDataFieldParams": {"propertyName": "a"}},
            {
                "eventDataFieldParams": {
                    "eventSchemaName": "E",
                    "propertyValueByPropertyName": {"d": {"longValue": "x"}},
                    "dailyCountAggregation": "LAST_1D",
                }
            },
            {
                "userAttributeDataFieldParams": {"propertyName": "b"},
                "treatmentDataFieldParams": {},
            },
        ],
    }
    with pytest.raises(ApiError) as caught:
        CODEC.decode_request(json.dumps(body), management.GetDataFieldsByParamsRequest)
    assert _violations(caught.value) == [
        (
            'dataFieldParams[1].eventDataFieldParams.propertyValueByPropertyName["d"].longValue',
            'expected an integer, got "x"',
        ),
        (
            "dataFieldParams[1].eventDataFieldParams.dailyCountAggregation",
            "expected a JSON object (DailyCountAggregation), got a string",
        ),
        (
            "dataFieldParams[2].treatmentDataFieldParams",
            '"userAttributeDataFieldParams" and "treatmentDataFieldParams" are both set, but at '
            'most one field of oneof "params" may be',
        ),
        # What is missing is said with the errors that keep the body from being read.
        ("dataFieldParams[2].treatmentDataFieldParams.treatmentInteractionType", "required"),
        (
            "dataFieldParams[2].treatmentDataFieldParams.dailyCountAggregation",
            "required: set exactly one of dailyCountAggregation, firstTimestampAggregation, "
            "latestTimestampAggregation, daysSinceFirstTimestampAggregation, "
            "daysSinceLastTimestampAggregation",
        ),
    ]
    assert "dataFieldParams[1].eventDataFieldParams.dailyCountAggregation" in str(caught.value)


def test_int64_placeholder_of_the_docs_is_reported_at_its_path() -> None:
    sample = BROKEN["insert_treatment_response"]
    with pytest.raises(ApiError) as caught:
        CODEC.decode_request(sample.text(), management.InsertTreatmentResponse)
    assert _violations(caught.value) == [
        ("treatment.mutualExclusionGroup.projectId", 'expected an integer, got "PROJECT_ID"')
    ]


def test_malformed_json_reports_line_and_column() -> None:
    sample = BROKEN["get_data_fields_request"]
    with pytest.raises(ApiError) as caught:
        CODEC.decode_request(sample.text(), management.GetDataFieldsByParamsRequest)
    assert caught.value.message == (
        "malformed JSON at line 25 column 1: Expecting property name enclosed in double quotes"
    )


@pytest.mark.parametrize(
    ("body", "description"),
    [
        (b"\xff{}", "the body is not valid UTF-8: invalid byte at offset 0"),
        (b'{"projectId": NaN}', "malformed JSON: NaN is not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "malformed JSON: nested too deeply"),
        (b"", "malformed JSON at line 1 column 1: Expecting value"),
    ],
)
def test_hostile_bodies_get_a_clear_error(body: bytes, description: str) -> None:
    with pytest.raises(ApiError) as caught:
        CODEC.decode_request(body, interactions.LogTreatmentInteractionRequest)
    assert _violations(caught.value) == [("", description)]


@pytest.mark.parametrize(
    "body",
    [
        b"\xff{}",
        b"[]",
        b'{"projectId": 1}',
        b'{"projectId": "a", "projectId": "b"}',
        b'{"unknownField": "x"}',
        b'{"interactionType": "SHOWN"}',
        b'{"interactionTimeMicros": 1.5}',
    ],
)
def test_the_fields_decoding_leaves_what_it_is_not_sure_of_to_the_message(body: bytes) -> None:
    decode_fields = CODEC.request_fields_decoder(interactions.LogTreatmentInteractionRequest)
    assert decode_fields is not None
    assert decode_fields(body) is None


def test_the_fields_decoding_gives_the_constructors_arguments() -> None:
    decode_fields = CODEC.request_fields_decoder(interactions.LogTreatmentInteractionRequest)
    assert decode_fields is not None
    body = _log(surface=None, interactionTimeMicros="1732312345123456")
    fields = decode_fields(body)
    assert fields == {
        "project_id": "PROJECT_ID",
        "treatment_tracking_id": "T1",
        "interaction_type": interactions.LogTreatmentInteractionRequest.CLICKED,
        "interaction_time_micros": 1732312345123456,
        "surface": None,
    }
    message = CODEC.decode_request(body, interactions.LogTreatmentInteractionRequest)
    assert interactions.LogTreatmentInteractionRequest(**fields) == message


def test_without_the_fast_path_there_is_no_fields_decoding() -> None:
    codec = RestCodec(fast=False)
    assert codec.request_fields_decoder(interactions.LogTreatmentInteractionRequest) is None


def test_lenient_response_ignores_unknown_fields_and_enum_values() -> None:
    body = {
        "treatment": {
            "projectId": "P",
            "status": "SUNSETTING",
            "newFieldFromTheFuture": {"x": 1},
            "treatmentType": {"deliveryType": "CARRIER_PIGEON", "name": "T"},
        },
        "requestId": "abc",
    }
    response = CODEC.decode_response(json.dumps(body), management.InsertTreatmentResponse)
    assert response.treatment.project_id == "P"
    assert response.treatment.status == treatment_pb2.TreatmentPb.STATUS_UNSPECIFIED
    assert response.treatment.treatment_type.name == "T"


def test_lenient_response_still_rejects_wrong_types() -> None:
    with pytest.raises(ApiError) as caught:
        CODEC.decode_response(b'{"treatment": {"name": 3}}', management.InsertTreatmentResponse)
    assert _violations(caught.value) == [("treatment.name", "expected a string, got a number")]


@pytest.mark.parametrize("sample", PARSEABLE, ids=lambda s: s.name)
def test_doc_samples_decode_like_json_format_and_round_trip(sample: Sample) -> None:
    decode = CODEC.decode_request if sample.is_request else CODEC.decode_response
    message = decode(sample.text(), sample.message_type)
    assert message == json_format.Parse(sample.text(), sample.message_type())
    assert decode(CODEC.encode(message), sample.message_type) == message


@pytest.mark.parametrize("sample", PARSEABLE, ids=lambda s: s.name)
def test_every_doc_sample_decodes_strictly(sample: Sample) -> None:
    message = CODEC.decode_request(sample.text(), sample.message_type)
    assert message == json_format.Parse(sample.text(), sample.message_type())


@pytest.mark.parametrize("value", ["2024-01-01T00:00:00.1e999Z", "2024-01-01T00:00:00.1e9Z"])
def test_a_timestamp_fraction_in_exponent_form_is_a_400_naming_it(value: str) -> None:
    body = json.dumps({"startTimestamp": value, "projectId": "P"})
    with pytest.raises(ApiError) as caught:
        CODEC.decode_request(body, management.InsertTreatmentRequest)
    first = caught.value.field_violations[0]
    assert first.field == "startTimestamp"
    assert "is not an RFC 3339 timestamp" in first.description


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("2024-01-01T00:00:00Z", 1704067200),
        ("2024-01-01T05:30:00.123456789+05:30", 1704067200),
        ("0001-01-01T00:00:00Z", -62135596800),
    ],
)
@BOTH_CODECS
def test_a_timestamp_is_read_in_every_rfc_3339_form(
    value: str, seconds: int, codec: RestCodec
) -> None:
    body = json.dumps({"startTimestamp": value, "projectId": "P"})
    decoded = codec.decode_request(body, management.UpdateTreatmentRequest)
    assert decoded.start_timestamp.seconds == seconds


# What Timestamp.FromJsonString also takes, or that no timestamp is.
@pytest.mark.parametrize(
    "value",
    [
        "2024-1-01T00:00:00Z",
        "2024-01-01T00:00:00.Z",
        "2024-01-01t00:00:00Z",
        "2024-01-01T00:00:00+1:00",
        "2024-01-01T00:00:00+24:00",
        "2024-01-01T23:59:60Z",
        "2024-01-01T00:00:00.1234567891Z",
        "0000-01-01T00:00:00Z",
    ],
)
def test_other_timestamp_texts_are_a_400_naming_them(value: str) -> None:
    body = json.dumps({"startTimestamp": value, "projectId": "P", "lastModifiedBy": "me"})
    with pytest.raises(ApiError) as caught:
        CODEC.decode_request(body, management.UpdateTreatmentRequest)
    assert _violations(caught.value) == [
        (
            "startTimestamp",
            f'"{value}" is not an RFC 3339 timestamp such as "2024-05-30T11:32:44.279Z"',
        )
    ]


@pytest.mark.parametrize("literal", ["1" + "0" * 400, "-1" + "0" * 400, "1e400"])
@BOTH_CODECS
def test_a_double_past_the_doubles_is_a_400_naming_it(literal: str, codec: RestCodec) -> None:
    body = (
        '{"projectId": "P", "dataFieldParams": [{"eventDataFieldParams": {"eventSchemaName": "e",'
        f' "propertyValueByPropertyName": {{"d": {{"doubleValue": {literal}}}}},'
        ' "firstTimestampAggregation": {}}}]}'
    )
    with pytest.raises(ApiError) as caught:
        codec.decode_request(body, management.GetDataFieldsByParamsRequest)
    assert _violations(caught.value) == [
        (
            'dataFieldParams[0].eventDataFieldParams.propertyValueByPropertyName["d"].doubleValue',
            'the number is out of the double range: use "Infinity" or "-Infinity"',
        )
    ]
