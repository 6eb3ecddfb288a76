"""Synthetic message types that use every shape the fast JSON codec handles, and some it does not.

The API's own schema uses only some scalar types and map key types; these
types, added to the default descriptor pool under ``auxia_decision.tests``,
cover the rest: every integer type in every cardinality, ``optional``
presence, a oneof of every kind, maps keyed by every key type, a custom
``json_name``, proto2 defaults and closed enums, and the shapes the fast path
leaves to json_format (``bytes``, ``float``, recursion).
"""

from __future__ import annotations

import functools

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, timestamp_pb2
from google.protobuf.message import Message

_Field = descriptor_pb2.FieldDescriptorProto
_PACKAGE = "auxia_decision.tests"

_SCALARS = {
    "double": _Field.TYPE_DOUBLE,
    "int32": _Field.TYPE_INT32,
    "int64": _Field.TYPE_INT64,
    "uint32": _Field.TYPE_UINT32,
    "uint64": _Field.TYPE_UINT64,
    "sint32": _Field.TYPE_SINT32,
    "sint64": _Field.TYPE_SINT64,
    "fixed32": _Field.TYPE_FIXED32,
    "fixed64": _Field.TYPE_FIXED64,
    "sfixed32": _Field.TYPE_SFIXED32,
    "sfixed64": _Field.TYPE_SFIXED64,
    "bool": _Field.TYPE_BOOL,
    "string": _Field.TYPE_STRING,
}
_MAP_KEYS = ["string", "int32", "int64", "uint32", "uint64", "sint64", "fixed32", "bool"]


class _Builder:
    def __init__(self, message: descriptor_pb2.DescriptorProto) -> None:
        self.message = message
        self.number = 0

    def add(
        self,
        name: str,
        field_type: int,
        *,
        label: int = _Field.LABEL_OPTIONAL,
        type_name: str = "",
        oneof: int | None = None,
        optional: bool = False,
        json_name: str = "",
        default: str = "",
    ) -> None:
        self.number += 1
        field = self.message.field.add(name=name, number=self.number, type=field_type, label=label)
        if type_name:
            field.type_name = type_name
        if json_name:
            field.json_name = json_name
        if default:
            field.default_value = default
        if optional:
            field.proto3_optional = True
            field.oneof_index = len(self.message.oneof_decl)
            self.message.oneof_decl.add(name=f"_{name}")
        elif oneof is not None:
            field.oneof_index = oneof

    def scalar(self, name: str, kind: str, **options: object) -> None:
        self.add(name, _SCALARS[kind], **options)  # type: ignore[arg-type]

    def map(self, name: str, key: str, value_type: int, value_type_name: str = "") -> None:
        entry_name = "".join(part.title() for part in name.split("_")) + "Entry"
        entry = self.message.nested_type.add(name=entry_name)
        entry.options.map_entry = True
        entry.field.add(name="key", number=1, type=_SCALARS[key], label=_Field.LABEL_OPTIONAL)
        value = entry.field.add(
            name="value", number=2, type=value_type, label=_Field.LABEL_OPTIONAL
        )
        if value_type_name:
            value.type_name = value_type_name
        self.add(
            name,
            _Field.TYPE_MESSAGE,
            label=_Field.LABEL_REPEATED,
            type_name=f".{_PACKAGE}.{self.message.name}.{entry_name}",
        )


def _proto3_file() -> descriptor_pb2.FileDescriptorProto:
    file = descriptor_pb2.FileDescriptorProto(
        name="auxia_decision/tests/sink.proto",
        package=_PACKAGE,
        syntax="proto3",
        dependency=[timestamp_pb2.DESCRIPTOR.name],
    )
    color = file.enum_type.add(name="Color")
    for number, name in enumerate(["COLOR_UNSPECIFIED", "RED", "GREEN"]):
        color.value.add(name=name, number=number)
    leaf = _Builder(file.message_type.add(name="Leaf"))
    leaf.scalar("name", "string")
    label = _Builder(file.message_type.add(name="Label"))
    label.scalar("count", "int64")
    color_type = f".{_PACKAGE}.Color"
    leaf_type = f".{_PACKAGE}.Leaf"
    timestamp_type = ".google.protobuf.Timestamp"

    sink = _Builder(file.message_type.add(name="Sink"))
    # Real oneofs come before the synthetic ones of proto3 optional fields.
    sink.message.oneof_decl.add(name="choice")
    choice = 0
    for kind in _SCALARS:
        sink.scalar(f"{kind}_value", kind)
        sink.scalar(f"optional_{kind}", kind, optional=True)
        sink.scalar(f"repeated_{kind}", kind, label=_Field.LABEL_REPEATED)
    sink.add("color", _Field.TYPE_ENUM, type_name=color_type)
    sink.add("optional_color", _Field.TYPE_ENUM, type_name=color_type, optional=True)
    sink.add("colors", _Field.TYPE_ENUM, type_name=color_type, label=_Field.LABEL_REPEATED)
    sink.add("leaf", _Field.TYPE_MESSAGE, type_name=leaf_type)
    sink.add("leaves", _Field.TYPE_MESSAGE, type_name=leaf_type, label=_Field.LABEL_REPEATED)
    sink.add("label", _Field.TYPE_MESSAGE, type_name=f".{_PACKAGE}.Label")
    sink.add("time", _Field.TYPE_MESSAGE, type_name=timestamp_type)
    sink.add("times", _Field.TYPE_MESSAGE, type_name=timestamp_type, label=_Field.LABEL_REPEATED)
    sink.scalar("renamed_field", "string", json_name="customJsonName")
    sink.scalar("field_2_x", "int32")
    sink.scalar("choice_string", "string", oneof=choice)
    sink.scalar("choice_int64", "int64", oneof=choice)
    sink.scalar("choice_double", "double", oneof=choice)
    sink.scalar("choice_bool", "bool", oneof=choice)
    sink.add("choice_color", _Field.TYPE_ENUM, type_name=color_type, oneof=choice)
    sink.add("choice_leaf", _Field.TYPE_MESSAGE, type_name=leaf_type, oneof=choice)
    sink.add("choice_time", _Field.TYPE_MESSAGE, type_name=timestamp_type, oneof=choice)
    for key in _MAP_KEYS:
        sink.map(f"leaf_by_{key}", key, _Field.TYPE_MESSAGE, leaf_type)
    sink.map("string_by_int32", "int32", _Field.TYPE_STRING)
    sink.map("color_by_string", "string", _Field.TYPE_ENUM, color_type)
    sink.map("double_by_string", "string", _Field.TYPE_DOUBLE)
    sink.map("int64_by_bool", "bool", _Field.TYPE_INT64)
    sink.map("time_by_string", "string", _Field.TYPE_MESSAGE, timestamp_type)
    sink.map("label_by_uint64", "uint64", _Field.TYPE_MESSAGE, f".{_PACKAGE}.Label")

    unsupported = _Builder(file.message_type.add(name="WithBytesAndFloat"))
    unsupported.scalar("name", "string")
    unsupported.add("data", _Field.TYPE_BYTES)
    unsupported.add("ratio", _Field.TYPE_FLOAT)
    recursive = _Builder(file.message_type.add(name="Tree"))
    recursive.scalar("name", "string")
    recursive.add("children", _Field.TYPE_MESSAGE, type_name=f".{_PACKAGE}.Tree", label=3)
    return file


def _proto2_file() -> descriptor_pb2.FileDescriptorProto:
    file = descriptor_pb2.FileDescriptorProto(
        name="auxia_decision/tests/legacy.proto", package=_PACKAGE, syntax="proto2"
    )
    shade = file.enum_type.add(name="Shade")
    shade.value.add(name="LIGHT", number=1)
    shade.value.add(name="DARK", number=2)
    legacy = _Builder(file.message_type.add(name="Legacy"))
    legacy.scalar("count", "int32", default="7")
    legacy.scalar("label", "string", default="x")
    legacy.scalar("zero", "int64")
    legacy.add("shade", _Field.TYPE_ENUM, type_name=f".{_PACKAGE}.Shade", default="DARK")
    legacy.add(
        "shades", _Field.TYPE_ENUM, type_name=f".{_PACKAGE}.Shade", label=_Field.LABEL_REPEATED
    )
    return file


@functools.cache
def _register() -> None:
    pool = descriptor_pool.Default()
    pool.Add(_proto3_file())
    pool.Add(_proto2_file())


def message_type(name: str) -> type[Message]:
    """Return the class of a synthetic message type (``Sink``, ``Legacy``, ``Tree``, ...)."""
    _register()
    descriptor = descriptor_pool.Default().FindMessageTypeByName(f"{_PACKAGE}.{name}")
    return message_factory.GetMessageClass(descriptor)
