"""The JSON-path checker: every value of a document that a message type cannot take.

The generic codec reads a document with ``json_format.ParseDict``, which
stops at the first problem and names it vaguely. The checker walks the
document first, against the message descriptors, and reports every value
``json_format`` would refuse, each by its JSON path; so ``ParseDict`` then
only ever reads documents it accepts. It follows ``json_format`` rule for
rule (field names before proto names, ``[...]`` extension names, the JSON
forms of every well-known type, ``"@type"`` resolved in the default pool,
the nesting limit of 100 messages, repeated keys anywhere in the text), and
is deliberately stricter where json_format would read a value other than
the one the document states, or accept what is not JSON: the cases are
listed, with the reason for each, in docs/python.md ("Where the codec is
stricter than json_format"), and held there by tests/unit/test_codec_fuzz.py.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import math
import re
from collections.abc import Callable

from google.protobuf import descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.protobuf.descriptor_pb2 import FieldDescriptorProto

from auxia_decision._errors import FieldViolation, violation
from auxia_decision._json import json_path
from auxia_decision._json import kind_of as _kind
from auxia_decision._json_text import (
    BEYOND_EVERY_RANGE,
    DIGITS_BEYOND_EVERY_RANGE,
    EXACT_LIMIT,
    INTEGER_TEXT,
    NUMBER_TEXT,
    RFC3339_TEXT,
    integer_of,
    python_reads_integer,
)
from auxia_decision._validation import missing_from_json

_INT_RANGES: dict[int, tuple[int, int]] = {
    FieldDescriptor.CPPTYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.CPPTYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.CPPTYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.CPPTYPE_UINT64: (0, 2**64 - 1),
}
_FLOAT32_MAX = float.fromhex("0x1.fffffep+127")
_SPECIAL_FLOATS = ("NaN", "Infinity", "-Infinity")
_UNPAIRED_SURROGATE = re.compile(
    "[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]"
)
# What json_format reads as the name of an extension (its own pattern, matched as it does).
_EXTENSION_NAME = re.compile(r"\[[a-zA-Z0-9\._]*\]$")
_NULL_VALUE = "NULL_VALUE"
# json_format refuses messages nested deeper than this (its max_recursion_depth).
MAX_MESSAGE_DEPTH = 100
_WRAPPERS_FILE = "google/protobuf/wrappers.proto"
# The well-known types json_format reads from their JSON form with FromJsonString.
_FROM_JSON_STRING = {
    "google.protobuf.Timestamp": 'an RFC 3339 timestamp string such as "2025-01-01T00:00:00Z"',
    "google.protobuf.Duration": 'a duration string such as "1.5s"',
    "google.protobuf.FieldMask": 'a field mask string such as "a.b,cD"',
}
# The well-known types whose JSON form an Any holds under "value".
_SPECIAL_FORMS = frozenset(
    {
        "google.protobuf.Any",
        "google.protobuf.ListValue",
        "google.protobuf.Struct",
        "google.protobuf.Value",
        *_FROM_JSON_STRING,
    }
)


# Read once per message type (descriptors are immutable); bounded, as types may come and go.
@functools.lru_cache(maxsize=1024)
def _fields_by_key(descriptor: Descriptor) -> dict[str, FieldDescriptor]:
    """Return the fields of a message type by the keys that name them (JSON names first)."""
    fields = {field.name: field for field in descriptor.fields}
    fields.update((field.json_name, field) for field in descriptor.fields)
    return fields


@functools.lru_cache(maxsize=1024)
def _needs_proto_names(descriptor: Descriptor) -> bool:
    """Whether json_format needs a JSON object of this type given with proto field names.

    json_format counts the oneofs it has seen among the keys it has seen, so
    a oneof named like a field's JSON name (``oneof bSub { int32 b_sub = 1; }``)
    makes it refuse ``{"bSub": 1}``, its own output: the key ``"b_sub"``
    reads the same field without that confusion (proto names never equal
    oneof names).
    """
    json_names = {field.json_name for field in descriptor.fields}
    return any(oneof.name in json_names for oneof in descriptor.oneofs)


class JsonChecker:
    """Walks a JSON document against a message descriptor and reports every bad value.

    It accepts what ``json_format`` accepts, but for the cases this module
    lists, and words each refusal with the value's JSON path. It also
    rewrites in place, for ``ParseDict``, the two forms json_format writes but
    does not read: the members of an object whose type has a oneof named like
    a field's JSON name get their proto names (:func:`_needs_proto_names`),
    and a null among the NullValues of a repeated field or a map becomes
    ``"NULL_VALUE"``.

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

    report_unknown_numbers = False
    """Whether a number an open enum does not name is reported (json_format keeps it)."""
    rewrites = True
    """Whether the document is rewritten in place for ``ParseDict`` (see above)."""

    def error(self, path: str, description: str) -> None:
        self._report(violation(path, description))

    def wrong_type(self, path: str, expected: str, value: object) -> None:
        """Report a value of a JSON type its field cannot take (``expected`` says which)."""
        self.error(path, f"expected {expected}, got {_kind(value)}")

    def unknown_field(self, path: str, key: str, descriptor: Descriptor) -> None:
        """Report a member ``key`` (at ``path``) that names no field of its message type."""
        self.error(path, f'unknown field "{key}" in {descriptor.name}')

    def unknown_enum_value(
        self, path: str, value: object, number: int | None, enum_type: EnumDescriptor
    ) -> None:
        """Report an enum value that is not a value of its type: a name, or a ``number``."""
        if number is None:
            names = ", ".join(v.name for v in enum_type.values)
            self.error(
                path, f'unknown value "{value}" of {enum_type.name}: expected one of {names}'
            )
        else:
            self.error(path, f"{number} is not a value of {enum_type.name}")

    def message(self, value: object, descriptor: Descriptor, path: str, depth: int = 1) -> None:
        """Check a JSON value of a message type, ``depth`` messages deep (the root is 1)."""
        if self.too_deep(path, depth):
            return
        name = descriptor.full_name
        if descriptor.file.name == _WRAPPERS_FILE:
            self.single(value, descriptor.fields_by_name["value"], path, depth)
        elif name in _FROM_JSON_STRING:
            self.from_json_string(value, descriptor, path)
        elif name == "google.protobuf.Struct":
            self.struct(value, path, depth)
        elif name == "google.protobuf.ListValue":
            self.list_value(value, path, depth)
        elif name == "google.protobuf.Value":
            self.json_value(value, path, depth)
        elif name == "google.protobuf.Any":
            self.any(value, path, depth)
        elif isinstance(value, dict):
            self.members(value, descriptor, path, depth)
        else:
            what = f"a JSON object ({descriptor.name})"
            self.wrong_type(path, what, value)

    def members(
        self,
        value: dict[str, object],
        descriptor: Descriptor,
        path: str,
        depth: int,
        skip: str | None = None,
    ) -> None:
        """Check the members of a JSON object of a message type, but ``skip``."""
        self.duplicates(value, path)
        fields = _fields_by_key(descriptor)
        set_by_number: dict[int, str] = {}
        set_in_oneof: dict[str, str] = {}
        for key, item in value.items():
            if key == skip:
                continue
            field = fields.get(key)
            if field is None:
                field = self.unknown(key, item, descriptor, path)
                if field is None:
                    continue
            field_path = json_path(path, field.json_name)
            if field.number in set_by_number:
                other = set_by_number[field.number]
                self.error(field_path, f'set twice, as "{other}" and as "{key}"')
                continue
            set_by_number[field.number] = key
            if item is None:
                # null means unset in proto3 JSON, or null for a Value or a
                # NullValue, which a repeated field cannot be set to.
                if field.is_repeated and (_is_value(field) or _is_null_value(field)):
                    self.error(field_path, "null is not allowed for a repeated field of nulls")
                continue
            oneof = field.containing_oneof
            if oneof is not None:
                if oneof.name in set_in_oneof:
                    self.error(
                        field_path,
                        f'"{set_in_oneof[oneof.name]}" and "{key}" are both set, but at most '
                        f'one field of oneof "{oneof.name}" may be',
                    )
                set_in_oneof[oneof.name] = key
            self.field(item, field, field_path, depth)
        if self.strict:
            self.missing += missing_from_json(value, descriptor, path)
        if self.rewrites and _needs_proto_names(descriptor):
            _use_proto_names(value, descriptor)

    def unknown(
        self, key: str, value: object, descriptor: Descriptor, path: str
    ) -> FieldDescriptor | None:
        """Check a member no field is named by; return the extension it names, if any."""
        key_path = json_path(path, key)
        if _EXTENSION_NAME.match(key):
            if not descriptor.extension_ranges:
                self.error(key_path, f'"{key}" names an extension, and {descriptor.name} has none')
                return None
            extension = _extension(descriptor, key[1:-1])
            if extension is not None:
                return extension
        if _UNPAIRED_SURROGATE.search(key):
            self.error(key_path, "the key has an unpaired surrogate")
        elif self.strict:
            self.unknown_field(key_path, key, descriptor)
        else:
            self.duplicates_within(value, key_path)
        return None

    def duplicates(self, value: dict[str, object], path: str) -> None:
        """Report the keys a JSON object repeats (json_format refuses them anywhere)."""
        for key in getattr(value, "duplicates", ()):
            self.error(json_path(path, key), f'the key "{key}" appears more than once')

    def duplicates_within(self, value: object, path: str) -> None:
        """Report the repeated keys of every object of a value nothing else walks."""
        if isinstance(value, dict):
            self.duplicates(value, path)
            for key, item in value.items():
                self.duplicates_within(item, json_path(path, key))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                self.duplicates_within(item, f"{path}[{index}]")

    def field(self, value: object, field: FieldDescriptor, path: str, depth: int) -> None:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            self.map(value, field.message_type, path, depth)
        elif field.is_repeated:
            if not isinstance(value, list):
                self.wrong_type(path, "an array", value)
                return
            for index, item in enumerate(value):
                item_path = f"{path}[{index}]"
                if item is None and _is_null_value(field):
                    if self.rewrites:
                        value[index] = _NULL_VALUE  # what json_format writes, but does not read
                elif item is None and not _is_value(field):
                    self.error(item_path, "null is not allowed in an array")
                else:
                    self.single(item, field, item_path, depth)
        else:
            self.single(value, field, path, depth)

    def map(self, value: object, entry: Descriptor, path: str, depth: int) -> None:
        if not isinstance(value, dict):
            self.wrong_type(path, "a JSON object (a map)", value)
            return
        for key in getattr(value, "duplicates", ()):
            self.error(f'{path}["{key}"]', f'the key "{key}" appears more than once')
        key_field = entry.fields_by_name["key"]
        value_field = entry.fields_by_name["value"]
        for key, item in value.items():
            item_path = f'{path}["{key}"]'
            if not self.strict and _unknown_enum_name(item, value_field):
                # json_format skips the entry before it sets the key: only its form counts.
                self.map_key(key, key_field, item_path, in_range=False)
                continue
            self.map_key(key, key_field, item_path)
            if item is None and _is_null_value(value_field):
                if self.rewrites:
                    value[key] = _NULL_VALUE  # what json_format writes, but does not read
            elif item is None and not _is_value(value_field):
                self.error(item_path, "null is not allowed as a map value")
            else:
                self.single(item, value_field, item_path, depth)

    def map_key(
        self, key: str, field: FieldDescriptor, path: str, *, in_range: bool = True
    ) -> None:
        """Check a map key's form, and unless told otherwise that it is in its type's range."""
        if field.cpp_type == FieldDescriptor.CPPTYPE_BOOL:
            if key not in ("true", "false"):
                self.error(path, f'map key "{key}" is not "true" or "false"')
        elif field.cpp_type in _INT_RANGES:
            self.integer(key, field, path, in_range=in_range)
        elif _UNPAIRED_SURROGATE.search(key):
            self.error(path, "the map key has an unpaired surrogate")

    def single(self, value: object, field: FieldDescriptor, path: str, depth: int) -> None:
        """Check one value of a field (an item, if it is repeated) in a message ``depth`` deep."""
        cpp_type = field.cpp_type
        if field.message_type is not None:
            self.message(value, field.message_type, path, depth + 1)
        elif cpp_type == FieldDescriptor.CPPTYPE_ENUM:
            self.enum(value, field, path)
        elif cpp_type in _INT_RANGES:
            self.integer(value, field, path)
        elif cpp_type in (FieldDescriptor.CPPTYPE_DOUBLE, FieldDescriptor.CPPTYPE_FLOAT):
            self.floating(value, field, path)
        elif cpp_type == FieldDescriptor.CPPTYPE_BOOL:
            if not isinstance(value, bool):
                self.wrong_type(path, "true or false", value)
        elif field.type == FieldDescriptor.TYPE_BYTES:
            self.base64(value, path)
        elif not isinstance(value, str):
            self.wrong_type(path, "a string", value)
        elif _UNPAIRED_SURROGATE.search(value):
            self.error(path, "the string has an unpaired surrogate")

    def base64(self, value: object, path: str) -> None:
        """Check a bytes value as json_format reads it: base64, either alphabet, any padding."""
        if not isinstance(value, str):
            self.wrong_type(path, "a base64 string", value)
            return
        try:
            encoded = value.encode()
            base64.urlsafe_b64decode(encoded + b"=" * (4 - len(encoded) % 4))
        except (binascii.Error, ValueError):
            self.error(path, "expected a base64 string")

    def enum(self, value: object, field: FieldDescriptor, path: str) -> None:
        """Check an enum value: a name of its type, or a number it may hold."""
        enum_type = field.enum_type
        assert enum_type is not None
        number = self.enum_number(value, enum_type, path)
        if number is None:
            return
        if enum_type.is_closed:
            if number not in enum_type.values_by_number:
                self.unknown_enum_value(path, value, number, enum_type)
            return
        low, high = _INT_RANGES[FieldDescriptor.CPPTYPE_INT32]
        if not low <= number <= high:
            self.error(path, f"enum number {number} is out of the int32 range")
        elif self.report_unknown_numbers and number not in enum_type.values_by_number:
            self.unknown_enum_value(path, value, number, enum_type)

    def enum_number(self, value: object, enum_type: EnumDescriptor, path: str) -> int | None:
        """Return the number an enum value is given as; None for a name, or a form refused."""
        if isinstance(value, str):
            return self.enum_text(value, enum_type, path)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)  # 1.0 is the JSON number 1
        if isinstance(value, float):
            self.error(path, f"expected an enum value name or an integer, got {value!r}")
        else:
            self.wrong_type(path, "an enum value name or number", value)
        return None

    def enum_text(self, value: str, enum_type: EnumDescriptor, path: str) -> int | None:
        """Return the number an enum value's string gives; None for a name, or a form refused."""
        if _UNPAIRED_SURROGATE.search(value):
            # No name (nor number), and upb's lookup of such a key leaves an error behind.
            self.error(path, "the string has an unpaired surrogate")
            return None
        if value in enum_type.values_by_name:
            return None
        if INTEGER_TEXT.fullmatch(value):
            if len(value.lstrip("-").lstrip("0")) > DIGITS_BEYOND_EVERY_RANGE:
                # Past every range: never made a number (int() refuses 4,300 digits).
                self.error(path, f"enum number {value} is out of the int32 range")
                return None
            return int(value)
        if python_reads_integer(value):  # "+1", " 1", "1_000": not a JSON number's text
            self.error(path, f'expected an enum value name or an integer, got "{value}"')
        elif self.strict:
            self.unknown_enum_value(path, value, None, enum_type)
        return None

    def integer(
        self, value: object, field: FieldDescriptor, path: str, *, in_range: bool = True
    ) -> None:
        """Check an integer's form, and unless told otherwise that it is in its type's range."""
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            self.wrong_type(path, "an integer (a number or a string)", value)
            return
        number = integer_of(value)
        if number is None:
            self.error(path, f"expected an integer, got {json.dumps(value)}")
            return
        low, high = _INT_RANGES[field.cpp_type]
        if in_range and not low <= number <= high:
            type_name = FieldDescriptorProto.Type.Name(field.type).removeprefix("TYPE_").lower()  # type: ignore[arg-type]
            shown = value if abs(number) == BEYOND_EVERY_RANGE else number
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
            self.wrong_type(path, "a number", value)
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
            if math.isnan(number):
                self.error(path, 'NaN is not a JSON number: use "NaN"')
                return
        if math.isinf(number):
            shown = value if isinstance(value, str) else "the number"  # not 400 digits
            self.error(path, f'{shown} is out of the double range: use "Infinity" or "-Infinity"')
        elif field.cpp_type == FieldDescriptor.CPPTYPE_FLOAT and abs(number) > _FLOAT32_MAX:
            self.error(path, f"{value} is out of the float range")

    def from_json_string(self, value: object, descriptor: Descriptor, path: str) -> None:
        """Check a Timestamp, Duration or FieldMask: a string its FromJsonString reads."""
        form = _FROM_JSON_STRING[descriptor.full_name]
        if not isinstance(value, str):
            self.wrong_type(path, form, value)
            return
        if descriptor.full_name == "google.protobuf.Timestamp" and not RFC3339_TEXT.fullmatch(
            value
        ):
            self.error(
                path,
                f'"{value}" is not an RFC 3339 timestamp such as "2024-05-30T11:32:44.279Z"',
            )
            return
        try:
            message_factory.GetMessageClass(descriptor)().FromJsonString(value)  # type: ignore[attr-defined]
        except Exception as error:  # ValueError, or what a bad string makes upb raise
            self.error(path, f'"{value}" is not {form}: {error}')

    def too_deep(self, path: str, depth: int) -> bool:
        """Report a message nested deeper than json_format reads, and say whether it is."""
        if depth <= MAX_MESSAGE_DEPTH:
            return False
        self.error(path, f"nested too deeply: more than {MAX_MESSAGE_DEPTH} messages")
        return True

    def struct(self, value: object, path: str, depth: int) -> None:
        """Check a Struct, ``depth`` messages deep: a JSON object of any values."""
        if self.too_deep(path, depth):
            return
        if not isinstance(value, dict):
            self.wrong_type(path, "a JSON object (Struct)", value)
            return
        self.duplicates(value, path)
        for key, item in value.items():
            if _UNPAIRED_SURROGATE.search(key):
                self.error(json_path(path, key), "the key has an unpaired surrogate")
            else:
                self.json_value(item, f'{path}["{key}"]', depth + 1)

    def list_value(self, value: object, path: str, depth: int) -> None:
        """Check a ListValue, ``depth`` messages deep: a JSON array of any values."""
        if self.too_deep(path, depth):
            return
        if not isinstance(value, list):
            self.wrong_type(path, "an array (ListValue)", value)
            return
        for index, item in enumerate(value):
            self.json_value(item, f"{path}[{index}]", depth + 1)

    def json_value(self, value: object, path: str, depth: int) -> None:
        """Check a Value, ``depth`` messages deep: any JSON value whose numbers are doubles."""
        if self.too_deep(path, depth):
            return
        if isinstance(value, dict):
            self.struct(value, path, depth + 1)
        elif isinstance(value, list):
            self.list_value(value, path, depth + 1)
        elif isinstance(value, str):
            if _UNPAIRED_SURROGATE.search(value):
                self.error(path, "the string has an unpaired surrogate")
        elif isinstance(value, int | float) and not isinstance(value, bool):
            try:
                finite = math.isfinite(value)
            except OverflowError:
                finite = False
            if not finite:
                self.error(path, "the number is out of the double range")

    def any(self, value: object, path: str, depth: int) -> None:
        """Check an Any: ``{}``, or ``"@type"`` and the JSON of the message it names."""
        if not isinstance(value, dict):
            self.wrong_type(path, "a JSON object (Any)", value)
            return
        if not value:
            return
        self.duplicates(value, path)
        type_url = value.get("@type")
        type_path = json_path(path, "@type")
        if not isinstance(type_url, str):
            self.wrong_type(type_path, "the type URL of the message", type_url)
            return
        if _UNPAIRED_SURROGATE.search(type_url):
            self.error(type_path, "the string has an unpaired surrogate")
            return
        # As json_format: the message named after the last "/", in the default pool.
        try:
            packed = descriptor_pool.Default().FindMessageTypeByName(type_url.split("/")[-1])
        except KeyError:
            self.error(type_path, f'unknown message type "{type_url}"')
            return
        if packed.file.name == _WRAPPERS_FILE or packed.full_name in _SPECIAL_FORMS:
            if "value" not in value:
                self.error(path, f'an Any holding a {packed.name} has its JSON in "value"')
            elif packed.file.name == _WRAPPERS_FILE:
                self.message(value["value"], packed, json_path(path, "value"), depth)
            else:
                self.message(value["value"], packed, json_path(path, "value"), depth + 1)
        else:
            self.members(value, packed, path, depth, skip="@type")


def _unknown_enum_name(value: object, field: FieldDescriptor) -> bool:
    """Whether a value of an enum field is a string json_format ignores when reading leniently."""
    enum_type = field.enum_type
    if enum_type is None or not isinstance(value, str):
        return False
    if _UNPAIRED_SURROGATE.search(value):
        # Refused; and upb's lookup of such a name leaves an error behind: never ask it.
        return False
    if value in enum_type.values_by_name:
        return False
    try:
        int(value)
    except ValueError:
        return True
    return False


def _is_value(field: FieldDescriptor) -> bool:
    """Whether a field holds ``google.protobuf.Value``s (for which null is a value)."""
    return field.message_type is not None and field.message_type.full_name == (
        "google.protobuf.Value"
    )


def _use_proto_names(members: dict[str, object], descriptor: Descriptor) -> None:
    """Rename the members of a JSON object of a message type to their fields' proto names."""
    names = {field.json_name: field.name for field in descriptor.fields}
    renamed = [(names.get(key, key), value) for key, value in members.items()]
    members.clear()
    members.update(renamed)


def _is_null_value(field: FieldDescriptor) -> bool:
    """Whether a field holds ``google.protobuf.NullValue``s."""
    return field.enum_type is not None and field.enum_type.full_name == (
        "google.protobuf.NullValue"
    )


def _extension(descriptor: Descriptor, name: str) -> FieldDescriptor | None:
    """Return the extension of a message type that json_format reads for ``[name]``, if any."""
    pool = descriptor.file.pool
    for candidate in (name, name.rpartition(".")[0]):
        try:
            extension = pool.FindExtensionByName(candidate)
        except KeyError:
            continue
        if extension.containing_type is descriptor:
            return extension
    return None
