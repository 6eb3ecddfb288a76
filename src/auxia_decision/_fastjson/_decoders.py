"""Decoders: proto3 JSON read into the message the generic path would give, or refused.

**Decoding gives a message equal to** what the generic codec gives
(``json_format.ParseDict`` behind its JSON-path checks) and **decides only
what it is sure of**: a JSON backend parses the text (orjson when it is
installed, else the standard library reading exactly as orjson does: see
:mod:`auxia_decision._fastjson.json_backend`), and the document is accepted
only when every value has its canonical type (strings for string fields,
in-range integers, known enum names, ``YYYY-MM-DDTHH:MM:SS[.fffffffff]Z``
timestamps, ...), no field is given twice (under both of its names, or as a
repeated key, which the parser silently merges: counting the colons of the
text against those of the parsed document finds those), and at most one
member of each oneof is set. Anything else raises :class:`Fallback` (or the
error the check ran into), and the caller hands the document to the generic
path, which accepts it the same way or produces its usual errors, with JSON
paths and, for malformed JSON, the stdlib's line and column. So the fast
path never has to reproduce an error message.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.protobuf.message import Message

from auxia_decision._fastjson._compiler import Compiler
from auxia_decision._fastjson._kinds import (
    Unsupported,
    check_root,
    checked_by_constructor,
    int_range,
    is_map,
    multi_member_oneofs,
    value_kind,
)
from auxia_decision._fastjson.json_backend import JsonBackend

M = TypeVar("M", bound=Message)

Decoder = Callable[[bytes | str], M]
"""Turns proto3 JSON into a message, or raises when the generic path must decide."""

FieldsDecoder = Callable[[bytes | str], dict[str, Any]]
"""Turns proto3 JSON into the keyword arguments of a message's constructor (see
``build_fields_decoder``), or raises when the generic path must decide."""

_MAP_BOOL_KEYS = {"true": True, "false": False}


# How a JSON value ``{v}`` of a kind is checked and converted.
_DECODE_TEMPLATES = {
    "string": "({v} if type({v}) is str else _fail())",
    "bool": "({v} if type({v}) is bool else _fail())",
    "double": "({v} if type({v}) is float and {v} - {v} == 0.0 else _double({v}))",
    "timestamp": "_timestamp({v})",
}
# The kinds whose JSON values are taken as they are, once their type is checked.
_TYPE_CHECKS = {"string": "str", "bool": "bool"}


class DecoderCompiler(Compiler):
    """Generates ``def _dN(m, n)``, returning the constructor arguments of the JSON object ``m``.

    Each returns the keyword arguments of its message type's constructor
    (message fields as such dicts, timestamps as ``{"seconds", "nanos"}``),
    or raises when the generic path must decide, and adds the members of the
    objects it reads to ``n[0]`` (the entry point compares them with the
    colons of the text to find repeated keys). With ``checked``, every value
    is checked and converted here, those the constructor would check too:
    the arguments are then sure to build the message, and may be read
    instead of it.
    """

    parameters = "m, n"

    def __init__(self, *, strict: bool, checked: bool = False, known_enums: bool = False) -> None:
        super().__init__("d")
        self._strict = strict
        self.checked = checked
        """Whether every value is checked here (the fields decoder's functions)."""
        self.known_enums = known_enums
        """Whether an open enum's number must be one of its values (else: fall back)."""

    def body(self, descriptor: Descriptor) -> list[str]:
        """Return the statements reading the members of ``m`` into ``kw``, checked and converted."""
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
        # its own) or dict(zip(map(...))), which both cost more.
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
        lines.append("    n[0] += len(m)")
        for field in fields:
            if not self.checked and checked_by_constructor(field):
                if self.known_enums and field.enum_type is not None:
                    # By name, the constructor refuses a name the enum lacks; a
                    # number, which it would take, is left to the generic path.
                    lines += [
                        f"    if type(kw.get({field.name!r}, '')) is not str:",
                        "        raise _Fallback",
                    ]
                continue
            lines.append(f"    x = kw.get({field.name!r})")
            kind = value_kind(field)
            if kind in _TYPE_CHECKS and not field.is_repeated:  # checked, not converted
                lines += [
                    f"    if x is not None and type(x) is not {_TYPE_CHECKS[kind]}:",
                    "        raise _Fallback",
                ]
            else:
                lines += [
                    "    if x is not None:",
                    f"        kw[{field.name!r}] = {self.field(field)}",
                ]
        for members in multi_member_oneofs(descriptor):
            count = " + ".join(f"(kw.get({field.name!r}) is not None)" for field in members)
            lines += [f"    if {count} > 1:", "        raise _Fallback"]
        lines.append("    return kw")
        return lines

    def field(self, field: FieldDescriptor) -> str:
        """Return the expression converting the JSON value ``x`` of a field."""
        if is_map(field):
            return self.map(field)
        kind = value_kind(field)
        if field.is_repeated:
            item = self.value("y", field, kind)
            return f"([{item} for y in x] if type(x) is list else _fail())"
        return self.value("x", field, kind)

    def value(self, variable: str, field: FieldDescriptor, kind: str) -> str:
        """Return the expression converting one JSON value of a field."""
        if kind in _DECODE_TEMPLATES:
            return _DECODE_TEMPLATES[kind].format(v=variable)
        if kind in ("int32", "int64"):
            low, high = int_range(field)
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
        return f"{self.function(field.message_type)}({variable}, n)"

    def enum(self, variable: str, enum_type: EnumDescriptor) -> str:
        """Return the expression converting an enum value, by name or by number."""
        v = variable
        numbers = self.source.constant({value.name: value.number for value in enum_type.values})
        if enum_type.is_closed or self.known_enums:
            known = self.source.constant(frozenset(value.number for value in enum_type.values))
            by_number = f"_closed_enum_number({v}, {known})"
        else:
            by_number = f"_enum_number({v})"
        return f"({numbers}[{v}] if type({v}) is str else {by_number})"

    def map(self, field: FieldDescriptor) -> str:
        """Return the expression converting the JSON object ``x`` of a map field."""
        entry = field.message_type
        assert entry is not None
        key_field = entry.fields_by_name["key"]
        value_field = entry.fields_by_name["value"]
        key_kind = value_kind(key_field)
        value = self.value("y", value_field, value_kind(value_field))
        if key_kind == "string":
            return (
                f"({{k: {value} for k, y in _counted(x, n).items()}} "
                "if type(x) is dict else _fail())"
            )
        if key_kind == "bool":
            key = f"{self.source.constant(_MAP_BOOL_KEYS)}[k]"
        else:
            low, high = int_range(key_field)
            key = f"_integer(k, {low}, {high})"
        return (
            f"(_same_size({{{key}: {value} for k, y in _counted(x, n).items()}}, x) "
            "if type(x) is dict else _fail())"
        )


def build_decoder(
    message_type: type[Message], strict: bool, backend: JsonBackend, *, known_enums: bool = False
) -> Decoder[Message] | None:
    """Generate and compile the decoder of a message type, or return None if it has none.

    The decoder parses with ``backend``, imported now if it was not yet; with
    ``known_enums``, it falls back on an open enum's number that is none of
    its values.
    """
    compiler = DecoderCompiler(strict=strict, known_enums=known_enums)
    return cast("Decoder[Message] | None", _entry_point(message_type, compiler, backend))


def build_fields_decoder(message_type: type[Message], backend: JsonBackend) -> FieldsDecoder | None:
    """Generate and compile the fields decoder of a request type, or return None if it has none.

    It reads a document strictly, as the decoder does, into the keyword
    arguments of the type's constructor, every value checked and converted:
    ``message_type(**fields)`` equals what the decoder returns. A field is
    absent or None when unset; a message field is a dict of the same kind; a
    repeated field a list; an enum a number.
    """
    compiler = DecoderCompiler(strict=True, checked=True)
    return cast("FieldsDecoder | None", _entry_point(message_type, compiler, backend))


def _entry_point(
    message_type: type[Message], compiler: DecoderCompiler, backend: JsonBackend
) -> Callable[[bytes | str], object] | None:
    """Compile the functions of a type and the entry point calling them, or return None.

    The entry point parses, reads the document and checks that no key was
    repeated; then it builds the message or, for a fields decoder, returns
    the constructor's arguments. A repeated key leaves one member fewer than
    it has colons (the parser keeps the last value), and colons inside
    strings only add to the text's; so a text with as many colons as the
    members read has no repeated key, and any other is checked in full.
    """
    descriptor = cast(Descriptor, message_type.DESCRIPTOR)
    try:
        check_root(descriptor)
        name = compiler.function(descriptor)
    except Unsupported:
        return None
    parser = backend.parser()
    source = compiler.source
    # The entry point is generated too: one function, not a closure around
    # the generated one, between the caller and the message constructor.
    result = "kw" if compiler.checked else f"{source.constant(message_type)}(**kw)"
    source.lines += [
        "def _decode(data):",
        f"    document = {source.constant(parser.loads)}(data)",
        "    n = [0]",
        f"    kw = {name}(document, n)",
        "    if (data.count(b':') if type(data) is bytes else data.count(':')) != n[0]:",
        f"        {source.constant(parser.check_no_repeated_keys)}(data, document)",
        f"    return {result}",
    ]
    title = f"{'fields of ' if compiler.checked else ''}{descriptor.full_name}"
    namespace = source.compile(f"fast JSON codec: decode {title}")
    return cast("Callable[[bytes | str], object]", namespace["_decode"])
