"""Answers as a newer version of the API could send them: what an evolution fault sends.

A schema's consumers should survive the API's growth: fields they do not
know, at any depth, enum values they do not know, and new optional parts.
``evolved_json`` writes a response's proto3 JSON with all three, the same way
for the same response, so that a test can name every path it changed.
"""

from __future__ import annotations

import json
from typing import Any, Final, cast

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

EVOLVED_FIELD: Final = "evolvedField"
"""The field added to every JSON object of a message in the answer."""
EVOLVED_OBJECT: Final = "evolvedObject"
"""The new optional object added at the top of the answer."""
EVOLVED_ENUM_VALUE: Final = "EVOLVED_VALUE"
"""The enum value every enum field of the answer holds (or, repeated, gets added)."""

_EVOLVED_FIELD_VALUE: Final = "a field a newer API sends"
_EVOLVED_OBJECT_VALUE: Final = {
    "note": "an optional object a newer API sends",
    "count": "1",
    "enabled": True,
    "items": [{"name": "first"}],
}
# The messages proto3 JSON writes as something other than an object of their
# fields (google.protobuf.Timestamp as a string...): left as they are.
_SPECIAL_JSON: Final = frozenset(
    {
        "google.protobuf.Any",
        "google.protobuf.Duration",
        "google.protobuf.FieldMask",
        "google.protobuf.ListValue",
        "google.protobuf.Struct",
        "google.protobuf.Timestamp",
        "google.protobuf.Value",
    }
)
_WRAPPERS_FILE: Final = "google/protobuf/wrappers.proto"


def evolved_json(response: Message) -> bytes:
    """Return a response's proto3 JSON as a newer API could send it (UTF-8, as json_format writes).

    Every JSON object of a message, whatever its depth, gets ``evolvedField``;
    every enum field of those objects holds ``EVOLVED_VALUE`` (a repeated one
    gets it added; a oneof's enum only when the oneof holds it or nothing);
    and the answer gets ``evolvedObject``, a new optional object.
    """
    document = json_format.MessageToDict(response)
    _evolve(document, cast(Descriptor, response.DESCRIPTOR))
    document[EVOLVED_OBJECT] = _EVOLVED_OBJECT_VALUE
    return json.dumps(document, ensure_ascii=False).encode()


def _is_object(descriptor: Descriptor) -> bool:
    """Whether proto3 JSON writes a message of this type as an object of its fields."""
    return descriptor.full_name not in _SPECIAL_JSON and descriptor.file.name != _WRAPPERS_FILE


def _evolve(document: dict[str, Any], descriptor: Descriptor) -> None:
    """Add the new field, and the new enum values, to one object and to the objects in it."""
    for field in descriptor.fields:
        name = field.json_name
        if field.enum_type is not None:
            _evolve_enum(document, field, field.enum_type.full_name)
        elif field.message_type is not None and name in document:
            _evolve_member(document[name], field.message_type)
    document[EVOLVED_FIELD] = _EVOLVED_FIELD_VALUE


def _evolve_enum(document: dict[str, Any], field: FieldDescriptor, enum_name: str) -> None:
    name = field.json_name
    if enum_name == "google.protobuf.NullValue":
        return
    if field.is_repeated:
        document[name] = [*document.get(name, []), EVOLVED_ENUM_VALUE]
        return
    oneof = field.containing_oneof
    if oneof is not None and any(
        other.json_name in document for other in oneof.fields if other is not field
    ):
        return  # another member of the oneof is set: a second one would be no answer at all
    document[name] = EVOLVED_ENUM_VALUE


def _evolve_member(value: Any, message: Descriptor) -> None:  # noqa: ANN401 - JSON
    """Evolve the objects of a message field's JSON value: one, a list, or a map's values."""
    if message.GetOptions().map_entry:
        value_type = message.fields_by_name["value"].message_type
        if value_type is not None and _is_object(value_type):
            for item in value.values():
                _evolve(item, value_type)
        return
    if not _is_object(message):
        return
    for item in value if isinstance(value, list) else [value]:
        _evolve(item, message)
