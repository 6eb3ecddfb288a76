"""The drift finder: what a JSON document holds that its message type does not know."""

from __future__ import annotations

import copy
import dataclasses
import json
import typing

import pytest
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message

from auxia.decision.model import data_field_pb2 as data_fields
from auxia.decision.model import treatment_decision_service_pb2 as decisions
from auxia.decision.model import treatment_management_service_pb2 as management
from auxia_decision import RestCodec, _fastjson
from auxia_decision._drift import (
    INVALID_VALUE,
    KINDS,
    UNKNOWN_ENUM_VALUE,
    UNKNOWN_FIELD,
    WRONG_JSON_TYPE,
    Drift,
    find_drift,
)
from tests._fixtures import PARSEABLE, Sample
from tests._repo import ROOT

GET_TREATMENTS = decisions.GetTreatmentsResponse.DESCRIPTOR
GET_TREATMENT = management.GetTreatmentResponse.DESCRIPTOR
PARAMS = data_fields.DataFieldParams.DESCRIPTOR

TREATMENT: dict[str, object] = {
    "treatment": {
        "treatmentId": "t-1",
        "name": "Spring sale",
        "status": "LIVE",
        "lastModifiedTimestamp": "2025-01-01T00:00:00Z",
        "versions": [{"status": "DRAFT", "startTimestamp": "2025-02-01T00:00:00Z"}],
    }
}
USER_TREATMENTS: dict[str, object] = {
    "responseId": "r-1",
    "userTreatments": [
        {"treatmentId": "t-1", "rank": "1", "surface": "home"},
        {"treatmentId": "t-2", "rank": 2, "surface": "home"},
    ],
}
EVENT_PARAMS: dict[str, object] = {
    "eventDataFieldParams": {
        "eventSchemaName": "purchase",
        "propertyValueByPropertyName": {"sku": {"stringValue": "A-1"}},
        "dailyCountAggregation": {"windowName": "LAST_7D"},
    }
}


def _with(document: dict[str, object], path: list[object], value: object) -> dict[str, object]:
    """Return a copy of a document with the value at a path (keys and indexes) set."""
    changed = copy.deepcopy(document)
    parent: object = changed
    for step in path[:-1]:
        parent = parent[step]  # type: ignore[index]
    parent[path[-1]] = value  # type: ignore[index]
    return changed


@pytest.mark.parametrize(
    ("document", "descriptor"),
    [(TREATMENT, GET_TREATMENT), (USER_TREATMENTS, GET_TREATMENTS), (EVENT_PARAMS, PARAMS)],
)
def test_a_document_the_schema_knows_has_no_drift(
    document: dict[str, object], descriptor: Descriptor
) -> None:
    assert find_drift(document, descriptor) == []


@pytest.mark.parametrize(
    ("document", "descriptor", "at", "value", "expected"),
    [
        # Unknown members at any depth: the root, a message, a repeated message, a map's message.
        (
            USER_TREATMENTS,
            GET_TREATMENTS,
            ["newTopLevel"],
            {"a": 1},
            Drift(
                "newTopLevel",
                UNKNOWN_FIELD,
                '"newTopLevel" is not a field of GetTreatmentsResponse',
            ),
        ),
        (
            USER_TREATMENTS,
            GET_TREATMENTS,
            ["userTreatments", 0, "newField"],
            "x",
            Drift(
                "userTreatments[0].newField",
                UNKNOWN_FIELD,
                '"newField" is not a field of UserTreatment',
            ),
        ),
        (
            TREATMENT,
            GET_TREATMENT,
            ["treatment", "versions", 0, "newField"],
            [1, 2],
            Drift(
                "treatment.versions[0].newField",
                UNKNOWN_FIELD,
                '"newField" is not a field of TreatmentVersionPb',
            ),
        ),
        (
            EVENT_PARAMS,
            PARAMS,
            ["eventDataFieldParams", "propertyValueByPropertyName", "sku", "dateValue"],
            "2025-01-01",
            Drift(
                'eventDataFieldParams.propertyValueByPropertyName["sku"].dateValue',
                UNKNOWN_FIELD,
                '"dateValue" is not a field of PropertyValuePb',
            ),
        ),
        # Unknown enum values: a name, in a repeated message too, and a number an open enum lacks.
        (
            TREATMENT,
            GET_TREATMENT,
            ["treatment", "status"],
            "BRAND_NEW_STATUS",
            Drift(
                "treatment.status",
                UNKNOWN_ENUM_VALUE,
                'treatment.status="BRAND_NEW_STATUS" is not a value of Status',
            ),
        ),
        (
            TREATMENT,
            GET_TREATMENT,
            ["treatment", "versions", 0, "status"],
            "RETIRED",
            Drift(
                "treatment.versions[0].status",
                UNKNOWN_ENUM_VALUE,
                'treatment.versions[0].status="RETIRED" is not a value of Status',
            ),
        ),
        (
            TREATMENT,
            GET_TREATMENT,
            ["treatment", "status"],
            77,
            Drift(
                "treatment.status",
                UNKNOWN_ENUM_VALUE,
                "treatment.status=77 is not a value of Status",
            ),
        ),
        # JSON types the schema does not expect.
        (
            USER_TREATMENTS,
            GET_TREATMENTS,
            ["userTreatments", 1, "surface"],
            7,
            Drift("userTreatments[1].surface", WRONG_JSON_TYPE, "expected a string, got a number"),
        ),
        (
            TREATMENT,
            GET_TREATMENT,
            ["treatment", "versions"],
            {"status": "DRAFT"},
            Drift("treatment.versions", WRONG_JSON_TYPE, "expected an array, got an object"),
        ),
        (
            EVENT_PARAMS,
            PARAMS,
            ["eventDataFieldParams", "propertyValueByPropertyName"],
            ["sku"],
            Drift(
                "eventDataFieldParams.propertyValueByPropertyName",
                WRONG_JSON_TYPE,
                "expected a JSON object (a map), got an array",
            ),
        ),
        # Values of the right JSON type that their field still cannot take.
        (
            USER_TREATMENTS,
            GET_TREATMENTS,
            ["userTreatments", 0, "rank"],
            "1e30",
            Drift(
                "userTreatments[0].rank",
                INVALID_VALUE,
                "1e30 is out of the int64 range [-9223372036854775808, 9223372036854775807]",
            ),
        ),
    ],
)
def test_each_drift_is_found_with_its_path_kind_and_detail(
    document: dict[str, object],
    descriptor: Descriptor,
    at: list[object],
    value: object,
    expected: Drift,
) -> None:
    drifted = _with(document, at, value)
    assert find_drift(drifted, descriptor) == [expected]
    assert expected.kind in KINDS


def test_every_drift_of_a_document_is_found_in_document_order() -> None:
    drifted = _with(TREATMENT, ["treatment", "status"], "BRAND_NEW_STATUS")
    drifted = _with(drifted, ["treatment", "versions", 0, "extra"], {"deep": [1]})
    drifted = _with(drifted, ["treatment", "name"], False)
    drifted = _with(drifted, ["newTopLevel"], None)
    assert [(d.path, d.kind) for d in find_drift(drifted, GET_TREATMENT)] == [
        ("treatment.name", WRONG_JSON_TYPE),
        ("treatment.status", UNKNOWN_ENUM_VALUE),
        ("treatment.versions[0].extra", UNKNOWN_FIELD),
        ("newTopLevel", UNKNOWN_FIELD),
    ]


def test_a_document_that_is_no_object_is_one_drift_at_the_root() -> None:
    assert find_drift([], GET_TREATMENTS) == [
        Drift("", WRONG_JSON_TYPE, "expected a JSON object (GetTreatmentsResponse), got an array")
    ]
    assert str(find_drift([], GET_TREATMENTS)[0]).startswith("(the document): wrong_json_type:")


def test_the_document_is_left_unchanged() -> None:
    document = _with(TREATMENT, ["treatment", "status"], "BRAND_NEW_STATUS")
    before = json.dumps(document)
    find_drift(document, GET_TREATMENT)
    assert json.dumps(document) == before


@pytest.mark.parametrize(
    ("message_type", "document"),
    [
        (management.GetTreatmentResponse, _with(TREATMENT, ["treatment", "status"], "NEW")),
        (decisions.GetTreatmentsResponse, _with(USER_TREATMENTS, ["userTreatments", 0, "x"], 1)),
    ],
)
def test_drift_of_unknown_names_is_what_lenient_decoding_drops(
    message_type: type[Message], document: dict[str, object]
) -> None:
    """The lenient decoder reads a drifted document as json_format does, ignoring the drift."""
    text = json.dumps(document)
    decoded = RestCodec().decode_response(text, message_type)
    expected = json_format.Parse(text, message_type(), ignore_unknown_fields=True)
    assert decoded == expected
    assert find_drift(document, typing.cast(Descriptor, message_type.DESCRIPTOR))


@pytest.mark.parametrize("sample", PARSEABLE, ids=lambda sample: sample.name)
@pytest.mark.parametrize("fast", [True, False], ids=["fast", "generic"])
def test_the_documentation_samples_decode_as_ever_without_drift(sample: Sample, fast: bool) -> None:
    codec = RestCodec(fast=fast)
    text = sample.text()
    message, drifts = codec.decode_response_drift(text, sample.message_type)
    assert message == codec.decode_response(text, sample.message_type)
    assert drifts == []


@pytest.mark.parametrize(
    ("status", "known"),
    [('"LIVE"', True), ("1", True), ('"BRAND_NEW_STATUS"', False), ("77", False)],
)
@pytest.mark.parametrize("nested", [False, True], ids=["treatment", "version"])
def test_the_fast_decoder_with_known_enums_refuses_a_value_the_enum_lacks(
    status: str, known: bool, nested: bool
) -> None:
    """What it accepts holds nothing unknown, and what it refuses the generic path decides.

    It reads a name the enum has; a number, even one it has, it leaves to the
    generic path (the message constructor would take any number of a singular
    enum).
    """
    decode = _fastjson.decoder(management.GetTreatmentResponse, strict=True, known_enums=True)
    assert decode is not None
    where = '"versions": [{"status": %s}]' if nested else '"status": %s'
    text = '{"treatment": {' + where % status + "}}"
    if status.startswith('"') and known:
        assert decode(text) == json_format.Parse(text, management.GetTreatmentResponse())
    else:
        with pytest.raises(Exception):  # noqa: B017, PT011 - any: the generic path decides
            decode(text)


def test_the_shared_fixture_of_invalid_values_is_what_python_finds() -> None:
    # The TypeScript and Java drift tests compare their own finds with the same file.
    fixture = json.loads(
        (ROOT / "tests" / "fixtures" / "drift" / "invalid_values.json").read_text()
    )
    assert fixture["type"] == PARAMS.full_name
    found = [dataclasses.asdict(drift) for drift in find_drift(fixture["document"], PARAMS)]
    assert found == fixture["drifts"]
    assert {drift["kind"] for drift in found} == {INVALID_VALUE}
