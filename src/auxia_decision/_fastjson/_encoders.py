r"""Encoders: proto3 JSON written byte for byte as ``json_format`` writes it.

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
orjson's compact layout (``{"a":1}``) is not used: encoding needs no JSON
library beyond the standard one.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping
from typing import Any, cast

from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from auxia_decision._fastjson._compiler import Compiler
from auxia_decision._fastjson._kinds import (
    Unsupported,
    check_root,
    is_map,
    multi_member_oneofs,
    value_kind,
)
from auxia_decision._fastjson._runtime import string_text
from auxia_decision._source import attribute, renamed

Encoder = Callable[[Message], bytes]
"""Turns a message into proto3 JSON bytes (or raises: then use the generic path)."""

FieldsEncoder = Callable[[Mapping[str, Any]], bytes]
"""Turns the arguments of a message's constructor into the message's proto3 JSON bytes."""

_QUOTED_INTEGER = '"%d"'
LOCALS = r"[mosvkxyz]|w[0-9]+"
"""The local variables of a generated function's body, apart from ``a`` and ``p``."""
_BIND_APPEND = "    a = p.append"
"""The first line of every body: a body written in place uses its host's ``a``."""
_INLINED_LINES = 60
"""A nested message whose body has at most so many lines is written in place of a call."""


class EncoderCompiler(Compiler):
    """Generates ``def _eN(m, p)``, appending the text of message ``m`` to the list ``p``.

    The caller has already appended the text up to and including the opening
    brace. Every member is appended with a leading ``", "``, which is cut from
    the first one at the end, and then the closing brace.
    """

    parameters = "m, p"

    def __init__(self, *, proto_field_names: bool, fields: bool = False) -> None:
        super().__init__("e")
        self._proto_field_names = proto_field_names
        self._fields = fields
        """Whether ``m`` is the dict of a message's constructor arguments (None: unset)."""
        self.items = "v" if fields else "v[:]"
        """The items of the repeated field ``v`` as a list."""
        self._inlined = 0
        """How many bodies were written in place (each renames its locals apart)."""

    def read(self, variable: str, name: str) -> str:
        """Return the source reading field ``name`` of the message (or fields) ``variable``."""
        return f"{variable}.get({name!r})" if self._fields else attribute(variable, name)

    def kind(self, field: FieldDescriptor) -> str:
        """Return the kind of one value of a field, or raise Unsupported (see ``value_kind``).

        A Timestamp among fields is a dict, a message or a datetime: the
        fields encoder does not write them.
        """
        kind = value_kind(field)
        if self._fields and kind == "timestamp":
            raise Unsupported("a Timestamp among fields is not written from fields")
        return kind

    def key(self, field: FieldDescriptor) -> str:
        name = field.name if self._proto_field_names else field.json_name
        return ", " + string_text(name) + ": "

    def body(self, descriptor: Descriptor) -> list[str]:
        lines = [_BIND_APPEND, "    s = len(p)"]
        # HasField and WhichOneof are called unbound, which skips looking them
        # up on the message (upb first looks for a field of that name).
        message_class = message_factory.GetMessageClass(descriptor)
        has_field = self.source.constant(message_class.HasField)
        oneof_of: dict[str, str] = {}
        for index, members in enumerate(multi_member_oneofs(descriptor)):
            oneof = members[0].containing_oneof
            assert oneof is not None
            if self._fields:  # the first member set (the decoder lets only one be)
                which = " else ".join(
                    f"{field.name!r} if m.get({field.name!r}) is not None" for field in members
                )
                lines.append(f"    w{index} = {which} else None")
            else:
                which_oneof = self.source.constant(message_class.WhichOneof)
                lines.append(f"    w{index} = {which_oneof}(m, {oneof.name!r})")
            oneof_of.update({field.name: f"w{index}" for field in members})
        fields = sorted(descriptor.fields, key=lambda field: field.number)
        # Members of one oneof that follow one another in number order are
        # written as one run: asked only if the oneof is set, and no further
        # than the member that is.
        for variable, run in itertools.groupby(fields, key=lambda f: oneof_of.get(f.name)):
            members = list(run)
            if variable is None or len(members) == 1:
                for field in members:
                    lines += self.field(field, variable, has_field)
                continue
            lines.append(f"    if {variable} is not None:")
            for position, field in enumerate(members):
                written = self.field(field, variable, has_field)
                if position:
                    written[0] = written[0].replace("    if ", "    elif ", 1)
                lines += ["    " + line for line in written]
        lines += ["    if len(p) > s:", "        p[s] = p[s][2:]", "    a('}')"]
        return lines

    def field(
        self, field: FieldDescriptor, oneof_variable: str | None, has_field: str
    ) -> list[str]:
        name = field.name
        key = self.key(field)
        read = self.read("m", name)
        if is_map(field):
            return [f"    v = {read}", "    if v:", *self.map(field, key)]
        kind = self.kind(field)
        if field.is_repeated:
            return [f"    v = {read}", "    if v:", *self.repeated(field, kind, key)]
        present = f"{read} is not None" if self._fields else f"{has_field}(m, {name!r})"
        if oneof_variable is not None:
            condition = f"{oneof_variable} == {name!r}"
        elif field.has_presence and (kind in ("message", "timestamp") or not _is_zero(field)):
            condition = present  # an unset field reads as its default: only presence tells
        else:
            # A scalar holding something other than its zero default is
            # present; only the others need asking (unset fields are None).
            test = "v or _is_negative_zero(v)" if kind == "double" else "v"
            if field.has_presence:
                test += " or v is not None" if self._fields else f" or {present}"
            return [f"    v = {read}", f"    if {test}:", *self.single(field, kind, key)]
        return [f"    if {condition}:", f"        v = {read}", *self.single(field, kind, key)]

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
        return [f"        a({constant(key + '{')})", *self.members(descriptor, "v", "        ")]

    def members(self, descriptor: Descriptor, value: str, indent: str) -> list[str]:
        """Return the statements appending the members of message ``value`` and its ``}``.

        A short body is written in place, its locals renamed, saving a call
        (and its setting up) per message; a long one is called.
        """
        body = self.body_of(descriptor)
        if len(body) > _INLINED_LINES:
            return [f"{indent}{self.function(descriptor)}({value}, p)"]
        self._inlined += 1
        suffix = f"_{self._inlined}"
        lines = [line for line in body if line != _BIND_APPEND]
        return [
            f"{indent}m{suffix} = {value}",
            *(indent + line[4:] for line in renamed(lines, LOCALS, suffix)),
        ]

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
        kind = self.kind(field)
        read = self.read(variable, field.name)
        test = f"(z := {read}) or _is_negative_zero(z)" if kind == "double" else f"(z := {read})"
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
        """Return the statements appending the key and the non-empty list ``v``.

        Loops go over ``v[:]``, a list: iterating a repeated field's container
        itself ends on an IndexError, which costs more than the copy.
        """
        constant = self.source.constant
        if kind == "message":
            assert field.message_type is not None
            if not field.message_type.fields:
                return [f"        a({constant(key + '[')} + ', '.join(['{{}}'] * len(v)) + ']')"]
            inline = self.inline(field.message_type, "y")
            if inline is not None:
                return [
                    f"        o = {constant(key + '[')}",
                    f"        for y in {self.items}:",
                    f"            a(o + {inline})",
                    "            o = ', '",
                    "        a(']')",
                ]
            return [
                f"        o = {constant(key + '[{')}",
                f"        for x in {self.items}:",
                "            a(o)",
                *self.members(field.message_type, "x", "            "),
                "            o = ', {'",
                "        a(']')",
            ]
        if kind == "enum":
            items = f"[{self.scalar('x', field, kind)} for x in {self.items}]"
        else:
            items = f"map({self.scalar_function(kind)}, {self.items})"
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
            # The name json_format writes for a number: values_by_number's (its
            # first alias), looked up by number (its items() lists every alias).
            by_number = enum_type.values_by_number
            names = {
                value.number: string_text(by_number[value.number].name)
                for value in enum_type.values
            }
            unknown = "_closed_enum_text" if enum_type.is_closed else "_enum_text"
            return f"({self.source.constant(names)}.get({variable}) or {unknown}({variable}))"
        return f"{self.scalar_function(kind)}({variable})"

    def map(self, field: FieldDescriptor, key: str) -> list[str]:
        """Return the statements appending the key and the non-empty map ``v``."""
        entry = field.message_type
        assert entry is not None
        key_kind = self.kind(entry.fields_by_name["key"])
        key_text = {
            "string": "_string(k)",
            "bool": "('\"true\"' if k else '\"false\"')",
        }.get(key_kind, f"{self.source.constant(_QUOTED_INTEGER)} % k")
        value_field = entry.fields_by_name["value"]
        value_field_kind = self.kind(value_field)
        value_type = value_field.message_type
        lines = [f"        o = {self.source.constant(key + '{')}", "        for k in v:"]
        if self._fields:
            # A message writes its entries in its map's order, which a dict's
            # order does not tell: the caller builds the message instead.
            lines[:0] = ["        if len(v) > 1:", "            raise _Fallback"]
        if value_type is not None and value_field_kind == "message" and value_type.fields:
            lines += [
                f"            a(o + {key_text} + ': {{')",
                *self.members(value_type, "v[k]", "            "),
            ]
        elif value_field_kind == "message":
            lines.append(f"            a(o + {key_text} + ': {{}}')")
        else:
            value = self.scalar("v[k]", value_field, value_field_kind)
            lines.append(f"            a(o + {key_text} + ': ' + {value})")
        lines += ["            o = ', '", "        a('}')"]
        return lines


def _is_zero(field: FieldDescriptor) -> bool:
    """Whether a scalar field's default is its type's zero (``-0.0`` is not: it is written)."""
    default = field.default_value
    if isinstance(default, float):
        return default == 0.0 and math.copysign(1.0, default) > 0
    return not default


def _encode_empty(message: object) -> bytes:
    del message
    return b"{}"


def build_encoder(message_type: type[Message], proto_field_names: bool) -> Encoder | None:
    """Generate and compile the encoder of a message type, or return None if it has none."""
    compiler = EncoderCompiler(proto_field_names=proto_field_names)
    return cast("Encoder | None", _entry_point(message_type, compiler, "encode"))


def build_fields_encoder(message_type: type[Message]) -> FieldsEncoder | None:
    """Generate and compile the fields encoder of a message type, or return None if it has none.

    It writes the bytes the encoder writes for ``message_type(**fields)``
    (JSON names), from the fields: a field absent or None is unset, a message
    is a dict of its fields, an enum a number. It raises where the encoder
    would, and for a map of more than one entry (the message's map orders its
    entries as a dict does not). Types holding a Timestamp (in a map too)
    have none.
    """
    compiler = EncoderCompiler(proto_field_names=False, fields=True)
    title = "encode the fields of"
    return cast("FieldsEncoder | None", _entry_point(message_type, compiler, title))


def _entry_point(
    message_type: type[Message], compiler: EncoderCompiler, title: str
) -> Callable[[Any], bytes] | None:
    """Compile the functions of a type and return the encoding calling them, or None."""
    descriptor = cast(Descriptor, message_type.DESCRIPTOR)
    try:
        check_root(descriptor)
        if not descriptor.fields:
            return _encode_empty  # a type without fields (nor extensions) always writes {}
        name = compiler.function(descriptor)
    except Unsupported:
        return None
    namespace = compiler.source.compile(f"fast JSON codec: {title} {descriptor.full_name}")
    append = cast(Callable[[Any, list[str]], None], namespace[name])

    def encode(message: Any) -> bytes:  # noqa: ANN401 - a message, or a message's fields
        pieces = ["{"]
        append(message, pieces)
        return "".join(pieces).encode()

    return encode
