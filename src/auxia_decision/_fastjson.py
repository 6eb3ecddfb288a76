"""Proto3 JSON encoders and decoders specialised per message type.

``google.protobuf.json_format`` walks descriptors field by field for every
message. Here each message type gets, once, Python source generated from its
descriptors (one function per reachable message type, for encoding and for
decoding, exec'd once and cached), so a call does only the work its fields
need: no descriptor is read, no JSON object built as a dict first.

**Encoding is byte-identical** to ``json_format.MessageToJson(message,
indent=None, preserving_proto_field_name=...)``, not merely equal after
parsing: the same keys in the same order (field-number order, as
``ListFields``), the same ``", "`` and ``": "`` separators, and the same
text for every value: int64 as quoted decimals, enums by name (unknown
numbers bare), doubles as ``float.__repr__`` (``1e-07``), ``"NaN"`` and
``"Infinity"`` quoted, Timestamps with 0, 3, 6 or 9 fractional digits. Clients,
caches, signatures and golden files see the same bytes whichever path wrote
them, and the generic path stays a byte-for-byte oracle. ``MessageToJson``
writes ASCII only (its ``ensure_ascii=True`` default: ``"é"`` becomes
``"\u00e9"``), which orjson cannot do, so strings are escaped by the stdlib's
C escaper that ``json.dumps`` itself calls (identical by construction), and
orjson's compact layout (``{"a":1}``) is not used. orjson does the text work
of decoding.

**Decoding gives a message equal to** what the generic codec gives
(``json_format.ParseDict`` behind its JSON-path checks) and **decides only
what it is sure of**: orjson parses the text, and the document is accepted
only when every value has its canonical type (strings for string fields,
in-range integers, known enum names, ``YYYY-MM-DDTHH:MM:SS[.fffffffff]Z``
timestamps, ...), no field is given twice (under both of its names, or as a
repeated key, which orjson silently merges: counting the colons of the text
against those of the parsed document finds those), and at most one member of
each oneof is set. Anything else raises :class:`Fallback` (or the error the
check ran into), and the caller hands the document to the generic path, which
accepts it the same way or produces its usual errors, with JSON paths and,
for malformed JSON, the stdlib's line and column. So the fast path never has
to reproduce an error message.

Message types using a feature without a specialised form here (``bytes`` or
``float`` fields, well-known types other than Timestamp, extensions,
recursive types) get no fast functions: :func:`encoder` and :func:`decoder`
return ``None`` for them, and the generic path does all the work.
"""

from __future__ import annotations

import datetime
import json
import math
import re
import threading
from collections.abc import Callable
from typing import Any, TypeVar, cast

import orjson
from google.protobuf import descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.protobuf.message import Message

M = TypeVar("M", bound=Message)

Encoder = Callable[[Message], bytes]
"""Turns a message into proto3 JSON bytes (or raises: then use the generic path)."""

Decoder = Callable[[bytes | str], M]
"""Turns proto3 JSON into a message, or raises when the generic path must decide."""


class Fallback(Exception):  # noqa: N818 - it is a signal, not an error
    """The fast path does not decide this input; the generic path must."""


class Unsupported(Exception):  # noqa: N818 - it is a signal, not an error
    """A message type uses a feature the fast path has no specialised form for."""


# ---------------------------------------------------------------------------
# Helpers called by the generated code.

_TIMESTAMP_NAME = "google.protobuf.Timestamp"
_TIMESTAMP_MIN_SECONDS = -62_135_596_800
_TIMESTAMP_MAX_SECONDS = 253_402_300_799
_SECONDS_PER_DAY = 86_400
_EPOCH_ORDINAL = datetime.date(1970, 1, 1).toordinal()
_TIMESTAMP = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))?Z"
)
# Integers above this magnitude may have come from an integer literal that
# orjson read as a float (it does so beyond 64 bits), so they are left to the
# generic path, which reads such literals exactly.
_SAFE_FLOAT_INTEGER = 2.0**53
_SPECIAL_DOUBLES = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_MAP_BOOL_KEYS = {"true": True, "false": False}
# "\u003a" not itself escaped (preceded by an even number of backslashes).
_ESCAPED_COLON = re.compile(rb"(?<!\\)(?:\\\\)*\\u003[aA]")
_ESCAPED_COLON_TEXT = re.compile(r"(?<!\\)(?:\\\\)*\\u003[aA]")
# Unknown members of a leniently read document deeper than this are left to
# the generic path, whose stdlib parser has a recursion limit orjson lacks.
_MAX_UNKNOWN_DEPTH = 32
# json_format refuses messages nested deeper than its max_recursion_depth (100).
_MAX_MESSAGE_DEPTH = 64
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1
_QUOTED_INTEGER = '"%d"'
# json.dumps's own (C) escaper, which MessageToJson's default ensure_ascii=True uses.
_string_text: Callable[[str], str] = json.encoder.encode_basestring_ascii


def _fail() -> Any:  # noqa: ANN401 - stands in for a value of any type
    raise Fallback


def _integer(value: object, low: int, high: int) -> int:
    """Read an integer given as a JSON number or string, as json_format does."""
    if type(value) is float:
        if not (value.is_integer() and -_SAFE_FLOAT_INTEGER < value < _SAFE_FLOAT_INTEGER):
            raise Fallback
        number = int(value)
    elif type(value) is str:
        if " " in value:
            raise Fallback
        number = int(value)  # ValueError: the generic path reports it
    elif type(value) is int:
        number = value
    else:
        raise Fallback
    if not low <= number <= high:
        raise Fallback
    return number


def _double(value: object) -> float:
    """Read a double given other than as a finite JSON float."""
    if type(value) is int:
        return float(value)  # OverflowError: the generic path decides
    if type(value) is str and value in _SPECIAL_DOUBLES:
        return _SPECIAL_DOUBLES[value]
    raise Fallback


def _enum_number(value: object) -> int:
    """Read an open enum given by number."""
    if type(value) is int and _INT32_MIN <= value <= _INT32_MAX:
        return value
    raise Fallback


def _closed_enum_number(value: object, known: frozenset[int]) -> int:
    """Read a closed enum given by number: only its declared values."""
    if type(value) is int and value in known:
        return value
    raise Fallback


def _timestamp(value: object) -> dict[str, int]:
    """Read an RFC 3339 UTC timestamp in its canonical form."""
    if type(value) is not str:
        raise Fallback
    match = _TIMESTAMP.fullmatch(value)
    if match is None:
        raise Fallback
    year, month, day, hour, minute, second, fraction = match.groups()
    hours, minutes, seconds = int(hour), int(minute), int(second)
    if hours > 23 or minutes > 59 or seconds > 59:
        raise Fallback
    days = datetime.date(int(year), int(month), int(day)).toordinal() - _EPOCH_ORDINAL
    return {
        "seconds": days * _SECONDS_PER_DAY + hours * 3600 + minutes * 60 + seconds,
        "nanos": int(fraction.ljust(9, "0")) if fraction else 0,
    }


def _same_size(converted: dict[Any, Any], original: dict[str, Any]) -> dict[Any, Any]:
    """Refuse a map whose keys collapsed when converted ("1" and "01")."""
    if len(converted) != len(original):
        raise Fallback
    return converted


def _too_deep(value: object, depth: int) -> bool:
    if depth > _MAX_UNKNOWN_DEPTH:
        return True
    if type(value) is dict:
        return any(_too_deep(item, depth + 1) for item in value.values())
    if type(value) is list:
        return any(_too_deep(item, depth + 1) for item in value)
    return False


def _skip_unknown(key: str, value: object) -> None:
    """Check that an unknown member may simply be ignored (lenient reading)."""
    if key.startswith("["):
        raise Fallback  # json_format reads "[...]" as an extension name
    if _too_deep(value, 1):
        raise Fallback


def _unknown_members(members: dict[str, Any], known: frozenset[str], found: int) -> None:
    """Check the members of a leniently read object that no field took."""
    taken = 0
    for key, value in members.items():
        if key in known:
            taken += 1
        else:
            _skip_unknown(key, value)
    if taken != found:
        raise Fallback  # a field given under both of its names


def _double_text(value: float) -> str:
    if value - value == 0.0:
        return float.__repr__(value)
    if math.isnan(value):
        return '"NaN"'
    return '"Infinity"' if value > 0 else '"-Infinity"'


def _is_negative_zero(value: float) -> bool:
    return value == 0.0 and math.copysign(1.0, value) < 0.0


def _enum_text(value: int) -> str:
    """Write an open enum's unknown number as json_format does: a bare integer."""
    return "%d" % value  # noqa: UP031 - the fastest way to write an int


def _closed_enum_text(value: int) -> str:
    raise Fallback  # json_format refuses it; let it say so


_DATES: dict[int, str] = {}
_MAX_DATES = 4096
_HOURS_OR_MINUTES = [f"{number:02d}:" for number in range(60)]
_SECONDS = [f"{number:02d}" for number in range(60)]
_MILLISECONDS = [f'.{number:03d}Z"' for number in range(1000)]


def _date_text(days: int) -> str:
    """Return the opening quote and date of a day since the epoch (``"2017-01-15T``)."""
    if len(_DATES) >= _MAX_DATES:
        _DATES.clear()
    date = datetime.date.fromordinal(_EPOCH_ORDINAL + days)
    text = _DATES[days] = f'"{date.year:04d}-{date.month:02d}-{date.day:02d}T'
    return text


def _timestamp_text(timestamp: Message) -> str:
    seconds: int = timestamp.seconds  # type: ignore[attr-defined]
    nanos: int = timestamp.nanos  # type: ignore[attr-defined]
    if not (
        _TIMESTAMP_MIN_SECONDS <= seconds <= _TIMESTAMP_MAX_SECONDS and 0 <= nanos < 1_000_000_000
    ):
        raise Fallback
    days, second = divmod(seconds, _SECONDS_PER_DAY)
    if nanos == 0:
        fraction = 'Z"'
    elif nanos % 1_000_000 == 0:
        fraction = _MILLISECONDS[nanos // 1_000_000]
    elif nanos % 1_000 == 0:
        fraction = f'.{nanos // 1_000:06d}Z"'
    else:
        fraction = f'.{nanos:09d}Z"'
    return (
        (_DATES.get(days) or _date_text(days))
        + _HOURS_OR_MINUTES[second // 3600]
        + _HOURS_OR_MINUTES[second // 60 % 60]
        + _SECONDS[second % 60]
        + fraction
    )


# What the generated decoders get for a member the object does not have.
_ABSENT = object()

_HELPERS: dict[str, object] = {
    "_Fallback": Fallback,
    "_fail": _fail,
    "_integer": _integer,
    "_double": _double,
    "_enum_number": _enum_number,
    "_closed_enum_number": _closed_enum_number,
    "_timestamp": _timestamp,
    "_same_size": _same_size,
    "_skip_unknown": _skip_unknown,
    "_unknown_members": _unknown_members,
    "_ABSENT": _ABSENT,
    "_string": _string_text,
    "_double_text": _double_text,
    "_is_negative_zero": _is_negative_zero,
    "_enum_text": _enum_text,
    "_closed_enum_text": _closed_enum_text,
    "_timestamp_text": _timestamp_text,
}


# ---------------------------------------------------------------------------
# What each field is, read from its descriptor.

_UNSUPPORTED_MESSAGES = frozenset(
    {
        "google.protobuf.Any",
        "google.protobuf.Duration",
        "google.protobuf.FieldMask",
        "google.protobuf.ListValue",
        "google.protobuf.Struct",
        "google.protobuf.Value",
    }
)
_INT32_CPP_TYPES = {
    FieldDescriptor.CPPTYPE_INT32: (_INT32_MIN, _INT32_MAX),
    FieldDescriptor.CPPTYPE_UINT32: (0, 2**32 - 1),
}
_INT64_CPP_TYPES = {
    FieldDescriptor.CPPTYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.CPPTYPE_UINT64: (0, 2**64 - 1),
}


def _custom_enum_names_option() -> object | None:
    try:
        return descriptor_pool.Default().FindExtensionByName("pb.enumvalue.json")
    except KeyError:
        return None


def _check_enum(enum_type: EnumDescriptor) -> None:
    if enum_type.full_name == "google.protobuf.NullValue":
        raise Unsupported(enum_type.full_name)
    option = _custom_enum_names_option()
    if option is not None and any(
        value.GetOptions().HasExtension(option)  # type: ignore[arg-type]
        for value in enum_type.values
    ):
        raise Unsupported(f"{enum_type.full_name} has custom JSON names")


def _is_map(field: FieldDescriptor) -> bool:
    entry = field.message_type
    return entry is not None and entry.GetOptions().map_entry


def _check_message(descriptor: Descriptor) -> None:
    name = descriptor.full_name
    if name in _UNSUPPORTED_MESSAGES or descriptor.file.name == "google/protobuf/wrappers.proto":
        raise Unsupported(name)
    if descriptor.extension_ranges:
        raise Unsupported(f"{name} can have extensions")


_SCALAR_KINDS = {
    FieldDescriptor.TYPE_STRING: "string",
    FieldDescriptor.TYPE_BOOL: "bool",
    FieldDescriptor.TYPE_DOUBLE: "double",
}


def _value_kind(field: FieldDescriptor) -> str:
    """Return the kind of one value of a field (its element kind if repeated)."""
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        assert field.message_type is not None
        if field.message_type.full_name == _TIMESTAMP_NAME:
            return "timestamp"
        _check_message(field.message_type)
        return "message"
    if field.type == FieldDescriptor.TYPE_ENUM:
        assert field.enum_type is not None
        _check_enum(field.enum_type)
        return "enum"
    if field.cpp_type in _INT32_CPP_TYPES:
        return "int32"
    if field.cpp_type in _INT64_CPP_TYPES:
        return "int64"
    if field.type in _SCALAR_KINDS:
        return _SCALAR_KINDS[field.type]
    # bytes, float and groups have no specialised form.
    raise Unsupported(f"{field.full_name} has type {field.type}")


def _checked_by_constructor(field: FieldDescriptor) -> bool:
    """Whether a message constructor takes exactly the JSON values of a field, as they are.

    It does for a singular string (it refuses every other JSON type) and a
    singular open enum (a value name, or an int32 number but not a boolean);
    null leaves the field unset, as in JSON.
    """
    if field.is_repeated:
        return False
    if field.type == FieldDescriptor.TYPE_STRING:
        return True
    return (
        field.type == FieldDescriptor.TYPE_ENUM
        and field.enum_type is not None
        and not field.enum_type.is_closed
        and _value_kind(field) == "enum"
    )


def _int_range(field: FieldDescriptor) -> tuple[int, int]:
    ranges = {**_INT32_CPP_TYPES, **_INT64_CPP_TYPES}
    return ranges[field.cpp_type]


def _multi_member_oneofs(descriptor: Descriptor) -> list[list[FieldDescriptor]]:
    """Return the members of each oneof with two members or more (not proto3 ``optional``)."""
    return [list(oneof.fields) for oneof in descriptor.oneofs if len(oneof.fields) > 1]


class _Source:
    """Python source being generated, with the constants it refers to."""

    def __init__(self, prefix: str) -> None:
        self.lines: list[str] = []
        self.namespace: dict[str, object] = dict(_HELPERS)
        self._prefix = prefix
        self._constants: dict[tuple[type, object], str] = {}

    def constant(self, value: object) -> str:
        """Return the name under which the generated code sees a value."""
        key = (type(value), value if isinstance(value, str | bytes | int) else id(value))
        if key not in self._constants:
            name = f"_{self._prefix}{len(self._constants)}"
            self._constants[key] = name
            self.namespace[name] = value
        return self._constants[key]

    def compile(self, title: str) -> dict[str, object]:
        code = compile("\n".join(self.lines) + "\n", f"<fast JSON codec: {title}>", "exec")
        exec(code, self.namespace)  # noqa: S102 - our own source, built from descriptors
        return self.namespace


class _Compiler:
    """Generates one function per message type reachable from a root type."""

    parameters = "m"

    def __init__(self, prefix: str) -> None:
        self.source = _Source("k")
        self._prefix = prefix
        self._names: dict[str, str] = {}
        self._in_progress: list[str] = []

    def function(self, descriptor: Descriptor) -> str:
        """Return the name of the generated function for a message type."""
        full_name = descriptor.full_name
        if full_name in self._names:
            return self._names[full_name]
        if full_name in self._in_progress:
            raise Unsupported(f"{full_name} is recursive")
        if len(self._in_progress) >= _MAX_MESSAGE_DEPTH:
            raise Unsupported(f"{full_name} is nested too deeply")
        _check_message(descriptor)
        self._in_progress.append(full_name)
        body = self.body(descriptor)
        self._in_progress.pop()
        name = f"_{self._prefix}{len(self._names)}"
        self._names[full_name] = name
        self.source.lines += [f"def {name}({self.parameters}):", *body, ""]
        return name

    def body(self, descriptor: Descriptor) -> list[str]:
        raise NotImplementedError


# ---------------------------------------------------------------------------
# Encoders.


class _EncoderCompiler(_Compiler):
    """Generates ``def _eN(m, p)``, appending the text of message ``m`` to the list ``p``.

    The caller has already appended the text up to and including the opening
    brace. Every member is appended with a leading ``", "``, which is cut from
    the first one at the end, and then the closing brace.
    """

    parameters = "m, p"

    def __init__(self, *, proto_field_names: bool) -> None:
        super().__init__("e")
        self._proto_field_names = proto_field_names

    def key(self, field: FieldDescriptor) -> str:
        name = field.name if self._proto_field_names else field.json_name
        return ", " + _string_text(name) + ": "

    def body(self, descriptor: Descriptor) -> list[str]:
        lines = ["    a = p.append", "    s = len(p)"]
        # HasField and WhichOneof are called unbound, which skips looking them
        # up on the message (upb first looks for a field of that name).
        message_class = message_factory.GetMessageClass(descriptor)
        has_field = self.source.constant(message_class.HasField)
        oneof_of: dict[str, str] = {}
        for index, members in enumerate(_multi_member_oneofs(descriptor)):
            oneof = members[0].containing_oneof
            assert oneof is not None
            which_oneof = self.source.constant(message_class.WhichOneof)
            lines.append(f"    w{index} = {which_oneof}(m, {oneof.name!r})")
            oneof_of.update({field.name: f"w{index}" for field in members})
        for field in sorted(descriptor.fields, key=lambda field: field.number):
            lines += self.field(field, oneof_of.get(field.name), has_field)
        lines += ["    if len(p) > s:", "        p[s] = p[s][2:]", "    a('}')"]
        return lines

    def field(
        self, field: FieldDescriptor, oneof_variable: str | None, has_field: str
    ) -> list[str]:
        name = field.name
        key = self.key(field)
        if _is_map(field):
            return [f"    v = m.{name}", "    if v:", *self.map(field, key)]
        kind = _value_kind(field)
        if field.is_repeated:
            return [f"    v = m.{name}", "    if v:", *self.repeated(field, kind, key)]
        if oneof_variable is not None:
            condition = f"{oneof_variable} == {name!r}"
        elif field.has_presence and (kind in ("message", "timestamp") or field.default_value):
            condition = f"{has_field}(m, {name!r})"
        else:
            # A scalar holding something other than its falsy default is
            # present; only the others need asking.
            test = "v or _is_negative_zero(v)" if kind == "double" else "v"
            if field.has_presence:
                test += f" or {has_field}(m, {name!r})"
            return [f"    v = m.{name}", f"    if {test}:", *self.single(field, kind, key)]
        return [f"    if {condition}:", f"        v = m.{name}", *self.single(field, kind, key)]

    def single(self, field: FieldDescriptor, kind: str, key: str) -> list[str]:
        """Return the statements appending the key and value ``v`` of a singular field."""
        constant = self.source.constant
        formats = {"int32": "%d", "int64": _QUOTED_INTEGER}
        if kind in formats:
            return [f"        a({constant(key + formats[kind])} % v)"]
        if kind == "bool":
            return [f"        a({constant(key + 'true')} if v else {constant(key + 'false')})"]
        if kind == "message":
            assert field.message_type is not None
            return self.single_message(field.message_type, key)
        return [f"        a({constant(key)} + {self.scalar('v', field, kind)})"]

    def single_message(self, descriptor: Descriptor, key: str) -> list[str]:
        """Return the statements appending the key and message ``v`` of a singular field."""
        constant = self.source.constant
        if not descriptor.fields:
            return [f"        a({constant(key + '{}')})"]
        inline = self.inline(descriptor, "v")
        if inline is not None:
            return [f"        a({constant(key)} + {inline})"]
        return [f"        a({constant(key + '{')})", f"        {self.function(descriptor)}(v, p)"]

    def inline(self, descriptor: Descriptor, variable: str) -> str | None:
        """Return an expression writing a message of one implicit scalar field, if it is one.

        Such small messages (``{"name": "SURFACE"}``) are written in place,
        saving a function call.
        """
        if len(descriptor.fields) != 1:
            return None
        field = descriptor.fields[0]
        if field.is_repeated or field.has_presence or field.message_type is not None:
            return None
        kind = _value_kind(field)
        test = "(z := {v}.{f}) or _is_negative_zero(z)" if kind == "double" else "(z := {v}.{f})"
        test = test.format(v=variable, f=field.name)
        member = "{" + self.key(field)[2:]
        constant = self.source.constant
        if kind == "bool":
            return f"({constant(member + 'true}')} if {test} else '{{}}')"
        if kind in ("int32", "int64"):
            number = "%d" if kind == "int32" else _QUOTED_INTEGER
            return f"({constant(member + number + '}')} % z if {test} else '{{}}')"
        value = self.scalar("z", field, kind)
        return f"({constant(member)} + {value} + '}}' if {test} else '{{}}')"

    def repeated(self, field: FieldDescriptor, kind: str, key: str) -> list[str]:
        """Return the statements appending the key and the non-empty list ``v``."""
        constant = self.source.constant
        if kind == "message":
            assert field.message_type is not None
            if not field.message_type.fields:
                return [f"        a({constant(key + '[')} + ', '.join(['{{}}'] * len(v)) + ']')"]
            inline = self.inline(field.message_type, "y")
            if inline is not None:
                return [
                    f"        o = {constant(key + '[')}",
                    "        for y in v:",
                    f"            a(o + {inline})",
                    "            o = ', '",
                    "        a(']')",
                ]
            function = self.function(field.message_type)
            return [
                f"        o = {constant(key + '[{')}",
                "        for x in v:",
                "            a(o)",
                f"            {function}(x, p)",
                "            o = ', {'",
                "        a(']')",
            ]
        if kind == "enum":
            items = f"[{self.scalar('x', field, kind)} for x in v]"
        else:
            items = f"map({self.scalar_function(kind)}, v)"
        return [f"        a({constant(key + '[')} + ', '.join({items}) + ']')"]

    def scalar_function(self, kind: str) -> str:
        """Return the name of a function writing one scalar value of a kind (not enums)."""
        functions = {
            "string": "_string",
            "int32": f"{self.source.constant('%d')}.__mod__",
            "int64": f"{self.source.constant(_QUOTED_INTEGER)}.__mod__",
            "bool": f"{self.source.constant({True: 'true', False: 'false'})}.__getitem__",
            "double": "_double_text",
            "timestamp": "_timestamp_text",
        }
        return functions[kind]

    def scalar(self, variable: str, field: FieldDescriptor, kind: str) -> str:
        """Return the expression of the JSON text of one non-message value."""
        if kind == "enum":
            enum_type = field.enum_type
            assert enum_type is not None
            names = {value.number: _string_text(value.name) for value in enum_type.values}
            unknown = "_closed_enum_text" if enum_type.is_closed else "_enum_text"
            return f"({self.source.constant(names)}.get({variable}) or {unknown}({variable}))"
        return f"{self.scalar_function(kind)}({variable})"

    def map(self, field: FieldDescriptor, key: str) -> list[str]:
        """Return the statements appending the key and the non-empty map ``v``."""
        entry = field.message_type
        assert entry is not None
        key_kind = _value_kind(entry.fields_by_name["key"])
        key_text = {
            "string": "_string(k)",
            "bool": "('\"true\"' if k else '\"false\"')",
        }.get(key_kind, f"{self.source.constant(_QUOTED_INTEGER)} % k")
        value_field = entry.fields_by_name["value"]
        value_kind = _value_kind(value_field)
        value_type = value_field.message_type
        lines = [f"        o = {self.source.constant(key + '{')}", "        for k in v:"]
        if value_type is not None and value_kind == "message" and value_type.fields:
            function = self.function(value_type)
            lines += [f"            a(o + {key_text} + ': {{')", f"            {function}(v[k], p)"]
        elif value_kind == "message":
            lines.append(f"            a(o + {key_text} + ': {{}}')")
        else:
            value = self.scalar("v[k]", value_field, value_kind)
            lines.append(f"            a(o + {key_text} + ': ' + {value})")
        lines += ["            o = ', '", "        a('}')"]
        return lines


# ---------------------------------------------------------------------------
# Decoders.


# How a JSON value ``{v}`` of a kind is checked and converted.
_DECODE_TEMPLATES = {
    "string": "({v} if type({v}) is str else _fail())",
    "bool": "({v} if type({v}) is bool else _fail())",
    "double": "({v} if type({v}) is float and {v} - {v} == 0.0 else _double({v}))",
    "timestamp": "_timestamp({v})",
}


class _DecoderCompiler(_Compiler):
    def __init__(self, *, strict: bool) -> None:
        super().__init__("d")
        self._strict = strict

    def body(self, descriptor: Descriptor) -> list[str]:
        # The members are renamed to the fields they set: a member that is
        # no field, or a field given under both of its names, leaves fewer
        # arguments than members. Then each value is converted, but those the
        # message constructor checks as JSON would (singular strings, open
        # enums by name or number): it raises for any other value, and the
        # generic path decides.
        fields = list(descriptor.fields)
        names = self.source.constant(
            {key: field.name for field in fields for key in (field.json_name, field.name)}
        )
        lines = ["    if type(m) is not dict:", "        raise _Fallback"]
        # A loop rather than a comprehension (on Python 3.11 a function call of
        # its own) or dict(zip(map(...))) (half as fast again for 8 members).
        lines += ["    kw = {}"]
        if self._strict:
            lines += [
                "    try:",
                "        for k, x in m.items():",
                f"            kw[{names}[k]] = x",
                "    except KeyError:",
                "        raise _Fallback from None",
                "    if len(kw) != len(m):",
                "        raise _Fallback",
            ]
        else:
            lines += [
                "    for k, x in m.items():",
                f"        if k in {names}:",
                f"            kw[{names}[k]] = x",
                "    if len(kw) != len(m):",
                f"        _unknown_members(m, {names}, len(kw))",
            ]
        for field in fields:
            if not _checked_by_constructor(field):
                lines += [
                    f"    x = kw.get({field.name!r})",
                    "    if x is not None:",
                    f"        kw[{field.name!r}] = {self.field(field)}",
                ]
        for members in _multi_member_oneofs(descriptor):
            count = " + ".join(f"(kw.get({field.name!r}) is not None)" for field in members)
            lines += [f"    if {count} > 1:", "        raise _Fallback"]
        lines.append("    return kw")
        return lines

    def field(self, field: FieldDescriptor) -> str:
        """Return the expression converting the JSON value ``x`` of a field."""
        if _is_map(field):
            return self.map(field)
        kind = _value_kind(field)
        if field.is_repeated:
            item = self.value("y", field, kind)
            return f"([{item} for y in x] if type(x) is list else _fail())"
        return self.value("x", field, kind)

    def value(self, variable: str, field: FieldDescriptor, kind: str) -> str:
        """Return the expression converting one JSON value of a field."""
        if kind in _DECODE_TEMPLATES:
            return _DECODE_TEMPLATES[kind].format(v=variable)
        if kind in ("int32", "int64"):
            low, high = _int_range(field)
            v = variable
            # A string of fewer ASCII digits than the largest value is in range.
            digits = len(str(high))
            return (
                f"({v} if type({v}) is int and {low} <= {v} <= {high} "
                f"else int({v}) if type({v}) is str and len({v}) < {digits} "
                f"and {v}.isdigit() and {v}.isascii() "
                f"else _integer({v}, {low}, {high}))"
            )
        if kind == "enum":
            assert field.enum_type is not None
            return self.enum(variable, field.enum_type)
        assert field.message_type is not None
        return f"{self.function(field.message_type)}({variable})"

    def enum(self, variable: str, enum_type: EnumDescriptor) -> str:
        """Return the expression converting an enum value, by name or by number."""
        v = variable
        numbers = self.source.constant({value.name: value.number for value in enum_type.values})
        if enum_type.is_closed:
            known = self.source.constant(frozenset(value.number for value in enum_type.values))
            by_number = f"_closed_enum_number({v}, {known})"
        else:
            by_number = f"_enum_number({v})"
        return f"({numbers}[{v}] if type({v}) is str else {by_number})"

    def map(self, field: FieldDescriptor) -> str:
        entry = field.message_type
        assert entry is not None
        key_field = entry.fields_by_name["key"]
        value_field = entry.fields_by_name["value"]
        key_kind = _value_kind(key_field)
        value = self.value("y", value_field, _value_kind(value_field))
        if key_kind == "string":
            return f"({{k: {value} for k, y in x.items()}} if type(x) is dict else _fail())"
        if key_kind == "bool":
            key = f"{self.source.constant(_MAP_BOOL_KEYS)}[k]"
        else:
            low, high = _int_range(key_field)
            key = f"_integer(k, {low}, {high})"
        return (
            f"(_same_size({{{key}: {value} for k, y in x.items()}}, x) "
            "if type(x) is dict else _fail())"
        )


# ---------------------------------------------------------------------------
# The cached entry points.

_lock = threading.Lock()
_MISSING = object()
_encoders: dict[tuple[type[Message], bool], Encoder | None] = {}
_decoders: dict[tuple[type[Message], bool], Callable[[bytes | str], Message] | None] = {}


def _root(descriptor: Descriptor) -> None:
    if descriptor.full_name == _TIMESTAMP_NAME:
        raise Unsupported(_TIMESTAMP_NAME)
    _check_message(descriptor)


def _encode_empty(message: Message) -> bytes:
    del message
    return b"{}"


def _build_encoder(message_type: type[Message], proto_field_names: bool) -> Encoder | None:
    descriptor = cast(Descriptor, message_type.DESCRIPTOR)
    compiler = _EncoderCompiler(proto_field_names=proto_field_names)
    try:
        _root(descriptor)
        if not descriptor.fields:
            return _encode_empty  # a type without fields (nor extensions) always writes {}
        name = compiler.function(descriptor)
    except Unsupported:
        return None
    namespace = compiler.source.compile(f"encode {descriptor.full_name}")
    append = cast(Callable[[Message, list[str]], None], namespace[name])

    def encode(message: Message) -> bytes:
        pieces = ["{"]
        append(message, pieces)
        return "".join(pieces).encode()

    return encode


def _build_decoder(
    message_type: type[Message], strict: bool
) -> Callable[[bytes | str], Message] | None:
    descriptor = cast(Descriptor, message_type.DESCRIPTOR)
    compiler = _DecoderCompiler(strict=strict)
    try:
        _root(descriptor)
        name = compiler.function(descriptor)
    except Unsupported:
        return None
    source = compiler.source
    # The entry point is generated too: one function, not a closure around
    # the generated one, between the caller and the message constructor.
    source.lines += [
        "def _decode(data):",
        f"    document = {source.constant(orjson.loads)}(data)",
        f"    kw = {name}(document)",
        "    if (data.count(b':') if type(data) is bytes else data.count(':')) != len(document):",
        f"        {source.constant(_check_no_repeated_keys)}(data, document)",
        f"    return {source.constant(message_type)}(**kw)",
    ]
    namespace = source.compile(f"decode {descriptor.full_name}")
    return cast(Callable[[bytes | str], Message], namespace["_decode"])


def _check_no_repeated_keys(data: bytes | str, document: object) -> None:
    r"""Raise Fallback if the text repeats a key of an object (orjson keeps the last one).

    Every key in the text is followed by a colon, so when the colons are as
    many as the top-level members no key was repeated (the caller checks
    that). Otherwise a colon in the text is a key's or inside a string, and
    one inside a string is written as ":" or as "\u003a"; so the colons of
    the text and its escaped colons add up to the colons of the document
    written again exactly when no key was dropped.
    """
    if isinstance(data, str):
        colons = data.count(":")
        if "\\u003" in data:
            colons += len(_ESCAPED_COLON_TEXT.findall(data))
    else:
        colons = data.count(b":")
        if b"\\u003" in data:
            colons += len(_ESCAPED_COLON.findall(data))
    if colons != orjson.dumps(document).count(b":"):
        raise Fallback


def _built_once(
    cache: dict[tuple[type[Message], bool], Any],
    key: tuple[type[Message], bool],
    build: Callable[[type[Message], bool], object],
) -> object:
    """Return ``cache[key]``, built by ``build(*key)`` the first time (once across threads)."""
    found = cache.get(key, _MISSING)
    if found is _MISSING:
        with _lock:
            found = cache.get(key, _MISSING)
            if found is _MISSING:
                found = cache[key] = build(*key)
    return found


def encoder(message_type: type[Message], *, proto_field_names: bool) -> Encoder | None:
    """Return the specialised encoder of a message type, or None if it has none.

    The encoder returns exactly the bytes of ``json_format.MessageToJson(message,
    indent=None, preserving_proto_field_name=proto_field_names)`` encoded as
    UTF-8, or raises where json_format would raise (or where it is unsure).
    """
    found = _built_once(_encoders, (message_type, proto_field_names), _build_encoder)
    return cast("Encoder | None", found)


def decoder(message_type: type[M], *, strict: bool) -> Decoder[M] | None:
    """Return the specialised decoder of a message type, or None if it has none.

    The decoder returns a message equal to what the generic codec returns for
    the same text (strictly or leniently read), or raises when the generic
    codec must decide: for every document it rejects, and for some unusual
    ones it accepts.
    """
    found = _built_once(_decoders, (cast(type[Message], message_type), strict), _build_decoder)
    return cast("Decoder[M] | None", found)
