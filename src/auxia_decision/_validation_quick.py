"""Quick checks of requests: Python generated from the rules, the fast twin of the walk.

A quick check answers only "certainly valid" (True) or "let the walk decide"
(False): ``_validation.validate`` runs it first and words every violation
with the walk. ``fields_check`` does the same for a request given as its
constructor's keyword arguments. tests/unit/test_validation.py holds the
twins equal.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import cast

from google.protobuf.descriptor import Descriptor, FieldDescriptor, OneofDescriptor
from google.protobuf.message import Message

from auxia_decision._source import Source, attribute
from auxia_decision._validation_rules import rules_of

_Check = Callable[[Message], bool]


def _unsure(message: object) -> bool:
    del message
    return False


def quick_check(descriptor: Descriptor) -> _Check | None:
    """Return a quick check of a message type (see ``MessageRules.quick``), or None.

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
        rules = rules_of(descriptor)
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
