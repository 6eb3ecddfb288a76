"""Request validation read from the descriptors: field behaviors and our rule options.

Every rule is written once, in the protos: ``google.api.field_behavior``
(REQUIRED, OUTPUT_ONLY), ``oneof_required`` and ``field_rules`` /
``message_rules`` (``auxia/decision/model/field_rules.proto``). The OpenAPI
document exports the same rules as JSON Schema.
"""

from __future__ import annotations

import dataclasses
import functools
import operator
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Final, cast

from google.api import field_behavior_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor, OneofDescriptor
from google.protobuf.message import Message

from auxia.decision.model import field_rules_pb2, oneof_behavior_pb2
from auxia_decision._errors import ApiError, FieldViolation
from auxia_decision._json import json_path
from auxia_decision._source import Source, attribute

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
    missing), oneofs marked ``oneof_required``, the ``field_rules`` of values
    (patterns, minimums), enum values the schema defines, and the
    ``message_rules`` across fields; OUTPUT_ONLY fields that are set are
    reported as warnings.
    """
    message_type = type(message)
    rules = _RULES_BY_TYPE.get(message_type)
    if rules is None:
        descriptor = cast(Descriptor, message.DESCRIPTOR)
        rules = _rules(descriptor)
        if rules.flat is None:
            rules = dataclasses.replace(rules, quick=_quick(descriptor))
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


@dataclass(frozen=True)
class _FieldRule:
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
class _MessageRules:
    """The fields of a message type that validation looks at, and its required oneofs."""

    fields: tuple[_FieldRule, ...]
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
    set in the rules ``validate`` keeps by class, None in those of ``_rules``."""


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
        value_check = _value_check(field)
        rule = _FieldRule(
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
    return _MessageRules(tuple(fields), oneofs, groups, flat, flat_enums, quick=None)


def _only_enum_values(field: FieldDescriptor) -> frozenset[int] | None:
    """Return an enum field's defined numbers if being one of them is its only value rule."""
    rules = field.GetOptions().Extensions[field_rules_pb2.field_rules]
    if field.enum_type is None or rules.pattern or rules.HasField("minimum"):
        return None
    return frozenset(field.enum_type.values_by_number)


_Check = Callable[[Message], bool]


def _unsure(message: object) -> bool:
    del message
    return False


def _quick(descriptor: Descriptor) -> _Check | None:
    """Return a quick check of a message type (see ``_MessageRules.quick``), or None.

    The check is Python source generated from the rules, one function per
    message type it reaches, with the loops over repeated fields written out
    (rather than nested closures, which cost more per call). A recursive type
    is not checked quickly: the walk always decides.
    """
    return cast("_Check | None", _QuickCompiler(_MessageReads()).compile(descriptor))


FieldsCheck = Callable[[Mapping[str, object]], bool]
"""Whether a request given as its constructor's arguments certainly has no error and no warning."""

_FIELDS_CHECKS: dict[type[Message], FieldsCheck] = {}


def fields_check(message_type: type[Message]) -> FieldsCheck:
    """Return the quick check of a request type given as the keyword arguments of its constructor.

    The arguments are those a fields decoder returns (``_fastjson``: every
    value checked, a field absent or None when unset, messages as dicts,
    enums as numbers). The check returns True only when ``validate`` would
    find neither an error nor a warning in ``message_type(**fields)``; on
    False, build the message and validate it, which words what is wrong.
    """
    found = _FIELDS_CHECKS.get(message_type)
    if found is None:
        descriptor = cast(Descriptor, message_type.DESCRIPTOR)
        compiled = _QuickCompiler(_FieldsReads()).compile(descriptor)
        found = cast(FieldsCheck, compiled) if compiled is not None else _always
        _FIELDS_CHECKS[message_type] = found
    return found


def _always(fields: Mapping[str, object]) -> bool:
    del fields
    return True


class _MessageReads:
    """How the generated checks read the fields of a message ``m``."""

    title = "quick check"
    """What the compiled checks are called in tracebacks."""

    def value(self, field: FieldDescriptor) -> str:
        """Return the source of a singular field's value: its default when unset."""
        return attribute("m", field.name)

    def differs(self, variable: str, field: FieldDescriptor, default: str) -> str:
        """Return the source of: a value (a variable, or ``value``'s source) is not the default."""
        del field
        return f"{variable} != {default}"

    def items(self, field: FieldDescriptor) -> str:
        """Return the source of a repeated field's values, as a list.

        A slice: iterating upb's container itself ends on an IndexError built
        with a formatted message.
        """
        return f"{self.value(field)}[:]"

    def map_values(self, field: FieldDescriptor) -> str:
        """Return the source of a map field's values."""
        return f"{self.value(field)}.values()"

    def has_message(self, field: FieldDescriptor) -> str:
        """Return the source of: a singular message field (or one with presence) is set."""
        return f"m.HasField({field.name!r})"

    def is_set(self, field: FieldDescriptor) -> str:
        """Return the source of ``_is_set``: values, presence, or not the default."""
        if field.is_repeated:
            return f"len({self.value(field)}) > 0"
        if field.has_presence:
            return self.has_message(field)
        return self.differs(self.value(field), field, repr(field.default_value))

    def has_value(self, field: FieldDescriptor) -> str:
        """Return the source of ``_has_value``: ``is_set``, but an optional default is no value."""
        if field.is_repeated or field.message_type is not None:
            return self.is_set(field)
        return self.differs(self.value(field), field, repr(field.default_value))

    def oneof_unset(self, oneof: OneofDescriptor) -> str:
        """Return the source of: no member of a oneof is set."""
        return f"m.WhichOneof({oneof.name!r}) is None"


class _FieldsReads(_MessageReads):
    """How the generated checks read a message given as constructor arguments, the dict ``m``.

    A field is unset when absent or None, as the constructor takes it.
    """

    title = "quick check of the fields"

    def value(self, field: FieldDescriptor) -> str:
        return f"m.get({field.name!r})"

    def differs(self, variable: str, field: FieldDescriptor, default: str) -> str:
        # ``variable`` may be an expression: read once, and None is unset.
        return f"((z := {variable}) is not None and z != {default})"

    def items(self, field: FieldDescriptor) -> str:
        return f"({self.value(field)} or ())"

    def map_values(self, field: FieldDescriptor) -> str:
        return f"({self.value(field)} or {{}}).values()"

    def has_message(self, field: FieldDescriptor) -> str:
        return f"{self.value(field)} is not None"

    def is_set(self, field: FieldDescriptor) -> str:
        if field.is_repeated:
            return f"bool({self.value(field)})"
        return super().is_set(field)

    def oneof_unset(self, oneof: OneofDescriptor) -> str:
        return " and ".join(f"{self.value(field)} is None" for field in oneof.fields)


class _QuickCompiler:
    """Writes ``def _qN(m)``: False at the first thing in ``m`` the walk would report.

    ``reads`` says whether ``m`` is a message or its constructor's arguments.
    """

    def __init__(self, reads: _MessageReads) -> None:
        self.reads = reads
        self.source = Source("c", {"_unsure": _unsure})
        self.constant = self.source.constant
        self._names: dict[str, str | None] = {}
        self._in_progress: set[str] = set()

    def compile(self, descriptor: Descriptor) -> Callable[[object], bool] | None:
        """Return the check of a message type, or None when it has nothing to check."""
        name = self.function(descriptor)
        if name is None:
            return None
        namespace = self.source.compile(f"{self.reads.title}: {descriptor.full_name}")
        return cast("Callable[[object], bool]", namespace[name])

    def function(self, descriptor: Descriptor) -> str | None:
        """Return the name of a type's check function; None when the type has nothing to check."""
        full_name = descriptor.full_name
        if full_name in self._in_progress:
            return "_unsure"  # a type that reaches itself: where it does, the walk decides
        if full_name in self._names:
            return self._names[full_name]
        self._in_progress.add(full_name)
        try:
            body = self._body(descriptor)
        finally:
            self._in_progress.discard(full_name)
        name = None
        if body:
            name = f"_q{len(self._names)}"
            self.source.define(name, "m", [*body, "    return True"])
        self._names[full_name] = name
        return name

    def _body(self, descriptor: Descriptor) -> list[str]:
        rules = _rules(descriptor)
        reads = self.reads
        body: list[str] = []
        plain = [
            reads.value(rule.field)
            for rule in rules.fields
            if rule.required
            and not rule.field.is_repeated
            and not rule.field.has_presence
            and rule.field.message_type is None
        ]
        if plain:
            body.append(f"    if not ({' and '.join(plain)}):")
            body.append("        return False")
        for rule in rules.fields:
            field = rule.field
            if rule.output_only:
                body += [f"    if {reads.is_set(field)}:", "        return False"]
                continue
            if rule.required and (field.is_repeated or field.has_presence):
                body += [f"    if not {reads.is_set(field)}:", "        return False"]
            if rule.value_check is not None:
                if field.message_type is not None:  # no such rule: let the walk decide
                    return ["    return False"]
                check = self.constant(rule.value_check)
                if field.is_repeated:
                    body += [
                        f"    for v in {reads.items(field)}:",
                        f"        if {check}(v) is not None:",
                        "            return False",
                    ]
                else:
                    default = self.constant(field.default_value)
                    body += [
                        f"    v = {reads.value(field)}",
                        f"    if {reads.differs('v', field, default)} and {check}(v) is not None:",
                        "        return False",
                    ]
            if field.message_type is not None:
                body += self._children(field)
        for oneof in rules.required_oneofs:
            body += [f"    if {reads.oneof_unset(oneof)}:", "        return False"]
        for group in rules.at_least_one_of:
            given = " or ".join(reads.has_value(field) for field in group)
            body += [f"    if not ({given}):", "        return False"]
        return body

    def _children(self, field: FieldDescriptor) -> list[str]:
        """Return the lines checking the messages a field holds, if they have anything to check."""
        entry = field.message_type
        assert entry is not None
        reads = self.reads
        values: str | None
        if entry.GetOptions().map_entry:
            value_type = entry.fields_by_name["value"].message_type
            child = self.function(value_type) if value_type is not None else None
            values = reads.map_values(field)
        else:
            child = self.function(entry)
            values = reads.items(field) if field.is_repeated else None
        if child is None:
            return []
        if values is None:
            return [
                f"    if {reads.has_message(field)} and not {child}({reads.value(field)}):",
                "        return False",
            ]
        return [
            f"    for c in {values}:",
            f"        if not {child}(c):",
            "            return False",
        ]


# The rules of each message class validated so far. Looked up by class: the
# descriptor-keyed cache of _rules costs several times more per request.
_RULES_BY_TYPE: dict[type[Message], _MessageRules] = {}


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
