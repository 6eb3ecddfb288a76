"""Request validation read from the descriptors' field behaviors and oneof options."""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Final, cast

from google.api import field_behavior_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor, OneofDescriptor
from google.protobuf.message import Message

from auxia.decision.model import oneof_behavior_pb2, treatment_management_service_pb2
from auxia_decision._errors import ApiError, FieldViolation
from auxia_decision._json import json_path

_REQUIRED = field_behavior_pb2.REQUIRED
_OUTPUT_ONLY = field_behavior_pb2.OUTPUT_ONLY


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
    missing), oneofs marked ``oneof_required``, and the documented cross-field
    rules; OUTPUT_ONLY fields that are set are reported as warnings.
    """
    message_type = type(message)
    rules = _RULES_BY_TYPE.get(message_type)
    if rules is None:
        rules = _RULES_BY_TYPE[message_type] = _rules(message.DESCRIPTOR)
    if rules.flat is not None:
        if all(rules.flat(message)):
            return _VALID  # else a required field is missing: the walk words the error
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


@dataclass(frozen=True)
class _FieldRule:
    """What validation checks of one field: read once per field from its options."""

    field: FieldDescriptor
    output_only: bool
    required: bool


@dataclass(frozen=True)
class _MessageRules:
    """The fields of a message type that validation looks at, and its required oneofs."""

    fields: tuple[_FieldRule, ...]
    required_oneofs: tuple[OneofDescriptor, ...]
    flat: Callable[[Message], tuple[object, ...]] | None
    """For a type whose only rules are required singular scalars without presence:
    returns their values. Their defaults (zero, false, empty) are all false, so
    a message is valid when every value is true. None for any other type."""
    quick: Callable[[Message], bool] | None
    """For any other type: whether a message certainly has no error and no
    warning, at any depth (False: the walk decides, and words what it finds);
    None when the type has nothing to check."""


def _required_values(names: list[str]) -> Callable[[Message], tuple[object, ...]]:
    """Return a function reading the named fields of a message into a tuple."""
    if len(names) > 1:
        return cast(Callable[[Message], tuple[object, ...]], operator.attrgetter(*names))
    if names:
        getter = operator.attrgetter(names[0])
        return lambda message: (getter(message),)
    return lambda message: ()


@functools.cache
def _rules(descriptor: Descriptor) -> _MessageRules:
    """Return the validation rules of a message type (descriptors are immutable: cached)."""
    fields = []
    for field in descriptor.fields:
        behaviors = field.GetOptions().Extensions[field_behavior_pb2.field_behavior]
        rule = _FieldRule(field, _OUTPUT_ONLY in behaviors, _REQUIRED in behaviors)
        # A field with no behavior to check and no message inside is never looked at.
        if rule.output_only or rule.required or field.message_type is not None:
            fields.append(rule)
    oneofs = tuple(
        oneof
        for oneof in descriptor.oneofs
        if oneof.GetOptions().Extensions[oneof_behavior_pb2.oneof_required]
    )
    flat: Callable[[Message], tuple[object, ...]] | None = _required_values(
        [rule.field.name for rule in fields]
    )
    if (
        oneofs
        or descriptor.full_name in _CROSS_FIELD_RULES
        or any(
            rule.output_only
            or rule.field.message_type is not None
            or rule.field.is_repeated
            or rule.field.has_presence
            for rule in fields
        )
    ):
        flat = None
    quick = None if flat is not None else _quick(descriptor)
    return _MessageRules(tuple(fields), oneofs, flat, quick)


_Check = Callable[[Message], bool]
_IN_PROGRESS: set[str] = set()


def _unsure(message: Message) -> bool:
    del message
    return False


def _quick(descriptor: Descriptor) -> _Check | None:
    """Return a quick check of a message type (see ``_MessageRules.quick``).

    A recursive type is not checked quickly: the walk always decides.
    """
    if descriptor.full_name in _IN_PROGRESS:
        return _unsure
    _IN_PROGRESS.add(descriptor.full_name)
    try:
        checks = _quick_checks(descriptor)
    finally:
        _IN_PROGRESS.discard(descriptor.full_name)
    if not checks:
        return None
    if len(checks) == 1:
        return checks[0]

    def every(message: Message) -> bool:
        # A loop: all() over a generator costs a frame of its own per message.
        for check in checks:  # noqa: SIM110
            if not check(message):
                return False
        return True

    return every


def _values_true(fields: list[str]) -> _Check:
    values = _required_values(fields)
    return lambda message: all(values(message))


def _unset(field: FieldDescriptor) -> _Check:
    return lambda message: not _is_set(message, field)


def _set(field: FieldDescriptor) -> _Check:
    return lambda message: _is_set(message, field)


def _each(name: str, child: _Check) -> _Check:
    return lambda message: all(map(child, getattr(message, name)))


def _each_value(name: str, child: _Check) -> _Check:
    return lambda message: all(map(child, getattr(message, name).values()))


def _inside(name: str, child: _Check) -> _Check:
    return lambda message: not message.HasField(name) or child(getattr(message, name))


def _one_of(name: str) -> _Check:
    return lambda message: message.WhichOneof(name) is not None


def _holds(rule: Callable[[Message, str], Iterator[FieldViolation]]) -> _Check:
    return lambda message: next(iter(rule(message, "")), None) is None


def _quick_checks(descriptor: Descriptor) -> list[_Check]:
    rules = _rules(descriptor)
    checks: list[_Check] = []
    plain = [
        rule.field.name
        for rule in rules.fields
        if rule.required
        and not rule.field.is_repeated
        and not rule.field.has_presence
        and rule.field.message_type is None
    ]
    if plain:
        checks.append(_values_true(plain))
    for rule in rules.fields:
        field = rule.field
        if rule.output_only:
            checks.append(_unset(field))
            continue
        if rule.required and (field.is_repeated or field.has_presence):
            checks.append(_set(field))
        if field.message_type is not None:
            checks += _children_checks(field)
    checks += [_one_of(oneof.name) for oneof in rules.required_oneofs]
    checks += [_holds(rule) for rule in _CROSS_FIELD_RULES.get(descriptor.full_name, ())]
    return checks


def _children_checks(field: FieldDescriptor) -> list[_Check]:
    """Return the quick check of the messages a field holds, if they have anything to check."""
    entry = field.message_type
    assert entry is not None
    if entry.GetOptions().map_entry:
        value_type = entry.fields_by_name["value"].message_type
        child = _quick(value_type) if value_type is not None else None
        return [] if child is None else [_each_value(field.name, child)]
    child = _quick(entry)
    if child is None:
        return []
    return [_each(field.name, child) if field.is_repeated else _inside(field.name, child)]


# The rules of each message class validated so far. Looked up by class: the
# descriptor-keyed cache of _rules costs several times more per request.
_RULES_BY_TYPE: dict[type[Message], _MessageRules] = {}


def _is_set(message: Message, field: FieldDescriptor) -> bool:
    if field.is_repeated:
        return len(getattr(message, field.name)) > 0
    if field.has_presence:
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
    rules = _rules(descriptor)
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
        if present and field.message_type is not None:
            for child, child_path in _children(message, field, json_path(path, field.json_name)):
                _walk(child, child_path, errors, warnings, clear=clear)
    for oneof in rules.required_oneofs:
        if message.WhichOneof(oneof.name) is None:
            errors.append(_oneof_missing(oneof, path))
    for rule_check in _CROSS_FIELD_RULES.get(descriptor.full_name, ()):
        errors.extend(rule_check(message, path))


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
    rules = _rules(descriptor)
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
                yield value[key], f'{path}["{key}"]'
    elif field.is_repeated:
        for index, item in enumerate(value):
            yield item, f"{path}[{index}]"
    else:
        yield value, path


def _update_names_a_treatment(message: Message, path: str) -> Iterator[FieldViolation]:
    assert isinstance(message, treatment_management_service_pb2.UpdateTreatmentRequest)
    if not message.treatment_id and not message.external_treatment_id:
        yield FieldViolation(
            field=json_path(path, "treatmentId"),
            description="required: set treatmentId or externalTreatmentId",
        )


# The documented rules that no single field's behavior expresses.
_CROSS_FIELD_RULES: Mapping[str, tuple[Callable[[Message, str], Iterator[FieldViolation]], ...]] = {
    treatment_management_service_pb2.UpdateTreatmentRequest.DESCRIPTOR.full_name: (
        _update_names_a_treatment,
    ),
}
