"""Differential tests: the specialised fast codec against the generic json_format one.

For arbitrary messages of every API type (and of synthetic types covering
every scalar type, map key type, oneof, ``optional`` and proto2 shape), the
fast encoder writes exactly ``json_format.MessageToJson(indent=None)``'s
bytes, the fast decoder reads canonical JSON itself into equal messages, and
for mutated documents (wrong types, out-of-range numbers, bad timestamps,
unknown fields and enum names, duplicate keys, names given twice, several
oneof members, malformed text) ``RestCodec()`` and ``RestCodec(fast=False)``
agree exactly: the same message, or the same error with the same violations.

The fast decoders are checked on both JSON backends: orjson, and the
standard library reading as orjson does. On every document the fast decoder
on each backend decides the same (the same message, or a raise that hands
the document to the generic path), and a codec on either backend gives the
generic codec's outcome.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable
from typing import Any, TypeVar, cast

import pytest
from google.protobuf import json_format, timestamp_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from auxia.decision.model import data_field_pb2
from auxia.decision.model import treatment_interaction_service_pb2 as interactions
from auxia.decision.model import treatment_management_service_pb2 as management
from auxia_decision import ApiError, JsonProfile, RestCodec, _fastjson
from auxia_decision._fastjson import json_backend
from auxia_decision._fastjson._encoders import LOCALS
from auxia_decision._fastjson.json_backend import JsonBackend
from auxia_decision._routes import routes
from auxia_decision._source import renamed
from tests import _sink
from tests._codecs import CodecOn
from tests._fixtures import BROKEN, PARSEABLE
from tests._strategies import (
    TIMESTAMP_MAX_SECONDS,
    TIMESTAMP_MIN_SECONDS,
    messages,
    null_some_fields,
    timestamps,
    tweak_to_edges,
)

M = TypeVar("M", bound=Message)


FAST = RestCodec()  # on the backend in use: orjson, which the tests install
FAST_STDLIB = CodecOn(json_backend.STDLIB)
GENERIC = RestCodec(fast=False)
BACKENDS = [json_backend.ORJSON, json_backend.STDLIB]
API_TYPES: list[type[Message]] = sorted(
    {t for route in routes() for t in (route.request_type, route.response_type)},
    key=lambda t: t.DESCRIPTOR.full_name,
)
SINK = _sink.message_type("Sink")
LEGACY = _sink.message_type("Legacy")
TYPES = [*API_TYPES, SINK, LEGACY]
SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _ids(message_type: type[Message]) -> str:
    return str(message_type.DESCRIPTOR.name)


def _backend_ids(backend: JsonBackend) -> str:
    return backend.name


def fast_decoder(
    backend: JsonBackend, message_type: type[M], *, strict: bool
) -> Callable[[bytes | str], M]:
    """Return the fast decoder of a type on a backend (every type tested here has one)."""
    decoder = _fastjson.decoder(message_type, strict=strict, backend=backend)
    assert decoder is not None
    return decoder


def _descriptor(message_type: type[Message]) -> Descriptor:
    return cast(Descriptor, message_type.DESCRIPTOR)


Outcome = tuple[Any, ...]


def outcome(
    codec: RestCodec, text: bytes | str, message_type: type[Message], *, strict: bool
) -> Outcome:
    """Return what decoding gives: the message, or the error and its violations."""
    decode = codec.decode_request if strict else codec.decode_response
    try:
        return ("message", decode(text, message_type))
    except ApiError as error:
        violations = [(v.field, v.description) for v in error.field_violations]
        return ("ApiError", error.code, error.message, violations)
    except Exception as error:  # whatever it is, both paths must agree
        return (type(error).__name__, str(error))


def fast_outcome(
    backend: JsonBackend, text: bytes | str, message_type: type[Message], *, strict: bool
) -> Outcome:
    """Return what the fast decoder on a backend decides: the message, or that it raised."""
    decode = _fastjson.decoder(message_type, strict=strict, backend=backend)
    if decode is None:
        return ("no fast decoder",)
    try:
        return ("message", decode(text))
    except Exception:  # the generic path decides
        return ("raised",)


def fields_outcome(backend: JsonBackend, text: bytes | str, message_type: type[Message]) -> Outcome:
    """Return what the fields decoder on a backend decides: the message its fields build, or not."""
    decode = _fastjson.fields_decoder(message_type, backend=backend)
    if decode is None:
        return ("no fields decoder",)
    try:
        fields = decode(text)
    except Exception:  # the caller decodes the message instead
        return ("raised",)
    return ("message", message_type(**fields))


def assert_decided_alike(text: bytes | str, message_type: type[Message]) -> None:
    """Assert every path decodes a text the same, strictly and leniently.

    The codecs on orjson and on the stdlib give the generic codec's outcome,
    and the fast decoders on both backends decide the same. The fields
    decoders accept only what the codec accepts, and their fields build the
    same message.
    """
    accepted = outcome(GENERIC, text, message_type, strict=True)
    for backend in BACKENDS:
        fields = fields_outcome(backend, text, message_type)
        assert fields in (accepted, ("raised",)), (backend.name, text)
    for strict in (True, False):
        generic = outcome(GENERIC, text, message_type, strict=strict)
        assert outcome(FAST, text, message_type, strict=strict) == generic, (strict, text)
        assert outcome(FAST_STDLIB, text, message_type, strict=strict) == generic, (strict, text)
        on_orjson, on_stdlib = (
            fast_outcome(backend, text, message_type, strict=strict) for backend in BACKENDS
        )
        assert on_stdlib == on_orjson, (strict, text)


# ---------------------------------------------------------------------------
# Coverage: every API type has specialised functions; the others fall back.


@pytest.mark.parametrize("message_type", TYPES, ids=_ids)
def test_every_type_is_specialised(message_type: type[Message]) -> None:
    for flag in (False, True):
        assert _fastjson.encoder(message_type, proto_field_names=flag) is not None
        assert _fastjson.decoder(message_type, strict=flag) is not None
    assert _fastjson.fields_decoder(message_type) is not None


@pytest.mark.parametrize("backend", BACKENDS, ids=_backend_ids)
@pytest.mark.parametrize("message_type", TYPES, ids=_ids)
@pytest.mark.parametrize("strict", [True, False])
def test_every_type_has_a_decoder_on_each_backend(
    message_type: type[Message], backend: JsonBackend, strict: bool
) -> None:
    assert _fastjson.decoder(message_type, strict=strict, backend=backend) is not None


def test_the_tests_run_orjson_and_the_stdlib_codec_parses_with_the_stdlib(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert json_backend.in_use() is json_backend.ORJSON
    built: list[JsonBackend] = []
    decoder_on = _fastjson._decoder_on

    def spy(backend: JsonBackend, message_type: type[M], *, strict: bool, known_enums: bool) -> Any:
        built.append(backend)
        return decoder_on(backend, message_type, strict=strict, known_enums=known_enums)

    monkeypatch.setattr(_fastjson, "_decoder_on", spy)
    for codec in (CodecOn(json_backend.STDLIB), RestCodec()):
        codec.decode_request(b'{"projectId": "a"}', interactions.LogTreatmentInteractionRequest)
    assert built == [json_backend.STDLIB, json_backend.ORJSON]


@pytest.mark.parametrize("name", ["WithBytesAndFloat", "Tree"])
def test_unsupported_shapes_use_the_generic_path(name: str) -> None:
    message_type = _sink.message_type(name)
    assert _fastjson.encoder(message_type, proto_field_names=False) is None
    assert _fastjson.decoder(message_type, strict=True) is None
    document: dict[str, Any] = (
        {"name": "a", "children": [{"name": "b"}]}
        if name == "Tree"
        else {"name": "é", "data": "AAE=", "ratio": 0.1}
    )
    message = json_format.ParseDict(document, message_type())
    assert FAST.encode(message) == json_format.MessageToJson(message, indent=None).encode()
    assert FAST.decode_request(FAST.encode(message), message_type) == message


def test_generic_codec_never_uses_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the fast path was used")

    monkeypatch.setattr(_fastjson, "encoder", refuse)
    monkeypatch.setattr(_fastjson, "decoder", refuse)
    for sample in PARSEABLE:
        message = GENERIC.decode_response(sample.text(), sample.message_type)
        GENERIC.encode(message)


def test_a_failing_fast_path_still_gives_the_generic_result(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(message_type: type[Message], **kwargs: object) -> Callable[[object], Any]:
        def fail(value: object) -> Any:
            raise RuntimeError("broken")

        return fail

    monkeypatch.setattr(_fastjson, "encoder", broken)
    monkeypatch.setattr(_fastjson, "decoder", broken)
    # A codec of its own: one keeps the coders it built, and FAST is shared.
    codec = RestCodec()
    for sample in PARSEABLE:
        message = json_format.Parse(sample.text(), sample.message_type())
        assert codec.encode(message) == GENERIC.encode(message)
        assert codec.decode_response(sample.text(), sample.message_type) == message


# ---------------------------------------------------------------------------
# Encoding: byte for byte what json_format writes.


@pytest.mark.parametrize("message_type", TYPES, ids=_ids)
def test_encoding_is_byte_identical_to_json_format(message_type: type[Message]) -> None:
    @SETTINGS
    @given(message=messages(message_type), data=st.data())
    def check(message: Message, data: st.DataObject) -> None:
        tweak_to_edges(message, data)
        for proto_field_names in (False, True):
            expected = json_format.MessageToJson(
                message, indent=None, preserving_proto_field_name=proto_field_names
            ).encode()
            encoder = _fastjson.encoder(message_type, proto_field_names=proto_field_names)
            assert encoder is not None
            assert encoder(message) == expected  # decided by the fast path itself
            codec = RestCodec(JsonProfile(use_proto_field_names=proto_field_names))
            assert codec.encode(message) == expected
        # The fields encoder writes the same bytes from the constructor's arguments.
        encode_fields = _fastjson.fields_encoder(message_type)
        if encode_fields is not None:
            decode_fields = _fastjson.fields_decoder(message_type)
            assert decode_fields is not None
            written = FAST.encode(message)
            fields = decode_fields(written)
            assert encode_fields(fields) == written
            null_some_fields(fields, _descriptor(message_type), data)
            assert encode_fields(fields) == FAST.encode(message_type(**fields))

    check()


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("    v = m.v", "    v_1 = m_1.v"),
        ("    a(_k3 + _string(v))", "    a(_k3 + _string(v_1))"),
        ("    w0 = _k4(m, 'm')", "    w0_1 = _k4(m_1, 'm')"),
        ('    a(o + (\'"x"\' if k else "v\'s"))', '    a(o_1 + (\'"x"\' if k_1 else "v\'s"))'),
        ("    for x in v[:]:  # each x", "    for x_1 in v_1[:]:  # each x"),
        ("    mv = getattr(m, 'from') or _k0x", "    mv = getattr(m_1, 'from') or _k0x"),
    ],
)
def test_bodies_written_in_place_rename_their_locals_only(line: str, expected: str) -> None:
    assert renamed([line], LOCALS, "_1") == [expected]


def test_only_types_holding_a_timestamp_have_no_fields_encoder() -> None:
    with_timestamps = {
        message_type
        for message_type in TYPES
        if any(
            field.message_type is not None
            and field.message_type.full_name == "google.protobuf.Timestamp"
            for descriptor in _reachable(_descriptor(message_type))
            for field in descriptor.fields
        )
    }
    assert with_timestamps  # the test would otherwise prove nothing
    for message_type in TYPES:
        has_one = _fastjson.fields_encoder(message_type) is not None
        assert has_one == (message_type not in with_timestamps), message_type


def _reachable(descriptor: Descriptor) -> list[Descriptor]:
    """Return a message type and every message type its fields reach."""
    found: dict[str, Descriptor] = {}
    waiting = [descriptor]
    while waiting:
        current = waiting.pop()
        if current.full_name not in found:
            found[current.full_name] = current
            waiting += [f.message_type for f in current.fields if f.message_type is not None]
    return list(found.values())


@pytest.mark.parametrize("backend", BACKENDS, ids=_backend_ids)
@given(timestamp=timestamps())
@settings(max_examples=300, deadline=None)
@example(timestamp=timestamp_pb2.Timestamp(seconds=TIMESTAMP_MIN_SECONDS))
@example(timestamp=timestamp_pb2.Timestamp(seconds=TIMESTAMP_MAX_SECONDS, nanos=999_999_999))
@example(timestamp=timestamp_pb2.Timestamp(seconds=0, nanos=1_000_000))
@example(timestamp=timestamp_pb2.Timestamp(seconds=-1, nanos=1_000))
@example(timestamp=timestamp_pb2.Timestamp(seconds=951_782_400, nanos=1))
def test_timestamps_are_written_and_read_like_json_format(
    backend: JsonBackend, timestamp: timestamp_pb2.Timestamp
) -> None:
    message = data_field_pb2.DataFieldParams.PropertyValuePb(timestamp_value=timestamp)
    text = FAST.encode(message)
    assert text == json_format.MessageToJson(message, indent=None).encode()
    assert json.loads(text)["timestampValue"] == timestamp.ToJsonString()
    assert fast_decoder(backend, type(message), strict=True)(text) == message


@pytest.mark.parametrize(
    ("seconds", "nanos"),
    [(TIMESTAMP_MIN_SECONDS - 1, 0), (TIMESTAMP_MAX_SECONDS + 1, 0), (0, -1), (0, 10**9)],
)
def test_invalid_timestamps_fail_as_json_format_does(seconds: int, nanos: int) -> None:
    message = data_field_pb2.DataFieldParams.PropertyValuePb()
    message.timestamp_value.seconds = seconds
    message.timestamp_value.nanos = nanos
    with pytest.raises(json_format.SerializeToJsonError):
        json_format.MessageToJson(message)
    with pytest.raises(ApiError) as generic:
        GENERIC.encode(message)
    with pytest.raises(ApiError) as fast:
        FAST.encode(message)
    assert str(fast.value) == str(generic.value)
    [only] = fast.value.field_violations
    assert only.field == "timestampValue"
    assert only.description.startswith("no proto3 JSON form: Timestamp is not valid")


@pytest.mark.parametrize("backend", BACKENDS, ids=_backend_ids)
@pytest.mark.parametrize(
    "value", [0.0, -0.0, math.nan, math.inf, -math.inf, 5e-324, 1e16, 1e-7, 1.7976931348623157e308]
)
def test_doubles_are_written_like_json_format(value: float, backend: JsonBackend) -> None:
    message = data_field_pb2.DataFieldParams.PropertyValuePb(double_value=value)
    assert FAST.encode(message) == json_format.MessageToJson(message, indent=None).encode()
    sink = SINK(double_value=value, repeated_double=[value], double_by_string={"k": value})
    assert FAST.encode(sink) == json_format.MessageToJson(sink, indent=None).encode()
    assert FAST.decode_request(FAST.encode(sink), SINK) == sink
    assert fast_decoder(backend, SINK, strict=True)(FAST.encode(sink)) == sink


@pytest.mark.parametrize("backend", BACKENDS, ids=_backend_ids)
@pytest.mark.parametrize("ensure_ascii", [True, False])
def test_string_escaping_equals_json_dumps_for_every_code_point(
    backend: JsonBackend, ensure_ascii: bool
) -> None:
    every = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000)
    message = interactions.LogTreatmentInteractionRequest(project_id=every)
    assert FAST.encode(message) == json_format.MessageToJson(message, indent=None).encode()
    raw = json.dumps({"projectId": every}, ensure_ascii=ensure_ascii).encode()
    decode = fast_decoder(backend, type(message), strict=True)
    assert decode(raw) == message  # decided by the fast path itself
    assert decode(raw.decode()) == message
    assert FAST.decode_request(FAST.encode(message), type(message)) == message


# ---------------------------------------------------------------------------
# Decoding canonical JSON: the fast path decides it, into json_format's message.


def _texts(message: Message, data: st.DataObject) -> str:
    """Return the message as JSON in one of the forms clients send."""
    proto_names = data.draw(st.booleans(), label="proto_field_names")
    document = json_format.MessageToDict(message, preserving_proto_field_name=proto_names)
    indent = data.draw(st.sampled_from([None, 0, 2]), label="indent")
    ensure_ascii = data.draw(st.booleans(), label="ensure_ascii")
    separators = data.draw(st.sampled_from([(", ", ": "), (",", ":")]), label="separators")
    return json.dumps(document, indent=indent, ensure_ascii=ensure_ascii, separators=separators)


@pytest.mark.parametrize("backend", BACKENDS, ids=_backend_ids)
@pytest.mark.parametrize("message_type", TYPES, ids=_ids)
def test_canonical_json_is_decoded_by_the_fast_path(
    message_type: type[Message], backend: JsonBackend
) -> None:
    @SETTINGS
    @given(message=messages(message_type), data=st.data())
    def check(message: Message, data: st.DataObject) -> None:
        tweak_to_edges(message, data)
        text = _texts(message, data)
        expected = json_format.Parse(text, message_type())
        for strict in (True, False):
            decoder = fast_decoder(backend, message_type, strict=strict)
            raw = text.encode("utf-8", "surrogatepass") if data.draw(st.booleans()) else text
            assert decoder(raw) == expected  # decided by the fast path itself
        assert fields_outcome(backend, raw, message_type) == ("message", expected)
        assert FAST.decode_request(text, message_type) == expected

    check()


# ---------------------------------------------------------------------------
# Mutated documents: both paths accept or reject them alike.


class _Object(list[tuple[str, Any]]):
    """A JSON object as its members in order, so that a key may repeat."""


@dataclasses.dataclass
class _Slot:
    """A place in a document: a member of an object or an item of an array."""

    container: _Object | list[Any]
    index: int
    field: FieldDescriptor | None
    """The field the value belongs to, when known."""


@dataclasses.dataclass
class _Message:
    """An object of the document that is a message, with its type."""

    members: _Object
    descriptor: Descriptor


def _objects(value: Any) -> Any:
    if isinstance(value, dict):
        return _Object((key, _objects(item)) for key, item in value.items())
    if isinstance(value, list):
        return [_objects(item) for item in value]
    return value


def _walk(value: Any, descriptor: Descriptor, slots: list[_Slot], found: list[_Message]) -> None:
    """Record every slot and message object of a document of a message type."""
    if not isinstance(value, _Object) or descriptor.full_name == "google.protobuf.Timestamp":
        return
    found.append(_Message(value, descriptor))
    fields = {f.name: f for f in descriptor.fields} | {f.json_name: f for f in descriptor.fields}
    for index, (key, item) in enumerate(value):
        field = fields.get(key)
        slots.append(_Slot(value, index, field))
        if field is None or field.message_type is None:
            continue
        if field.message_type.GetOptions().map_entry:
            value_field = field.message_type.fields_by_name["value"]
            if isinstance(item, _Object):
                for entry_index, (_, entry) in enumerate(item):
                    slots.append(_Slot(item, entry_index, value_field))
                    if value_field.message_type is not None:
                        _walk(entry, value_field.message_type, slots, found)
        elif field.is_repeated:
            if isinstance(item, list):
                for item_index, element in enumerate(item):
                    slots.append(_Slot(item, item_index, field))
                    _walk(element, field.message_type, slots, found)
        else:
            _walk(item, field.message_type, slots, found)


_ODD_VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    1,
    1.0,
    1.5,
    -0.0,
    2**31,
    -(2**31) - 1,
    2**32,
    2**53 + 1,
    float(2**53 + 2),
    2**63 - 1,
    2**63,
    -(2**63),
    -(2**63) - 1,
    2**64,
    10**30,
    -(10**30),
    1e300,
    1e16,
    "",
    "x",
    "NaN",
    "Infinity",
    "-Infinity",
    "nan",
    "inf",
    "1",
    "-1",
    "01",
    "-0",
    " 1",
    "1 ",
    "\t7",
    "+5",
    "1_000",
    "1.0",
    "1e3",
    "1.5",
    "0x10",
    "١٢",
    "9223372036854775808",
    "-9223372036854775809",
    "true",
    "false",
    "RED",
    "VIEWED",
    "LIVE",
    "UNKNOWN_FUTURE_VALUE",
    [],
    {},
    [None],
    [1, "a"],
    {"a": 1},
    {"name": "x"},
    {"seconds": 1},
    "1970-01-01T00:00:00Z",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59.999999999Z",
    "0000-01-01T00:00:00Z",
    "10000-01-01T00:00:00Z",
    "2017-01-15T01:30:15.010Z",
    "2017-01-15T01:30:15.01Z",
    "2017-01-15T01:30:15.Z",
    "2017-01-15T01:30:15.1234567890Z",
    "2017-01-15T01:30:15+01:00",
    "2017-01-15T01:30:15-08:30",
    "2017-01-15T01:30:15z",
    "2017-01-15t01:30:15Z",
    "2017-01-15 01:30:15Z",
    "2017-1-5T1:3:5Z",
    "2016-02-29T00:00:00Z",
    "2017-02-29T00:00:00Z",
    "2017-13-01T00:00:00Z",
    "2017-01-15T24:00:00Z",
    "2017-01-15T23:60:00Z",
    "2017-01-15T23:59:60Z",
    "2017-01-15T01:30:15Z\n",
    "\ud800",
    "a:b",
    "\u0000",
]
_UNKNOWN_KEYS = ["bogus", "[ext.name]", "[]", "projectid", "ProjectId", "project-id", "", " name"]


def _deep(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


_SCALAR_VALUES: dict[int, st.SearchStrategy[Any]] = {
    FieldDescriptor.TYPE_STRING: st.text(max_size=5),
    FieldDescriptor.TYPE_BOOL: st.booleans(),
    FieldDescriptor.TYPE_DOUBLE: st.floats(allow_nan=False) | st.integers() | st.just("NaN"),
}
_INTEGER_VALUES = st.integers(-(2**65), 2**65) | st.integers().map(str)
_TIMESTAMP_TEXTS = st.sampled_from([v for v in _ODD_VALUES if isinstance(v, str)])
_MAP_VALUES = st.sampled_from([{}, {"k": {}}, {"1": "RED"}, {"true": 1}])


def _field_value(field: FieldDescriptor, data: st.DataObject) -> Any:
    """Draw a value for a field: mostly one that fits, sometimes an odd one."""
    if data.draw(st.integers(0, 2), label="odd") == 0:
        return data.draw(st.sampled_from(_ODD_VALUES), label="odd value")
    if field.enum_type is not None:
        names = [v.name for v in field.enum_type.values]
        strategy = st.sampled_from([*names, 0, 1, 99, -5, "UNKNOWN_NAME", "1"])
    elif field.message_type is None:
        strategy = _SCALAR_VALUES.get(field.type, _INTEGER_VALUES)
    elif field.message_type.full_name == "google.protobuf.Timestamp":
        strategy = _TIMESTAMP_TEXTS
    elif field.message_type.GetOptions().map_entry:
        strategy = _MAP_VALUES
    else:
        strategy = st.just({})
    return data.draw(strategy, label="value")


def _add_member(found: list[_Message], data: st.DataObject, *, unknown: bool) -> None:
    """Add a member to a message object: a field (maybe set already) or an unknown key."""
    target = data.draw(st.sampled_from(found), label="object")
    if unknown or not target.descriptor.fields:
        key = data.draw(st.sampled_from(_UNKNOWN_KEYS), label="unknown key")
        value = data.draw(
            st.sampled_from([1, "x", None, {"a": [1]}, _deep(40), _deep(5)]), label="value"
        )
        target.members.append((key, value))
        return
    field = data.draw(st.sampled_from(list(target.descriptor.fields)), label="field")
    key = data.draw(st.sampled_from([field.name, field.json_name]), label="name")
    target.members.append((key, _field_value(field, data)))


def _set_slot(slot: _Slot, value: Any) -> None:
    if isinstance(slot.container, _Object):
        slot.container[slot.index] = (slot.container[slot.index][0], value)
    else:
        slot.container[slot.index] = value


def _change_member(slot: _Slot, kind: str, data: st.DataObject) -> None:
    """Repeat a member's key, or rename it to its other name, or give it under both."""
    assert isinstance(slot.container, _Object)
    key, value = slot.container[slot.index]
    if kind == "duplicate":
        other = _field_value(slot.field, data) if slot.field is not None else value
        slot.container.append((key, data.draw(st.sampled_from([value, other]))))
    elif slot.field is not None:
        other_name = slot.field.name if key == slot.field.json_name else slot.field.json_name
        if data.draw(st.booleans(), label="both names"):
            slot.container.append((other_name, value))
        else:
            slot.container[slot.index] = (other_name, value)


def _mutate(document: _Object, descriptor: Descriptor, data: st.DataObject) -> None:
    slots: list[_Slot] = []
    found: list[_Message] = []
    _walk(document, descriptor, slots, found)
    kinds = ["set", "set", "replace", "unknown", "duplicate", "rename", "drop", "null"]
    kind = data.draw(st.sampled_from(kinds), label="mutation")
    if kind in ("set", "unknown") or not slots:
        _add_member(found, data, unknown=kind == "unknown")
        return
    slot = data.draw(st.sampled_from(slots), label="slot")
    if kind == "replace":
        odd = st.sampled_from(_ODD_VALUES)
        _set_slot(slot, data.draw(odd) if slot.field is None else _field_value(slot.field, data))
    elif kind == "null":
        _set_slot(slot, None)
    elif kind == "drop":
        del slot.container[slot.index]
    elif isinstance(slot.container, _Object):
        _change_member(slot, kind, data)


@dataclasses.dataclass(frozen=True)
class _Style:
    compact: bool
    ensure_ascii: bool
    escape_colons: bool


def _dump(value: Any, style: _Style) -> str:
    """Write a document as JSON text, keeping repeated keys."""
    comma, colon = (",", ":") if style.compact else (", ", ": ")
    if isinstance(value, _Object):
        members = (f"{_dump(key, style)}{colon}{_dump(item, style)}" for key, item in value)
        return "{" + comma.join(members) + "}"
    if isinstance(value, list):
        return "[" + comma.join(_dump(item, style) for item in value) + "]"
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=style.ensure_ascii)
        return text.replace(":", "\\u003a") if style.escape_colons else text
    return json.dumps(value)


def _mutated_text(message: Message, data: st.DataObject) -> str:
    proto_names = data.draw(st.booleans(), label="proto_field_names")
    document = _objects(json_format.MessageToDict(message, preserving_proto_field_name=proto_names))
    descriptor = _descriptor(type(message))
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        _mutate(document, descriptor, data)
    style = _Style(
        compact=data.draw(st.booleans(), label="compact"),
        ensure_ascii=data.draw(st.booleans(), label="ensure_ascii"),
        escape_colons=data.draw(st.integers(0, 5), label="escape colons") == 0,
    )
    return _dump(document, style)


@pytest.mark.parametrize("message_type", TYPES, ids=_ids)
def test_mutated_documents_are_decided_alike(message_type: type[Message]) -> None:
    @SETTINGS
    @given(message=messages(message_type, max_depth=4), data=st.data())
    def check(message: Message, data: st.DataObject) -> None:
        text = _mutated_text(message, data)
        raw = text.encode("utf-8", "surrogatepass") if data.draw(st.booleans()) else text
        assert_decided_alike(raw, message_type)

    check()


_EDITS = ['"', ",", ":", "{", "}", "[", "]", "\\", " ", "0", "-", "e", ".", "\x00", "\ufeff", "é"]


@pytest.mark.parametrize("message_type", API_TYPES, ids=_ids)
def test_damaged_text_is_decided_alike(message_type: type[Message]) -> None:
    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(message=messages(message_type, max_depth=3), data=st.data())
    def check(message: Message, data: st.DataObject) -> None:
        text = json_format.MessageToJson(message, indent=None)
        assume(text)
        position = data.draw(st.integers(0, len(text)), label="position")
        edit = data.draw(st.sampled_from(["insert", "delete", "repeat"]), label="edit")
        if edit == "insert":
            text = text[:position] + data.draw(st.sampled_from(_EDITS)) + text[position:]
        elif edit == "delete":
            text = text[:position] + text[position + 1 :]
        else:
            end = data.draw(st.integers(position, len(text)), label="end")
            text = text[:end] + text[position:end] + text[end:]
        raw = text.encode("utf-8", "surrogatepass")
        assert_decided_alike(raw, message_type)

    check()


# ---------------------------------------------------------------------------
# Documents at the edges, decided alike.

_LOG = interactions.LogTreatmentInteractionRequest
_VALUE = data_field_pb2.DataFieldParams.PropertyValuePb
_GROUP = '{"treatment": {"mutualExclusionGroup": {"projectId": %s}}}'
EDGE_CASES: list[tuple[type[Message], bytes | str]] = [
    (_LOG, b'{"projectId": "a", "projectId": "b"}'),
    (_LOG, b'{"projectId": "a", "project_id": "b"}'),
    (_LOG, b'{"projectId": null, "project_id": "b"}'),
    (_LOG, b'{"projectId": "x", "projectId": "\\u003a"}'),
    (_LOG, b'{"projectId": "\\u003a", "projectId": "x"}'),
    (_LOG, b'{"projectId": "a:b", "userId": "\\u003A"}'),
    (_LOG, b'\xef\xbb\xbf{"projectId": "a"}'),
    (_LOG, '\ufeff{"projectId": "a"}'),
    (_LOG, b'{"projectId": "\\ud800"}'),
    (_LOG, b'{"projectId": "\\udc00\\ud800"}'),
    (_LOG, b'{"projectId": "\xed\xa0\x80"}'),
    (_LOG, b'{"projectId": "\xc0\x80"}'),
    (_LOG, b'{"projectId": "\x01"}'),
    (_LOG, b'{"projectId": "a"} x'),
    (_LOG, b'{"projectId": "a"}\n'),
    (_LOG, b' \t\r\n{"projectId": "a"} '),
    (_LOG, b'{"projectId": "a",}'),
    (_LOG, b"{'projectId': 'a'}"),
    (_LOG, b""),
    (_LOG, b"null"),
    (_LOG, b"[]"),
    (_LOG, b'"x"'),
    (_LOG, b"{}"),
    (_LOG, b'{"interactionTimeMicros": 9223372036854775807}'),
    (_LOG, b'{"interactionTimeMicros": -9223372036854775808}'),
    (_LOG, b'{"interactionTimeMicros": 9223372036854775808}'),
    (_LOG, b'{"interactionTimeMicros": -9223372036854775809}'),
    (_LOG, b'{"interactionTimeMicros": 18446744073709551616}'),
    (_LOG, b'{"interactionTimeMicros": -9.223372036854775809e18}'),
    (_LOG, b'{"interactionTimeMicros": 9.2233720368547758e18}'),
    (_LOG, b'{"interactionTimeMicros": 1e18}'),
    (_LOG, b'{"interactionTimeMicros": 1.0}'),
    (_LOG, b'{"interactionTimeMicros": 1e400}'),
    (_LOG, b'{"interactionTimeMicros": "1e18"}'),
    (_LOG, b'{"interactionTimeMicros": "' + b"9" * 5000 + b'"}'),
    (_LOG, b'{"interactionTimeMicros": ' + b"9" * 5000 + b"}"),
    (_LOG, b'{"interactionTimeMicros": -0}'),
    (_LOG, b'{"interactionTimeMicros": NaN}'),
    (_LOG, b'{"interactionType": 3}'),
    (_LOG, b'{"interactionType": 99}'),
    (_LOG, b'{"interactionType": 2147483648}'),
    (_LOG, b'{"interactionType": "3"}'),
    (_LOG, b'{"interactionType": 3.0}'),
    (_LOG, b'{"interactionType": "TAPPED"}'),
    (_LOG, b'{"interactionType": true}'),
    (_LOG, b'{"bogus": [[[[[[[[[[1]]]]]]]]]]}'),
    (_LOG, b'{"bogus": ' + b"[" * 900 + b"]" * 900 + b"}"),
    (_LOG, b'{"bogus": ' + b"[" * 2000 + b"]" * 2000 + b"}"),
    (_LOG, b'{"[io.auxia.ext]": 1}'),
    (_LOG, b'{"[bad name]": 1}'),
    (_VALUE, b'{"doubleValue": -0}'),
    (_VALUE, b'{"doubleValue": -0.0}'),
    (_VALUE, b'{"doubleValue": 123456789012345678901234567890}'),
    (_VALUE, b'{"doubleValue": 1e308}'),
    (_VALUE, b'{"doubleValue": 1e309}'),
    (_VALUE, b'{"doubleValue": 2.2250738585072011e-308}'),
    (_VALUE, b'{"doubleValue": 0.1000000000000000055511151231257827}'),
    (_VALUE, b'{"doubleValue": "NaN"}'),
    (_VALUE, b'{"doubleValue": "-Infinity"}'),
    (_VALUE, b'{"doubleValue": "nan"}'),
    (_VALUE, b'{"doubleValue": "1.5"}'),
    (_VALUE, b'{"doubleValue": 1, "longValue": 1}'),
    (_VALUE, b'{"doubleValue": null, "longValue": 1}'),
    (_VALUE, b'{"timestampValue": "2017-01-15T01:30:15.010Z", "stringValue": null}'),
    (_VALUE, b'{"timestampValue": "2017-01-15T01:30:15.010+00:00"}'),
    (_VALUE, b'{"timestampValue": "2017-01-15T01:30:15.0100Z"}'),
    (_VALUE, b'{"timestampValue": "0001-01-01T00:00:00Z"}'),
    (_VALUE, b'{"timestampValue": "0000-12-31T23:59:59Z"}'),
    (_VALUE, b'{"timestampValue": "0001-01-01T00:00:00+00:01"}'),
    (_VALUE, b'{"timestampValue": "9999-12-31T23:59:59.999999999Z"}'),
    (_VALUE, b'{"timestampValue": "9999-12-31T23:59:59.999999999-00:01"}'),
    (_VALUE, b'{"timestampValue": "\\u0032017-01-15T01:30:15Z"}'),
    (_VALUE, b'{"timestampValue": "2017-01-15T01\\u003a30:15Z"}'),
    (management.InsertTreatmentResponse, _GROUP % '"PROJECT_ID"'),
    (management.InsertTreatmentResponse, _GROUP % '"1"'),
    (management.InsertTreatmentResponse, _GROUP % "1.5"),
    (management.InsertTreatmentResponse, b'{"treatment": {"status": "SUNSETTING"}}'),
    (management.InsertTreatmentResponse, b'{"treatment": {"versions": [{"status": "NEW"}]}}'),
    (management.InsertTreatmentResponse, b'{"treatment": {"versions": [null]}}'),
    (management.InsertTreatmentResponse, b'{"treatment": {"versions": {}}}'),
    (management.InsertTreatmentResponse, b'{"treatment": {"futureField": {"a": [1, {}]}}}'),
    (
        management.GetDataFieldsByParamsRequest,
        b'{"dataFieldParams": [{"eventDataFieldParams": {"propertyValueByPropertyName":'
        b' {"a": {"longValue": 1}, "a": {"stringValue": "x"}}}}]}',
    ),
    (
        management.GetDataFieldsByParamsRequest,
        b'{"dataFieldParams": [{"eventDataFieldParams": {"propertyValueByPropertyName":'
        b' {"a": null}}}]}',
    ),
    (
        management.GetDataFieldsByParamsRequest,
        b'{"dataFieldParams": [{"userAttributeDataFieldParams": {},'
        b' "treatmentDataFieldParams": {}}]}',
    ),
    (SINK, b'{"leafByInt32": {"1": {"name": "a"}, "01": {}}}'),
    (SINK, b'{"leafByInt32": {"1": {"name": "a"}, "+1": {"name": "b"}}}'),
    (SINK, b'{"leafByBool": {"true": {}, "True": {}}}'),
    (SINK, b'{"leafByUint64": {"-1": {}}}'),
    (SINK, b'{"stringByInt32": {" 1": "a"}}'),
    (SINK, b'{"int64ByBool": {"false": "1e3"}}'),
    (SINK, b'{"customJsonName": "a", "renamed_field": "b"}'),
    (SINK, b'{"renamedField": "a"}'),
    (SINK, b'{"field2X": 1, "field_2_x": null}'),
    (SINK, b'{"uint32Value": -1}'),
    (SINK, b'{"uint64Value": 18446744073709551615}'),
    (SINK, b'{"repeatedBool": [true, null]}'),
    (SINK, b'{"colors": ["RED", "PURPLE"]}'),
    (SINK, b'{"colors": [1, 99]}'),
    (SINK, b'{"choiceLeaf": {}, "choiceTime": "1970-01-01T00:00:00Z"}'),
    (SINK, b'{"optionalString": "", "optionalInt64": "0", "optionalBool": false}'),
    (LEGACY, b'{"shade": "DARK", "shades": ["LIGHT", 2]}'),
    (LEGACY, b'{"shade": 3}'),
    (LEGACY, b'{"shades": [5]}'),
    (LEGACY, b'{"count": 0, "label": ""}'),
    *((s.message_type, s.path.read_bytes()) for s in [*PARSEABLE, *BROKEN.values()]),
]


@pytest.mark.parametrize(("message_type", "text"), EDGE_CASES)
def test_edge_documents_are_decided_alike(message_type: type[Message], text: bytes | str) -> None:
    assert_decided_alike(text, message_type)


@pytest.mark.parametrize("codec", [FAST, FAST_STDLIB], ids=["orjson", "stdlib"])
def test_duplicate_keys_hidden_by_an_escaped_colon_are_still_found(codec: RestCodec) -> None:
    text = b'{"projectId": "x", "projectId": "\\u003a"}'
    with pytest.raises(ApiError) as caught:
        codec.decode_request(text, _LOG)
    first = caught.value.field_violations[0]
    assert (first.field, first.description) == (
        "projectId",
        'the key "projectId" appears more than once',
    )
