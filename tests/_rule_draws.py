"""Requests drawn at the edges of the API's rules, and Python's verdict on each.

The rules are written once, in the protos. Python's ``validate`` reads them
from its descriptors, Ajv from the OpenAPI document, the TypeScript and Java
packages from theirs: the tests draw requests of every type with values near
every rule (``near_the_rules``) and hold the others to Python's verdict,
violation by violation (``verdict``).
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable
from typing import Any, Final

import pytest
from google.api import field_behavior_pb2
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from google.protobuf.message import Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auxia.decision.model import data_field_pb2, field_rules_pb2, oneof_behavior_pb2
from auxia_decision import validate
from auxia_decision._routes import routes
from tests._node import LineScript
from tests._strategies import messages, tweak_to_edges

REQUEST_TYPES: Final[list[type[Message]]] = sorted(
    {route.request_type for route in routes()}, key=lambda t: t.DESCRIPTOR.full_name
)
"""Every request type of the API's RPCs."""


def near_the_rules(message: Message, data: st.DataObject) -> None:
    """Set the values that have ``field_rules`` to values at the edge of their rules.

    Random strings almost never match a pattern, and random integers are
    seldom near a minimum: values drawn from the pattern, and around the
    minimum, put the verdicts to the test.
    """
    for field in message.DESCRIPTOR.fields:
        rules = field.GetOptions().Extensions[field_rules_pb2.field_rules]
        if rules.pattern and not field.is_repeated:
            near = st.from_regex(rules.pattern.rstrip("$") + r"\Z", fullmatch=True)
            # A final newline: Python's $ would take it, ECMAScript's does not.
            after = near.map(lambda value: value + "\n")
            setattr(message, field.name, data.draw(st.one_of(near, after, st.text(max_size=8))))
        elif rules.HasField("minimum") and not field.is_repeated:
            edge = st.integers(rules.minimum - 2, rules.minimum + 2)
            setattr(message, field.name, data.draw(edge))
        if field.message_type is None or field.message_type.GetOptions().map_entry:
            continue
        if field.is_repeated:
            for child in getattr(message, field.name):
                near_the_rules(child, data)
        elif message.HasField(field.name):
            near_the_rules(getattr(message, field.name), data)


def question(message: Message) -> dict[str, str]:
    """Return the line a validator of another language is asked: the type and the message."""
    return {
        "type": message.DESCRIPTOR.full_name,
        "binary": base64.b64encode(message.SerializeToString()).decode(),
    }


def verdict(message: Message) -> dict[str, Any]:
    """Return Python's verdict, as the other validators answer: each violation (path, words)."""
    result = validate(message)
    return {
        "errors": [[violation.field, violation.description] for violation in result.errors],
        "warnings": [[violation.field, violation.description] for violation in result.warnings],
    }


def _edge(type_name: str, document: dict[str, Any]) -> Message:
    """Return a message of one of the API's types from its proto3 JSON (unknown enums too)."""
    types: list[type[Message]] = [*REQUEST_TYPES, data_field_pb2.ResolvedDataFieldPb]
    message_type = next(t for t in types if t.DESCRIPTOR.name == type_name)
    message: Message = json_format.ParseDict(document, message_type())
    return message


# Where the rules are hard to meet by drawing: enum numbers no enum names at any
# depth, patterns missed by a newline, the minimum, groups, required oneofs, maps
# of messages (keys in another order by code point than by UTF-16 unit, keys to
# quote: no API type's map values have rules today, so they are walked, and say
# nothing), and OUTPUT_ONLY fields set (a response type: the requests have none).
EDGE_CASES: Final[dict[str, tuple[str, dict[str, Any]]]] = {
    "empty-data-fields": ("GetDataFieldsByParamsRequest", {}),
    "data-fields-at-depth": (
        "GetDataFieldsByParamsRequest",
        {
            "projectId": "P",
            "dataFieldParams": [
                {},
                {
                    "treatmentDataFieldParams": {
                        "treatmentInteractionType": 99,
                        "dailyCountAggregation": {"windowName": "LAST_0D"},
                    }
                },
                {
                    "eventDataFieldParams": {
                        "propertyValueByPropertyName": {
                            "b": {},
                            "a": {"longValue": "1"},
                            "\U0001f600": {},
                            "\uffff": {},
                            "": {},
                            'q"uote d': {},
                        },
                        "dailyCountAggregation": {"windowName": "LAST_365D\n"},
                    }
                },
                {"userAttributeDataFieldParams": {}},
            ],
        },
    ),
    "unknown-interaction": ("LogTreatmentInteractionRequest", {"interactionType": 42}),
    "negative-counts": (
        "GetTreatmentsRequest",
        {
            "projectId": "P",
            "userId": "u",
            "surfaces": [
                {"surface": "A", "maximumTreatmentCount": "-1", "minimumTreatmentCount": "-5"},
                {"surface": "", "maximumTreatmentCount": "0"},
            ],
        },
    ),
    "no-treatment-named": ("UpdateTreatmentRequest", {"projectId": "P"}),
    "unknown-condition": (
        "InsertTreatmentRequest",
        {"eligibilityRules": {"rules": [{"condition": 77}, {"condition": 0}]}},
    ),
    "output-only-set": (
        "ResolvedDataFieldPb",
        {"dataFieldId": "5", "dataFieldType": "x", "dataFieldParams": {}},
    ),
    "valid": (
        "GetTreatmentsRequest",
        {"projectId": "P", "userId": "u", "surfaces": [{"surface": "A"}]},
    ),
}
"""Named (type, proto3 JSON) of messages at the rules' edges, for every validator to judge."""


def edge_case(name: str) -> Message:
    """Return the message of an edge case by its name."""
    type_name, document = EDGE_CASES[name]
    return _edge(type_name, document)


def assert_same_verdict(ask: Callable[[dict[str, str]], dict[str, Any]], message: Message) -> bool:
    """Assert another validator's verdict on a message is Python's; return whether it is valid.

    A message of ``EDGES_FILE`` is sent with its file.
    """
    expected = verdict(message)
    synthetic = message.DESCRIPTOR.file.name == EDGES_FILE.name
    found = ask(synthetic_question(message) if synthetic else question(message))
    assert found == expected, (
        f"{message.DESCRIPTOR.name} {json_format.MessageToJson(message, indent=None)[:600]}\n"
        f"python: {expected}\nother:  {found}"
    )
    return not expected["errors"]


def assert_same_verdicts_on_drawn(
    ask: Callable[[dict[str, str]], dict[str, Any]], request_type: type[Message], examples: int
) -> None:
    """Assert another validator gives Python's verdict on drawn requests of a type.

    Derandomized: the same draws every run. Some of them break a rule.
    """
    valid: list[bool] = []

    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(message=messages(request_type, max_depth=4), data=st.data())
    def check(message: Message, data: st.DataObject) -> None:
        tweak_to_edges(message, data)
        near_the_rules(message, data)
        valid.append(assert_same_verdict(ask, message))

    check()
    assert False in valid


def _edges_file() -> descriptor_pb2.FileDescriptorProto:
    """Return a file of our own whose fields have what no API field has yet.

    A REQUIRED and an OUTPUT_ONLY double (-0.0 is their default), minimums on
    unsigned integers (past 2^31 and 2^63) and on a double (NaN, -0.5),
    patterns with ``.`` and ``\\d`` (``\\r``, U+2028, U+0085 and other
    digits), with both and ``]`` in classes, with a ``$`` not the last; maps of
    messages by string, bool, uint32, uint64, sint64 and fixed32 keys, a
    required oneof of a message and a string.
    """
    types = descriptor_pb2.FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(
        name="tests/validation_edges.proto",
        package="tests.validation",
        syntax="proto3",
        dependency=[
            "google/api/field_behavior.proto",
            "auxia/decision/model/field_rules.proto",
            "auxia/decision/model/oneof_behavior.proto",
        ],
    )
    named = file.message_type.add(name="Named")
    name = named.field.add(name="name", number=1, type=types.TYPE_STRING, json_name="name")
    name.options.Extensions[field_behavior_pb2.field_behavior].append(field_behavior_pb2.REQUIRED)
    edges = file.message_type.add(name="Edges")
    edges.oneof_decl.add(name="choice").options.Extensions[oneof_behavior_pb2.oneof_required] = True

    def add(field_name: str, kind: int, **given: Any) -> descriptor_pb2.FieldDescriptorProto:
        json_name = "".join(
            part if i == 0 else part.title() for i, part in enumerate(field_name.split("_"))
        )
        number = len(edges.field) + 1
        return edges.field.add(
            name=field_name, number=number, type=kind, json_name=json_name, **given
        )

    behaviors = field_behavior_pb2
    add("required_double", types.TYPE_DOUBLE).options.Extensions[behaviors.field_behavior].append(
        behaviors.REQUIRED
    )
    add("output_double", types.TYPE_DOUBLE).options.Extensions[behaviors.field_behavior].append(
        behaviors.OUTPUT_ONLY
    )
    for field_name, kind, minimum in (
        ("small_count", types.TYPE_UINT32, 5),
        ("big_count", types.TYPE_UINT64, 5),
        ("ratio", types.TYPE_DOUBLE, 0),
    ):
        add(field_name, kind).options.Extensions[field_rules_pb2.field_rules].minimum = minimum
    for field_name, pattern in (
        ("code", "^a.\\d$"),
        ("escaped", "^[.\\]]\\.[^\\d]$"),  # . ] and \d in classes, an escaped .
        ("either", "^x$|^y"),  # a $ not the last: Python's takes a final newline
    ):
        rules = add(field_name, types.TYPE_STRING).options.Extensions[field_rules_pb2.field_rules]
        rules.pattern = pattern
    for field_name, key in (
        ("by_name", types.TYPE_STRING),
        ("by_flag", types.TYPE_BOOL),
        ("by_small", types.TYPE_UINT32),
        ("by_big", types.TYPE_UINT64),
        ("by_signed", types.TYPE_SINT64),
        ("by_fixed", types.TYPE_FIXED32),
    ):
        entry_name = "".join(part.title() for part in field_name.split("_")) + "Entry"
        entry = edges.nested_type.add(name=entry_name)
        entry.options.map_entry = True
        entry.field.add(name="key", number=1, type=key, json_name="key")
        entry.field.add(
            name="value",
            number=2,
            type=types.TYPE_MESSAGE,
            type_name=".tests.validation.Named",
            json_name="value",
        )
        add(
            field_name,
            types.TYPE_MESSAGE,
            label=types.LABEL_REPEATED,
            type_name=f".tests.validation.Edges.{entry_name}",
        )
    add("first", types.TYPE_MESSAGE, type_name=".tests.validation.Named", oneof_index=0)
    add("second", types.TYPE_STRING, oneof_index=0)
    return file


EDGES_FILE: Final = _edges_file()
"""A file of messages whose fields have what no API field has yet (``_edges_file``)."""


def _edges_types() -> tuple[type[Message], type[Message]]:
    """Return the classes of ``EDGES_FILE``'s Edges and Named, in a pool of their own."""
    pool = descriptor_pool.DescriptorPool()
    for dependency in (
        descriptor_pb2.DESCRIPTOR,
        field_behavior_pb2.DESCRIPTOR,
        field_rules_pb2.DESCRIPTOR,
        oneof_behavior_pb2.DESCRIPTOR,
    ):
        proto = descriptor_pb2.FileDescriptorProto()
        dependency.CopyToProto(proto)
        pool.Add(proto)
    pool.Add(EDGES_FILE)
    return (
        message_factory.GetMessageClass(pool.FindMessageTypeByName("tests.validation.Edges")),
        message_factory.GetMessageClass(pool.FindMessageTypeByName("tests.validation.Named")),
    )


def _synthetic_cases() -> dict[str, Message]:
    edges, named = _edges_types()
    cases: dict[str, Message] = {
        "negative-zero-required": edges(required_double=-0.0, second="x"),
        "negative-zero-output-only": edges(required_double=1, output_double=-0.0, second="x"),
        "output-only-set": edges(required_double=1, output_double=2.5, second="x"),
        "unsigned-past-the-sign-bit": edges(
            required_double=1, small_count=2**31 + 1, big_count=2**63 + 1, second="x"
        ),
        "unsigned-below-the-minimum": edges(required_double=1, small_count=4, big_count=3),
        "a-fraction-below-the-minimum": edges(required_double=1, ratio=-0.5, second="x"),
        "nan-against-the-minimum": edges(required_double=1, ratio=math.nan, second="x"),
        "required-oneof-of-a-message": edges(required_double=1, first=named()),
    }
    for index, code in enumerate(["a\r1", "a\u20281", "a\u00851", "ab\u0661", "ab1\n", "ab1"]):
        cases[f"pattern-{index}"] = edges(required_double=1, code=code, second="x")
    for index, escaped in enumerate(["].x", "..a", "a.x", "]x1", "..\u0661", "\\.x"]):
        cases[f"pattern-in-classes-{index}"] = edges(required_double=1, escaped=escaped, second="x")
    for index, either in enumerate(["x\n", "x", "yz", "z", "x\n\n"]):
        cases[f"pattern-with-a-dollar-{index}"] = edges(
            required_double=1, either=either, second="x"
        )
    maps: Any = edges(required_double=1, second="x")  # its map fields: of a class made here
    for key in ["b", "a", "\U0001f600", "\uffff", "", 'q"uote d']:
        maps.by_name[key].SetInParent()
    for flag in (True, False):
        maps.by_flag[flag].SetInParent()
    for small in (2, 2**31 + 1, 1):
        maps.by_small[small].SetInParent()
    for big in (2**63 + 1, 5):
        maps.by_big[big].SetInParent()
    for signed in (3, -(2**63), -1, 2**63 - 1):
        maps.by_signed[signed].SetInParent()
    for fixed in (2**32 - 1, 0, 7):
        maps.by_fixed[fixed].SetInParent()
    cases["maps-of-messages"] = maps
    return cases


SYNTHETIC_CASES: Final = _synthetic_cases()
"""Named messages of ``EDGES_FILE``'s Edges, for every validator to judge."""


def synthetic_question(message: Message) -> dict[str, str]:
    """Return ``question`` for a message of ``EDGES_FILE``, with the file."""
    return {
        **question(message),
        "file": base64.b64encode(EDGES_FILE.SerializeToString()).decode(),
    }


# The tests of another language's validator: a test module imports them by name, and gives
# an ``answer_lines`` fixture (a ``LineScript`` answering each ``question`` with that
# validator's verdict). Functions, not a class: xdist's loadscope keeps a module's tests, so
# its fixtures (the npm package's build), on one worker; a class would be a unit of its own.


@pytest.mark.parametrize("case", sorted(EDGE_CASES))
def test_validate_gives_pythons_verdict_at_the_rules_edges(
    answer_lines: LineScript, case: str
) -> None:
    assert_same_verdict(answer_lines.ask, edge_case(case))


@pytest.mark.parametrize("case", sorted(SYNTHETIC_CASES))
def test_validate_gives_pythons_verdict_on_what_no_api_field_has_yet(
    answer_lines: LineScript, case: str
) -> None:
    assert_same_verdict(answer_lines.ask, SYNTHETIC_CASES[case])


@pytest.mark.parametrize("request_type", REQUEST_TYPES, ids=lambda t: t.DESCRIPTOR.name)
def test_validate_gives_pythons_verdict_on_drawn_requests(
    answer_lines: LineScript, request_type: type[Message]
) -> None:
    assert_same_verdicts_on_drawn(answer_lines.ask, request_type, examples=60)
