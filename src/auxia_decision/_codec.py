"""The REST JSON codec: messages to proto3 JSON and back, with JSON-path errors."""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from google.protobuf import json_format, timestamp_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from auxia_decision import _fastjson
from auxia_decision._errors import ApiError, FieldViolation

M = TypeVar("M", bound=Message)

_INT_RANGES: dict[int, tuple[int, int]] = {
    FieldDescriptor.CPPTYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.CPPTYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.CPPTYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.CPPTYPE_UINT64: (0, 2**64 - 1),
}
_FLOAT32_MAX = 3.4028234663852886e38
_SPECIAL_FLOATS = ("NaN", "Infinity", "-Infinity")
_UNPAIRED_SURROGATE = re.compile(
    "[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]"
)
_TIMESTAMP = timestamp_pb2.Timestamp.DESCRIPTOR.full_name


@dataclass(frozen=True)
class JsonProfile:
    """How messages are written as JSON and how strictly JSON is read.

    The default profile, ``PROTO3_JSON``, is the API's wire format: proto3 JSON
    with lowerCamelCase names, int64 values as strings, enums by name, RFC 3339
    timestamps and unset fields omitted. Reading accepts both lowerCamelCase and
    proto field names, and int64 values as JSON numbers or strings.
    """

    use_proto_field_names: bool = False
    """Write proto field names (``project_id``, as the docs' cURL samples do)."""


PROTO3_JSON = JsonProfile()


class RestCodec:
    """Encodes messages as proto3 JSON and decodes JSON into messages.

    Requests are decoded strictly: unknown fields, unknown enum names, wrong
    types, duplicate keys and malformed JSON are errors. Responses are decoded
    leniently: unknown fields and unknown enum values from a newer server are
    ignored. Every error is an ``ApiError`` (INVALID_ARGUMENT) whose
    ``google.rpc.BadRequest`` names each bad value by its JSON path
    (``dataFieldParams[1].eventDataFieldParams.dailyCountAggregation``), and,
    for malformed JSON, its line and column.

    By default each message type gets an encoder and decoders specialised from
    its descriptors (decoding parses with orjson), several times faster than
    json_format: the encoder writes the very bytes
    ``json_format.MessageToJson(indent=None)`` writes, and the decoders read
    what the generic path reads into equal messages and hand anything they
    are not sure of (every bad document among others) to the generic path,
    which then decides and words the errors. ``fast=False`` keeps to the
    generic path (json_format behind the JSON-path checks), the oracle of the
    fast one.
    """

    def __init__(self, profile: JsonProfile = PROTO3_JSON, *, fast: bool = True) -> None:
        self._profile = profile
        self._fast = fast
        # The encoding of each type, and the decoding of each (type, strict), built once.
        self._encoders: dict[type[Message], Callable[[Message], bytes]] = {}
        self._decoders: dict[tuple[type[Message], bool], Callable[[bytes | str], Any]] = {}

    @property
    def profile(self) -> JsonProfile:
        """Return how this codec writes and reads JSON."""
        return self._profile

    @property
    def fast(self) -> bool:
        """Return whether this codec uses the specialised encoders and decoders."""
        return self._fast

    def encode(self, message: Message) -> bytes:
        """Return the message as compact proto3 JSON (UTF-8)."""
        return self.encoder(type(message))(message)

    def encoder(self, message_type: type[Message]) -> Callable[[Message], bytes]:
        """Return ``encode`` for messages of one type, with its encoder looked up once."""
        try:
            return self._encoders[message_type]
        except KeyError:
            found = self._encoders[message_type] = self._build_encoder(message_type)
            return found

    def _build_encoder(self, message_type: type[Message]) -> Callable[[Message], bytes]:
        use_proto_field_names = self._profile.use_proto_field_names

        def encode_generic(message: Message) -> bytes:
            return json_format.MessageToJson(
                message,
                preserving_proto_field_name=use_proto_field_names,
                indent=None,
            ).encode()

        fast = (
            _fastjson.encoder(message_type, proto_field_names=use_proto_field_names)
            if self._fast
            else None
        )
        if fast is None:
            return encode_generic
        if not message_type.DESCRIPTOR.fields:
            return fast  # a type without fields always writes {}: nothing to be unsure of
        specialised: _fastjson.Encoder = fast

        def encode(message: Message) -> bytes:
            try:
                return specialised(message)
            except Exception:  # unsure, or json_format would fail:
                return encode_generic(message)  # it writes the JSON or raises its error

        return encode

    def decode_request(self, data: bytes | str, message_type: type[M]) -> M:
        """Parse a request strictly; raise ApiError naming every bad field."""
        return self._decoder(message_type, strict=True)(data)

    def request_decoder(self, message_type: type[M]) -> Callable[[bytes | str], M]:
        """Return ``decode_request`` for one message type, with its decoder looked up once."""
        return self._decoder(message_type, strict=True)

    def decode_response(self, data: bytes | str, message_type: type[M]) -> M:
        """Parse a response leniently (unknown fields and enum values are ignored)."""
        return self._decoder(message_type, strict=False)(data)

    def _decoder(self, message_type: type[M], *, strict: bool) -> Callable[[bytes | str], M]:
        """Return the decoding of one type, read strictly or leniently, built once per codec."""
        key = (message_type, strict)
        try:
            found: Callable[[bytes | str], M] = self._decoders[key]
        except KeyError:
            found = self._decoders[key] = self._build_decoder(message_type, strict=strict)
        return found

    def _build_decoder(self, message_type: type[M], *, strict: bool) -> Callable[[bytes | str], M]:
        def decode_generic(data: bytes | str) -> M:
            return self._decode_generic(data, message_type, strict=strict)

        fast = _fastjson.decoder(message_type, strict=strict) if self._fast else None
        if fast is None:
            return decode_generic
        specialised: _fastjson.Decoder[M] = fast

        def decode(data: bytes | str) -> M:
            try:
                return specialised(data)
            except Exception:  # every document it does not accept:
                return decode_generic(data)  # the generic path decides, and words the errors

        return decode

    def _decode_generic(self, data: bytes | str, message_type: type[M], *, strict: bool) -> M:
        document = load_json(data)
        violations: list[FieldViolation] = []
        descriptor = cast(Descriptor, message_type.DESCRIPTOR)
        _Checker(strict, violations.append).message(document, descriptor, "")
        if violations:
            raise ApiError.invalid_argument(violations)
        assert isinstance(document, dict)  # the checker reports anything else
        message = message_type()
        try:
            json_format.ParseDict(document, message, ignore_unknown_fields=not strict)
        except (json_format.ParseError, ValueError, TypeError) as error:
            # The checker accepts only what json_format accepts; should they
            # ever disagree, the request still gets a 400 rather than a 500.
            raise ApiError.invalid_argument([FieldViolation(description=str(error))]) from None
        return message


class _Object(dict[str, Any]):
    """A JSON object that remembers the keys it saw more than once."""

    duplicates: list[str]


def _object_from_pairs(pairs: list[tuple[str, Any]]) -> _Object:
    result = _Object(pairs)
    result.duplicates = []
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                result.duplicates.append(key)
            seen.add(key)
    return result


def _reject_constant(name: str) -> float:
    msg = f"{name} is not valid JSON"
    raise ValueError(msg)


def load_json(data: bytes | str) -> object:
    """Parse JSON text, raising ApiError with the line and column of a syntax error."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as error:
            description = f"the body is not valid UTF-8: invalid byte at offset {error.start}"
            raise ApiError.invalid_argument([FieldViolation(description=description)]) from None
    try:
        return json.loads(
            data, object_pairs_hook=_object_from_pairs, parse_constant=_reject_constant
        )
    except json.JSONDecodeError as error:
        description = f"malformed JSON at line {error.lineno} column {error.colno}: {error.msg}"
    except ValueError as error:
        description = f"malformed JSON: {error}"
    except RecursionError:
        description = "malformed JSON: nested too deeply"
    raise ApiError.invalid_argument([FieldViolation(description=description)])


def json_path(parent: str, name: str) -> str:
    """Return the JSON path of a member ``name`` of the value at ``parent``."""
    return f"{parent}.{name}" if parent else name


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _fields_by_key(descriptor: Descriptor) -> dict[str, FieldDescriptor]:
    fields: dict[str, FieldDescriptor] = {}
    for field in descriptor.fields:
        fields[field.name] = field
        fields[field.json_name] = field
    return fields


class _Checker:
    """Walks a JSON document against a message descriptor and reports every bad value."""

    def __init__(self, strict: bool, report: Callable[[FieldViolation], None]) -> None:
        self.strict = strict
        self._report = report

    def error(self, path: str, description: str) -> None:
        self._report(FieldViolation(field=path, description=description))

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
            if value in enum_type.values_by_name:
                return
            try:
                number = int(value)
            except ValueError:
                if self.strict:
                    names = ", ".join(v.name for v in enum_type.values)
                    self.error(
                        path,
                        f'unknown value "{value}" of {enum_type.name}: expected one of {names}',
                    )
                return
        elif isinstance(value, int) and not isinstance(value, bool):
            number = value
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
            self.error(path, f"{number} is out of the {type_name} range [{low}, {high}]")

    def floating(self, value: object, field: FieldDescriptor, path: str) -> None:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            self.error(path, f"expected a number, got {_kind(value)}")
            return
        if isinstance(value, str):
            if value in _SPECIAL_FLOATS:
                return
            try:
                number = float(value)
            except ValueError:
                self.error(path, f'expected a number or "NaN", "Infinity", got "{value}"')
                return
        else:
            number = float(value)
        if math.isinf(number) or math.isnan(number):
            self.error(path, 'out of range: use "Infinity", "-Infinity" or "NaN"')
        elif field.cpp_type == FieldDescriptor.CPPTYPE_FLOAT and abs(number) > _FLOAT32_MAX:
            self.error(path, f"{value} is out of the float range")

    def timestamp(self, value: object, path: str) -> None:
        if not isinstance(value, str):
            self.error(path, f"expected an RFC 3339 timestamp string, got {_kind(value)}")
            return
        try:
            timestamp_pb2.Timestamp().FromJsonString(value)
        except ValueError as error:
            self.error(path, f'"{value}" is not an RFC 3339 timestamp: {error}')


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
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if " " in value:
        return None
    try:
        return int(value)
    except ValueError:
        pass
    try:
        number = float(value)
    except ValueError:
        return None
    return int(number) if number.is_integer() else None
