"""Every form proto3 JSON gives a request, as variants of a valid body.

The server reads a request's fields under their JSON names or their proto
names, ``null`` as a field's default, an integer as a JSON number or as a
string of one (with a fraction or an exponent too), an enum by name, by
number or by number in a string, a double as a number, a string of one or
``NaN``/``Infinity``/``-Infinity``, a timestamp as RFC 3339 text with any
offset. ``variants(body, descriptor)`` walks a valid body and yields it
changed one way at a time: every field renamed, both styles mixed, each field
under its other name, under both, null, in each form of its type (the
accepted ones, those at the edges of the type's range and the rules, and the
texts Python would read but proto3 JSON does not), of a wrong JSON type; each
field the body lacks added, in each form; unknown fields.

A few variants hold what JSON Schema cannot check and the server does (the
value of an integer string with an exponent, the range of a double string, of
a 64-bit JSON number past 2^53 for a validator reading doubles, a timestamp's
offset past the years 0001 and 9999): ``Variant.gap`` names which, as
``docs/rules.md`` and the fields' descriptions list them. On all but one the
server refuses what JSON Schema takes; on a 64-bit JSON number of 2^53 or
more, validators differ.
"""

from __future__ import annotations

import copy
import dataclasses
import sys
from collections.abc import Callable, Iterator
from typing import Any, Final

from google.api import field_behavior_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from auxia.decision.model import field_rules_pb2, oneof_behavior_pb2

GAP_EXPONENT: Final = "an integer string with an exponent: whether it holds an integer in range"
GAP_DOUBLE_RANGE: Final = "a number string of a double: whether it is finite"
GAP_WIDE_NUMBER: Final = (
    "a 64-bit integer as a JSON number of 2^53 or more: a validator reading doubles rounds it, "
    "or refuses it as format int64 (ajv-formats, Prism)"
)
"""The one gap without a direction: the server reads such numbers exactly
(tests/unit/test_codec.py), and a validator's verdict on them is its own."""
GAP_TIMESTAMP_RANGE: Final = "a timestamp whose offset takes it past 0001-01-01 or 9999-12-31"

_T = FieldDescriptor
_RANGES: Final = {
    _T.TYPE_INT32: (-(2**31), 2**31 - 1),
    _T.TYPE_SINT32: (-(2**31), 2**31 - 1),
    _T.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    _T.TYPE_UINT32: (0, 2**32 - 1),
    _T.TYPE_FIXED32: (0, 2**32 - 1),
    _T.TYPE_INT64: (-(2**63), 2**63 - 1),
    _T.TYPE_SINT64: (-(2**63), 2**63 - 1),
    _T.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    _T.TYPE_UINT64: (0, 2**64 - 1),
    _T.TYPE_FIXED64: (0, 2**64 - 1),
}
_EXACT: Final = 2**53
_TIMESTAMP: Final = "google.protobuf.Timestamp"
# A valid value of each scalar type but strings.
_PLAIN_VALUES: Final[dict[int, Any]] = {
    **dict.fromkeys(_RANGES, 7),
    _T.TYPE_DOUBLE: 1.5,
    _T.TYPE_FLOAT: 1.5,
    _T.TYPE_BOOL: True,
}


@dataclasses.dataclass(frozen=True)
class Variant:
    """A request body, what it changes, and the check of the server it puts JSON Schema past."""

    label: str
    body: Any
    gap: str = ""
    """Empty, or the server's check JSON Schema cannot express that this body needs."""


def is_required(field: FieldDescriptor) -> bool:
    """Return whether a field is REQUIRED."""
    behaviors = field.GetOptions().Extensions[field_behavior_pb2.field_behavior]
    return field_behavior_pb2.REQUIRED in behaviors


def _is_map(field: FieldDescriptor) -> bool:
    return field.message_type is not None and field.message_type.GetOptions().map_entry


def _names(field: FieldDescriptor) -> list[str]:
    return list(dict.fromkeys([field.json_name, field.name]))


def _key_of(members: dict[str, Any], field: FieldDescriptor) -> str | None:
    """Return the name a JSON object gives a field under, or None if it lacks the field."""
    return next((name for name in _names(field) if name in members), None)


def _oneof_members(field: FieldDescriptor) -> list[FieldDescriptor]:
    """Return the other members of a field's oneof (none for a proto3 ``optional``'s own)."""
    oneof = field.containing_oneof
    if oneof is None or oneof.name == f"_{field.name}":
        return []
    return [member for member in oneof.fields if member is not field]


def rename(
    value: Any, descriptor: Descriptor, choose: Callable[[int, FieldDescriptor], str]
) -> Any:
    """Return a body with each field renamed to ``choose(position, field)``, at every depth."""
    if not isinstance(value, dict):
        return value
    return _each_field(
        value, descriptor, choose, lambda item, field: _rename_value(item, field, choose)
    )


def _each_field(
    members: dict[str, Any],
    descriptor: Descriptor,
    choose: Callable[[int, FieldDescriptor], str],
    convert: Callable[[Any, FieldDescriptor], Any],
) -> dict[str, Any]:
    """Return an object's members, each field's under ``choose(position, field)``, converted."""
    changed: dict[str, Any] = {}
    for position, (key, item) in enumerate(members.items()):
        field = descriptor.fields_by_name.get(key) or descriptor.fields_by_camelcase_name.get(key)
        if field is None:
            changed[key] = item
            continue
        changed[choose(position, field)] = convert(item, field)
    return changed


def _rename_value(
    item: Any,
    field: FieldDescriptor,
    choose: Callable[[int, FieldDescriptor], str],
) -> Any:
    nested = field.message_type
    if nested is None or nested.full_name.startswith("google.protobuf."):
        return item
    if _is_map(field):
        value_type = nested.fields_by_name["value"].message_type
        if value_type is None or not isinstance(item, dict):
            return item
        return {key: rename(value, value_type, choose) for key, value in item.items()}
    if field.is_repeated and isinstance(item, list):
        return [rename(element, nested, choose) for element in item]
    return rename(item, nested, choose)


class ValueBank:
    """Valid values of fields, by full name, read from valid bodies: for fields a body lacks."""

    def __init__(self) -> None:
        self._values: dict[str, Any] = {}

    def learn(self, value: Any, descriptor: Descriptor) -> None:
        """Keep the value of every field of a valid body, at every depth."""
        if not isinstance(value, dict):
            return
        for key, item in value.items():
            field = descriptor.fields_by_name.get(key) or descriptor.fields_by_camelcase_name.get(
                key
            )
            if field is None or item is None:
                continue
            self._values.setdefault(field.full_name, item)
            nested = field.message_type
            if nested is None or nested.full_name.startswith("google.protobuf."):
                continue
            if _is_map(field):
                value_type = nested.fields_by_name["value"].message_type
                if value_type is not None:
                    for entry in item.values():
                        self.learn(entry, value_type)
            elif field.is_repeated:
                for element in item:
                    self.learn(element, nested)
            else:
                self.learn(item, nested)

    def value(self, field: FieldDescriptor) -> Any:
        """Return a valid value of a field, as a body would give it under its JSON name."""
        if field.full_name in self._values:
            return copy.deepcopy(self._values[field.full_name])
        if _is_map(field):
            assert field.message_type is not None
            return {"key": self._single(field.message_type.fields_by_name["value"])}
        if field.is_repeated:
            return [self._single(field)]
        return self._single(field)

    def _single(self, field: FieldDescriptor) -> Any:
        rules = field.GetOptions().Extensions[field_rules_pb2.field_rules]
        assert not rules.pattern, f"no valid value of {field.full_name} in the bodies learnt"
        if field.message_type is not None:
            if field.message_type.full_name == _TIMESTAMP:
                return "2024-05-30T11:32:44.279Z"
            return self.message(field.message_type)
        if field.enum_type is not None:
            return next(value.name for value in field.enum_type.values if value.number != 0)
        return _PLAIN_VALUES.get(field.type, "x")

    def message(self, descriptor: Descriptor) -> dict[str, Any]:
        """Return a valid message: its REQUIRED fields, a member of each required oneof."""
        members = {
            field.json_name: self.value(field) for field in descriptor.fields if is_required(field)
        }
        for oneof in descriptor.oneofs:
            if oneof.GetOptions().Extensions[oneof_behavior_pb2.oneof_required]:
                first = oneof.fields[0]
                members[first.json_name] = self.value(first)
        rules = descriptor.GetOptions().Extensions[field_rules_pb2.message_rules]
        for group in rules.at_least_one_of:
            first = descriptor.fields_by_name[group.fields[0]]
            members.setdefault(first.json_name, self.value(first))
        return members


def variants(body: dict[str, Any], descriptor: Descriptor, bank: ValueBank) -> Iterator[Variant]:
    """Yield a valid body as written, then changed one way at a time (see the module)."""
    yield Variant("as written", body)
    yield Variant("every field by its proto name", rename(body, descriptor, lambda _, f: f.name))
    yield Variant(
        "every field by its JSON name", rename(body, descriptor, lambda _, f: f.json_name)
    )
    yield Variant(
        "names mixed",
        rename(body, descriptor, lambda i, f: f.name if i % 2 else f.json_name),
    )
    yield from _Walk(body, bank).message(body, descriptor, ())


Path = tuple[str | int, ...]


def _text(path: Path) -> str:
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else f".{step}" if text else step
    return text or "(body)"


class _Walk:
    """Changes one place of a body at a time: each yields the whole body, changed."""

    def __init__(self, body: dict[str, Any], bank: ValueBank) -> None:
        self._body = body
        self._bank = bank

    def _with(self, path: Path, members: dict[str, Any]) -> Any:
        """Return the body with the object at ``path`` replaced by ``members``."""
        if not path:
            return members
        changed = copy.deepcopy(self._body)
        target: Any = changed
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = members
        return changed

    def message(
        self, members: dict[str, Any], descriptor: Descriptor, path: Path
    ) -> Iterator[Variant]:
        """Yield the variants of one object of a message type, and of what it holds."""
        where = _text(path)
        yield Variant(f"{where}: an unknown field", self._with(path, {**members, "bogus": 1}))
        first = descriptor.fields[0] if descriptor.fields else None
        shouting = first.json_name[0].upper() + first.json_name[1:] if first else ""
        if first is not None and shouting not in _names(first):
            yield Variant(
                f"{where}: {shouting}, no name of a field",
                self._with(
                    path, {**members, shouting: copy.deepcopy(members.get(first.json_name))}
                ),
            )
        for field in descriptor.fields:
            key = _key_of(members, field)
            if key is None:
                yield from self._absent(members, field, path)
            else:
                yield from self._present(members, field, key, path)

    def _absent(
        self, members: dict[str, Any], field: FieldDescriptor, path: Path
    ) -> Iterator[Variant]:
        where = _text((*path, field.json_name))
        for name in _names(field):
            yield Variant(f"{where}: null, as {name}", self._with(path, {**members, name: None}))
        # Where another member of its oneof is set, this one takes its place.
        others = {name for member in _oneof_members(field) for name in _names(member)}
        base = {name: item for name, item in members.items() if name not in others}
        value = self._bank.value(field)
        for label, form, gap in _forms(field, value):
            yield Variant(
                f"{where} = {label}", self._with(path, {**base, field.json_name: form}), gap
            )
        added = {**base, field.json_name: value}
        yield from self._inside(added, field, field.json_name, (*path,))

    def _present(
        self, members: dict[str, Any], field: FieldDescriptor, key: str, path: Path
    ) -> Iterator[Variant]:
        where = _text((*path, field.json_name))
        value = members[key]
        for other in _names(field):
            if other == key:
                continue
            renamed = {other if name == key else name: item for name, item in members.items()}
            yield Variant(f"{where}: as {other}", self._with(path, renamed))
            yield Variant(f"{where}: under both names", self._with(path, {**members, other: value}))
        yield Variant(f"{where}: null", self._with(path, {**members, key: None}))
        for label, form, gap in _forms(field, value):
            yield Variant(f"{where} = {label}", self._with(path, {**members, key: form}), gap)
        yield from self._inside(members, field, key, path)

    def _inside(
        self, members: dict[str, Any], field: FieldDescriptor, key: str, path: Path
    ) -> Iterator[Variant]:
        """Yield the variants of the message (or first element, or map value) a field holds."""
        nested = field.message_type
        if nested is None or nested.full_name.startswith("google.protobuf."):
            return
        walk = _Walk(self._with(path, members), self._bank)
        value = members[key]
        if _is_map(field):
            value_type = nested.fields_by_name["value"].message_type
            if value_type is not None and isinstance(value, dict) and value:
                entry = next(iter(value))
                yield from walk.message(value[entry], value_type, (*path, key, entry))
        elif field.is_repeated:
            if isinstance(value, list) and value and isinstance(value[0], dict):
                yield from walk.message(value[0], nested, (*path, key, 0))
        elif isinstance(value, dict):
            yield from walk.message(value, nested, (*path, key))


Form = tuple[str, Any, str]
"""What a form is (its label), the JSON value, and the gap it falls in (or "")."""


def _forms(field: FieldDescriptor, value: Any) -> Iterator[Form]:
    """Yield the forms of a field's value: right and wrong, of every JSON type."""
    if _is_map(field):
        assert field.message_type is not None
        value_field = field.message_type.fields_by_name["value"]
        yield "an array", [], ""
        yield "a string", "x", ""
        yield "an empty map", {}, ""
        if isinstance(value, dict) and value:
            entry = next(iter(value))
            yield "a map with a null value", {**value, entry: None}, ""
            for label, form, gap in _single_forms(value_field, value[entry]):
                yield f"a map value {label}", {**value, entry: form}, gap
        return
    if field.is_repeated:
        yield "an object", {}, ""
        yield "a string", "x", ""
        yield "an empty array", [], ""
        if isinstance(value, list) and value:
            yield "an array with a null", [*value, None], ""
            for label, form, gap in _single_forms(field, value[0]):
                yield f"[0] {label}", [form, *value[1:]], gap
        return
    yield from _single_forms(field, value)


def _single_forms(field: FieldDescriptor, value: Any) -> Iterator[Form]:
    """Yield the forms of one value of a field."""
    if field.message_type is not None:
        if field.message_type.full_name == _TIMESTAMP:
            yield from _timestamp_forms()
            return
        yield from _wrong(["a string", "x"], ["an array", []], ["a number", 1], ["true", True])
        yield "{}", {}, ""
        return
    if field.enum_type is not None:
        yield from _enum_forms(field)
    elif field.type in _RANGES:
        yield from _integer_forms(field)
    elif field.type in (_T.TYPE_DOUBLE, _T.TYPE_FLOAT):
        yield from _double_forms()
    elif field.type == _T.TYPE_BOOL:
        yield from [("true", True, ""), ("false", False, "")]
        yield from _wrong(['"true"', "true"], ["1", 1], ["0", 0], ["null in an array", [None]])
    else:
        yield from _string_forms(field, value)


def _wrong(*forms: list[Any]) -> Iterator[Form]:
    for label, form in forms:
        yield label, form, ""


def _string_forms(field: FieldDescriptor, value: Any) -> Iterator[Form]:
    yield '"x"', "x", ""
    yield '""', "", ""
    if isinstance(value, str):
        yield "itself with a final newline", value + "\n", ""
        yield "itself in lower case", value.lower(), ""
    yield from _wrong(["a number", 1], ["true", True], ["an object", {}], ["an array", [value]])


def _enum_forms(field: FieldDescriptor) -> Iterator[Form]:
    enum = field.enum_type
    assert enum is not None
    for item in enum.values:
        yield item.name, item.name, ""
        yield str(item.number), item.number, ""
        yield f'"{item.number}"', str(item.number), ""
        yield f'"0{item.number}"', f"0{item.number}", ""
        yield f"{item.number}.0", float(item.number), ""
        yield f"{item.name} in lower case", item.name.lower(), ""
    undefined = max(item.number for item in enum.values) + 1
    yield f"{undefined}, no value of the enum", undefined, ""
    yield f'"{undefined}"', str(undefined), ""
    yield from _wrong(
        ['"NOT_A_VALUE"', "NOT_A_VALUE"],
        ['"+1"', "+1"],
        ['" 1"', " 1"],
        ['"1.0"', "1.0"],
        ["1.5", 1.5],
        ["2^31", 2**31],
        ["true", True],
        ["an array", [1]],
    )


def _integer_forms(field: FieldDescriptor) -> Iterator[Form]:
    low, high = _RANGES[field.type]
    rules = field.GetOptions().Extensions[field_rules_pb2.field_rules]
    least = max(low, rules.minimum) if rules.HasField("minimum") else low
    wide = high > 2**32
    # The same integer in every form proto3 JSON reads.
    for label, form in [
        ("7", 7),
        ('"7"', "7"),
        ('"007"', "007"),
        ("7.0", 7.0),
        ('"7.0"', "7.0"),
        ('"7.000"', "7.000"),
        ('"7e0"', "7e0"),
        ('"0.7e1"', "0.7e1"),
        ('"70E-1"', "70E-1"),
        ('"7e+0"', "7e+0"),
        ('"1.732e3"', "1.732e3"),
    ]:
        yield label, form, ""
    # Zero, the default, in every form.
    for label, form in [
        ("0", 0),
        ('"0"', "0"),
        ('"-0"', "-0"),
        ('"0.0"', "0.0"),
        ('"0e5"', "0e5"),
        ('"-0.0E-3"', "-0.0E-3"),
        ("-0.0", -0.0),
    ]:
        yield label, form, ""
    # The ends of the range, and past them.
    yield f'"{high}"', str(high), ""
    yield f'"{high + 1}"', str(high + 1), ""
    yield f'"{least}"', str(least), ""
    yield f'"{least - 1}"', str(least - 1), ""
    yield f'"-{least}"' if least else '"-1"', str(-least if least else -1), ""
    if wide:
        # Past 2^53 a JSON number is a double to a JavaScript validator.
        yield str(high), high, GAP_WIDE_NUMBER
        yield str(high + 1), high + 1, GAP_WIDE_NUMBER
        yield str(_EXACT), _EXACT, GAP_WIDE_NUMBER
        yield str(_EXACT - 1), _EXACT - 1, ""
        yield f'"{_EXACT}.0"', f"{_EXACT}.0", ""
        yield f'"{_EXACT + 1}.0"', f"{_EXACT + 1}.0", ""
        yield f'"-{_EXACT}.0"', f"-{_EXACT}.0", ""
        yield f'"{_EXACT + 1}e0"', f"{_EXACT + 1}e0", GAP_EXPONENT
        yield '"9.2e18"', "9.2e18", GAP_EXPONENT
    else:
        yield str(high), high, ""
        yield str(high + 1), high + 1, ""
        yield f'"{high}.0"', f"{high}.0", ""
        yield f'"{high + 1}.0"', f"{high + 1}.0", ""
        yield f'"{high + 1}e0"', f"{high + 1}e0", GAP_EXPONENT
    yield str(least - 1), least - 1, GAP_WIDE_NUMBER if wide and least < 0 else ""
    # With an exponent: whether the text holds an integer in range is the server's to check.
    yield '"7.5e0"', "7.5e0", GAP_EXPONENT
    yield '"1e-1"', "1e-1", GAP_EXPONENT
    yield '"1e30"', "1e30", GAP_EXPONENT
    yield '"-7e0"', "-7e0", GAP_EXPONENT if least > -7 and least < 0 else ""
    # What Python's int() and float() read but proto3 JSON does not, and other no-integers.
    yield from _wrong(
        ['"1.5"', "1.5"],
        ["1.5", 1.5],
        ['"+7"', "+7"],
        ['" 7"', " 7"],
        ['"7 "', "7 "],
        ['"\\t7"', "\t7"],
        ['"7_0"', "7_0"],
        ['"\\u0667"', "\u0667"],
        ['"0x7"', "0x7"],
        ['"7."', "7."],
        ['".7e1"', ".7e1"],
        ['""', ""],
        ['"1e"', "1e"],
        ['"NaN"', "NaN"],
        ['"Infinity"', "Infinity"],
        ["true", True],
        ["an array", [7]],
        ["an object", {"value": 7}],
    )


def _double_forms() -> Iterator[Form]:
    for label, form in [
        ("1.5", 1.5),
        ('"1.5"', "1.5"),
        ('"-2.5e-3"', "-2.5e-3"),
        ('"007.5"', "007.5"),
        ("0", 0),
        ('"-0"', "-0"),
        ("7", 7),
        ('"NaN"', "NaN"),
        ('"Infinity"', "Infinity"),
        ('"-Infinity"', "-Infinity"),
        ("the largest double", sys.float_info.max),
        ('"1.7976931348623157e308"', "1.7976931348623157e308"),
        ("10^400, an integer literal", 10**400),
    ]:
        yield label, form, ""
    yield '"1e400"', "1e400", GAP_DOUBLE_RANGE
    yield '"-1e400"', "-1e400", GAP_DOUBLE_RANGE
    yield from _wrong(
        ['"nan"', "nan"],
        ['"inf"', "inf"],
        ['"-infinity"', "-infinity"],
        ['"+1.5"', "+1.5"],
        ['".5"', ".5"],
        ['"5."', "5."],
        ['" 1.5"', " 1.5"],
        ['"1_5"', "1_5"],
        ['""', ""],
        ["true", True],
        ["an array", [1.5]],
    )


def _timestamp_forms() -> Iterator[Form]:
    for text in [
        "2024-05-30T11:32:44Z",
        "2024-05-30T11:32:44.279Z",
        "2024-05-30T11:32:44.123456789Z",
        "2024-05-30T17:02:44.279+05:30",
        "2024-05-30T03:32:44-08:00",
        "2024-02-29T00:00:00Z",
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59.999999999Z",
        # Not RFC 3339, or not a time.
        "2023-02-29T00:00:00Z",
        "2024-05-30t11:32:44z",
        "2024-05-30 11:32:44Z",
        "2024-5-30T11:32:44Z",
        "2024-05-30T11:32:44.Z",
        "2024-05-30T11:32:44.1234567891Z",
        "2024-05-30T24:00:00Z",
        "2024-05-30T23:59:60Z",
        "2024-05-30T11:32:44+0100",
        "2024-05-30T11:32:44+1:00",
        "2024-05-30T11:32:44",
        "0000-01-01T00:00:00Z",
        "",
    ]:
        yield f'"{text}"', text, ""
    yield '"0001-01-01T00:00:00+00:01"', "0001-01-01T00:00:00+00:01", GAP_TIMESTAMP_RANGE
    yield '"9999-12-31T23:59:59-00:01"', "9999-12-31T23:59:59-00:01", GAP_TIMESTAMP_RANGE
    yield from _wrong(["seconds", 1717068764], ["an object", {"seconds": 1}])


def respelled(value: Any, descriptor: Descriptor, pick: Callable[[list[Any]], Any]) -> Any:
    """Return a body that the server reads as the same message, each choice made by ``pick``.

    Each field under either name; each integer in one of the forms that hold
    it exactly (a number, a string with leading zeros, a fraction or an
    exponent while within 2^53); each enum by name, by number or by number in
    a string; null for a field left out that is not REQUIRED.
    """
    if not isinstance(value, dict):
        return value
    respelled_members = _each_field(
        value,
        descriptor,
        lambda _, field: pick(_names(field)),
        lambda item, field: _respelled_value(item, field, pick),
    )
    for field in descriptor.fields:
        if _key_of(value, field) is None and not is_required(field) and pick([False, True]):
            respelled_members[pick(_names(field))] = None
    return respelled_members


def _respelled_value(item: Any, field: FieldDescriptor, pick: Callable[[list[Any]], Any]) -> Any:
    if _is_map(field):
        assert field.message_type is not None
        value_field = field.message_type.fields_by_name["value"]
        return {key: _respelled_value(entry, value_field, pick) for key, entry in item.items()}
    if field.is_repeated and isinstance(item, list):
        return [_respelled_single(element, field, pick) for element in item]
    return _respelled_single(item, field, pick)


def _respelled_single(item: Any, field: FieldDescriptor, pick: Callable[[list[Any]], Any]) -> Any:
    nested = field.message_type
    if nested is not None:
        return (
            item
            if nested.full_name.startswith("google.protobuf.")
            else respelled(item, nested, pick)
        )
    if field.enum_type is not None and isinstance(item, str):
        number = field.enum_type.values_by_name[item].number
        return pick([item, number, str(number)])
    if field.type in _RANGES:
        number = int(item)
        digits = str(abs(number))
        forms: list[Any] = [number, str(number), f"{'-' if number < 0 else ''}00{digits}"]
        if abs(number) <= _EXACT:
            forms += [float(number), f"{number}.0", f"{number}e0", f"{number}0E-1"]
        return pick(forms)
    return item
