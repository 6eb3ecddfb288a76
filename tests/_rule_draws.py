"""Requests drawn at the edges of the API's rules, and Python's verdict on each.

The rules are written once, in the protos. Python's ``validate`` reads them
from its descriptors, Ajv from the OpenAPI document, the TypeScript and Java
packages from theirs: the tests draw requests of every type with values near
every rule (``near_the_rules``) and hold the others to Python's verdict,
violation by violation (``verdict``).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any, Final

from google.protobuf import json_format
from google.protobuf.message import Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auxia.decision.model import data_field_pb2, field_rules_pb2
from auxia_decision import validate
from auxia_decision._routes import routes
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
    """Assert another validator's verdict on a message is Python's; return whether it is valid."""
    expected = verdict(message)
    found = ask(question(message))
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
