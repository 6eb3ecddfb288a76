"""Validation read from field behaviors, oneof options and the documented cross-field rules."""

from __future__ import annotations

from typing import cast

import pytest
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auxia.decision.model import (
    data_field_pb2,
    treatment_pb2,
)
from auxia.decision.model import treatment_decision_service_pb2 as decisions
from auxia.decision.model import (
    treatment_interaction_service_pb2 as interactions,
)
from auxia.decision.model import (
    treatment_management_service_pb2 as management,
)
from auxia_decision import (
    ApiError,
    RestCodec,
    _fastjson,
    check_request,
    clear_output_only,
    validate,
)
from auxia_decision._errors import FieldViolation
from auxia_decision._routes import routes
from auxia_decision._validation import ValidationResult, _walk
from auxia_decision._validation_quick import fields_check
from tests._fixtures import PARSEABLE, Sample
from tests._strategies import messages, null_some_fields


def _fields(violations: object) -> list[str]:
    assert isinstance(violations, tuple)
    return [violation.field for violation in violations]


REQUEST_SAMPLES = [sample for sample in PARSEABLE if sample.is_request]


def test_the_docs_have_request_samples() -> None:
    assert len(REQUEST_SAMPLES) >= 5


@pytest.mark.parametrize("sample", REQUEST_SAMPLES, ids=lambda s: s.name)
def test_every_doc_request_sample_is_valid(sample: Sample) -> None:
    message = RestCodec().decode_request(sample.text(), sample.message_type)
    assert validate(message).errors == ()


def test_missing_required_fields_are_all_reported_with_json_paths() -> None:
    result = validate(management.InsertTreatmentRequest(name="n"))
    assert _fields(result.errors) == [
        "projectId",
        "description",
        "treatmentTypeName",
        "lastModifiedBy",
        "startTimestamp",
        "content",
    ]
    assert {v.description for v in result.errors} == {"required"}


def test_default_scalar_counts_as_missing() -> None:
    request = interactions.LogTreatmentInteractionRequest(
        project_id="P", treatment_tracking_id="T", interaction_time_micros=0
    )
    assert _fields(validate(request).errors) == ["interactionType", "interactionTimeMicros"]


def test_fields_optional_until_clients_migrate_may_be_empty() -> None:
    request = interactions.LogTreatmentInteractionRequest(
        project_id="P",
        treatment_tracking_id="T",
        interaction_type=interactions.LogTreatmentInteractionRequest.VIEWED,
        interaction_time_micros=1,
    )
    assert validate(request).ok


def test_nested_required_fields_are_checked_only_inside_set_messages() -> None:
    request = management.InsertTreatmentRequest(
        project_id="P",
        name="n",
        description="d",
        treatment_type_name="T",
        last_modified_by="me",
    )
    request.start_timestamp.GetCurrentTime()
    by_language = request.content.content_by_language.add()
    by_language.content_fields.add(string_value="x")
    request.eligibility_rules.rules.add(data_field_id=1, rhs_value="18")
    request.removed_surfaces.surfaces.add()
    # In the order the fields are declared.
    assert _fields(validate(request).errors) == [
        "removedSurfaces.surfaces[0].name",
        "content.contentByLanguage[0].languageCode",
        "content.contentByLanguage[0].contentFields[0].fieldName",
        "eligibilityRules.rules[0].condition",
    ]


def test_required_oneofs_are_read_from_the_oneof_option() -> None:
    request = management.GetDataFieldsByParamsRequest(project_id="P")
    request.data_field_params.add()
    treatment = request.data_field_params.add().treatment_data_field_params
    treatment.treatment_interaction_type = (
        data_field_pb2.DataFieldParams.TreatmentDataFieldParams.VIEWED
    )
    result = validate(request)
    assert [(v.field, v.description) for v in result.errors] == [
        (
            "dataFieldParams[0].userAttributeDataFieldParams",
            "required: set exactly one of userAttributeDataFieldParams, "
            "treatmentDataFieldParams, eventDataFieldParams",
        ),
        (
            "dataFieldParams[1].treatmentDataFieldParams.dailyCountAggregation",
            "required: set exactly one of dailyCountAggregation, firstTimestampAggregation, "
            "latestTimestampAggregation, daysSinceFirstTimestampAggregation, "
            "daysSinceLastTimestampAggregation",
        ),
    ]


def test_required_repeated_field_must_not_be_empty() -> None:
    result = validate(management.GetDataFieldsByParamsRequest(project_id="P"))
    assert _fields(result.errors) == ["dataFieldParams"]


@pytest.mark.parametrize(
    ("identifiers", "ok"),
    [
        ({}, False),
        ({"treatment_id": "T"}, True),
        ({"external_treatment_id": "E"}, True),
        ({"external_treatment_id": ""}, False),
    ],
)
def test_update_needs_treatment_id_or_external_treatment_id(
    identifiers: dict[str, str], ok: bool
) -> None:
    request = management.UpdateTreatmentRequest(project_id="P", last_modified_by="me")
    for name, value in identifiers.items():
        setattr(request, name, value)
    result = validate(request)
    assert result.ok is ok
    if not ok:
        assert [(v.field, v.description) for v in result.errors] == [
            ("treatmentId", "required: set treatmentId or externalTreatmentId")
        ]


def _with_output_only_fields() -> treatment_pb2.TreatmentPb:
    treatment = treatment_pb2.TreatmentPb(
        project_id="P",
        treatment_id="T",
        name="n",
        status=treatment_pb2.TreatmentPb.LIVE,
        last_modified_by="me",
    )
    treatment.treatment_type.name = "t"
    treatment.versions.add(status=treatment_pb2.TreatmentVersionPb.DRAFT)
    return treatment


def test_output_only_fields_are_reported_as_warnings_and_left_alone() -> None:
    treatment = _with_output_only_fields()
    result = validate(treatment)
    assert _fields(result.warnings) == ["versions[0].status", "status", "lastModifiedBy"]
    assert {v.description for v in result.warnings} == {"output only: the value was ignored"}
    assert treatment == _with_output_only_fields()  # validate is pure
    with pytest.raises(ApiError):
        check_request(treatment)  # the treatment type is incomplete
    assert treatment == _with_output_only_fields()


def test_clear_output_only_clears_at_every_depth_and_says_what() -> None:
    treatment = _with_output_only_fields()
    warnings = validate(treatment).warnings
    assert clear_output_only(treatment) == warnings
    assert treatment.status == treatment_pb2.TreatmentPb.STATUS_UNSPECIFIED
    assert treatment.last_modified_by == ""
    assert treatment.versions[0].status == treatment_pb2.TreatmentVersionPb.STATUS_UNSPECIFIED
    assert treatment.name == "n"  # other fields stay
    assert validate(treatment).warnings == ()
    assert clear_output_only(treatment) == ()


def test_check_request_raises_an_api_error_listing_every_violation() -> None:
    with pytest.raises(ApiError) as caught:
        check_request(management.UpdateTreatmentRequest())
    text = str(caught.value)
    assert text.splitlines() == [
        "INVALID_ARGUMENT: the request has 3 invalid fields",
        "  projectId: required",
        "  lastModifiedBy: required",
        "  treatmentId: required: set treatmentId or externalTreatmentId",
    ]


REQUEST_TYPES = sorted({route.request_type for route in routes()}, key=lambda t: t.__name__)


@pytest.mark.parametrize("message_type", REQUEST_TYPES, ids=lambda t: t.__name__)
def test_the_quick_check_agrees_with_the_walk(message_type: type[Message]) -> None:
    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(message=messages(message_type))
    def check(message: Message) -> None:
        errors: list[FieldViolation] = []
        warnings: list[FieldViolation] = []
        _walk(message, "", errors, warnings, clear=False)
        assert validate(message) == ValidationResult(tuple(errors), tuple(warnings))

    check()


@pytest.mark.parametrize("message_type", REQUEST_TYPES, ids=lambda t: t.__name__)
def test_the_check_of_the_fields_agrees_with_validation(message_type: type[Message]) -> None:
    # The fields are what the fields decoder reads from the message's JSON,
    # as the gateway reads them; the check passes exactly the valid requests.
    decode_fields = _fastjson.fields_decoder(message_type)
    assert decode_fields is not None
    check_fields = fields_check(message_type)
    codec = RestCodec()

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(message=messages(message_type), data=st.data())
    def check(message: Message, data: st.DataObject) -> None:
        fields = decode_fields(codec.encode(message))
        assert message_type(**fields) == message
        assert check_fields(fields) == (validate(message) == ValidationResult((), ()))
        # JSON null leaves a field unset: the fields hold None.
        null_some_fields(fields, cast(Descriptor, message_type.DESCRIPTOR), data)
        unset = message_type(**fields)
        assert check_fields(fields) == (validate(unset) == ValidationResult((), ()))

    check()


@pytest.mark.parametrize(
    ("window", "problem"),
    [
        ("LAST_1D", None),
        ("LAST_365D", None),
        ("LAST_366D", '"LAST_366D" is not a window LAST_<N>D with N from 1 to 365'),
        ("LAST_0D", '"LAST_0D" is not a window LAST_<N>D with N from 1 to 365'),
        ("last_7d", '"last_7d" is not a window LAST_<N>D with N from 1 to 365'),
        ("LAST_7D\n", '"LAST_7D\n" is not a window LAST_<N>D with N from 1 to 365'),
    ],
)
def test_a_window_follows_its_field_rule(window: str, problem: str | None) -> None:
    request = management.GetDataFieldsByParamsRequest(project_id="P")
    metric = request.data_field_params.add().treatment_data_field_params
    metric.treatment_interaction_type = metric.VIEWED
    metric.daily_count_aggregation.window_name = window
    errors = [(v.field, v.description) for v in validate(request).errors]
    path = "dataFieldParams[0].treatmentDataFieldParams.dailyCountAggregation.windowName"
    assert errors == ([] if problem is None else [(path, problem)])


@pytest.mark.parametrize("count", [-1, 0, 3])
def test_counts_are_not_negative(count: int) -> None:
    request = decisions.GetTreatmentsRequest(project_id="P", user_id="u")
    request.surfaces.add(surface="S", maximum_treatment_count=count, minimum_treatment_count=count)
    errors = [(v.field, v.description) for v in validate(request).errors]
    wrong = [
        (f"surfaces[0].{name}", "must not be negative")
        for name in ("maximumTreatmentCount", "minimumTreatmentCount")
    ]
    assert errors == (wrong if count < 0 else [])


def test_an_enum_value_the_schema_does_not_define_is_an_error() -> None:
    request = interactions.LogTreatmentInteractionRequest(
        project_id="P", treatment_tracking_id="t", interaction_time_micros=1
    )
    request.interaction_type = 99  # type: ignore[assignment]
    (error,) = validate(request).errors
    assert error.field == "interactionType"
    assert error.description.startswith("99 is not a value of InteractionType: expected one of")
