"""Random protobuf schemas, built with descriptor_pb2 into fresh descriptor pools.

``schemas()`` draws a ``.proto`` file (proto3 or proto2) of a few enums and
message types using every shape a schema can grow: every integer type,
strings, bytes, bools, doubles and floats (proto2 defaults at their edges
too), open and closed enums with negative numbers and aliases, nested,
recursive and repeated messages, oneofs (named like a member's JSON name
too), proto3 ``optional``, maps of every key type, ``required`` fields,
groups, extension ranges, every well-known type, custom JSON names, and field
names that are Python keywords or the names generated code uses. Each file
goes into a pool of its own (with the well-known types), so that schemas
never meet. A drawn schema prints as ``schema_from_text(...)``, the call that
builds it again, so that a failure found is kept as a regression case.
"""

from __future__ import annotations

import keyword
from typing import Any

from google.protobuf import (
    any_pb2,
    descriptor_pb2,
    descriptor_pool,
    duration_pb2,
    empty_pb2,
    field_mask_pb2,
    message_factory,
    struct_pb2,
    text_format,
    timestamp_pb2,
    wrappers_pb2,
)
from google.protobuf.message import Message
from hypothesis import assume
from hypothesis import strategies as st

_Field = descriptor_pb2.FieldDescriptorProto
_WELL_KNOWN_FILES = [
    module.DESCRIPTOR
    for module in (
        any_pb2,
        duration_pb2,
        empty_pb2,
        field_mask_pb2,
        struct_pb2,
        timestamp_pb2,
        wrappers_pb2,
    )
]
_PACKAGE = "fuzz"
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1

# The scalar types, by the name a kind has below (int32, bytes, ...), read from
# descriptor.proto's own list of field types.
_SCALARS = {
    name.removeprefix("TYPE_").lower(): number
    for name, number in _Field.Type.items()
    if name not in ("TYPE_GROUP", "TYPE_MESSAGE", "TYPE_ENUM")
}
_MAP_KEYS = [kind for kind in _SCALARS if kind not in ("double", "float", "bytes")]
_TIMESTAMP = "google.protobuf.Timestamp"
_WELL_KNOWN_TYPES = [
    "google.protobuf.Duration",
    "google.protobuf.Struct",
    "google.protobuf.Value",
    "google.protobuf.ListValue",
    "google.protobuf.FieldMask",
    "google.protobuf.Any",
    "google.protobuf.Empty",
    *(f"google.protobuf.{name}" for name in wrappers_pb2.DESCRIPTOR.message_types_by_name),
]
# The kinds of field, by family: a family is drawn, then one of its kinds
# (so that each family comes up often, however many kinds it has).
_FAMILIES = {
    "scalar": list(_SCALARS),
    "enum": ["enum"],
    "message": ["message"],
    "timestamp": [_TIMESTAMP],
    "map": ["map"],
    "well-known": [*_WELL_KNOWN_TYPES, "null value"],
    "group": ["group"],
}
# The kinds the fast path has specialised forms for: the shapes of the API's schema.
_PLAIN_FAMILIES = {
    "scalar": [kind for kind in _SCALARS if kind not in ("float", "bytes")],
    "enum": ["enum"],
    "message": ["message"],
    "timestamp": [_TIMESTAMP],
    "map": ["map"],
}

# Edge values of proto2 defaults, as descriptors write them.
_INTEGER_DEFAULTS = ["0", "1", "-1", "7"]
_DEFAULTS = {
    "int32": [*_INTEGER_DEFAULTS, str(_INT32_MIN), str(_INT32_MAX)],
    "int64": [*_INTEGER_DEFAULTS, str(-(2**63)), str(2**63 - 1), str(2**53 + 1)],
    "uint32": ["0", "1", str(2**32 - 1)],
    "uint64": ["0", "1", str(2**64 - 1)],
    "bool": ["true", "false"],
    "string": ["", "x", "é", '"', "\\"],
    "bytes": ["", "abc", "\\000\\377"],
    "double": ["0", "-0", "1.5", "-2.25", "1e+100", "inf", "-inf", "nan", "5e-324"],
    "float": ["0", "-0", "1.5", "inf", "-inf", "nan", "3.4028235e+38"],
}
for _kind, _like in [
    ("sint32", "int32"),
    ("sfixed32", "int32"),
    ("sint64", "int64"),
    ("sfixed64", "int64"),
    ("fixed32", "uint32"),
    ("fixed64", "uint64"),
]:
    _DEFAULTS[_kind] = _DEFAULTS[_like]

# Names that generated Python code could trip on: keywords, the names of the
# variables and helpers of the generated functions (suffixed too, as in bodies
# written in place), builtins and message methods. (A field named DESCRIPTOR or
# SetInParent hides that attribute of its message from protobuf's own Python
# code, json_format's reading included, which then fails with a TypeError:
# they are left out.)
_ODD_NAMES = [
    *keyword.kwlist,
    *keyword.softkwlist,
    *"mpnaskvxyzoctw",
    "kw",
    "w0",
    "m_1",
    "v_2",
    "w0_1",
    "s_3",
    "self",
    "cls",
    "type",
    "len",
    "dict",
    "str",
    "int",
    "list",
    "id",
    "data",
    "document",
    "_e0",
    "_d0",
    "_k0",
    "_q0",
    "_c1",
    "_fail",
    "_ABSENT",
    "_Fallback",
    "_string",
    "HasField",
    "ListFields",
    "WhichOneof",
    "Extensions",
    "__init__",
    "__class__",
    "b_sub",
    "bSub",
    "field_2_x",
    "a__b",
    "_a",
    "a_",
    "FOO_BAR",
]
_NAMES = st.one_of(
    st.from_regex(r"[a-z][a-z0-9]{0,3}(_[a-z0-9]{1,3}){0,2}", fullmatch=True),
    st.sampled_from(_ODD_NAMES),
    st.from_regex(r"_?[A-Za-z][A-Za-z0-9_]{0,5}", fullmatch=True),
)
_ENUM_VALUE_NAMES = st.from_regex(r"[A-Z][A-Z0-9_]{0,4}", fullmatch=True)
_ENUM_NUMBERS = st.one_of(
    st.sampled_from([1, -1, 2, _INT32_MIN, _INT32_MAX]), st.integers(_INT32_MIN, _INT32_MAX)
)
_CUSTOM_JSON_NAMES = ["renamed", "x_y", "Upper", "é", "a b", "@type", "[x]", "value"]


def json_name(name: str) -> str:
    """Return the default JSON name of a field (protoc's lowerCamelCase of its name)."""
    parts = name.split("_")
    return parts[0] + "".join(part[:1].upper() + part[1:] for part in parts[1:])


def _camel_type_name(name: str) -> str:
    """Return the CamelCase a map field's entry type is named from (protoc's rule)."""
    camel = json_name(name)
    return camel[:1].upper() + camel[1:]


class Schema:
    """A random ``.proto`` file, and the fresh pool that holds it."""

    def __init__(
        self, file: descriptor_pb2.FileDescriptorProto, pool: descriptor_pool.DescriptorPool
    ) -> None:
        self.file = file
        self.pool = pool

    def message_types(self) -> list[type[Message]]:
        """Return the class of every message type of the file, map entries apart."""
        found: list[type[Message]] = []
        waiting = [
            self.pool.FindMessageTypeByName(f"{_PACKAGE}.{message.name}")
            for message in self.file.message_type
        ]
        while waiting:
            descriptor = waiting.pop(0)
            if not descriptor.GetOptions().map_entry:
                found.append(message_factory.GetMessageClass(descriptor))
            waiting += descriptor.nested_types
        return found

    def __repr__(self) -> str:
        file = descriptor_pb2.FileDescriptorProto()
        file.CopyFrom(self.file)
        for added in ("dependency", "name", "package"):  # schema() adds them back
            file.ClearField(added)
        text = text_format.MessageToString(file, as_one_line=True, as_utf8=True)
        return f"schema_from_text({text!r})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """Print as ``repr`` does (hypothesis's pretty printer asks this first)."""
        del cycle
        printer.text(repr(self))


def schema_from_text(text: str) -> Schema:
    """Return the schema of a ``FileDescriptorProto`` in text format (as a schema prints)."""
    return schema(text_format.Parse(text, descriptor_pb2.FileDescriptorProto()))


def schema(file: descriptor_pb2.FileDescriptorProto) -> Schema:
    """Return a schema in a fresh pool holding its file and the well-known types.

    The file may use any well-known type (it is given them as dependencies);
    its name and package are those of every random schema unless it has its own.
    Raises TypeError when the pool refuses the file.
    """
    file.dependency[:] = [well_known.name for well_known in _WELL_KNOWN_FILES]
    file.name = file.name or "fuzz.proto"
    file.package = file.package or _PACKAGE
    pool = descriptor_pool.DescriptorPool()
    for well_known in _WELL_KNOWN_FILES:
        pool.AddSerializedFile(well_known.serialized_pb)
    pool.Add(file)
    return Schema(file, pool)


@st.composite
def schemas(draw: st.DrawFn) -> Schema:
    """Draw a random schema (see the module's docstring) that a descriptor pool accepts.

    Half the schemas are plain: proto3 with the shapes the fast path has
    specialised forms for (those of the API's schema), so that it decides
    rather than hands every document to the generic path.
    """
    plain = draw(st.booleans())
    syntax = "proto3" if plain else draw(st.sampled_from(["proto3", "proto2"]))
    file = descriptor_pb2.FileDescriptorProto(syntax=syntax)
    for index in range(draw(st.integers(0, 2))):
        _add_enum(draw, file, index)
    count = draw(st.integers(1, 3))
    families = _PLAIN_FAMILIES if plain else _FAMILIES
    for index in range(count):
        _MessageDrawer(draw, file, count, families).add(f"M{index}")
    try:
        drawn = schema(file)
    except TypeError:
        assume(False)  # a file the pool refuses is no schema
    return drawn


def _add_enum(draw: st.DrawFn, file: descriptor_pb2.FileDescriptorProto, index: int) -> None:
    enum = file.enum_type.add(name=f"E{index}")
    aliases = draw(st.booleans())
    if aliases:
        enum.options.allow_alias = True
    numbers: list[int] = []
    names: set[str] = set()
    for position in range(draw(st.integers(1, 4))):
        if position == 0 and file.syntax == "proto3":
            number = 0  # a proto3 enum's first value is its zero
        elif aliases and numbers and draw(st.booleans()):
            number = draw(st.sampled_from(numbers))
        else:
            number = draw(_ENUM_NUMBERS)
            if number in numbers:
                continue
        # Enum value names are scoped beside their enum: the prefix keeps them apart.
        name = f"E{index}_{draw(_ENUM_VALUE_NAMES)}"
        if name in names:
            continue
        names.add(name)
        numbers.append(number)
        enum.value.add(name=name, number=number)


class _MessageDrawer:
    """Draws the fields, oneofs and map entries of one message type."""

    def __init__(
        self,
        draw: st.DrawFn,
        file: descriptor_pb2.FileDescriptorProto,
        count: int,
        families: dict[str, list[str]],
    ) -> None:
        self.draw = draw
        self.file = file
        self.count = count
        self.families = families
        self.proto3 = file.syntax == "proto3"

    def kind(self, *, of_map_value: bool = False) -> str:
        """Draw the kind of a field (or of a map's values: no map, no group)."""
        families = [
            family for family in self.families if not (of_map_value and family in ("map", "group"))
        ]
        return self.draw(st.sampled_from(self.families[self.draw(st.sampled_from(families))]))

    def add(self, name: str) -> None:
        draw = self.draw
        message = self.file.message_type.add(name=name)
        symbols: set[str] = set()  # names of fields, oneofs and nested types
        json_names: set[str] = set()
        oneof_members: list[list[_Field]] = [[] for _ in range(draw(st.integers(0, 2)))]
        optional: list[_Field] = []
        for number in range(1, draw(st.integers(0, 8)) + 1):
            field_name = draw(_NAMES)
            if field_name in symbols or json_name(field_name) in json_names:
                continue
            field = message.field.add(name=field_name, number=number)
            if not self._field_type(message, field, symbols):
                del message.field[-1]
                continue
            custom = draw(st.sampled_from([None] * 6 + _CUSTOM_JSON_NAMES))
            if custom is not None and custom not in json_names and custom not in symbols:
                field.json_name = custom
            symbols.add(field_name)
            json_names.add(field.json_name or json_name(field_name))
            singular = field.label != _Field.LABEL_REPEATED
            if singular and field.label != _Field.LABEL_REQUIRED:
                place = draw(st.integers(0, 3))
                if place < len(oneof_members):
                    oneof_members[place].append(field)
                elif self.proto3 and place == 3:
                    optional.append(field)
        self._oneofs(message, oneof_members, symbols, json_names)
        for field in optional:
            synthetic = f"_{field.name}"
            if synthetic in symbols:
                continue
            symbols.add(synthetic)
            field.proto3_optional = True
            field.oneof_index = len(message.oneof_decl)
            message.oneof_decl.add(name=synthetic)
        if "group" in self.families and draw(st.integers(0, 7)) == 0:
            message.extension_range.add(start=1000, end=2000)

    def _oneofs(
        self,
        message: descriptor_pb2.DescriptorProto,
        oneof_members: list[list[_Field]],
        symbols: set[str],
        json_names: set[str],
    ) -> None:
        for members in oneof_members:
            if not members:
                continue
            # A oneof may be named like a member's JSON name, as json_format's
            # bookkeeping of the names it has read would then confuse.
            candidates = [json_name(field.name) for field in members] + [self.draw(_NAMES)]
            name = self.draw(st.sampled_from(candidates))
            if name in symbols:
                continue
            symbols.add(name)
            index = len(message.oneof_decl)
            message.oneof_decl.add(name=name)
            for field in members:
                field.oneof_index = index

    def _field_type(
        self, message: descriptor_pb2.DescriptorProto, field: _Field, symbols: set[str]
    ) -> bool:
        """Give a field a type and a label; False when the drawn shape cannot be had."""
        draw = self.draw
        kind = self.kind()
        labels = [_Field.LABEL_OPTIONAL, _Field.LABEL_REPEATED]
        if not self.proto3:
            labels.append(_Field.LABEL_REQUIRED)
        field.label = draw(st.sampled_from(labels))
        if kind == "map":
            return self._map(message, field, symbols)
        if kind == "group":
            # A group's field is named as its type, in lower case.
            group_name = field.name.capitalize()
            if self.proto3 or not field.name.isalnum() or field.name != group_name.lower():
                return False
            if not group_name[:1].isalpha() or group_name in symbols:
                return False
            symbols.add(group_name)
            group = message.nested_type.add(name=group_name)
            group.field.add(
                name="id", number=1, type=_Field.TYPE_INT32, label=_Field.LABEL_OPTIONAL
            )
            field.type = _Field.TYPE_GROUP
            field.type_name = f".{_PACKAGE}.{message.name}.{group_name}"
            return True
        self._value_type(field, kind)
        if field.label == _Field.LABEL_OPTIONAL and not self.proto3 and draw(st.booleans()):
            self._default(field, kind)
        return field.HasField("type")

    def _value_type(self, field: _Field, kind: str) -> None:
        """Give a field (or a map's value) the type of a kind (no type when there is none)."""
        draw = self.draw
        if kind in _SCALARS:
            field.type = _SCALARS[kind]
        elif kind == "enum" and self.file.enum_type:
            field.type = _Field.TYPE_ENUM
            field.type_name = f".{_PACKAGE}.{draw(st.sampled_from(self.file.enum_type)).name}"
        elif kind == "message":
            field.type = _Field.TYPE_MESSAGE
            field.type_name = f".{_PACKAGE}.M{draw(st.integers(0, self.count - 1))}"
        elif kind.startswith("google.protobuf."):
            field.type = _Field.TYPE_MESSAGE
            field.type_name = f".{kind}"
        elif kind == "null value":
            field.type = _Field.TYPE_ENUM
            field.type_name = ".google.protobuf.NullValue"

    def _default(self, field: _Field, kind: str) -> None:
        if kind in _DEFAULTS:
            field.default_value = self.draw(st.sampled_from(_DEFAULTS[kind]))
        elif field.type == _Field.TYPE_ENUM and field.type_name.startswith(f".{_PACKAGE}."):
            enum_name = field.type_name.rsplit(".", 1)[1]
            enum = next(enum for enum in self.file.enum_type if enum.name == enum_name)
            field.default_value = self.draw(st.sampled_from(enum.value)).name

    def _map(
        self, message: descriptor_pb2.DescriptorProto, field: _Field, symbols: set[str]
    ) -> bool:
        draw = self.draw
        entry_name = _camel_type_name(field.name) + "Entry"
        if entry_name in symbols or not entry_name[:1].isalpha():
            return False
        value_kind = self.kind(of_map_value=True)
        value = _Field(name="value", number=2, label=_Field.LABEL_OPTIONAL)
        self._value_type(value, value_kind)
        if not value.HasField("type"):
            return False
        symbols.add(entry_name)
        entry = message.nested_type.add(name=entry_name)
        entry.options.map_entry = True
        key_type = _SCALARS[draw(st.sampled_from(_MAP_KEYS))]
        entry.field.add(name="key", number=1, type=key_type, label=_Field.LABEL_OPTIONAL)
        entry.field.append(value)
        field.label = _Field.LABEL_REPEATED
        field.type = _Field.TYPE_MESSAGE
        field.type_name = f".{_PACKAGE}.{message.name}.{entry_name}"
        return True
