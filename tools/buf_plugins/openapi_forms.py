"""The JSON Schemas of proto3 JSON's forms: scalars, numbers in strings, well-known types.

What the OpenAPI plugin (``protoc_gen_openapi``) writes for one value of a
field, in responses (what the server writes) and in requests (every form
the server reads); the plugin puts them together per message.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import cast

from google.protobuf import descriptor_pb2

JsonObject = dict[str, object]


class PluginError(Exception):
    """A schema feature this plugin cannot express; reported to buf as the plugin's error."""


FieldType = descriptor_pb2.FieldDescriptorProto.Type
FieldLabel = descriptor_pb2.FieldDescriptorProto.Label


def _at_most(limit: str) -> str:
    """Return a regular expression of the decimals from 0 to ``limit``, without leading zeros."""
    size = len(limit)
    choices = ["0"]
    if size > 1:
        choices.append(f"[1-9][0-9]{{0,{size - 2}}}" if size > 2 else "[1-9]")
    for position, digit in enumerate(map(int, limit)):
        lowest = 1 if position == 0 else 0
        rest = size - position - 1
        if digit > lowest:
            tail = f"[0-9]{{{rest}}}" if rest > 1 else "[0-9]" if rest else ""
            choices.append(f"{limit[:position]}[{lowest}-{digit - 1}]{tail}")
    choices.append(limit)
    return "(" + "|".join(dict.fromkeys(choices)) + ")"


# The decimal strings of each range, exactly (parsers accept leading zeros and -0).
INT64_PATTERN = f"^(0*{_at_most(str(2**63 - 1))}|-0*{_at_most(str(2**63))})$"
UINT64_PATTERN = f"^(0*{_at_most(str(2**64 - 1))}|-0+)$"
NON_NEGATIVE_INT64_PATTERN = f"^(0*{_at_most(str(2**63 - 1))}|-0+)$"
_FLOAT_STRINGS = ["NaN", "Infinity", "-Infinity"]
# What a request may hold, as the server reads proto3 JSON: a number in a
# string is a JSON number's text (leading zeros allowed); an integer written
# with a fraction or an exponent is one exactly, and at most 2^53 in magnitude.
EXACT_LIMIT = 2**53
_EXPONENT = "[eE][+-]?[0-9]+"
NUMBER_TEXT = f"-?[0-9]+(\\.[0-9]+)?({_EXPONENT})?"
DOUBLE_PATTERN = f"^(NaN|-?Infinity|{NUMBER_TEXT})$"
# The texts of a number other than zero, the default: a digit other than 0 before the exponent.
NONZERO_PATTERN = (
    f"^-?[0-9]*[1-9][0-9]*(\\.[0-9]+)?({_EXPONENT})?$"
    f"|^-?[0-9]+\\.[0-9]*[1-9][0-9]*({_EXPONENT})?$|^(NaN|-?Infinity)$"
)
# RFC 3339, as the server reads a timestamp (the calendar is format date-time's).
TIMESTAMP_PATTERN = (
    "^(000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})-[0-9]{2}-[0-9]{2}"
    "T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,9})?"
    "(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
)
INTEGER_RANGES: dict[int, tuple[str, int, int]] = {
    FieldType.TYPE_INT64: ("int64", -(2**63), 2**63 - 1),
    FieldType.TYPE_SINT64: ("int64", -(2**63), 2**63 - 1),
    FieldType.TYPE_SFIXED64: ("int64", -(2**63), 2**63 - 1),
    FieldType.TYPE_UINT64: ("uint64", 0, 2**64 - 1),
    FieldType.TYPE_FIXED64: ("uint64", 0, 2**64 - 1),
    FieldType.TYPE_INT32: ("int32", -(2**31), 2**31 - 1),
    FieldType.TYPE_SINT32: ("int32", -(2**31), 2**31 - 1),
    FieldType.TYPE_SFIXED32: ("int32", -(2**31), 2**31 - 1),
    FieldType.TYPE_UINT32: ("uint32", 0, 2**32 - 1),
    FieldType.TYPE_FIXED32: ("uint32", 0, 2**32 - 1),
}
_FLOAT32_MAX = 3.4028234663852886e38
# What the descriptions of a request's numbers say that JSON Schema cannot check.
INTEGER_NOTE = (
    'A JSON number or a string of one (`"10"`, `"1e1"`). The server also checks '
    "what this schema cannot: a string with an exponent must hold an integer within "
    "the range, at most 2^53 in magnitude."
)
INT64_NOTE = (
    " From 2^53 on, write a string: a validator that reads JSON numbers as doubles "
    "rounds them, and one that checks `format: int64` as ajv-formats does (Prism "
    "among them) refuses them; a proxy that parses the body may forward them rounded."
)
TIMESTAMP_NOTE = (
    "RFC 3339 text, with any offset. The server also checks what this schema cannot: "
    "the offset must not take the time past 0001-01-01T00:00:00Z or "
    "9999-12-31T23:59:59.999999999Z."
)
DOUBLE_NOTE = (
    "A JSON number, or a string of one or `NaN`, `Infinity`, `-Infinity`. The server "
    "also checks what this schema cannot: a string's number must be finite."
)


def _int64_schema(*, unsigned: bool) -> JsonObject:
    """Return the schema of a 64-bit integer: a decimal string, or a number."""
    if unsigned:
        return {
            "type": ["string", "integer"],
            "format": "uint64",
            "pattern": UINT64_PATTERN,
            "minimum": 0,
            "maximum": 2**64 - 1,
        }
    return {
        "type": ["string", "integer"],
        "format": "int64",
        "pattern": INT64_PATTERN,
        "minimum": -(2**63),
        "maximum": 2**63 - 1,
    }


def _float_schema(number_format: str) -> JsonObject:
    """Return the schema of a floating-point value: a number or a special string."""
    return {
        "oneOf": [
            {"type": "number", "format": number_format},
            {"type": "string", "enum": list(_FLOAT_STRINGS)},
        ],
    }


def scalar_schema(field_type: int) -> JsonObject:
    """Return a new proto3 JSON schema of a scalar field type."""
    int32: JsonObject = {
        "type": "integer",
        "format": "int32",
        "minimum": -(2**31),
        "maximum": 2**31 - 1,
    }
    uint32: JsonObject = {"type": "integer", "format": "uint32", "minimum": 0, "maximum": 2**32 - 1}
    schemas: dict[int, JsonObject] = {
        FieldType.TYPE_INT64: _int64_schema(unsigned=False),
        FieldType.TYPE_SINT64: _int64_schema(unsigned=False),
        FieldType.TYPE_SFIXED64: _int64_schema(unsigned=False),
        FieldType.TYPE_UINT64: _int64_schema(unsigned=True),
        FieldType.TYPE_FIXED64: _int64_schema(unsigned=True),
        FieldType.TYPE_INT32: int32,
        FieldType.TYPE_SINT32: dict(int32),
        FieldType.TYPE_SFIXED32: dict(int32),
        FieldType.TYPE_UINT32: uint32,
        FieldType.TYPE_FIXED32: dict(uint32),
        FieldType.TYPE_DOUBLE: _float_schema("double"),
        FieldType.TYPE_FLOAT: _float_schema("float"),
        FieldType.TYPE_BOOL: {"type": "boolean"},
        FieldType.TYPE_STRING: {"type": "string"},
        FieldType.TYPE_BYTES: {"type": "string", "format": "byte", "contentEncoding": "base64"},
    }
    if field_type not in schemas:
        raise PluginError(f"unsupported scalar field type {field_type}")
    return schemas[field_type]


# The wrapper types, whose proto3 JSON form is the value they wrap.
WRAPPERS = {
    "google.protobuf.DoubleValue": FieldType.TYPE_DOUBLE,
    "google.protobuf.FloatValue": FieldType.TYPE_FLOAT,
    "google.protobuf.Int64Value": FieldType.TYPE_INT64,
    "google.protobuf.UInt64Value": FieldType.TYPE_UINT64,
    "google.protobuf.Int32Value": FieldType.TYPE_INT32,
    "google.protobuf.UInt32Value": FieldType.TYPE_UINT32,
    "google.protobuf.BoolValue": FieldType.TYPE_BOOL,
    "google.protobuf.StringValue": FieldType.TYPE_STRING,
    "google.protobuf.BytesValue": FieldType.TYPE_BYTES,
}


def well_known_schema(full_name: str) -> JsonObject | None:
    """Return the inline proto3 JSON schema of a well-known type, or None for others."""
    if full_name in WRAPPERS:
        return scalar_schema(WRAPPERS[full_name])
    special: dict[str, JsonObject] = {
        "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
        "google.protobuf.Duration": {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]{1,9})?s$"},
        "google.protobuf.FieldMask": {"type": "string"},
        "google.protobuf.Struct": {"type": "object"},
        "google.protobuf.Value": {},
        "google.protobuf.ListValue": {"type": "array"},
        "google.protobuf.Empty": {"type": "object"},
        "google.protobuf.Any": {
            "type": "object",
            "properties": {"@type": {"type": "string"}},
            "required": ["@type"],
        },
    }
    return special.get(full_name)


def integer_pattern(low: int, high: int) -> str:
    """Return the pattern of the strings the server reads as integers from ``low`` to ``high``.

    ``low`` is at most 0, ``high`` at least 0. Exact for decimal digits
    (leading zeros and -0 included) and for a zero fraction (up to 2^53); with
    an exponent, only the sign: whether such a text holds an integer in range
    is no regular language, and the server checks it (the fields say so).
    """

    def decimals(least: int, most: int) -> str:
        negative = f"-0*{_at_most(str(-least))}" if least < 0 else "-0+"
        return f"0*{_at_most(str(most))}|{negative}"

    plain = decimals(low, high)
    exact = decimals(max(low, -EXACT_LIMIT), min(high, EXACT_LIMIT))
    mantissa = "-?[0-9]+(\\.[0-9]+)?" if low < 0 else "([0-9]+(\\.[0-9]+)?|-0+(\\.0+)?)"
    if plain == exact:
        return f"^({plain})(\\.0+)?$|^{mantissa}{_EXPONENT}$"
    return f"^({plain})$|^({exact})\\.0+$|^{mantissa}{_EXPONENT}$"


def request_scalar_schema(field_type: int) -> JsonObject:
    """Return the schema of a scalar in a request: every form the server reads."""
    if field_type in INTEGER_RANGES:
        number_format, low, high = INTEGER_RANGES[field_type]
        return {
            # The form emitters write first: a string for 64 bits, a number for 32.
            "type": ["string", "integer"]
            if number_format.endswith("64")
            else ["integer", "string"],
            "format": number_format,
            "pattern": integer_pattern(low, high),
            "minimum": low,
            "maximum": high,
        }
    if field_type in (FieldType.TYPE_DOUBLE, FieldType.TYPE_FLOAT):
        largest = _FLOAT32_MAX if field_type == FieldType.TYPE_FLOAT else sys.float_info.max
        return {
            "type": ["number", "string"],
            "format": "float" if field_type == FieldType.TYPE_FLOAT else "double",
            "pattern": DOUBLE_PATTERN,
            "minimum": -largest,
            "maximum": largest,
        }
    return scalar_schema(field_type)


def request_well_known_schema(full_name: str) -> JsonObject | None:
    """Return the inline schema of a well-known type in a request, or None for others."""
    if full_name == "google.protobuf.Timestamp":
        return {"type": "string", "format": "date-time", "pattern": TIMESTAMP_PATTERN}
    wrapped = WRAPPERS.get(full_name)
    if wrapped is not None:
        return request_scalar_schema(wrapped)
    return well_known_schema(full_name)


# The keywords a schema combines others with: null is added beside them, not into "type".
_COMBINING = frozenset({"$ref", "allOf", "anyOf", "oneOf", "not", "enum", "const"})
# The values of strings, bytes and bools other than their default.
SET_VALUES: dict[int, JsonObject] = {
    FieldType.TYPE_STRING: {"type": "string", "minLength": 1},
    FieldType.TYPE_BYTES: {"type": "string", "minLength": 1},
    FieldType.TYPE_BOOL: {"const": True},
}


def enum_texts(numbers: Sequence[int]) -> str:
    """Return the pattern of the strings of enum numbers (leading zeros and -0 included)."""
    texts = [
        "-?0+" if number == 0 else f"0*{number}" if number > 0 else f"-0*{-number}"
        for number in numbers
    ]
    return f"^({'|'.join(texts)})$"


def nullable(schema: JsonObject) -> JsonObject:
    """Return the schema taking null too, which proto3 JSON reads as the field's default."""
    kind = schema.get("type")
    if kind is None or _COMBINING & schema.keys():
        return {"anyOf": [schema, {"type": "null"}]}
    kinds = list(kind) if isinstance(kind, list) else [kind]
    return {**schema, "type": [*kinds, "null"]}


def given_under(names: Sequence[str], value: JsonObject | None) -> list[JsonObject]:
    """Return the ways a field is given, one per name: present, with such a value.

    Never both names (a constraint of its own), so exactly one of a oneof's
    members is exactly one of these ways of all its members.
    """
    if value is None:
        return [{"required": [name]} for name in names]
    return [{"required": [name], "properties": {name: value}} for name in names]


def both_schemas(first: JsonObject, second: JsonObject) -> JsonObject:
    """Return the constraint that two ways of giving fields (``given_under``) hold together."""
    required = [*cast(list[str], first["required"]), *cast(list[str], second["required"])]
    both: JsonObject = {"required": required}
    properties = {
        **cast(JsonObject, first.get("properties", {})),
        **cast(JsonObject, second.get("properties", {})),
    }
    if properties:
        both["properties"] = properties
    return both
