"""The generated OpenAPI document is valid and agrees with the descriptors and the samples.

``generated/auxia/decision/model/openapi.json`` is written by
``tools/buf_plugins/protoc_gen_openapi.py`` during ``buf generate``. These tests read it
the way a consumer of the package does, check it with openapi-spec-validator,
compare it with the generated descriptors, and validate the documentation's
samples against its schemas with jsonschema (Draft 2020-12).
"""

from __future__ import annotations

import copy
import importlib
import importlib.resources
import json
import pathlib
import pkgutil
from collections.abc import Iterator
from typing import Any

import pytest
from google.api import annotations_pb2, field_behavior_pb2, http_pb2
from google.protobuf import descriptor_pb2, duration_pb2, json_format, timestamp_pb2
from google.protobuf.compiler import plugin_pb2
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor, FileDescriptor
from jsonschema import Draft202012Validator
from openapi_spec_validator import OpenAPIV31SpecValidator, validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

import auxia.decision.model
from auxia_decision import _json_text
from auxia_decision._routes import routes, services
from tests._fixtures import BROKEN, PARSEABLE, Sample, sample_json
from tests._repo import ROOT, VENV_BIN, run
from tools.buf_plugins import openapi_forms, protoc_gen_openapi

# Every file of the schema's package, read from the package itself.
# The schema's files, but those that only declare options (annotations on the
# schema, not types of the API).
FILES: list[FileDescriptor] = [
    importlib.import_module(f"auxia.decision.model.{info.name}").DESCRIPTOR
    for info in pkgutil.iter_modules(auxia.decision.model.__path__)
    if info.name.endswith("_pb2") and info.name not in ("field_rules_pb2", "oneof_behavior_pb2")
]
SPEC_URI = "urn:auxia-decision-api:openapi"
SCHEMAS = "#/components/schemas/"
INT64_TYPES = {
    FieldDescriptor.TYPE_INT64,
    FieldDescriptor.TYPE_SINT64,
    FieldDescriptor.TYPE_SFIXED64,
}
BEHAVIOR = field_behavior_pb2.FieldBehavior
# Every field comment starts with its behavior (README, "The schema").
BEHAVIOR_WORDS: dict[int, str] = {
    BEHAVIOR.REQUIRED: "Required.",
    BEHAVIOR.OPTIONAL: "Optional.",
    BEHAVIOR.OUTPUT_ONLY: "Output only.",
}


def _messages() -> Iterator[Descriptor]:
    def nested(message: Descriptor) -> Iterator[Descriptor]:
        if not message.GetOptions().map_entry:
            yield message
        for child in message.nested_types:
            yield from nested(child)

    for file in FILES:
        for message in file.message_types_by_name.values():
            yield from nested(message)


def _enums() -> Iterator[EnumDescriptor]:
    for file in FILES:
        yield from file.enum_types_by_name.values()
    for message in _messages():
        yield from message.enum_types


def _behaviors(field: FieldDescriptor) -> list[int]:
    return list(field.GetOptions().Extensions[field_behavior_pb2.field_behavior])


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    """The document as the installed package ships it."""
    text = importlib.resources.files("auxia.decision.model").joinpath("openapi.json").read_text()
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def _validator(spec: dict[str, Any], schema_name: str) -> Draft202012Validator:
    """Return a Draft 2020-12 validator of one component, with every component resolvable."""
    registry: Registry[Any] = Registry().with_resource(
        SPEC_URI, Resource.from_contents(spec, default_specification=DRAFT202012)
    )
    return Draft202012Validator(
        {"$ref": f"{SPEC_URI}{SCHEMAS}{schema_name}"},
        registry=registry,
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )


def _schema(spec: dict[str, Any], full_name: str) -> dict[str, Any]:
    schema: dict[str, Any] = spec["components"]["schemas"][full_name]
    return schema


def _errors(spec: dict[str, Any], schema_name: str, instance: Any) -> list[str]:
    validator = _validator(spec, schema_name)
    return sorted(
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator.iter_errors(instance)
    )


def test_document_is_a_valid_openapi_3_1_document(spec: dict[str, Any]) -> None:
    assert spec["openapi"].startswith("3.1.")
    validate(spec, cls=OpenAPIV31SpecValidator)
    for schema in spec["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)


def test_document_is_deterministic_json() -> None:
    path = ROOT / "generated/auxia/decision/model/openapi.json"
    text = path.read_text()
    assert text.endswith("}\n")
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def test_one_path_per_http_rule(spec: dict[str, Any]) -> None:
    expected = set()
    for file in FILES:
        for service in file.services_by_name.values():
            for method in service.methods:
                rule = method.GetOptions().Extensions[annotations_pb2.http]
                if rule.WhichOneof("pattern") is None:
                    continue
                assert not rule.additional_bindings
                verb = rule.WhichOneof("pattern")
                expected.add(
                    (
                        getattr(rule, str(verb)),
                        verb,
                        method.name,
                        f"request.{method.input_type.full_name}",
                        method.output_type.full_name,
                        service.name,
                    )
                )
    assert len(expected) == len(routes())
    found = set()
    for path, operations in spec["paths"].items():
        for verb, operation in operations.items():
            body = operation["requestBody"]["content"]["application/json"]["schema"]
            ok = operation["responses"]["200"]["content"]["application/json"]["schema"]
            assert operation["requestBody"]["required"] is True
            assert operation["responses"]["default"] == {"$ref": "#/components/responses/Error"}
            found.add(
                (
                    path,
                    verb,
                    operation["operationId"],
                    body["$ref"].removeprefix(SCHEMAS),
                    ok["$ref"].removeprefix(SCHEMAS),
                    *operation["tags"],
                )
            )
    assert found == expected
    assert len(spec["paths"]) == len(expected)


def test_operations_carry_the_rpc_comments(spec: dict[str, Any]) -> None:
    insert = spec["paths"]["/v1/InsertTreatment"]["post"]
    assert insert["summary"] == "InsertTreatment"  # explorers list operations by it
    assert insert["description"].startswith("Creates a treatment with one version.\n\nReturns")
    assert "ALREADY_EXISTS" in insert["description"]
    log = spec["paths"]["/v1/LogTreatmentInteraction"]["post"]
    assert log["responses"]["200"]["description"].startswith("An empty response indicates")
    assert {tag["name"] for tag in spec["tags"]} == {service.name for service in services()}


def test_info_servers_security_and_errors(spec: dict[str, Any]) -> None:
    assert spec["info"]["title"]
    assert spec["info"]["version"] == "v1"
    assert spec["servers"] == [{"url": "https://apis.auxia.io"}]
    schemes = spec["components"]["securitySchemes"]
    assert {(s["type"], s["in"], s["name"]) for s in schemes.values()} == {
        ("apiKey", "header", "x-api-key"),
        ("apiKey", "query", "api-key"),
        ("apiKey", "query", "api_key"),
    }
    # Alternatives: each requirement object names one scheme.
    assert sorted(spec["security"], key=str) == [{name: []} for name in sorted(schemes)]
    status = _schema(spec, "google.rpc.Status")
    assert status["properties"]["code"]["type"] == "integer"
    assert status["properties"]["message"]["type"] == "string"
    assert status["properties"]["details"]["items"]["required"] == ["@type"]
    error = {"code": 3, "message": "projectId is required", "details": []}
    assert _errors(spec, "google.rpc.Status", error) == []
    assert _errors(spec, "google.rpc.Status", {"code": "INVALID_ARGUMENT"}) != []
    assert _errors(spec, "google.rpc.Status", {"details": [{"reason": "x"}]}) != []


def _reachable(side: str) -> set[str]:
    """The full names of the messages and enums that the methods' requests or responses reach."""
    found: set[str] = set()
    pending: list[Any] = [
        method.input_type if side == "request" else method.output_type
        for file in FILES
        for service in file.services_by_name.values()
        for method in service.methods
        if method.GetOptions().Extensions[annotations_pb2.http].WhichOneof("pattern")
    ]
    while pending:
        message = pending.pop()
        if message.full_name in found or message.full_name.startswith("google.protobuf."):
            continue
        if not message.GetOptions().map_entry:
            found.add(message.full_name)
        for field in message.fields:
            if field.enum_type is not None:
                found.add(field.enum_type.full_name)
            if field.message_type is not None:
                pending.append(field.message_type)
    return found


def _names(full_name: str) -> list[str]:
    """Return the components of a type: its request schema, its response schema, or both."""
    names = [f"request.{full_name}"] if full_name in _reachable("request") else []
    return names + ([full_name] if full_name in _reachable("response") else [])


def test_schemas_are_the_types_the_operations_reach(spec: dict[str, Any]) -> None:
    requests, responses = _reachable("request"), _reachable("response")
    expected = {f"request.{name}" for name in requests} | responses | {"google.rpc.Status"}
    assert expected == set(spec["components"]["schemas"])
    # Every message and enum of the API's files is reached: none is left out.
    declared = {m.full_name for m in _messages()} | {e.full_name for e in _enums()}
    assert declared == requests | responses


def test_request_schemas_are_closed_and_response_schemas_open(spec: dict[str, Any]) -> None:
    for message in _messages():
        for name in _names(message.full_name):
            closed = _schema(spec, name).get("additionalProperties")
            assert closed is (False if name.startswith("request.") else None), name


def test_properties_are_keyed_by_json_name(spec: dict[str, Any]) -> None:
    for message in _messages():
        for name in _names(message.full_name):
            schema = _schema(spec, name)
            assert schema["type"] == "object"
            assert set(schema["properties"]) == {f.json_name for f in message.fields}, name
            # A request also takes each field under its proto name, by an exact pattern.
            aliases = set(schema.get("patternProperties", {}))
            expected = {f"^{f.name}$" for f in message.fields if f.name != f.json_name}
            assert aliases == (expected if name.startswith("request.") else set()), name


def _value(prop: dict[str, Any]) -> dict[str, Any]:
    """Return a property's schema without the null a request's optional fields also take."""
    if "anyOf" in prop and prop["anyOf"][-1] == {"type": "null"}:
        return _value(prop["anyOf"][0])
    if isinstance(prop.get("type"), list) and "null" in prop["type"]:
        return {**prop, "type": [kind for kind in prop["type"] if kind != "null"]}
    return prop


def test_int64_fields_are_strings_with_format_int64(spec: dict[str, Any]) -> None:
    seen = 0
    for message in _messages():
        for field in message.fields:
            if field.type not in INT64_TYPES:
                continue
            for name in _names(message.full_name):
                prop = _value(_schema(spec, name)["properties"][field.json_name])
                value = _value(prop["items"]) if field.is_repeated else prop
                assert value["type"] == ["string", "integer"], field.full_name
                assert value["format"] == "int64"
                seen += 1
    assert seen >= 5


def test_scalar_types(spec: dict[str, Any]) -> None:
    value = _schema(spec, "io.auxia.decision.model.DataFieldParams.PropertyValuePb")["properties"]
    assert value["stringValue"]["type"] == "string"
    assert value["booleanValue"]["type"] == "boolean"
    assert value["timestampValue"]["type"] == "string"
    assert value["timestampValue"]["format"] == "date-time"
    limit = _schema(spec, "io.auxia.decision.model.TreatmentContentFieldTypePb")["properties"]
    assert limit["valueLengthLimit"]["type"] == "integer"
    assert limit["valueLengthLimit"]["format"] == "int32"


_TARGET_ACTION = "io.auxia.decision.model.TargetActionPb"
_PROPERTY_VALUE = "io.auxia.decision.model.DataFieldParams.PropertyValuePb"
# (schema, document, valid): a response schema is what the server writes; a
# request schema ("request." before the name) takes every form the server reads.
VALUES: list[tuple[str, dict[str, Any], bool]] = [
    *[
        (_TARGET_ACTION, {"eventId": v}, True)
        for v in ("9223372036854775807", "-9223372036854775808", 123)
    ],
    *[
        (_TARGET_ACTION, {"eventId": v}, False)
        for v in ("PROJECT_ID", 1.5, 2**63, True, "12 ", "1e3")
    ],
    *[
        (f"request.{_TARGET_ACTION}", {name: v}, True)
        for v in ("9223372036854775807", "-7", "007", 123, 123.0, "123.000", "1.23e2", "1e3")
        for name in ("eventId", "event_id")
    ],
    *[
        (f"request.{_TARGET_ACTION}", {"eventId": v}, False)
        for v in ("0", "-0", "0.0e7", 0, "9223372036854775808", "9007199254740993.0", "+1")
    ],
    (f"request.{_TARGET_ACTION}", {"eventId": 1, "event_id": 1}, False),  # named twice
    (f"request.{_TARGET_ACTION}", {"eventId": None}, False),  # a REQUIRED field is not null
    *[
        (_PROPERTY_VALUE, {"doubleValue": v}, True)
        for v in (1.5, 0, -1e300, "NaN", "Infinity", "-Infinity")
    ],
    *[(_PROPERTY_VALUE, {"doubleValue": v}, False) for v in ("nan", "1.5", None, True)],
    (_PROPERTY_VALUE, {"timestampValue": "0001-01-01T00:00:00Z"}, True),
    (_PROPERTY_VALUE, {"timestampValue": "9999-12-31T23:59:59.999999999Z"}, True),
    (_PROPERTY_VALUE, {"timestampValue": "2024-13-01T00:00:00Z"}, False),
    *[
        (f"request.{_PROPERTY_VALUE}", {"doubleValue": v}, True)
        for v in (1.5, "1.5", "-2.5e-3", "NaN", "-Infinity", None)
    ],
    *[
        (f"request.{_PROPERTY_VALUE}", {"doubleValue": v}, False)
        for v in ("nan", "+1.5", ".5", True, [1.5])
    ],
    *[
        (f"request.{_PROPERTY_VALUE}", {"timestamp_value": v}, True)
        for v in ("2024-05-30T17:02:44.279+05:30", None)
    ],
    *[
        (f"request.{_PROPERTY_VALUE}", {"timestampValue": v}, False)
        for v in ("2024-05-30t11:32:44z", "2024-5-30T11:32:44Z", "2024-05-30T23:59:60Z")
    ],
]


@pytest.mark.parametrize(
    ("schema_name", "document", "valid"),
    VALUES,
    ids=[
        f"{name.removeprefix('io.auxia.decision.model.').replace('.io.auxia.decision.model', '')}-"
        f"{json.dumps(document)}-{'valid' if valid else 'invalid'}"
        for name, document, valid in VALUES
    ],
)
def test_values_the_schemas_take_and_refuse(
    spec: dict[str, Any], schema_name: str, document: dict[str, Any], valid: bool
) -> None:
    assert _validator(spec, schema_name).is_valid(document) is valid


def test_required_and_output_only_follow_field_behavior(spec: dict[str, Any]) -> None:
    counts: dict[int, int] = {BEHAVIOR.REQUIRED: 0, BEHAVIOR.OUTPUT_ONLY: 0}
    for message in _messages():
        for name in _names(message.full_name):
            schema = _schema(spec, name)
            required = [f for f in message.fields if BEHAVIOR.REQUIRED in _behaviors(f)]
            if name.startswith("request."):
                # A field of two names is required by either: by its proto name, or else
                # by its JSON name.
                either = [
                    [constraint["else"]["required"][0], constraint["if"]["required"][0]]
                    for constraint in schema.get("allOf", [])
                    if constraint.get("$comment", "").endswith("is required, by either name")
                ]
                alike = [f.json_name for f in required if f.json_name == f.name]
                assert schema.get("required", []) == alike, name
                assert either == [[f.json_name, f.name] for f in required if f.json_name != f.name]
            else:
                assert schema.get("required", []) == [f.json_name for f in required], name
            for field in message.fields:
                prop = schema["properties"][field.json_name]
                behaviors = _behaviors(field)
                assert prop.get("readOnly", False) is (BEHAVIOR.OUTPUT_ONLY in behaviors)
                for behavior in behaviors:
                    counts[behavior] = counts.get(behavior, 0) + 1
                    # The field's comment became its description.
                    assert prop["description"].startswith(BEHAVIOR_WORDS[behavior]), name
    assert counts[BEHAVIOR.REQUIRED] >= 30
    assert counts[BEHAVIOR.OUTPUT_ONLY] >= 8


def test_enums_list_their_value_names(spec: dict[str, Any]) -> None:
    enums = list(_enums())
    assert len(enums) >= 8
    for enum in enums:
        names = [value.name for value in enum.values]
        for name in _names(enum.full_name):
            schema = _schema(spec, name)
            if name.startswith("request."):
                # A request may give a value by its name, its number, or its number in a string.
                by_name, by_number, by_text = schema["anyOf"]
                assert by_name == {"type": "string", "enum": names}
                assert by_number == {"type": "integer", "enum": [v.number for v in enum.values]}
                assert by_text["type"] == "string"
            else:
                assert schema["type"] == "string"
                assert schema["enum"] == names
    for message in _messages():
        for name in _names(message.full_name):
            prefix = name.removesuffix(message.full_name)
            for field in message.fields:
                if field.enum_type is not None:
                    prop = _value(_schema(spec, name)["properties"][field.json_name])
                    assert prop["$ref"] == SCHEMAS + prefix + field.enum_type.full_name
    interaction = "request.io.auxia.decision.model.LogTreatmentInteractionRequest.InteractionType"
    assert "- `SWIPE`: The user swiped the treatment." in _schema(spec, interaction)["description"]


def test_maps_repeated_fields_and_messages(spec: dict[str, Any]) -> None:
    event = _schema(spec, "io.auxia.decision.model.DataFieldParams.EventDataFieldParams")
    values = event["properties"]["propertyValueByPropertyName"]
    assert values["type"] == "object"
    assert values["additionalProperties"] == {
        "$ref": SCHEMAS + "io.auxia.decision.model.DataFieldParams.PropertyValuePb"
    }
    versions = _schema(spec, "io.auxia.decision.model.TreatmentPb")["properties"]["versions"]
    assert versions["type"] == "array"
    assert versions["items"] == {"$ref": SCHEMAS + "io.auxia.decision.model.TreatmentVersionPb"}


def test_oneofs_are_documented_and_exclusive(spec: dict[str, Any]) -> None:
    for message in _messages():
        proto = descriptor_pb2.DescriptorProto()
        message.CopyToProto(proto)
        # proto3 `optional` fields sit in synthetic oneofs, which are not the API's.
        optional = {field.name for field in proto.field if field.proto3_optional}
        real = {
            oneof.name: [f.json_name for f in oneof.fields]
            for oneof in message.oneofs
            if [f.name for f in oneof.fields if f.name not in optional]
        }
        for schema_name in _names(message.full_name):
            schema = _schema(spec, schema_name)
            assert schema.get("x-oneof", {}) == real, schema_name
            for name in real:
                assert f"Oneof `{name}`" in schema["description"]
    tdfp = "io.auxia.decision.model.DataFieldParams.TreatmentDataFieldParams"
    validator = _validator(spec, tdfp)
    base = {"treatmentInteractionType": "VIEWED"}
    daily = {"dailyCountAggregation": {"windowName": "LAST_1D"}}
    first: dict[str, Any] = {"firstTimestampAggregation": {}}
    assert validator.is_valid(base | daily)
    assert validator.is_valid(base | daily | {"treatmentId": "t"})
    assert not validator.is_valid(base), "the aggregation oneof is required"
    assert not validator.is_valid(base | daily | first), "two aggregations"
    assert not validator.is_valid(base | daily | {"treatmentId": "t", "surfaceId": "s"})
    property_value = _validator(spec, "io.auxia.decision.model.DataFieldParams.PropertyValuePb")
    assert property_value.is_valid({})
    assert property_value.is_valid({"longValue": "1"})
    assert not property_value.is_valid({"longValue": "1", "stringValue": "x"})


@pytest.mark.parametrize("sample", PARSEABLE, ids=lambda s: s.name)
def test_sample_validates_against_its_operation_schema(
    spec: dict[str, Any], sample: Sample
) -> None:
    (operation,) = [
        op
        for operations in spec["paths"].values()
        for op in operations.values()
        if op["operationId"] == sample.method
    ]
    if sample.is_request:
        ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    else:
        ref = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert ref == SCHEMAS + _schema_name(sample)
    assert _errors(spec, ref.removeprefix(SCHEMAS), sample_json(sample)) == []


def _schema_name(sample: Sample) -> str:
    """Return the component of a sample's type: request bodies have closed schemas of their own."""
    full_name = sample.message_type.DESCRIPTOR.full_name
    return f"request.{full_name}" if sample.is_request else full_name


@pytest.mark.parametrize("sample", [s for s in PARSEABLE if s.is_request], ids=lambda s: s.name)
def test_request_samples_validate_as_written(spec: dict[str, Any], sample: Sample) -> None:
    # The docs' samples name fields by their proto names (project_id): so may a request.
    raw = json.loads(sample.text())
    assert _errors(spec, _schema_name(sample), raw) == []


def test_a_request_names_a_field_once(spec: dict[str, Any]) -> None:
    name = "request.io.auxia.decision.model.GetTreatmentRequest"
    assert _errors(spec, name, {"project_id": "P", "treatmentId": "T"}) == []
    assert _errors(spec, name, {"projectId": "P", "project_id": "P", "treatmentId": "T"}) != []
    assert _errors(spec, name, {"treatmentId": "T"}) != [], "projectId is required"


@pytest.mark.parametrize("name", ["insert_treatment_response", "update_treatment_response"])
def test_literal_samples_with_a_placeholder_int64_fail(spec: dict[str, Any], name: str) -> None:
    sample = BROKEN[name]
    errors = _errors(spec, sample.message_type.DESCRIPTOR.full_name, sample_json(sample))
    assert errors == [
        "treatment/mutualExclusionGroup/projectId: 'PROJECT_ID' does not match "
        f"'{openapi_forms.INT64_PATTERN}'"
    ]


# (sample, where, new value, whether json_format.Parse rejects it too). The
# last column is False for what only the schema checks: a required oneof left
# empty, or an enum given by number (a form the parsers accept, emitters never
# write and the schema does not list).
MUTATIONS: list[tuple[str, list[str | int], Any, bool]] = [
    ("insert_treatment_request", ["projectId"], 123, True),
    ("insert_treatment_request", ["startTimestamp"], "tomorrow", True),
    ("insert_treatment_request", ["eligibilityRules", "rules", 0, "condition"], "ABOUT", True),
    ("insert_treatment_request", ["eligibilityRules", "rules", 0, "dataFieldId"], True, True),
    ("insert_treatment_request", ["tags"], {"name": "not a list"}, True),
    ("update_treatment_request", ["shouldPublish"], "true", True),
    ("get_data_fields_request.corrected", ["dataFieldParams", 0], {}, False),
    ("get_data_fields_response", ["dataFields", 0, "dataFieldId"], 1.5, True),
    ("insert_treatment_response.corrected", ["treatment", "versions", 0, "status"], 2, False),
    ("log_treatment_interaction_request", ["interactionType"], "TAPPED", True),
    ("log_treatment_interaction_request", ["interactionTimeMicros"], [1], True),
]


@pytest.mark.parametrize(
    ("name", "path", "value", "parse_fails"),
    MUTATIONS,
    ids=[f"{name}:{'/'.join(map(str, path))}" for name, path, _, _ in MUTATIONS],
)
def test_mutated_sample_fails(
    spec: dict[str, Any], name: str, path: list[str | int], value: Any, parse_fails: bool
) -> None:
    sample = next(s for s in PARSEABLE if s.name == name)
    instance = copy.deepcopy(sample_json(sample))
    target = instance
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    errors = _errors(spec, _schema_name(sample), instance)
    assert errors, f"{name} with {path} = {value!r} validated"
    if parse_fails:
        with pytest.raises(json_format.ParseError):
            json_format.Parse(json.dumps(instance), sample.message_type())
    else:
        json_format.Parse(json.dumps(instance), sample.message_type())


# The plugin itself, run on requests built here.


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> descriptor_pb2.FileDescriptorSet:
    """The workspace's files with source info, as buf hands them to plugins."""
    out = tmp_path_factory.mktemp("image") / "image.binpb"
    run([str(VENV_BIN / "buf"), "build", "--output", str(out)], ROOT)
    return descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())


def _request(
    files: list[descriptor_pb2.FileDescriptorProto], to_generate: list[str], parameter: str = ""
) -> plugin_pb2.CodeGeneratorRequest:
    return plugin_pb2.CodeGeneratorRequest(
        file_to_generate=to_generate, proto_file=files, parameter=parameter
    )


@pytest.mark.parametrize(
    ("parameter", "name"),
    [
        ("package=io.auxia.decision.model", "auxia/decision/model/openapi.json"),
        (
            "package=io.auxia.decision.emulator.v1,auth=admin-key,"
            "title=Auxia Decision Emulator Admin API,server=http://127.0.0.1:8080",
            "auxia/decision/emulator/v1/openapi.json",
        ),
    ],
    ids=["api", "emulator"],
)
def test_plugin_output_is_the_generated_file(
    image: descriptor_pb2.FileDescriptorSet, parameter: str, name: str
) -> None:
    # Every file of the proto/ module, as `buf generate` sends them (strategy: all).
    ours = [f.name for f in image.file if f.name.startswith("auxia/")]
    assert "auxia/decision/model/treatment.proto" in ours
    response = protoc_gen_openapi.generate(_request(list(image.file), ours, parameter))
    assert response.error == ""
    assert response.supported_features == plugin_pb2.CodeGeneratorResponse.FEATURE_PROTO3_OPTIONAL
    (output,) = response.file
    assert output.name == name
    generated = ROOT / "generated" / output.name
    assert output.content == generated.read_text()
    again = protoc_gen_openapi.generate(_request(list(image.file), list(reversed(ours)), parameter))
    assert again.file[0].content == output.content


def test_the_api_document_leaves_the_emulator_out_and_the_emulator_has_its_own() -> None:
    api = json.loads((ROOT / "generated/auxia/decision/model/openapi.json").read_text())
    emulator = json.loads((ROOT / "generated/auxia/decision/emulator/v1/openapi.json").read_text())
    assert all(path.startswith("/v1/") for path in api["paths"])
    assert not [name for name in api["components"]["schemas"] if "emulator" in name]
    assert all(path.startswith("/emulator/v1/") for path in emulator["paths"])
    assert emulator["security"] == [{"adminKey": []}]
    assert emulator["components"]["securitySchemes"]["adminKey"]["name"] == "x-admin-key"
    assert "/emulator/v1/Reset" in emulator["paths"]


def test_plugin_parameters(image: descriptor_pb2.FileDescriptorSet) -> None:
    ours = [f.name for f in image.file if f.name.startswith("auxia/")]
    parameter = "title=T,version=2,server=http://127.0.0.1:1,output=api/openapi.json"
    (output,) = protoc_gen_openapi.generate(_request(list(image.file), ours, parameter)).file
    assert output.name == "api/openapi.json"
    document = json.loads(output.content)
    assert document["info"]["title"] == "T"
    assert document["info"]["version"] == "2"
    assert document["servers"] == [{"url": "http://127.0.0.1:1"}]
    bad = protoc_gen_openapi.generate(_request(list(image.file), ours, "colour=red"))
    assert bad.error.startswith("unknown parameter 'colour=red'")


_T = descriptor_pb2.FieldDescriptorProto.Type


def _synthetic_file() -> descriptor_pb2.FileDescriptorProto:
    """A file using every scalar type, maps, well-known types and an HTTP rule."""
    file = descriptor_pb2.FileDescriptorProto(
        name="synthetic/v1/synthetic.proto",
        package="synthetic.v1",
        syntax="proto3",
        dependency=[
            "google/protobuf/timestamp.proto",
            "google/protobuf/duration.proto",
            "google/api/annotations.proto",
            "google/api/field_behavior.proto",
        ],
    )
    message = file.message_type.add(name="AllTypes")
    scalars = [
        ("f_double", _T.TYPE_DOUBLE),
        ("f_float", _T.TYPE_FLOAT),
        ("f_int64", _T.TYPE_INT64),
        ("f_uint64", _T.TYPE_UINT64),
        ("f_int32", _T.TYPE_INT32),
        ("f_fixed64", _T.TYPE_FIXED64),
        ("f_fixed32", _T.TYPE_FIXED32),
        ("f_bool", _T.TYPE_BOOL),
        ("f_string", _T.TYPE_STRING),
        ("f_bytes", _T.TYPE_BYTES),
        ("f_uint32", _T.TYPE_UINT32),
        ("f_sfixed32", _T.TYPE_SFIXED32),
        ("f_sfixed64", _T.TYPE_SFIXED64),
        ("f_sint32", _T.TYPE_SINT32),
        ("f_sint64", _T.TYPE_SINT64),
    ]
    optional = descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL
    repeated = descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED
    for number, (name, type_) in enumerate(scalars, start=1):
        field = message.field.add(name=name, number=number, type=type_, label=optional)
        field.json_name = name.replace("f_", "f", 1).replace("_", "")
    for number, type_name in enumerate(
        [".google.protobuf.Timestamp", ".google.protobuf.Duration"], start=50
    ):
        message.field.add(
            name=f"wkt_{number}",
            json_name=f"wkt{number}",
            number=number,
            type=_T.TYPE_MESSAGE,
            type_name=type_name,
            label=optional,
        )
    entry = message.nested_type.add(name="ByIdEntry")
    entry.options.map_entry = True
    entry.field.add(name="key", json_name="key", number=1, type=_T.TYPE_INT64, label=optional)
    entry.field.add(name="value", json_name="value", number=2, type=_T.TYPE_BOOL, label=optional)
    message.field.add(
        name="by_id",
        json_name="byId",
        number=60,
        type=_T.TYPE_MESSAGE,
        type_name=".synthetic.v1.AllTypes.ByIdEntry",
        label=repeated,
    )
    behaviors = message.field.add(
        name="both", json_name="both", number=61, type=_T.TYPE_STRING, label=optional
    )
    # An extension of an imported file, read through the request's own files.
    behaviors.options.Extensions[field_behavior_pb2.field_behavior].extend(
        [BEHAVIOR.REQUIRED, BEHAVIOR.OUTPUT_ONLY]
    )
    service = file.service.add(name="Things")
    method = service.method.add(
        name="Put", input_type=".synthetic.v1.AllTypes", output_type=".synthetic.v1.AllTypes"
    )
    rule = method.options.Extensions[annotations_pb2.http]
    rule.put = "/v1/things"
    rule.body = "*"
    rule.additional_bindings.add(post="/v1/things:put", body="*")
    return file


def _with_imports(
    file: descriptor_pb2.FileDescriptorProto,
) -> list[descriptor_pb2.FileDescriptorProto]:
    """Return the synthetic file after every file it imports, as protoc sends them to plugins."""
    imported = [
        descriptor_pb2.DESCRIPTOR,
        timestamp_pb2.DESCRIPTOR,
        duration_pb2.DESCRIPTOR,
        http_pb2.DESCRIPTOR,
        annotations_pb2.DESCRIPTOR,
        field_behavior_pb2.DESCRIPTOR,
    ]
    files = []
    for descriptor in imported:
        proto = descriptor_pb2.FileDescriptorProto()
        descriptor.CopyToProto(proto)
        files.append(proto)
    return [*files, file]


def test_plugin_maps_every_scalar_and_well_known_type() -> None:
    file = _synthetic_file()
    response = protoc_gen_openapi.generate(_request(_with_imports(file), [file.name]))
    assert response.error == ""
    assert response.file[0].name == "synthetic/v1/openapi.json"
    document = json.loads(response.file[0].content)
    validate(document, cls=OpenAPIV31SpecValidator)
    schema = document["components"]["schemas"]["synthetic.v1.AllTypes"]
    props = schema["properties"]
    for name in ("fint64", "fsfixed64", "fsint64"):
        assert props[name]["type"] == ["string", "integer"]
        assert props[name]["format"] == "int64"
    for name in ("fuint64", "ffixed64"):
        assert props[name]["format"] == "uint64"
        assert props[name]["minimum"] == 0
    for name in ("fint32", "fsint32", "fsfixed32"):
        assert props[name]["format"] == "int32"
    assert props["fuint32"]["maximum"] == 2**32 - 1
    assert props["ffixed32"]["maximum"] == 2**32 - 1
    assert props["fdouble"]["oneOf"][0] == {"type": "number", "format": "double"}
    assert props["ffloat"]["oneOf"][0] == {"type": "number", "format": "float"}
    assert props["fbool"] == {"type": "boolean"}
    assert props["fstring"] == {"type": "string"}
    assert props["fbytes"]["format"] == "byte"
    assert props["wkt50"] == {"type": "string", "format": "date-time"}
    assert props["wkt51"]["type"] == "string"
    assert props["byId"]["propertyNames"] == {"pattern": openapi_forms.INT64_PATTERN}
    assert props["byId"]["additionalProperties"] == {"type": "boolean"}
    assert props["both"]["readOnly"] is True
    assert schema["required"] == ["both"]
    assert "synthetic.v1.AllTypes.ByIdEntry" not in document["components"]["schemas"]
    assert document["paths"]["/v1/things"]["put"]["operationId"] == "Put"
    assert document["paths"]["/v1/things:put"]["post"]["operationId"] == "Put_1"
    validator = _validator(document, "synthetic.v1.AllTypes")
    both = {"both": "set"}
    assert validator.is_valid(both | {"byId": {"-3": True}, "wkt51": "1.5s", "ffloat": "-Infinity"})
    assert not validator.is_valid(both | {"byId": {"x": True}})
    assert not validator.is_valid(both | {"wkt51": "1.5"})
    assert not validator.is_valid({})


def test_plugin_writes_nothing_without_http_rules(image: descriptor_pb2.FileDescriptorSet) -> None:
    files = [f.name for f in image.file if f.name.startswith("auxia/decision/model/treatment.")]
    assert files == ["auxia/decision/model/treatment.proto"]
    response = protoc_gen_openapi.generate(_request(list(image.file), files))
    assert response.error == ""
    assert list(response.file) == []


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ("path", "Things.Put: PUT /v1/things/{id}: path variables are not supported"),
        ("body", 'Things.Put: PUT /v1/things: only body: "*" and a whole-message response'),
        ("twice", "Things.Put: POST /v1/things:put is bound twice"),
    ],
)
def test_plugin_rejects_rules_it_cannot_describe(change: str, error: str) -> None:
    file = _synthetic_file()
    rule = file.service[0].method[0].options.Extensions[annotations_pb2.http]
    if change == "path":
        rule.put = "/v1/things/{id}"
    elif change == "body":
        rule.body = "thing"
    else:
        rule.additional_bindings.add(post="/v1/things:put", body="*")
    response = protoc_gen_openapi.generate(_request(_with_imports(file), [file.name]))
    assert response.error.startswith(error)
    assert not response.file


def test_plugin_names_a_file_whose_imports_are_missing() -> None:
    file = _synthetic_file()
    response = protoc_gen_openapi.generate(_request([file], [file.name]))
    assert response.error.startswith("synthetic/v1/synthetic.proto: ")
    assert "google/protobuf/timestamp.proto" in response.error
    assert not response.file


def test_buf_generate_writes_only_the_document_in_addition(tmp_path: pathlib.Path) -> None:
    run([str(VENV_BIN / "buf"), "generate", "--output", str(tmp_path)], ROOT)
    written = sorted(p.name for p in (tmp_path / "generated/auxia/decision/model").iterdir())
    assert "openapi.json" in written
    assert [name for name in written if not name.endswith((".py", ".pyi"))] == ["openapi.json"]


def test_the_document_reads_number_and_timestamp_texts_as_the_codec_does() -> None:
    """The plugin cannot import the package it documents: its twins of the texts stay equal."""
    assert f"^{_json_text.RFC3339_TEXT.pattern}$" == openapi_forms.TIMESTAMP_PATTERN
    assert openapi_forms.EXACT_LIMIT == _json_text.EXACT_LIMIT
    # The same language, the codec's with groups to take the number apart.
    assert (
        _json_text.NUMBER_TEXT.pattern.replace("(?:", "(")
        .replace("(-?)([0-9]+)", "-?[0-9]+")
        .replace("([0-9]+)", "[0-9]+")
        .replace("([+-]?[0-9]+)", "[+-]?[0-9]+")
        == openapi_forms.NUMBER_TEXT
    )
