"""The JSON samples of the API documentation, kept as fixture files.

``docs/`` holds every sample of ../shared/api-docs verbatim (``NAME.json``);
where a sample cannot parse as written, ``NAME.corrected.json`` is its
corrected twin (README, Spec notes). ``examples/`` holds samples we wrote for
calls the docs show no JSON for.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any, NamedTuple

from google.protobuf.message import Message

from auxia.decision.model import (
    treatment_decision_service_pb2,
    treatment_interaction_service_pb2,
    treatment_management_service_pb2,
)
from tests._request_forms import rename

FIXTURES = pathlib.Path(__file__).parent / "fixtures"

_tm = treatment_management_service_pb2
_ti = treatment_interaction_service_pb2
_td = treatment_decision_service_pb2


class Sample(NamedTuple):
    """One JSON sample and the message type it encodes."""

    name: str
    path: pathlib.Path
    message_type: type[Message]
    method: str
    is_request: bool

    def text(self) -> str:
        """Return the sample's text."""
        return self.path.read_text()


def _sample(folder: str, name: str, message_type: type[Message], method: str) -> Sample:
    return Sample(name, FIXTURES / folder / f"{name}.json", message_type, method, "request" in name)


# Every sample that parses as written, or the corrected twin of one that does not.
PARSEABLE = [
    _sample("docs", "insert_treatment_request", _tm.InsertTreatmentRequest, "InsertTreatment"),
    _sample(
        "docs",
        "insert_treatment_response.corrected",
        _tm.InsertTreatmentResponse,
        "InsertTreatment",
    ),
    _sample("docs", "update_treatment_request", _tm.UpdateTreatmentRequest, "UpdateTreatment"),
    _sample(
        "docs",
        "update_treatment_response.corrected",
        _tm.UpdateTreatmentResponse,
        "UpdateTreatment",
    ),
    _sample(
        "docs",
        "get_data_fields_request.corrected",
        _tm.GetDataFieldsByParamsRequest,
        "GetDataFields",
    ),
    _sample("docs", "get_data_fields_response", _tm.GetDataFieldsByParamsResponse, "GetDataFields"),
    _sample(
        "examples",
        "log_treatment_interaction_request",
        _ti.LogTreatmentInteractionRequest,
        "LogTreatmentInteraction",
    ),
    _sample("examples", "get_treatments_request", _td.GetTreatmentsRequest, "GetTreatments"),
    _sample("examples", "get_treatments_response", _td.GetTreatmentsResponse, "GetTreatments"),
    _sample("examples", "get_treatment_request", _tm.GetTreatmentRequest, "GetTreatment"),
    _sample(
        "examples", "get_all_treatments_request", _tm.GetAllTreatmentsRequest, "GetAllTreatments"
    ),
]

REQUESTS: dict[str, Sample] = {sample.method: sample for sample in PARSEABLE if sample.is_request}
"""A request sample of every method, by method name (the corrected twin where needed)."""

# The literal samples that do not parse, by name.
BROKEN = {
    name: _sample("docs", name, message_type, method)
    for name, message_type, method in [
        ("insert_treatment_response", _tm.InsertTreatmentResponse, "InsertTreatment"),
        ("update_treatment_response", _tm.UpdateTreatmentResponse, "UpdateTreatment"),
        ("get_data_fields_request", _tm.GetDataFieldsByParamsRequest, "GetDataFields"),
    ]
}


def json_names(value: Any, message: Any) -> Any:
    """Rename a proto3 JSON value's original field names to JSON names, as parsers read them.

    The documentation's samples mix `project_id` and `projectId`; both parse,
    and responses use the JSON names, which the response schemas describe.
    """
    return rename(value, message, lambda _, field: field.json_name)


def sample_json(sample: Sample) -> Any:
    """Return a sample's JSON with every field under its JSON (lowerCamelCase) name."""
    return json_names(json.loads(sample.text()), sample.message_type.DESCRIPTOR)
