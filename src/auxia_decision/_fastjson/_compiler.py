"""The compiler base that writes one function per message type into generated source.

A :class:`Compiler` walks the message types reachable from a root type and
adds to its :class:`~auxia_decision._source.Source` one function per type
(``_e0``, ``_e1``, ... or ``_d0``, ...), whose body the encoder or decoder
compiler writes. Values the generated code needs (dicts of names, message
classes, helpers) are bound as constants of its namespace, never written out
as literals.
"""

from __future__ import annotations

from google.protobuf.descriptor import Descriptor

from auxia_decision._fastjson._kinds import Unsupported, check_message
from auxia_decision._fastjson._runtime import HELPERS
from auxia_decision._source import Source

# json_format refuses messages nested deeper than its max_recursion_depth (100).
_MAX_MESSAGE_DEPTH = 64


class Compiler:
    """Generates one function per message type reachable from a root type."""

    parameters = "m"

    def __init__(self, prefix: str) -> None:
        self.source = Source("k", HELPERS)
        self._prefix = prefix
        self._names: dict[str, str] = {}
        self._bodies: dict[str, list[str]] = {}
        self._in_progress: list[str] = []

    def function(self, descriptor: Descriptor) -> str:
        """Return the name of the generated function for a message type."""
        full_name = descriptor.full_name
        if full_name in self._names:
            return self._names[full_name]
        body = self.body_of(descriptor)
        name = f"_{self._prefix}{len(self._names)}"
        self._names[full_name] = name
        self.source.define(name, self.parameters, body)
        return name

    def body_of(self, descriptor: Descriptor) -> list[str]:
        """Return the lines of the body of a message type's function (written once per type)."""
        full_name = descriptor.full_name
        if full_name in self._bodies:
            return self._bodies[full_name]
        if full_name in self._in_progress:
            raise Unsupported(f"{full_name} is recursive")
        if len(self._in_progress) >= _MAX_MESSAGE_DEPTH:
            raise Unsupported(f"{full_name} is nested too deeply")
        check_message(descriptor)
        self._in_progress.append(full_name)
        body = self.body(descriptor)
        self._in_progress.pop()
        self._bodies[full_name] = body
        return body

    def body(self, descriptor: Descriptor) -> list[str]:
        """Return the lines of the body of a message type's function."""
        raise NotImplementedError
