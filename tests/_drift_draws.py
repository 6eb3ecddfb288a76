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
an integer's digits and the order of keys. ``EDGE_DOCUMENTS`` holds answers
at the edges the draws seldom reach (integers and doubles past their
ranges, impossible dates, enum numbers of every form, keys and paths).
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
from auxia_decision._drift import find_drift_in_text
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


def assert_same_drifts(
    ask: Callable[[dict[str, Any]], Any], text: str, descriptor: Descriptor
) -> list[dict[str, str]]:
    """Assert another reader finds Python's drifts in a JSON text; return them."""
    expected = [dataclasses.asdict(d) for d in find_drift_in_text(text, descriptor)]
    found = ask({"type": descriptor.full_name, "text": text})
    assert found == expected, f"{text[:800]!r}\npython: {expected}\nother:  {found}"
    return expected


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
        drifted.append(bool(assert_same_drifts(ask, text.decode(), descriptor)))

    check()
    assert True in drifted
    assert False in drifted


def _values(**by_key: object) -> str:
    """Return a DataFieldParams document of event properties, one a key."""
    return json.dumps({"eventDataFieldParams": {"propertyValueByPropertyName": by_key}})


_PARAMS: Final = data_field_pb2.DataFieldParams.DESCRIPTOR
_LONG = "longValue"
_DOUBLE = "doubleValue"
_TIME = "timestampValue"

# Answers at the edges the draws seldom reach, as JSON texts of DataFieldParams (its int64,
# double, Timestamp, enum, map and oneofs), by name. Those JavaScript cannot read as Python
# does (an integer past 2^53 as a number, 100.0, a key like "0") are for Java alone.
EDGE_DOCUMENTS: Final[dict[str, tuple[str, bool]]] = {
    "integers": (
        '{"eventDataFieldParams": {"propertyValueByPropertyName": {'
        '"a": {"longValue": "1e20"}, "b": {"longValue": "1.5e20"}, '
        '"c": {"longValue": "100000000000000000000.0"}, "d": {"longValue": "1e17"}, '
        '"e": {"longValue": "-0"}, "f": {"longValue": "0x10"}, "g": {"longValue": "1e-400"}, '
        '"h": {"longValue": "1e400"}, "i": {"longValue": "' + "9" * 30 + '"}, '
        '"j": {"longValue": 1e400}, "k": {"longValue": 1.5}, "l": {"longValue": 1e-7}, '
        '"m": {"longValue": "\u00e9\u007f"}, "n": {"longValue": true}, '
        '"o": {"longValue": 1e20}, "p": {"longValue": "1e-9999999999"}}}}',
        True,
    ),
    "integers-javascript-rounds": (
        _values(
            a={_LONG: 12345678901234567.5},
            b={_LONG: 1e-400},
            c={_LONG: 100000000000000000000},
            d={_LONG: 18446744073709551616.0},
        ),
        False,
    ),
    "doubles": (
        _values(
            a={_DOUBLE: "1e400"},
            c={_DOUBLE: 'a"b'},
            d={_DOUBLE: "x\ny"},
            e={_DOUBLE: "NaN"},
            f={_DOUBLE: [1]},
            g={_DOUBLE: 5e-324},
        ).replace('"a": {', '"z": {"doubleValue": 1e400}, "a": {'),
        True,
    ),
    "timestamps": (
        _values(
            a={_TIME: "2023-02-29T00:00:00Z"},
            b={_TIME: "2024-02-29T00:00:00Z"},
            c={_TIME: "1900-02-29T00:00:00Z"},
            d={_TIME: "2000-02-29T00:00:00Z"},
            e={_TIME: "2023-13-01T00:00:00Z"},
            f={_TIME: "2023-00-10T00:00:00Z"},
            g={_TIME: "0001-01-01T00:00:00+01:00"},
            h={_TIME: "9999-12-31T23:59:59-00:01"},
            i={_TIME: "2023-04-31T00:00:00.5+05:30"},
            j={_TIME: "yesterday"},
        ),
        True,
    ),
    "enums": (
        '{"treatmentDataFieldParams": {"treatmentInteractionType": 0.5}}',
        True,
    ),
    "enum-past-the-doubles": (
        '{"treatmentDataFieldParams": {"treatmentInteractionType": 1e400}}',
        True,
    ),
    "members": (
        json.dumps(
            {
                "userAttributeDataFieldParams": None,
                "user_attribute_data_field_params": {},
                "eventDataFieldParams": {
                    "eventSchemaName": "e\ud800",
                    "propertyValueByPropertyName": {"\udc00k": {}, "n": None, "a b": {_LONG: 1}},
                },
                "[x.y]": 1,
                "a\u001cb": 2,
                "a\u0085b": 3,
                "a\ufeffb": 4,
                "\u2028": 5,
            }
        ),
        True,
    ),
    "key-order": ('{"b": 1, "0": 2, "eventDataFieldParams": {"x": 1}}', False),
}
"""Named JSON texts of DataFieldParams, each with whether JavaScript reads it as Python does."""

for _index, _value in enumerate(
    [
        " 1\n",
        "+1",
        "1_000",
        "\u0661",
        "\uff11",
        "\u0085 1",
        "\u00a01",
        "1\u2003",
        "\ufeff1",
        "9" * 30,
        "2147483648",
        "-2147483649",
        1e20,
        100.0,
    ]
):
    EDGE_DOCUMENTS[f"enum-{_index}"] = (
        json.dumps({"treatmentDataFieldParams": {"treatmentInteractionType": _value}}),
        not (isinstance(_value, float) and (_value.is_integer() or _value > 2**53)),
    )


# Imported by name by each test module with an ``answer_lines`` fixture (a ``LineScript``)
# and a ``drift_reader_is_javascript`` one.


@pytest.mark.parametrize("answer_type", ANSWER_TYPES, ids=lambda t: t.DESCRIPTOR.name)
def test_find_drift_finds_pythons_drifts_in_drawn_answers(
    answer_lines: LineScript, answer_type: type[Message], drift_reader_is_javascript: bool
) -> None:
    assert_same_drifts_on_drawn(
        answer_lines.ask, answer_type, 80, javascript=drift_reader_is_javascript
    )


@pytest.mark.parametrize("name", sorted(n for n, (_, js) in EDGE_DOCUMENTS.items() if js))
def test_find_drift_finds_pythons_drifts_at_the_edges(answer_lines: LineScript, name: str) -> None:
    assert_same_drifts(answer_lines.ask, EDGE_DOCUMENTS[name][0], _PARAMS)


@pytest.mark.parametrize("name", sorted(n for n, (_, js) in EDGE_DOCUMENTS.items() if not js))
def test_find_drift_reads_numbers_and_key_order_as_written(
    answer_lines: LineScript, name: str
) -> None:
    # Not TypeScript's: a JavaScript value has lost what these documents hold.
    assert_same_drifts(answer_lines.ask, EDGE_DOCUMENTS[name][0], _PARAMS)
