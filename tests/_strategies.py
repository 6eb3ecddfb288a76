"""Hypothesis strategies for arbitrary messages of any type, read from its descriptor.

``messages(T)`` draws valid protobuf messages of ``T``: every scalar type over
its whole range (64-bit extremes included), ``NaN`` and infinities, Unicode
strings (empty ones too), every case of every oneof (and none), proto3
``optional`` fields both unset and set (to a default value too), repeated
fields and maps, ``google.protobuf.Timestamp`` and ``Duration`` over their
whole valid ranges, the other well-known types (``Struct``, ``Value``,
``ListValue``, ``FieldMask``, ``Any`` holding a well-known type, wrappers,
``Empty``) with JSON forms, and nested messages down to a bounded depth.
Message types may come from any descriptor pool: each value is built with
its own pool's classes.

"Valid" is in protobuf's sense: anything that serializes and has a proto3
JSON form. ``(google.api.field_behavior)`` and ``oneof_required`` are not
honoured, so a drawn request may well fail the API's validation.

Two kinds of float compare unequally after a JSON round trip through some
implementations, so each can be switched off:

- ``allow_nan``: JSON has a single ``"NaN"``, so only the canonical quiet NaN
  is drawn. Messages compare floats bit for bit (upb), so such a NaN equals
  itself in ``==`` of messages, though ``math.nan != math.nan``.
- ``allow_negative_zero``: ``-0.0`` is written as ``-0.0`` by Python but as
  ``0`` by JavaScript's ``JSON.stringify``, and ``-0.0`` and ``0.0`` are
  different messages.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, TypeVar, cast

from google.protobuf import (
    any_pb2,
    descriptor_pb2,
    duration_pb2,
    empty_pb2,
    field_mask_pb2,
    json_format,
    struct_pb2,
    timestamp_pb2,
    wrappers_pb2,
)
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from hypothesis import strategies as st

M = TypeVar("M", bound=Message)

# The range of google.protobuf.Timestamp: 0001-01-01T00:00:00Z to
# 9999-12-31T23:59:59.999999999Z.
TIMESTAMP_MIN_SECONDS = -62_135_596_800
TIMESTAMP_MAX_SECONDS = 253_402_300_799
# The range of google.protobuf.Duration: about +-10,000 years.
DURATION_MAX_SECONDS = 315_576_000_000
MAX_NANOS = 999_999_999

_INT32 = (-(2**31), 2**31 - 1)
_UINT32 = (0, 2**32 - 1)
_INT64 = (-(2**63), 2**63 - 1)
_UINT64 = (0, 2**64 - 1)
_INTEGER_RANGES = {
    FieldDescriptor.TYPE_INT32: _INT32,
    FieldDescriptor.TYPE_SINT32: _INT32,
    FieldDescriptor.TYPE_SFIXED32: _INT32,
    FieldDescriptor.TYPE_UINT32: _UINT32,
    FieldDescriptor.TYPE_FIXED32: _UINT32,
    FieldDescriptor.TYPE_INT64: _INT64,
    FieldDescriptor.TYPE_SINT64: _INT64,
    FieldDescriptor.TYPE_SFIXED64: _INT64,
    FieldDescriptor.TYPE_UINT64: _UINT64,
    FieldDescriptor.TYPE_FIXED64: _UINT64,
}
_TIMESTAMP = "google.protobuf.Timestamp"
_MESSAGE_ATTRIBUTES = frozenset(dir(Message))
_DURATION = "google.protobuf.Duration"
# The well-known types an Any is drawn holding (as their default pool classes).
_PACKABLE: list[type[Message]] = [
    duration_pb2.Duration,
    timestamp_pb2.Timestamp,
    empty_pb2.Empty,
    field_mask_pb2.FieldMask,
    struct_pb2.Struct,
    struct_pb2.Value,
    wrappers_pb2.StringValue,
    wrappers_pb2.Int64Value,
]
# FieldMask paths that have a JSON form: lower case words joined by "_" and ".".
_MASK_PATH = st.from_regex(r"[a-z]{1,3}(_[a-z]{1,3})?(\.[a-z]{1,3})?", fullmatch=True)


def timestamps(
    timestamp_class: type[M] = timestamp_pb2.Timestamp,  # type: ignore[assignment]
) -> st.SearchStrategy[M]:
    """Draw Timestamps anywhere in 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59.999999999Z."""
    seconds = st.one_of(
        st.sampled_from([TIMESTAMP_MIN_SECONDS, TIMESTAMP_MAX_SECONDS, 0, -1]),
        st.integers(TIMESTAMP_MIN_SECONDS, TIMESTAMP_MAX_SECONDS),
    )
    nanos = st.one_of(st.sampled_from([0, MAX_NANOS, 1_000_000, 1_000]), st.integers(0, MAX_NANOS))
    return st.builds(timestamp_class, seconds=seconds, nanos=nanos)


def durations(
    duration_class: type[M] = duration_pb2.Duration,  # type: ignore[assignment]
) -> st.SearchStrategy[M]:
    """Draw Durations over their whole range; seconds and nanos share a sign."""
    seconds = st.integers(-DURATION_MAX_SECONDS, DURATION_MAX_SECONDS)

    def with_nanos(second: int) -> st.SearchStrategy[M]:
        if second > 0:
            nanos = st.integers(0, MAX_NANOS)
        elif second < 0:
            nanos = st.integers(-MAX_NANOS, 0)
        else:
            nanos = st.integers(-MAX_NANOS, MAX_NANOS)
        return st.builds(duration_class, seconds=st.just(second), nanos=nanos)

    return seconds.flatmap(with_nanos)


def _json_values(max_size: int) -> st.SearchStrategy[Any]:
    """Draw the JSON values a ``google.protobuf.Value`` holds (finite numbers only)."""
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(st.characters(codec="utf-8"), max_size=6),
    )
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=max_size),
            st.dictionaries(st.text(max_size=4), inner, max_size=max_size),
        ),
        max_leaves=6,
    )


def _packed(message: Message) -> Message:
    """Return an Any (of the default pool) holding a message."""
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def messages(
    message_type: type[M],
    *,
    allow_nan: bool = True,
    allow_negative_zero: bool = True,
    max_depth: int = 6,
    max_size: int = 3,
    cache: bool = True,
) -> st.SearchStrategy[M]:
    """Draw arbitrary valid messages of message_type.

    max_depth bounds the nesting of message fields below the drawn message (a
    message field deeper than that is left unset, and a repeated or map one
    empty); well-known types are leaves and do not count. max_size bounds
    every repeated field and map. ``cache=False`` builds the strategy anew
    rather than keeping it for the next call (for types that live briefly).
    """
    key = (message_type, allow_nan, allow_negative_zero, max_depth, max_size)
    found = _MESSAGES.get(key) if cache else None
    if found is None:
        builder = _Builder(
            allow_nan=allow_nan,
            allow_negative_zero=allow_negative_zero,
            max_depth=max_depth,
            max_size=max_size,
        )
        found = builder.message(cast("Descriptor", message_type.DESCRIPTOR), 0)
        if cache:
            _MESSAGES[key] = found
    return cast("st.SearchStrategy[M]", found)


# Strategies already built, by the arguments of messages().
_MESSAGES: dict[tuple[type[Message], bool, bool, int, int], st.SearchStrategy[Message]] = {}


def _build(message_class: type[Message], parts: tuple[dict[str, Any], ...]) -> Message:
    """Construct a message from keyword arguments, leaving unset the ones drawn as None."""
    kwargs: dict[str, Any] = {}
    for part in parts:
        kwargs.update((name, value) for name, value in part.items() if value is not None)
    return message_class(**kwargs)


@dataclasses.dataclass
class _Builder:
    """Builds and caches the strategy of each message type at each depth."""

    allow_nan: bool
    allow_negative_zero: bool
    max_depth: int
    max_size: int
    cache: dict[tuple[str, int], st.SearchStrategy[Message]] = dataclasses.field(
        default_factory=dict
    )

    def message(self, descriptor: Descriptor, depth: int) -> st.SearchStrategy[Message]:
        """Return the strategy of a message type drawn at a nesting depth."""
        key = (descriptor.full_name, depth)
        if key not in self.cache:
            self.cache[key] = self._new_message(descriptor, depth)
        return self.cache[key]

    def _new_message(self, descriptor: Descriptor, depth: int) -> st.SearchStrategy[Message]:
        well_known = self._well_known(descriptor)
        if well_known is not None:
            return well_known
        proto = descriptor_pb2.DescriptorProto()
        descriptor.CopyToProto(proto)
        proto3_optional = {field.name for field in proto.field if field.proto3_optional}
        plain: dict[str, st.SearchStrategy[Any]] = {}
        for field in descriptor.fields:
            if field.containing_oneof is not None and field.name not in proto3_optional:
                continue
            strategy = self._field(field, depth)
            if strategy is not None:
                present = field.has_presence and not field.is_repeated
                plain[field.name] = st.none() | strategy if present else strategy
        parts: list[st.SearchStrategy[dict[str, Any]]] = [st.fixed_dictionaries(plain)]
        for oneof in descriptor.oneofs:
            cases: list[st.SearchStrategy[dict[str, Any]]] = [st.just({})]
            for field in oneof.fields:
                if field.name in proto3_optional:
                    continue
                strategy = self._field(field, depth)
                if strategy is not None:
                    cases.append(st.fixed_dictionaries({field.name: strategy}))
            if len(cases) > 1:
                parts.append(st.one_of(cases))
        return st.tuples(*parts).map(functools.partial(_build, GetMessageClass(descriptor)))

    def _well_known(self, descriptor: Descriptor) -> st.SearchStrategy[Message] | None:
        """Return the strategy of a well-known type whose JSON form constrains its fields."""
        name = descriptor.full_name
        message_class = GetMessageClass(descriptor)
        if name == _TIMESTAMP:
            return timestamps(message_class)
        if name == _DURATION:
            return durations(message_class)
        if name == "google.protobuf.FieldMask":
            return st.builds(message_class, paths=st.lists(_MASK_PATH, max_size=self.max_size))
        if name in ("google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue"):
            shape = {
                "google.protobuf.Struct": dict,
                "google.protobuf.ListValue": list,
                "google.protobuf.Value": object,
            }[name]
            values = _json_values(self.max_size).filter(lambda value: isinstance(value, shape))
            return values.map(functools.partial(_parsed, message_class))
        if name == "google.protobuf.Any":
            # Anys of the pool's own types would need that pool to be read.
            packable = st.sampled_from(_PACKABLE).flatmap(self._default_pool_message)
            return packable.map(_packed).map(functools.partial(_copied, message_class))
        return None

    def _default_pool_message(self, message_class: type[Message]) -> st.SearchStrategy[Message]:
        return self.message(cast(Descriptor, message_class.DESCRIPTOR), self.max_depth)

    def _field(self, field: FieldDescriptor, depth: int) -> st.SearchStrategy[Any] | None:
        """Return the strategy of a field's value, or None if it must stay unset."""
        entry = field.message_type
        if entry is not None and entry.GetOptions().map_entry:
            key_field = entry.fields_by_name["key"]
            value = self._single(entry.fields_by_name["value"], depth)
            if value is None:
                return st.just({})
            keys = self._single(key_field, depth)
            assert keys is not None  # map keys are scalars
            return st.dictionaries(keys, value, max_size=self.max_size)
        single = self._single(field, depth)
        if field.is_repeated:
            return st.just([]) if single is None else st.lists(single, max_size=self.max_size)
        return single

    def _single(self, field: FieldDescriptor, depth: int) -> st.SearchStrategy[Any] | None:
        """Return the strategy of one value of a field; None for a message too deep."""
        if field.message_type is not None:
            leaf = field.message_type.full_name.startswith("google.protobuf.")
            if not leaf and depth + 1 > self.max_depth:
                return None
            return self.message(field.message_type, depth + 1)
        if field.enum_type is not None:
            return st.sampled_from([value.number for value in field.enum_type.values])
        return self._scalar(field)

    def _scalar(self, field: FieldDescriptor) -> st.SearchStrategy[Any]:
        """Return the strategy of a scalar field's value."""
        if field.type in _INTEGER_RANGES:
            low, high = _INTEGER_RANGES[field.type]
            edges = [low, high, 0, 1, -1, 2**53, 2**53 + 1, -(2**53) - 1]
            return st.one_of(
                st.sampled_from([edge for edge in edges if low <= edge <= high]),
                st.integers(low, high),
            )
        strategies: dict[int, st.SearchStrategy[Any]] = {
            FieldDescriptor.TYPE_DOUBLE: self._floats(64),
            FieldDescriptor.TYPE_FLOAT: self._floats(32),
            FieldDescriptor.TYPE_BOOL: st.booleans(),
            # Valid UTF-8 only: no lone surrogates.
            FieldDescriptor.TYPE_STRING: st.text(st.characters(codec="utf-8"), max_size=12),
            FieldDescriptor.TYPE_BYTES: st.binary(max_size=12),
        }
        if field.type not in strategies:
            raise ValueError(f"unsupported field type {field.type} of {field.full_name}")
        return strategies[field.type]

    def _floats(self, width: int) -> st.SearchStrategy[float]:
        # Widths 16, 32 and 64 are what hypothesis accepts; a literal keeps mypy exact.
        floats = st.floats(width=32 if width == 32 else 64, allow_nan=False)
        if not self.allow_negative_zero:
            floats = floats.map(lambda value: 0.0 if value == 0 else value)
        if self.allow_nan:
            floats = floats | st.just(math.nan)
        return floats


def _parsed(message_class: type[M], value: object) -> M:
    """Return a Struct, Value or ListValue holding a JSON value."""
    return json_format.ParseDict(cast(Any, value), message_class())


def _copied(message_class: type[M], message: Message) -> M:
    """Return a message as an instance of an equivalent class (of another pool)."""
    return message_class.FromString(message.SerializeToString())


_long_or_special_text = st.one_of(
    st.text(st.characters(codec="utf-8"), min_size=200, max_size=5000),
    st.sampled_from(
        [
            "",
            "\u2028\u2029",
            '"\\/\b\f\n\r\t\x00\x1f\x7f',
            ":,{}[]",
            "😀 and ' and \\u003a",
            "\ufeff",
            "a" * 65_536,
        ]
    ),
)


def _without_json_form(message: Message) -> None:
    """Make a well-known message one json_format cannot write, if it can be made so."""
    name = message.DESCRIPTOR.full_name
    if name == _TIMESTAMP:
        message.seconds = TIMESTAMP_MAX_SECONDS + 1  # type: ignore[attr-defined]
    elif name == _DURATION:
        message.seconds, message.nanos = 1, -1  # type: ignore[attr-defined]
    elif name == "google.protobuf.Value":
        message.number_value = math.inf  # type: ignore[attr-defined]
    elif name == "google.protobuf.FieldMask":
        message.paths.append("notLowerCase")  # type: ignore[attr-defined]


def tweak_to_edges(message: Message, data: st.DataObject, *, beyond_json: bool = False) -> None:
    """Set some open enums to unknown numbers and some strings to long or special text.

    With ``beyond_json``, also make some well-known values ones that have no
    JSON form (a Timestamp after year 9999, a Duration of mixed signs, an
    infinite Value, a FieldMask path in camelCase), as a caller may.
    """
    descriptor = cast(Descriptor, message.DESCRIPTOR)
    if any(field.name in _MESSAGE_ATTRIBUTES for field in descriptor.fields):
        return  # a field named HasField hides the method: left as drawn
    for field in descriptor.fields:
        if field.is_repeated or field.containing_oneof is not None:
            continue
        if field.message_type is not None:
            if message.HasField(field.name) and data.draw(st.booleans()):
                child = getattr(message, field.name)
                if beyond_json and data.draw(st.integers(0, 3)) == 0:
                    _without_json_form(child)
                else:
                    tweak_to_edges(child, data, beyond_json=beyond_json)
        elif field.enum_type is not None and not field.enum_type.is_closed:
            if data.draw(st.integers(0, 4)) == 0:
                setattr(message, field.name, data.draw(st.integers(-(2**31), 2**31 - 1)))
        elif field.type == FieldDescriptor.TYPE_STRING and data.draw(st.integers(0, 4)) == 0:
            setattr(message, field.name, data.draw(_long_or_special_text))


def null_some_fields(
    fields: dict[str, object], descriptor: Descriptor, data: st.DataObject
) -> None:
    """Set some of a message's constructor arguments to None, at every depth (as JSON null does)."""
    for name, value in list(fields.items()):
        field = descriptor.fields_by_name[name]
        entry = field.message_type
        if data.draw(st.integers(0, 3), label=f"null {name}") == 0:
            fields[name] = None
        elif entry is None or entry.GetOptions().map_entry or value is None:
            continue
        elif field.is_repeated:
            for item in cast(list[dict[str, object]], value):
                null_some_fields(item, entry, data)
        elif entry.full_name != "google.protobuf.Timestamp":
            null_some_fields(cast(dict[str, object], value), entry, data)
