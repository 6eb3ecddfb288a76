"""Schema drift: what a JSON document of a message type holds that the schema does not know.

A response from a newer API may carry members, enum values or JSON types
that the installed schema lacks. Read leniently, they vanish (an unknown
member is dropped, an unknown enum name reads as unset); :func:`find_drift`
lists each of them by its JSON path, so that a consumer can learn that its
schema is behind the API. It walks the document with the JSON-path checker
(:class:`auxia_decision._json_checker.JsonChecker`), read strictly, and
files what it reports under a few kinds.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Final

from google.protobuf.descriptor import Descriptor, EnumDescriptor

from auxia_decision._errors import ApiError
from auxia_decision._json import kind_of, load_json
from auxia_decision._json_checker import JsonChecker

UNKNOWN_FIELD: Final = "unknown_field"
"""A member that names no field of its message type."""
UNKNOWN_ENUM_VALUE: Final = "unknown_enum_value"
"""An enum value name its type lacks, or a number its (open) type does not name."""
WRONG_JSON_TYPE: Final = "wrong_json_type"
"""A value of a JSON type its field cannot take (a number for a string field)."""
INVALID_VALUE: Final = "invalid_value"
"""A value of the right JSON type that its field still cannot take (an integer out of
its range, a malformed timestamp, a key given twice)."""

KINDS: Final = (UNKNOWN_FIELD, UNKNOWN_ENUM_VALUE, WRONG_JSON_TYPE, INVALID_VALUE)
"""Every kind of drift, in the order of :class:`Drift`'s ``kind`` documentation."""


@dataclasses.dataclass(frozen=True)
class Drift:
    """One place where a JSON document says what its schema does not know."""

    path: str
    """The JSON path of the value (``userTreatments[0].newField``, ``treatment.status``)."""
    kind: str
    """``unknown_field``, ``unknown_enum_value``, ``wrong_json_type`` or ``invalid_value``."""
    detail: str
    """What is there, in words (``treatment.status="BRAND_NEW_STATUS"``, ...)."""

    def __str__(self) -> str:
        return f"{self.path or '(the document)'}: {self.kind}: {self.detail}"


class _DriftFinder(JsonChecker):
    """A strict JSON-path checker that files what it finds as drifts, and rewrites nothing."""

    report_unknown_numbers = True
    rewrites = False

    def __init__(self) -> None:
        super().__init__(strict=True, report=lambda _: None)
        self.found: list[Drift] = []

    def error(self, path: str, description: str) -> None:
        self.found.append(Drift(path, INVALID_VALUE, description))

    def wrong_type(self, path: str, expected: str, value: object) -> None:
        self.found.append(
            Drift(path, WRONG_JSON_TYPE, f"expected {expected}, got {kind_of(value)}")
        )

    def unknown_field(self, path: str, key: str, descriptor: Descriptor) -> None:
        self.found.append(
            Drift(path, UNKNOWN_FIELD, f'"{key}" is not a field of {descriptor.name}')
        )

    def unknown_enum_value(
        self, path: str, value: object, number: int | None, enum_type: EnumDescriptor
    ) -> None:
        shown = json.dumps(value, ensure_ascii=False)
        detail = f"{path}={shown} is not a value of {enum_type.name}"
        self.found.append(Drift(path, UNKNOWN_ENUM_VALUE, detail))


def find_drift(document: object, descriptor: Descriptor) -> list[Drift]:
    """Every place a parsed JSON document of a message type says what the schema does not know.

    Args:
        document: the document as ``json.loads`` returns it (left unchanged).
        descriptor: the descriptor of the message type it is a JSON form of.

    Returns:
        The drifts in document order: members the type lacks (at any depth,
        in repeated fields and maps too), enum values it lacks (by name, or
        by a number an open enum does not name), values of JSON types their
        fields cannot take, and values their fields cannot take otherwise.
        Empty when the schema knows everything in the document.

    """
    finder = _DriftFinder()
    finder.message(document, descriptor, "")
    return finder.found


def find_drift_in_text(data: bytes | str, descriptor: Descriptor) -> list[Drift]:
    """:func:`find_drift` of a JSON text; empty when the text is not JSON at all."""
    try:
        document = load_json(data)
    except ApiError:
        return []
    return find_drift(document, descriptor)
