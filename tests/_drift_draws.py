"""Answers drawn near the schema's edges, and the drift Python's ``find_drift`` finds in each.

The TypeScript and Java packages report schema drift as the Python client
does: the tests draw answers of the API's types, change them as a newer or a
broken API might (``tests._json_mutations``: members added, renamed, given
twice under both names, retyped, wrapped, nulled; values at every edge) and
hold the other languages' drifts to Python's, drift by drift.

What the other readers cannot see is left out: a key given twice (their
JSON parsers keep the last); for TypeScript, what a JavaScript value does
not keep: an integer past 2^53 (``JSON.parse`` rounds it), a number written
100.0 (100), the order of keys such as "0" (listed first). Java's Gson keeps
all three.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from typing import Any, Final, cast

import pytest
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from auxia.decision.model import (
    data_field_pb2,
    treatment_decision_service_pb2,
    treatment_interaction_service_pb2,
    treatment_management_service_pb2,
)
from auxia_decision import RestCodec
from auxia_decision._drift import find_drift
from tests._json_mutations import mutated
from tests._node import LineScript
from tests._strategies import messages

ANSWER_TYPES: Final[list[type[Message]]] = [
    treatment_decision_service_pb2.GetTreatmentsResponse,
    treatment_management_service_pb2.GetTreatmentResponse,
    treatment_management_service_pb2.GetAllTreatmentsResponse,
    treatment_management_service_pb2.GetDataFieldsByParamsResponse,
    treatment_management_service_pb2.InsertTreatmentResponse,
    treatment_interaction_service_pb2.LogTreatmentInteractionResponse,
    data_field_pb2.DataFieldParams,
]
"""The API's answers, and DataFieldParams (its oneofs, maps, Timestamps and doubles)."""

_CODEC = RestCodec()
_EXACT: Final = 2**53
_DEPTH: Final = 64


def words(descriptor: Descriptor, seen: set[str] | None = None) -> list[str]:
    """Return the names a type's documents use: field and JSON names, enum value names."""
    seen = set() if seen is None else seen
    if descriptor.full_name in seen:
        return []
    seen.add(descriptor.full_name)
    found: list[str] = []
    for field in descriptor.fields:
        found += [field.name, field.json_name]
        if field.enum_type is not None:
            found += [value.name for value in field.enum_type.values]
        if field.message_type is not None:
            found += words(field.message_type, seen)
    return found


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise _GivenTwiceError
    return dict(pairs)


class _GivenTwiceError(ValueError):
    """A JSON object gives a key twice."""


def _no_constants(name: str) -> object:
    raise ValueError(name)  # NaN, Infinity: Python's json reads them, JSON has none


def _readable_alike(value: Any, *, javascript: bool, depth: int = 0) -> bool:
    """Whether every reader reads a document as Python does (see the module's docstring)."""
    if depth > _DEPTH:
        return False
    if isinstance(value, dict):
        if javascript and any(_ARRAY_INDEX.fullmatch(key) for key in value):
            return False  # a JavaScript object lists such keys first
        items: Any = value.values()
    elif isinstance(value, list):
        items = value
    elif javascript and isinstance(value, float):
        return not value.is_integer()  # 100.0 is JavaScript's 100
    else:
        return not javascript or not (
            isinstance(value, int) and not isinstance(value, bool) and abs(value) > _EXACT
        )
    return all(_readable_alike(item, javascript=javascript, depth=depth + 1) for item in items)


_ARRAY_INDEX: Final = re.compile("0|[1-9][0-9]{0,9}")


def drifts(document: object, descriptor: Descriptor) -> list[dict[str, str]]:
    """Return Python's drifts of a document, as the other readers answer them."""
    return [dataclasses.asdict(drift) for drift in find_drift(document, descriptor)]


def assert_same_drifts_on_drawn(
    ask: Callable[[dict[str, Any]], Any],
    answer_type: type[Message],
    examples: int,
    *,
    javascript: bool,
) -> None:
    """Assert another reader finds Python's drifts in drawn, changed answers of a type.

    Derandomized: the same draws every run. Some of them drift.
    """
    descriptor = cast(Descriptor, answer_type.DESCRIPTOR)
    names = words(descriptor)
    drifted: list[bool] = []

    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(message=messages(answer_type, max_depth=4), data=st.data())
    def check(message: Message, data: st.DataObject) -> None:
        text = mutated(data, _CODEC.encode(message).decode(), names)
        assume(not text.startswith(b"\xef\xbb\xbf"))  # a BOM: a client's reading of the body
        try:
            document = json.loads(
                text, object_pairs_hook=_unique_keys, parse_constant=_no_constants
            )
        except (ValueError, RecursionError):  # not JSON (NaN is not), a key twice, too deep
            assume(False)
        assume(_readable_alike(document, javascript=javascript))
        expected = drifts(document, descriptor)
        found = ask({"type": descriptor.full_name, "text": text.decode()})
        assert found == expected, f"{text[:800]!r}\npython: {expected}\nother:  {found}"
        drifted.append(bool(expected))

    check()
    assert True in drifted
    assert False in drifted


# Imported by name by each test module with an ``answer_lines`` fixture (a ``LineScript``)
# and a ``drift_reader_is_javascript`` one.


@pytest.mark.parametrize("answer_type", ANSWER_TYPES, ids=lambda t: t.DESCRIPTOR.name)
def test_find_drift_finds_pythons_drifts_in_drawn_answers(
    answer_lines: LineScript, answer_type: type[Message], drift_reader_is_javascript: bool
) -> None:
    assert_same_drifts_on_drawn(
        answer_lines.ask, answer_type, 80, javascript=drift_reader_is_javascript
    )
