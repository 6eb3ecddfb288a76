"""Request validation read from the descriptors: field behaviors and our rule options.

Every rule is written once, in the protos: ``google.api.field_behavior``
(REQUIRED, OUTPUT_ONLY), ``oneof_required`` and ``field_rules`` /
``message_rules`` (``auxia/decision/model/field_rules.proto``). The OpenAPI
document exports the same rules as JSON Schema.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Final, cast

from google.protobuf.descriptor import Descriptor, FieldDescriptor, OneofDescriptor
from google.protobuf.message import Message

from auxia_decision._errors import ApiError, FieldViolation
from auxia_decision._json import json_path, map_member_path
from auxia_decision._validation_quick import quick_check
from auxia_decision._validation_rules import MessageRules, rules_of


@dataclass(frozen=True)
class ValidationResult:
    """The outcome of validating a request.

    ``errors`` make the request invalid. ``warnings`` are OUTPUT_ONLY fields the
    request set: by policy (as AIP-203 asks) a server ignores them and the
    request goes on; ``clear_output_only`` clears them from a message.
    """

    errors: tuple[FieldViolation, ...]
    warnings: tuple[FieldViolation, ...]

    @property
    def ok(self) -> bool:
        """Whether the request has no errors."""
        return not self.errors


def validate(message: Message) -> ValidationResult:
    """Return every violation of a request message at once; the message is not changed.

    Checks REQUIRED fields (a proto3 scalar holding its default value counts as
    missing), oneofs marked ``oneof_required``, the ``field_rules`` of values
    (patterns, minimums), enum values the schema defines, and the
    ``message_rules`` across fields; OUTPUT_ONLY fields that are set are
    reported as warnings.
    """
    message_type = type(message)
    rules = _RULES_BY_TYPE.get(message_type)
    if rules is None:
        descriptor = cast(Descriptor, message.DESCRIPTOR)
        rules = rules_of(descriptor)
        if rules.flat is None:
            rules = dataclasses.replace(rules, quick=quick_check(descriptor))
        _RULES_BY_TYPE[message_type] = rules
    if rules.flat is not None:
        values = rules.flat(message)
        if all(values):
            for index, defined in rules.flat_enums:
                if values[index] not in defined:
                    break
            else:
                return _VALID
        # A field is missing or wrong: the walk words the error.
    elif rules.quick is None or rules.quick(message):
        return _VALID
    errors: list[FieldViolation] = []
    warnings: list[FieldViolation] = []
    _walk(message, "", errors, warnings, clear=False)
    return ValidationResult(tuple(errors), tuple(warnings))


def check_request(message: Message) -> ValidationResult:
    """Validate a request, raising ApiError (INVALID_ARGUMENT) when it has errors.

    The message is not changed; the result holds the warnings.
    """
    result = validate(message)
    if result.errors:
        raise ApiError.invalid_argument(result.errors)
    return result


def clear_output_only(message: Message) -> tuple[FieldViolation, ...]:
    """Clear every OUTPUT_ONLY field set in a message, at any depth; return what was cleared.

    This is what a server does with them (AIP-203: ignored, not an error).
    The result names each cleared field by its JSON path, as the warnings of
    ``validate`` do.
    """
    cleared: list[FieldViolation] = []
    _walk(message, "", [], cleared, clear=True)
    return tuple(cleared)


_VALID = ValidationResult((), ())


# The rules of each message class validated so far. Looked up by class: the
# descriptor-keyed cache of rules_of costs several times more per request.
_RULES_BY_TYPE: dict[type[Message], MessageRules] = {}


def _is_set(message: Message, field: FieldDescriptor) -> bool:
    if field.is_repeated:
        return len(getattr(message, field.name)) > 0
    if field.has_presence:
        return message.HasField(field.name)
    return bool(getattr(message, field.name) != field.default_value)


def _has_value(message: Message, field: FieldDescriptor) -> bool:
    """Whether a field holds something other than its default (an empty ``optional`` does not)."""
    if field.is_repeated:
        return len(getattr(message, field.name)) > 0
    if field.message_type is not None:
        return message.HasField(field.name)
    return bool(getattr(message, field.name) != field.default_value)


def _walk(
    message: Message,
    path: str,
    errors: list[FieldViolation],
    warnings: list[FieldViolation],
    *,
    clear: bool,
) -> None:
    descriptor = cast(Descriptor, message.DESCRIPTOR)
    rules = rules_of(descriptor)
    for rule in rules.fields:
        field = rule.field
        present = _is_set(message, field)
        if rule.output_only and present:
            if clear:
                message.ClearField(field.name)
            warnings.append(
                FieldViolation(
                    field=json_path(path, field.json_name),
                    description="output only: the value was ignored",
                )
            )
            continue
        if rule.required and not present:
            errors.append(
                FieldViolation(field=json_path(path, field.json_name), description=REQUIRED)
            )
            continue
        if present and rule.value_check is not None:
            errors.extend(_value_violations(message, field, rule.value_check, path))
        if present and field.message_type is not None:
            for child, child_path in _children(message, field, json_path(path, field.json_name)):
                _walk(child, child_path, errors, warnings, clear=clear)
    for oneof in rules.required_oneofs:
        if message.WhichOneof(oneof.name) is None:
            errors.append(_oneof_missing(oneof, path))
    for group in rules.at_least_one_of:
        if not any(_has_value(message, field) for field in group):
            names = " or ".join(field.json_name for field in group)
            errors.append(
                FieldViolation(
                    field=json_path(path, group[0].json_name),
                    description=f"{REQUIRED}: set {names}",
                )
            )


def _value_violations(
    message: Message, field: FieldDescriptor, check: Callable[[object], str | None], path: str
) -> Iterator[FieldViolation]:
    """Yield what is wrong with the values of a field that has value rules."""
    field_path = json_path(path, field.json_name)
    value = getattr(message, field.name)
    values = (
        [(item, f"{field_path}[{index}]") for index, item in enumerate(value)]
        if field.is_repeated
        else [(value, field_path)]
    )
    for item, item_path in values:
        problem = check(item) if item != field.default_value or field.is_repeated else None
        if problem is not None:
            yield FieldViolation(field=item_path, description=problem)


REQUIRED: Final = "required"
"""What validation says of a REQUIRED field that is not set."""


def _oneof_missing(oneof: OneofDescriptor, path: str) -> FieldViolation:
    names = ", ".join(f.json_name for f in oneof.fields)
    return FieldViolation(
        field=json_path(path, oneof.fields[0].json_name),
        description=f"{REQUIRED}: set exactly one of {names}",
    )


def missing_from_json(
    members: Mapping[str, object], descriptor: Descriptor, path: str
) -> list[FieldViolation]:
    """Return what validation would say is missing from a JSON object of a message type.

    A REQUIRED field counts as missing when the object has no member for it,
    or null; a required oneof when it has none for any of its fields. Used to
    report missing fields with the errors that keep a document from being read.
    """
    rules = rules_of(descriptor)
    given = {key for key, value in members.items() if value is not None}
    missing = [
        FieldViolation(field=json_path(path, rule.field.json_name), description=REQUIRED)
        for rule in rules.fields
        if rule.required and not given & {rule.field.json_name, rule.field.name}
    ]
    missing += [
        _oneof_missing(oneof, path)
        for oneof in rules.required_oneofs
        if not any(given & {field.json_name, field.name} for field in oneof.fields)
    ]
    return missing


def _children(message: Message, field: FieldDescriptor, path: str) -> Iterator[tuple[Message, str]]:
    value = getattr(message, field.name)
    assert field.message_type is not None
    if field.message_type.GetOptions().map_entry:
        value_field = field.message_type.fields_by_name["value"]
        if value_field.message_type is not None:
            for key in sorted(value):
                yield value[key], map_member_path(path, key)
    elif field.is_repeated:
        for index, item in enumerate(value):
            yield item, f"{path}[{index}]"
    else:
        yield value, path
