"""Differential fuzzing of the codec over random schemas, against json_format itself.

The API's schema will grow; the codec generates Python per message type, so
it is held to ``json_format`` on schemas nobody has written yet. Each example
draws a random ``.proto`` file into a fresh descriptor pool
(:mod:`tests._random_schemas`), and for each of its message types a message
at the edges (unknown enum numbers, special strings, well-known values
without a JSON form) and mutated documents (:mod:`tests._json_mutations`):

- **encoding**, in both name styles, fast and generic: exactly the bytes of
  ``json_format.MessageToJson(indent=None)``, or, where json_format cannot
  write the message, an ``ApiError``; the fields encoder writes what the
  encoder writes for the message its fields build;
- **decoding**, strictly and leniently, on the fast path over orjson and over
  the standard library and on the generic path, of json_format's own output
  in both name styles and of mutations of it: the message
  ``json_format.Parse`` reads, or an ``ApiError`` where it refuses the text,
  apart from the cases where we are deliberately stricter (``STRICTER``,
  listed in docs/python.md); never another exception; the fields decoder
  reads nothing but what ``decode_request`` reads.

``make test`` runs a short fuzz (``AUXIA_CODEC_FUZZ_SCHEMAS`` examples, 200 by
default); ``make fuzz`` a long one. Every failure the fuzzer found is kept,
shrunk, in ``REGRESSIONS``, and checked on every run.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import json
import os
import re
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from google.protobuf import json_format, text_format
from google.protobuf.message import Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auxia_decision import ApiError, JsonProfile, RestCodec, _fastjson
from auxia_decision._fastjson import json_backend
from tests._codecs import CodecOn
from tests._json_mutations import mutated
from tests._random_schemas import Schema, schema_from_text, schemas
from tests._repo import ROOT
from tests._strategies import messages, tweak_to_edges

T = TypeVar("T")

SCHEMAS = int(os.environ.get("AUXIA_CODEC_FUZZ_SCHEMAS", "200"))

# What an ApiError names no field for: the document, or the message, as a whole.
_WHOLE = re.compile(
    r"malformed JSON|the body is not valid UTF-8|expected a JSON object"
    r"|a \w+ without a proto3 JSON form: "
)


@dataclasses.dataclass
class Codecs:
    """The codecs of one schema (fresh ones: the types of a schema live briefly)."""

    encoding: dict[tuple[bool, bool], RestCodec] = dataclasses.field(
        default_factory=lambda: {
            (names, fast): RestCodec(JsonProfile(use_proto_field_names=names), fast=fast)
            for names in (False, True)
            for fast in (True, False)
        }
    )
    decoding: dict[str, RestCodec] = dataclasses.field(
        default_factory=lambda: {
            "fast (orjson)": RestCodec(),
            "fast (stdlib)": CodecOn(json_backend.STDLIB),
            "generic": RestCodec(fast=False),
        }
    )


# The cases where the codec is deliberately stricter than json_format
# (docs/python.md): json_format reads the text, the codec refuses it with
# violations that all say one of these.
STRICTER = {
    "a field given under both its names": r'^set twice, as "',
    "a message given as an array or a string": (
        # json_format reads them so for regular messages, not for well-known types.
        r"^expected a JSON object \((?!(Struct|Value|ListValue|Any|Timestamp|Duration"
        r"|FieldMask|\w+Value)\))\w+\), got (an array|a string)$"
    ),
    "a boolean for a number or an enum": (
        r"^expected (a number|an enum value name or number), got a boolean$"
    ),
    "a fraction for an enum": r"^expected an enum value name or an integer, got -?[\d.e+-]+$",
    "an enum number beyond int32": r"^enum number -?\d+ is out of the int32 range$",
    "a number beyond the range of its type": (
        r"^(the number|-?[\d.eE+]+) is out of the (double|float) range"
    ),
    "NaN and Infinity literals": r"^malformed JSON: (NaN|Infinity|-Infinity) is not valid JSON$",
    "a number in a string that is not a JSON number's text": (
        r'^expected (an integer|an enum value name or an integer|a number or "NaN", "Infinity"),'
        r' got "'
    ),
    "an integer with a fraction or an exponent beyond 2^53": (
        r'^"[^"]*" has a fraction or an exponent and is beyond 2\^53'
    ),
    "a timestamp that is not RFC 3339": r'^"[^"]*" is not an RFC 3339 timestamp such as ',
}
_STRICTER = re.compile("|".join(f"(?:{pattern})" for pattern in STRICTER.values()))


def test_every_case_where_we_are_stricter_is_documented() -> None:
    text = (ROOT / "docs" / "python.md").read_text()
    section = text.split("### Where the codec is stricter than json_format")[1].split("\n\n")
    table = next(part for part in section if part.startswith("| document |"))
    rows = table.splitlines()[2:]  # the heading and its rule apart
    assert len(rows) == len(STRICTER)


def deliberately_stricter(error: ApiError) -> bool:
    """Whether every violation of an error is one of the cases where we refuse on purpose."""
    return all(_STRICTER.search(v.description) for v in error.field_violations)


def json_format_reading(text: bytes | str, message_type: type[Message], *, strict: bool) -> Any:
    """Return the message json_format reads from a text, or None where it refuses it.

    json_format refuses two forms it writes itself: an object of a type with
    a oneof named like a field's JSON name (it counts oneof names among the
    keys it has read), and null among the NullValues of a repeated field or
    a map. Where it refuses a text, what it reads from the same document
    with proto field names and "NULL_VALUE" for such nulls counts.
    """
    try:
        return json_format.Parse(text, message_type(), ignore_unknown_fields=not strict)
    except json_format.ParseError:
        pass
    except Exception:  # whatever else json_format raises, it refuses the text
        return None
    try:  # the text read as json_format reads it: strict UTF-8, no BOM, no repeated key
        decoded = text.decode() if isinstance(text, bytes) else text
        document = json.loads(decoded, object_pairs_hook=_no_repeated_keys)
        _as_json_format_reads(document, message_type.DESCRIPTOR)
        return json_format.ParseDict(document, message_type(), ignore_unknown_fields=not strict)
    except Exception:  # refused for another reason
        return None


def _no_repeated_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        raise ValueError("a repeated key")  # json_format refuses them
    return document


def _is_null_value(field: Any) -> bool:
    return field.enum_type is not None and field.enum_type.full_name == "google.protobuf.NullValue"


def _as_json_format_reads(document: Any, descriptor: Any) -> None:
    """Give the objects of regular message types proto field names and NullValues for nulls."""
    if not isinstance(document, dict) or descriptor.full_name.startswith("google.protobuf."):
        return
    fields = {field.json_name: field for field in descriptor.fields}
    fields.update((field.name, field) for field in descriptor.fields)
    for key in list(document):
        field = fields.get(key)
        if field is None:
            continue
        value = document.pop(key)
        if field.name in document:
            raise ValueError("a field given under both its names")  # no longer one document
        document[field.name] = value
        entry = field.message_type
        if entry is not None and entry.GetOptions().map_entry:
            field = entry.fields_by_name["value"]
            items = value if isinstance(value, dict) else {}
        else:
            items = dict(enumerate(value)) if isinstance(value, list) else {None: value}
        for place, item in items.items():
            if item is None and _is_null_value(field) and value is not item:
                value[place] = "NULL_VALUE"  # in a repeated field or a map
            elif field.message_type is not None:
                _as_json_format_reads(item, field.message_type)


def check_api_error(error: ApiError, where: str) -> None:
    """Check an error of the codec: violations with JSON paths, and itself writable as JSON."""
    assert error.field_violations, where
    for violation in error.field_violations:
        assert violation.field or _WHOLE.match(violation.description), (
            where,
            str(error),
        )
    error.to_json()
    str(error)


def reading(call: Callable[[], T], where: str) -> T | ApiError:
    """Return what a call of the codec gives: a result or an ApiError (anything else fails)."""
    try:
        return call()
    except ApiError as error:
        check_api_error(error, where)
        return error
    except Exception as error:
        raise AssertionError(f"{where}: {type(error).__name__}: {error}") from error


def check_decoding(codecs: Codecs, text: bytes | str, message_type: type[Message]) -> None:
    """Check every decoding of a text against json_format's, strictly and leniently."""
    CHECKED["documents decoded"] += 1
    for strict in (True, False):
        expected = json_format_reading(text, message_type, strict=strict)
        for label, codec in codecs.decoding.items():
            decode = codec.decode_request if strict else codec.decode_response
            where = f"{label}, {'strict' if strict else 'lenient'}, {text!r}"
            got = reading(functools.partial(decode, text, message_type), where)
            if expected is None:
                assert isinstance(got, ApiError), f"{where}: json_format refuses, we read {got}"
            elif isinstance(got, ApiError):
                if not deliberately_stricter(got):
                    raise AssertionError(f"{where}: json_format reads {expected}, we refuse: {got}")
            else:
                assert got == expected, f"{where}: json_format reads {expected}, we read {got}"
            if strict and label != "generic":
                check_fields_decoding(codec, text, message_type, got, where)


def check_fields_decoding(
    codec: RestCodec, text: bytes | str, message_type: type[Message], read: Any, where: str
) -> None:
    """Check that the fields decoder reads nothing but what decode_request reads."""
    decode_fields = codec.request_fields_decoder(message_type)
    if decode_fields is None:
        return
    try:
        fields = decode_fields(text)
    except Exception as error:
        raise AssertionError(f"fields of {where}: {type(error).__name__}: {error}") from error
    if fields is not None:
        assert not isinstance(read, ApiError), f"fields of {where}: read {fields}, refused {read}"
        assert message_type(**fields) == read, f"fields of {where}: {fields}"


def check_encoding(codecs: Codecs, message: Message) -> None:
    """Check every encoding of a message against json_format's bytes, in both name styles."""
    CHECKED["messages encoded"] += 1
    for (names, fast), codec in codecs.encoding.items():
        try:
            expected: bytes | None = json_format.MessageToJson(
                message, indent=None, preserving_proto_field_name=names
            ).encode()
        except Exception:
            expected = None
        where = f"encode ({'proto' if names else 'JSON'} names, fast={fast}) {message}"
        got = reading(functools.partial(codec.encode, message), where)
        if expected is None:
            assert isinstance(got, ApiError), f"{where}: json_format refuses, we write {got!r}"
        else:
            assert got == expected, f"{where}: json_format writes {expected!r}"


def check_fields_encoding(codecs: Codecs, message: Message) -> None:
    """Check that the fields encoder writes what the encoder writes for the message."""
    message_type = type(message)
    codec = codecs.encoding[False, True]
    encode_fields = codec.fields_encoder(message_type)
    decode_fields = codecs.decoding["fast (orjson)"].request_fields_decoder(message_type)
    if decode_fields is None:
        return
    written = reading(lambda: codec.encode(message), f"encode {message}")
    if isinstance(written, ApiError):
        return
    fields = decode_fields(written)
    if fields is None:
        return
    for order in (fields, _reversed_maps(fields, message_type)):
        expected = codec.encode(message_type(**order))
        got = reading(functools.partial(encode_fields, order), f"encode fields {order}")
        assert got == expected, f"fields {order}: {got!r}, the message's {expected!r}"


def _reversed_maps(fields: dict[str, Any], message_type: type[Message]) -> dict[str, Any]:
    """Return the fields with the entries of every top-level map in the reverse order."""
    descriptor = message_type.DESCRIPTOR
    reversed_fields = dict(fields)
    for name, value in fields.items():
        entry = descriptor.fields_by_name[name].message_type
        if entry is not None and entry.GetOptions().map_entry and isinstance(value, dict):
            reversed_fields[name] = dict(reversed(value.items()))
    return reversed_fields


def schema_words(schema: Schema) -> list[str]:
    """Return the names a schema's documents may hold: fields, JSON names, oneofs, enum values."""
    words: set[str] = set()
    for message_type in schema.message_types():
        descriptor = message_type.DESCRIPTOR
        for field in descriptor.fields:
            words |= {field.name, field.json_name}
        words |= {oneof.name for oneof in descriptor.oneofs}
    for enum in schema.file.enum_type:
        words |= {value.name for value in enum.value}
    return sorted(words)


def _as_text(document: bytes) -> bytes | str:
    """Return a document as a str where it is UTF-8 (decoders take both), else as it is."""
    try:
        return document.decode()
    except UnicodeDecodeError:
        return document


def check_message(codecs: Codecs, message: Message) -> list[str]:
    """Check encoding a message, and decoding its JSON; return that JSON in both name styles.

    The JSON with JSON names is decoded as bytes, with proto names as a str.
    A message json_format cannot write has no JSON: the list is empty.
    """
    check_encoding(codecs, message)
    check_fields_encoding(codecs, message)
    texts = []
    for names in (False, True):
        try:
            texts.append(
                json_format.MessageToJson(message, indent=None, preserving_proto_field_name=names)
            )
        except Exception:  # a message without a JSON form: nothing to read
            return []
    for names, text in zip((False, True), texts, strict=True):
        check_decoding(codecs, text if names else text.encode(), type(message))
    return texts


def check_type(codecs: Codecs, schema: Schema, message_type: type[Message], data: Any) -> None:
    """Check one message type of a schema: a drawn message, its JSON, and mutations of it."""
    message = data.draw(
        messages(message_type, max_depth=2, max_size=2, cache=False), label="message"
    )
    tweak_to_edges(message, data, beyond_json=True)
    words = schema_words(schema)
    for names, text in enumerate(check_message(codecs, message)):
        document = mutated(data, text, words)
        check_decoding(codecs, _as_text(document) if names else document, message_type)


# Hypothesis keeps what it drew for every example of a run, and these are
# large: a long fuzz is several runs (rounds) of ROUND schemas at the most.
ROUND = 250
ROUNDS = -(-SCHEMAS // ROUND)
CHECKED: collections.Counter[str] = collections.Counter()
"""What the fuzz checked: schemas, message types, encodings and decodings."""


def check_random_schema(data: st.DataObject) -> None:
    """Check a random schema's every message type (one example of the fuzz)."""
    schema = data.draw(schemas(), label="schema")
    codecs = Codecs()
    try:
        for message_type in schema.message_types():
            check_type(codecs, schema, message_type, data)
            CHECKED["message types"] += 1
        CHECKED["schemas"] += 1
    finally:
        forget(schema)


def forget(schema: Schema) -> None:
    """Drop the fast functions built for a schema's types: they live as briefly as it does."""
    built: list[dict[Any, Any]] = [
        _fastjson._built_encoders,
        _fastjson._built_decoders,
        _fastjson._built_fields_encoders,
        _fastjson._built_fields_decoders,
    ]
    for cache in built:
        for key in [key for key in cache if _pool_of(key) is schema.pool]:
            del cache[key]


def _pool_of(key: Any) -> object:
    message_type = key[0] if isinstance(key, tuple) else key
    return message_type.DESCRIPTOR.file.pool


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_the_codec_agrees_with_json_format_on_random_schemas(round_: int) -> None:
    examples = min(ROUND, SCHEMAS - round_ * ROUND)
    fuzz = settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck))
    before = CHECKED.copy()
    fuzz(given(data=st.data())(check_random_schema))()
    done = CHECKED - before
    print(f"round {round_}: {dict(done)}")
    # A fuzz that drew no schema, or decoded nothing, would pass having checked nothing.
    assert done["schemas"] >= examples, dict(done)
    assert done["messages encoded"] > 0, dict(done)
    assert done["documents decoded"] > 0, dict(done)


# ---------------------------------------------------------------------------
# Regressions: every failure the fuzzer found, shrunk (issue 25's findings
# first), each checked as the fuzzer checks it.


@dataclasses.dataclass(frozen=True)
class Regression:
    """A failure the fuzzer found: a schema, and a message or a document of its first type."""

    schema: str
    """The schema's FileDescriptorProto in text format (``schema_from_text``)."""
    message: str | None = None
    """A message in text format: encoded, and its JSON in both name styles decoded."""
    document: bytes | None = None
    """A document to decode, strictly and leniently."""


def _field(name: str, number: int, kind: str, **options: str) -> str:
    """Return a field's text format: ``kind`` a TYPE_ suffix, or a type name."""
    label = options.pop("label", "LABEL_OPTIONAL")
    if kind.startswith("."):
        kind_text = f'type: TYPE_MESSAGE type_name: "{kind}"'
    elif kind.startswith("E"):
        kind_text = f'type: TYPE_ENUM type_name: ".fuzz.{kind}"'
    else:
        kind_text = f"type: TYPE_{kind}"
    extra = " ".join(f"{key}: {value}" for key, value in options.items())
    return f'field {{ name: "{name}" number: {number} label: {label} {kind_text} {extra} }}'


def _message(*fields: str, name: str = "M0", extra: str = "") -> str:
    return f'message_type {{ name: "{name}" {" ".join(fields)} {extra} }}'


_PROTO3 = ' syntax: "proto3"'
_PROTO2 = ' syntax: "proto2"'
_ALIASES = (
    'enum_type { name: "E0" options { allow_alias: true } value { name: "E0_ZERO0" number: 0 }'
    ' value { name: "E0_B1" number: 0 } value { name: "E0_C" number: 5 }'
    ' value { name: "E0_D" number: 5 } }'
)
_STRING_MAP = (
    'nested_type { name: "MEntry" options { map_entry: true }'
    ' field { name: "key" number: 1 label: LABEL_OPTIONAL type: TYPE_STRING }'
    ' field { name: "value" number: 2 label: LABEL_OPTIONAL type: TYPE_INT32 } }'
)
_WELL_KNOWN_FIELDS = _message(
    _field("s", 1, ".google.protobuf.Struct"),
    _field("v", 2, ".google.protobuf.Value"),
    _field("l", 3, ".google.protobuf.ListValue"),
    _field("f", 4, ".google.protobuf.FieldMask"),
    _field("w", 5, ".google.protobuf.Int64Value"),
    _field("a", 6, ".google.protobuf.Any"),
    _field("d", 7, ".google.protobuf.Duration"),
    _field("n", 8, ".google.protobuf.NullValue", label="LABEL_REPEATED").replace(
        "TYPE_MESSAGE", "TYPE_ENUM"
    ),
)

REGRESSIONS: dict[str, Regression] = {
    # 1. A field named like a Python keyword: the generated source said m.yield.
    "keyword field name": Regression(_message(_field("yield", 1, "SFIXED64")) + _PROTO3, ""),
    "keyword field names": Regression(
        _message(
            _field("None", 1, "INT32"),
            _field("global", 2, "STRING", label="LABEL_REPEATED"),
            _field("from", 3, ".fuzz.M1"),
            _field("import", 4, ".google.protobuf.Timestamp"),
        )
        + _message(_field("True", 1, "BOOL"), _field("or", 2, "E0"), name="M1")
        + _ALIASES
        + _PROTO3,
        'None: -1 global: ["a", "b"] from { True: true or: E0_D } import { seconds: 5 }',
    ),
    # 2. Enum aliases: json_format writes the first name of a number.
    "enum aliases": Regression(
        _message(_field("e", 1, "E0", label="LABEL_REPEATED")) + _ALIASES + _PROTO3,
        "e: [E0_B1, E0_D, E0_ZERO0, E0_C]",
    ),
    # 3. A proto2 default that reads as set: -0.0 is not the zero of a double.
    "proto2 default -0": Regression(
        _message(_field("data", 1, "DOUBLE", default_value='"-0"')) + _PROTO2, ""
    ),
    "proto2 defaults set to their default": Regression(
        _message(
            _field("data", 1, "DOUBLE", default_value='"-0"'),
            _field("count", 2, "INT32", default_value='"7"'),
            _field("name", 3, "STRING", default_value='"x"'),
        )
        + _PROTO2,
        'data: -0.0 count: 7 name: "x"',
    ),
    # 4. The fields encoder wrote a map's entries in the dict's order.
    "fields encoder map order": Regression(
        _message(_field("m", 1, ".fuzz.M0.MEntry", label="LABEL_REPEATED"), extra=_STRING_MAP)
        + _PROTO3,
        " ".join(f'm {{ key: "{key}" value: {index} }}' for index, key in enumerate("qwertyu")),
    ),
    # 5. json_format refuses its own output when a oneof is named like a JSON name.
    "oneof named like a member's JSON name": Regression(
        _message(
            _field("b_sub", 1, "FIXED32", oneof_index="0"), extra='oneof_decl { name: "bSub" }'
        )
        + _PROTO2,
        "b_sub: 608",
        b'{"bSub": 608}',
    ),
    # 6. Exceptions other than ApiError: upb's SystemError, and OverflowError.
    "unpaired surrogate in an unknown key": Regression(
        _message(_field("a", 1, "STRING")) + _PROTO3, document=b'{"a\\udc00": "x"}'
    ),
    "unpaired surrogate in an enum name": Regression(
        _message(_field("e", 1, "E0")) + _ALIASES + _PROTO3, document=b'{"e": "\\udc00"}'
    ),
    "unpaired surrogate in a map key": Regression(
        _message(_field("m", 1, ".fuzz.M0.MEntry", label="LABEL_REPEATED"), extra=_STRING_MAP)
        + _PROTO3,
        document=b'{"m": {"\\ud800": 1}}',
    ),
    "unpaired surrogate in an enum value of a map, read leniently": Regression(
        _message(
            _field("m", 1, ".fuzz.M0.MEntry", label="LABEL_REPEATED"),
            extra=_STRING_MAP.replace("type: TYPE_INT32", 'type: TYPE_ENUM type_name: ".fuzz.E0"'),
        )
        + _ALIASES
        + _PROTO3,
        document=b'{"m": {"k": "\\udc00x"}}',
    ),
    "an enum number in a string that is not a JSON number's text": Regression(
        _message(_field("e", 1, ".fuzz.E0").replace("TYPE_MESSAGE", "TYPE_ENUM"))
        + _ALIASES
        + _PROTO3,
        document=b'{"e": "+5"}',
    ),
    "a double given an integer of 310 digits": Regression(
        _message(_field("d", 1, "DOUBLE")) + _PROTO3, document=b'{"d": 1' + b"0" * 310 + b"}"
    ),
    # 7. Repeated keys inside an unknown member, read leniently.
    "repeated keys inside an unknown member": Regression(
        _message(_field("a", 1, "STRING")) + _PROTO3, document=b'{"x": {"y": 1, "y": 2}}'
    ),
    # 8. Well-known types the fast path does not specialise, as json_format writes them.
    "well-known types": Regression(
        _WELL_KNOWN_FIELDS + _PROTO3,
        's { fields { key: "a" value { list_value { values { null_value: NULL_VALUE } } } } }'
        ' v { string_value: "x" } l { values { bool_value: true } } f { paths: "a.b_c" }'
        " w { value: -5 } a { [type.googleapis.com/google.protobuf.Duration] { seconds: 3 } }"
        " d { seconds: -1 nanos: -5 } n: [NULL_VALUE]",
    ),
    "json_format's own nulls of NullValues": Regression(
        _message(
            _field("m", 1, ".fuzz.M0.MEntry", label="LABEL_REPEATED"),
            _field("n", 2, ".google.protobuf.NullValue", label="LABEL_REPEATED").replace(
                "TYPE_MESSAGE", "TYPE_ENUM"
            ),
            extra=_STRING_MAP.replace(
                "type: TYPE_INT32", 'type: TYPE_ENUM type_name: ".google.protobuf.NullValue"'
            ),
        )
        + _PROTO3,
        'm { key: "a" value: NULL_VALUE } n: [NULL_VALUE, NULL_VALUE]',
    ),
    "a repeated NullValue given null": Regression(
        _WELL_KNOWN_FIELDS + _PROTO3, document=b'{"n": null}'
    ),
    "a Value given a number beyond a double": Regression(
        _WELL_KNOWN_FIELDS + _PROTO3, document=b'{"v": 1e400}'
    ),
    "an Any of an unknown type": Regression(
        _WELL_KNOWN_FIELDS + _PROTO3, document=b'{"a": {"@type": "x/y.Z"}}'
    ),
    # Found by the fuzzer besides.
    "a message given as a string": Regression(_message() + _PROTO3, document=b'"x"'),
    "an empty key": Regression(_message(_field("a", 1, "INT32")) + _PROTO3, document=b'{"": 1}'),
    "a field named ListFields": Regression(
        _message(_field("ListFields", 1, "UINT64")) + _PROTO3, "ListFields: 1"
    ),
    "a double given as inf": Regression(
        _message(_field("d", 1, "DOUBLE")) + _PROTO3, document=b'{"d": "inf"}'
    ),
    "a map entry json_format skips before it reads the key": Regression(
        _message(
            _field("m", 1, ".fuzz.M0.MEntry", label="LABEL_REPEATED"),
            extra=_STRING_MAP.replace("type: TYPE_STRING", "type: TYPE_UINT64").replace(
                "type: TYPE_INT32", 'type: TYPE_ENUM type_name: ".fuzz.E0"'
            ),
        )
        + _ALIASES
        + _PROTO3,
        document=b'{"m": {"0": "E0_ZERO0", "-1": "1.0"}}',
    ),
    "a NullValue given false": Regression(_WELL_KNOWN_FIELDS + _PROTO3, document=b'{"n": [false]}'),
}


@pytest.mark.parametrize("case", list(REGRESSIONS.values()), ids=list(REGRESSIONS))
def test_regression(case: Regression) -> None:
    schema = schema_from_text(case.schema)
    message_type = schema.message_types()[0]
    codecs = Codecs()
    if case.message is not None:
        check_message(codecs, text_format.Parse(case.message, message_type()))
    if case.document is not None:
        check_decoding(codecs, case.document, message_type)


def test_types_holding_a_timestamp_in_a_map_have_no_fields_encoder() -> None:
    entry = (
        'nested_type { name: "TEntry" options { map_entry: true }'
        ' field { name: "key" number: 1 label: LABEL_OPTIONAL type: TYPE_STRING }'
        ' field { name: "value" number: 2 label: LABEL_OPTIONAL type: TYPE_MESSAGE'
        ' type_name: ".google.protobuf.Timestamp" } }'
    )
    schema = schema_from_text(
        _message(_field("t", 1, ".fuzz.M0.TEntry", label="LABEL_REPEATED"), extra=entry) + _PROTO3
    )
    [message_type] = schema.message_types()
    assert _fastjson.fields_encoder(message_type) is None
    assert _fastjson.encoder(message_type, proto_field_names=False) is not None
