"""What each field is, read from its descriptor, and which types have no specialised form.

The compilers ask here what to generate for a field: its kind (``string``,
``int64``, ``enum``, ``timestamp``, ``message``, ...), its integer range,
whether it is a map, and whether the message constructor checks its JSON
values itself. A type using a feature without a specialised form raises
:class:`Unsupported`, and gets no fast functions.
"""

from __future__ import annotations

from google.protobuf import descriptor_pool
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.protobuf.message import Message

from auxia_decision._fastjson._runtime import INT32_MAX, INT32_MIN


class Unsupported(Exception):  # noqa: N818 - it is a signal, not an error
    """A message type uses a feature the fast path has no specialised form for."""


TIMESTAMP_NAME = "google.protobuf.Timestamp"

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
_MESSAGE_ATTRIBUTES = frozenset(dir(Message))
_INT32_CPP_TYPES = {
    FieldDescriptor.CPPTYPE_INT32: (INT32_MIN, INT32_MAX),
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


def is_map(field: FieldDescriptor) -> bool:
    """Return whether a field is a map (a repeated field of map entries)."""
    entry = field.message_type
    return entry is not None and entry.GetOptions().map_entry


def check_message(descriptor: Descriptor) -> None:
    """Raise Unsupported for a message type the fast path has no specialised form for.

    Besides the well-known types but Timestamp and types with extensions, a
    type with a field named like a method of protobuf's ``Message``
    (``ListFields``, ``SetInParent``, ...) has none: the field hides the
    method from json_format, which then fails where a fast function would
    not, and the paths must agree.
    """
    name = descriptor.full_name
    if name in _UNSUPPORTED_MESSAGES or descriptor.file.name == "google/protobuf/wrappers.proto":
        raise Unsupported(name)
    if descriptor.extension_ranges:
        raise Unsupported(f"{name} can have extensions")
    hiding = [field.name for field in descriptor.fields if field.name in _MESSAGE_ATTRIBUTES]
    if hiding:
        raise Unsupported(f"{name} has fields named like methods of a message: {hiding}")


def check_root(descriptor: Descriptor) -> None:
    """Raise Unsupported for a message type that cannot have fast functions of its own."""
    if descriptor.full_name == TIMESTAMP_NAME:
        raise Unsupported(TIMESTAMP_NAME)
    check_message(descriptor)


_SCALAR_KINDS = {
    FieldDescriptor.TYPE_STRING: "string",
    FieldDescriptor.TYPE_BOOL: "bool",
    FieldDescriptor.TYPE_DOUBLE: "double",
}


def value_kind(field: FieldDescriptor) -> str:
    """Return the kind of one value of a field (its element kind if repeated)."""
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        assert field.message_type is not None
        if field.message_type.full_name == TIMESTAMP_NAME:
            return "timestamp"
        check_message(field.message_type)
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


def checked_by_constructor(field: FieldDescriptor) -> bool:
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
        and value_kind(field) == "enum"
    )


def int_range(field: FieldDescriptor) -> tuple[int, int]:
    """Return the lowest and highest value of an integer field."""
    ranges = {**_INT32_CPP_TYPES, **_INT64_CPP_TYPES}
    return ranges[field.cpp_type]


def multi_member_oneofs(descriptor: Descriptor) -> list[list[FieldDescriptor]]:
    """Return the members of each oneof with two members or more (not proto3 ``optional``)."""
    return [list(oneof.fields) for oneof in descriptor.oneofs if len(oneof.fields) > 1]
