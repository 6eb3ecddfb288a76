"""The JSON-path checker: every value of a document that a message type cannot take."""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Callable
from typing import Final

from google.protobuf import duration_pb2, timestamp_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from auxia_decision._errors import FieldViolation, violation
from auxia_decision._json import json_path
from auxia_decision._json import kind_of as _kind
from auxia_decision._validation import missing_from_json

_INT_RANGES: dict[int, tuple[int, int]] = {
    FieldDescriptor.CPPTYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.CPPTYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.CPPTYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.CPPTYPE_UINT64: (0, 2**64 - 1),
}
_FLOAT32_MAX = 3.4028234663852886e38
_SPECIAL_FLOATS = ("NaN", "Infinity", "-Infinity")
# A number in a JSON string, as proto3 JSON reads one: a JSON number's text
# (leading zeros allowed), nothing around it: no "+", no spaces, no "_", no
# digits but ASCII ones (Python's int() and float() would take all of those).
NUMBER_TEXT: Final = re.compile(r"(-?)([0-9]+)(?:\.([0-9]+))?(?:[eE]([+-]?[0-9]+))?")
INTEGER_TEXT: Final = re.compile(r"-?[0-9]+")
RFC3339_TEXT: Final = re.compile(
    r"(000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})-[0-9]{2}-[0-9]{2}"
    r"T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])"
)
"""A timestamp's text, as proto3 JSON reads one (RFC 3339: upper-case T and Z, an offset
of hours and minutes); Timestamp.FromJsonString also takes a one-digit month, an empty
fraction, ``+1:5``, ...). The calendar and the range are FromJsonString's to check."""
EXACT_LIMIT: Final = 2**53
"""Written with a fraction or an exponent, an integer is read as a double, which
holds every integer up to this magnitude exactly: beyond it, such a text is refused."""
_UNPAIRED_SURROGATE = re.compile(
    "[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]"
)
_TIMESTAMP = timestamp_pb2.Timestamp.DESCRIPTOR.full_name
_DURATION = duration_pb2.Duration.DESCRIPTOR.full_name


def _fields_by_key(descriptor: Descriptor) -> dict[str, FieldDescriptor]:
    fields: dict[str, FieldDescriptor] = {}
    for field in descriptor.fields:
        fields[field.name] = field
        fields[field.json_name] = field
    return fields


class JsonChecker:
    """Walks a JSON document against a message descriptor and reports every bad value.

    It accepts only what ``json_format`` accepts, and words each refusal with
    the value's JSON path.

    Args:
        strict: whether unknown fields and unknown enum value names are errors
            (requests) or ignored (responses).
        report: called with each violation found.

    """

    def __init__(self, strict: bool, report: Callable[[FieldViolation], None]) -> None:
        self.strict = strict
        self._report = report
        self.missing: list[FieldViolation] = []
        """When strict: the REQUIRED fields and oneofs the objects walked lack
        (as validation words them), to report beside the errors found."""

    def error(self, path: str, description: str) -> None:
        self._report(violation(path, description))

    def message(self, value: object, descriptor: Descriptor, path: str) -> None:
        if not isinstance(value, dict):
            what = f"a JSON object ({descriptor.name})"
            self.error(path, f"expected {what}, got {_kind(value)}")
            return
        for key in getattr(value, "duplicates", ()):
            self.error(json_path(path, key), f'the key "{key}" appears more than once')
        fields = _fields_by_key(descriptor)
        set_by_number: dict[int, str] = {}
        set_in_oneof: dict[str, str] = {}
        for key, item in value.items():
            field = fields.get(key)
            if field is None:
                if self.strict:
                    self.error(json_path(path, key), f'unknown field "{key}" in {descriptor.name}')
                continue
            field_path = json_path(path, field.json_name)
            if field.number in set_by_number:
                other = set_by_number[field.number]
                self.error(field_path, f'set twice, as "{other}" and as "{key}"')
                continue
            set_by_number[field.number] = key
            if item is None:
                continue  # null means unset in proto3 JSON
            oneof = field.containing_oneof
            if oneof is not None:
                if oneof.name in set_in_oneof:
                    self.error(
                        field_path,
                        f'"{set_in_oneof[oneof.name]}" and "{key}" are both set, but at most '
                        f'one field of oneof "{oneof.name}" may be',
                    )
                set_in_oneof[oneof.name] = key
            self.field(item, field, field_path)
        if self.strict:
            self.missing += missing_from_json(value, descriptor, path)

    def field(self, value: object, field: FieldDescriptor, path: str) -> None:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            self.map(value, field.message_type, path)
        elif field.is_repeated:
            if not isinstance(value, list):
                self.error(path, f"expected an array, got {_kind(value)}")
                return
            for index, item in enumerate(value):
                item_path = f"{path}[{index}]"
                if item is None:
                    self.error(item_path, "null is not allowed in an array")
                else:
                    self.single(item, field, item_path)
        else:
            self.single(value, field, path)

    def map(self, value: object, entry: Descriptor, path: str) -> None:
        if not isinstance(value, dict):
            self.error(path, f"expected a JSON object (a map), got {_kind(value)}")
            return
        for key in getattr(value, "duplicates", ()):
            self.error(f'{path}["{key}"]', f'the key "{key}" appears more than once')
        key_field = entry.fields_by_name["key"]
        value_field = entry.fields_by_name["value"]
        for key, item in value.items():
            item_path = f'{path}["{key}"]'
            self.map_key(key, key_field, item_path)
            if item is None:
                self.error(item_path, "null is not allowed as a map value")
            else:
                self.single(item, value_field, item_path)

    def map_key(self, key: str, field: FieldDescriptor, path: str) -> None:
        if field.cpp_type == FieldDescriptor.CPPTYPE_BOOL:
            if key not in ("true", "false"):
                self.error(path, f'map key "{key}" is not "true" or "false"')
        elif field.cpp_type in _INT_RANGES:
            self.integer(key, field, path)

    def single(self, value: object, field: FieldDescriptor, path: str) -> None:  # noqa: PLR0912
        cpp_type = field.cpp_type
        if field.message_type is not None:
            if field.message_type.full_name == _TIMESTAMP:
                self.timestamp(value, path)
            elif field.message_type.full_name == _DURATION:
                self.duration(value, path)
            else:
                self.message(value, field.message_type, path)
        elif cpp_type == FieldDescriptor.CPPTYPE_ENUM:
            self.enum(value, field, path)
        elif cpp_type in _INT_RANGES:
            self.integer(value, field, path)
        elif cpp_type in (FieldDescriptor.CPPTYPE_DOUBLE, FieldDescriptor.CPPTYPE_FLOAT):
            self.floating(value, field, path)
        elif cpp_type == FieldDescriptor.CPPTYPE_BOOL:
            if not isinstance(value, bool):
                self.error(path, f"expected true or false, got {_kind(value)}")
        elif field.type == FieldDescriptor.TYPE_BYTES:
            if not isinstance(value, str):
                self.error(path, f"expected a base64 string, got {_kind(value)}")
            else:
                try:
                    padded = value + "=" * (-len(value) % 4)
                    base64.urlsafe_b64decode(padded.replace("+", "-").replace("/", "_"))
                except (binascii.Error, ValueError):
                    self.error(path, "expected a base64 string")
        elif not isinstance(value, str):
            self.error(path, f"expected a string, got {_kind(value)}")
        elif _UNPAIRED_SURROGATE.search(value):
            self.error(path, "the string has an unpaired surrogate")

    def enum(self, value: object, field: FieldDescriptor, path: str) -> None:
        enum_type = field.enum_type
        assert enum_type is not None
        if isinstance(value, str):
            if _UNPAIRED_SURROGATE.search(value):
                # No name (nor number), and upb's lookup of such a key leaves an error behind.
                self.error(path, "the string has an unpaired surrogate")
                return
            if value in enum_type.values_by_name:
                return
            if INTEGER_TEXT.fullmatch(value):
                number = int(value)
            else:
                if self.strict:
                    names = ", ".join(v.name for v in enum_type.values)
                    self.error(
                        path,
                        f'unknown value "{value}" of {enum_type.name}: expected one of {names}',
                    )
                return
        elif isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, float) and value.is_integer():
            number = int(value)  # 1.0 is the JSON number 1
        else:
            self.error(path, f"expected an enum value name, got {_kind(value)}")
            return
        low, high = _INT_RANGES[FieldDescriptor.CPPTYPE_INT32]
        if not low <= number <= high:
            self.error(path, f"enum number {number} is out of the int32 range")

    def integer(self, value: object, field: FieldDescriptor, path: str) -> None:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            self.error(path, f"expected an integer (a number or a string), got {_kind(value)}")
            return
        number = _as_integer(value)
        if number is None:
            self.error(path, f"expected an integer, got {json.dumps(value)}")
            return
        low, high = _INT_RANGES[field.cpp_type]
        if not low <= number <= high:
            type_name = _TYPE_NAMES.get(field.type, "integer")
            shown = value if abs(number) == _BEYOND_EVERY_RANGE else number
            self.error(path, f"{shown} is out of the {type_name} range [{low}, {high}]")
        elif (
            isinstance(value, str)
            and abs(number) > EXACT_LIMIT
            and not INTEGER_TEXT.fullmatch(value)
        ):
            self.error(
                path,
                f'"{value}" has a fraction or an exponent and is beyond 2^53, where it '
                "cannot be read exactly: write the integer's decimal digits alone",
            )

    def floating(self, value: object, field: FieldDescriptor, path: str) -> None:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            self.error(path, f"expected a number, got {_kind(value)}")
            return
        if isinstance(value, str):
            if value in _SPECIAL_FLOATS:
                return
            if not NUMBER_TEXT.fullmatch(value):
                self.error(path, f'expected a number or "NaN", "Infinity", got "{value}"')
                return
            number = float(value)
        else:
            try:
                number = float(value)
            except OverflowError:  # an integer literal past the doubles
                number = math.inf
        if math.isinf(number) or math.isnan(number):
            self.error(path, 'out of range: use "Infinity", "-Infinity" or "NaN"')
        elif field.cpp_type == FieldDescriptor.CPPTYPE_FLOAT and abs(number) > _FLOAT32_MAX:
            self.error(path, f"{value} is out of the float range")

    def timestamp(self, value: object, path: str) -> None:
        if not isinstance(value, str):
            self.error(path, f"expected an RFC 3339 timestamp string, got {_kind(value)}")
            return
        if not RFC3339_TEXT.fullmatch(value):
            self.error(
                path,
                f'"{value}" is not an RFC 3339 timestamp such as "2024-05-30T11:32:44.279Z"',
            )
            return
        try:
            timestamp_pb2.Timestamp().FromJsonString(value)
        except (ValueError, ArithmeticError) as error:
            self.error(path, f'"{value}" is not an RFC 3339 timestamp: {error}')

    def duration(self, value: object, path: str) -> None:
        if not isinstance(value, str):
            self.error(path, f'expected a duration string such as "1.5s", got {_kind(value)}')
            return
        try:
            duration_pb2.Duration().FromJsonString(value)
        except (ValueError, ArithmeticError) as error:
            self.error(path, f'"{value}" is not a duration such as "1.5s": {error}')


_TYPE_NAMES = {
    FieldDescriptor.TYPE_INT32: "int32",
    FieldDescriptor.TYPE_SINT32: "sint32",
    FieldDescriptor.TYPE_SFIXED32: "sfixed32",
    FieldDescriptor.TYPE_UINT32: "uint32",
    FieldDescriptor.TYPE_FIXED32: "fixed32",
    FieldDescriptor.TYPE_INT64: "int64",
    FieldDescriptor.TYPE_SINT64: "sint64",
    FieldDescriptor.TYPE_SFIXED64: "sfixed64",
    FieldDescriptor.TYPE_UINT64: "uint64",
    FieldDescriptor.TYPE_FIXED64: "fixed64",
}


def _as_integer(value: int | float | str) -> int | None:
    """Return the integer a JSON number or string holds, exactly; None if it holds no integer."""
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    match = NUMBER_TEXT.fullmatch(value)
    return None if match is None else _integer_of_text(*match.groups())


_BEYOND_EVERY_RANGE: Final = 2**65


def _integer_of_text(
    sign: str, whole: str, fraction: str | None, exponent: str | None
) -> int | None:
    """Return the integer of a number's text, from its parts; None if it is not an integer.

    A value beyond 2^64 in magnitude is returned as one as far out of every
    range (``_BEYOND_EVERY_RANGE``), rather than computed.
    """
    digits = (whole + (fraction or "")).lstrip("0")
    shift = -len(fraction or "")
    if exponent is not None:
        power = exponent.lstrip("+-").lstrip("0") or "0"
        # More than a million digits either way: no integer of any range, or none at all.
        scale = 10**7 if len(power) > 6 else int(power)
        shift += -scale if exponent.startswith("-") else scale
    if not digits:
        return 0
    if shift < 0:
        if digits[shift:].strip("0"):
            return None  # a fraction that is not zero
        digits, shift = digits[:shift] or "0", 0
    magnitude = _BEYOND_EVERY_RANGE if len(digits) + shift > 21 else int(digits) * 10**shift
    return -magnitude if sign else magnitude
