"""The rules of request validation, read once per message type from its descriptor.

``google.api.field_behavior`` (REQUIRED, OUTPUT_ONLY), ``oneof_required``
and ``field_rules`` / ``message_rules``: what the walk of ``_validation``
and the generated quick checks of ``_validation_quick`` both enforce.
"""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from google.api import field_behavior_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor, OneofDescriptor
from google.protobuf.message import Message

from auxia.decision.model import field_rules_pb2, oneof_behavior_pb2

_REQUIRED = field_behavior_pb2.REQUIRED
_OUTPUT_ONLY = field_behavior_pb2.OUTPUT_ONLY


@dataclass(frozen=True)
class FieldRule:
    """What validation checks of one field: read once per field from its options."""

    field: FieldDescriptor
    output_only: bool
    required: bool
    value_check: Callable[[object], str | None] | None = None
    """For a field whose values have rules (``field_rules``, defined enum values):
    returns what is wrong with one value that is not the default, or None."""
    enum_values: frozenset[int] | None = None
    """For an enum field whose only value rule is to be a defined value: the
    defined numbers (the flat check tests them directly)."""


def _value_check(field: FieldDescriptor) -> Callable[[object], str | None] | None:
    """Return the check of one value of a field from its rules, or None when it has none."""
    rules = field.GetOptions().Extensions[field_rules_pb2.field_rules]
    checks: list[Callable[[object], str | None]] = []
    if rules.pattern:
        # A final $ in ECMAScript (and RE2) ends the string; Python's would also
        # match before a final newline: \Z is the same end.
        source = rules.pattern
        if source.endswith("$") and not source.endswith("\\$"):
            source = source[:-1] + r"\Z"
        pattern = re.compile(source)
        wanted = rules.pattern_description or f"a match of {rules.pattern}"

        def matches(value: object) -> str | None:
            return None if pattern.search(str(value)) else f'"{value}" is not {wanted}'

        checks.append(matches)
    if rules.HasField("minimum"):
        minimum = rules.minimum
        wording = "must not be negative" if minimum == 0 else f"must be at least {minimum}"

        def at_least(value: object) -> str | None:
            return None if cast(int, value) >= minimum else wording

        checks.append(at_least)
    if field.enum_type is not None:
        defined = frozenset(field.enum_type.values_by_number)
        names = ", ".join(value.name for value in field.enum_type.values)

        def known(value: object) -> str | None:
            if value in defined:
                return None
            return f"{value} is not a value of {field.enum_type.name}: expected one of {names}"  # type: ignore[union-attr]

        checks.append(known)
    if not checks:
        return None
    if len(checks) == 1:
        return checks[0]

    def every(value: object) -> str | None:
        for check in checks:
            problem = check(value)
            if problem is not None:
                return problem
        return None

    return every


@dataclass(frozen=True)
class MessageRules:
    """The fields of a message type that validation looks at, and its required oneofs."""

    fields: tuple[FieldRule, ...]
    required_oneofs: tuple[OneofDescriptor, ...]
    at_least_one_of: tuple[tuple[FieldDescriptor, ...], ...]
    """Groups of fields of which at least one must be set (``message_rules``)."""
    flat: Callable[[Message], tuple[object, ...]] | None
    """For a type whose only rules are required singular scalars without presence:
    returns their values. Their defaults (zero, false, empty) are all false, so
    a message is valid when every value is true (and ``flat_enums`` holds).
    None for any other type."""
    flat_enums: tuple[tuple[int, frozenset[int]], ...]
    """With ``flat``: the enum values among the values (by index), with the
    numbers each may hold."""
    quick: Callable[[Message], bool] | None
    """For any other type: whether a message certainly has no error and no
    warning, at any depth (False: the walk decides, and words what it finds);
    None when the type has nothing to check. Compiled from the other rules:
    set in the rules ``validate`` keeps by class, None in those of ``rules_of``."""


def _required_values(names: list[str]) -> Callable[[Message], tuple[object, ...]]:
    """Return a function reading the named fields of a message into a tuple."""
    if len(names) > 1:
        return cast(Callable[[Message], tuple[object, ...]], operator.attrgetter(*names))
    if names:
        getter = operator.attrgetter(names[0])
        return lambda message: (getter(message),)
    return lambda message: ()


@functools.cache
def rules_of(descriptor: Descriptor) -> MessageRules:
    """Return the validation rules of a message type (descriptors are immutable: cached)."""
    fields = []
    for field in descriptor.fields:
        behaviors = field.GetOptions().Extensions[field_behavior_pb2.field_behavior]
        value_check = _value_check(field)
        rule = FieldRule(
            field,
            _OUTPUT_ONLY in behaviors,
            _REQUIRED in behaviors,
            value_check,
            _only_enum_values(field) if value_check is not None else None,
        )
        # A field with nothing to check and no message inside is never looked at.
        if rule.output_only or rule.required or rule.value_check or field.message_type:
            fields.append(rule)
    oneofs = tuple(
        oneof
        for oneof in descriptor.oneofs
        if oneof.GetOptions().Extensions[oneof_behavior_pb2.oneof_required]
    )
    message_rules = descriptor.GetOptions().Extensions[field_rules_pb2.message_rules]
    groups = tuple(
        tuple(descriptor.fields_by_name[name] for name in group.fields)
        for group in message_rules.at_least_one_of
    )
    flat: Callable[[Message], tuple[object, ...]] | None = _required_values(
        [rule.field.name for rule in fields]
    )
    if (
        oneofs
        or groups
        or any(
            rule.output_only
            or (rule.value_check is not None and not (rule.required and rule.enum_values))
            or rule.field.message_type is not None
            or rule.field.is_repeated
            or rule.field.has_presence
            for rule in fields
        )
    ):
        flat = None
    flat_enums = tuple(
        (index, rule.enum_values) for index, rule in enumerate(fields) if rule.enum_values
    )
    return MessageRules(tuple(fields), oneofs, groups, flat, flat_enums, quick=None)


def _only_enum_values(field: FieldDescriptor) -> frozenset[int] | None:
    """Return an enum field's defined numbers if being one of them is its only value rule."""
    rules = field.GetOptions().Extensions[field_rules_pb2.field_rules]
    if field.enum_type is None or rules.pattern or rules.HasField("minimum"):
        return None
    return frozenset(field.enum_type.values_by_number)
