"""Python source generated from descriptors and compiled once: the builder both compilers share.

The fast JSON codec (:mod:`auxia_decision._fastjson`) and validation's quick
checks (:mod:`auxia_decision._validation`) write Python specialised per message
type. Both write it with a :class:`Source`: lines of code, the values the
code refers to bound as constants of its namespace (never written out as
literals), and names read from descriptors written so that any field name
is valid source (:func:`attribute`).
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Mapping


def attribute(variable: str, name: str) -> str:
    """Return the source reading attribute ``name`` of ``variable``.

    ``m.name``, or ``getattr(m, 'name')`` for a name that is a Python keyword
    (a field may be named ``from``, ``yield`` or ``None``).
    """
    return f"getattr({variable}, {name!r})" if keyword.iskeyword(name) else f"{variable}.{name}"


_SKIPPED = r"'(?:[^'\\\n]|\\.)*'|\"(?:[^\"\\\n]|\\.)*\"|#.*"
"""Strings (single-line, as generated code writes them) and comments: nothing in them is renamed."""


def renamed(lines: list[str], local: str, suffix: str) -> list[str]:
    """Return lines of source with each local variable (a name ``local`` matches) suffixed.

    Only names are renamed: attributes (``m.v``) and the text of strings and
    comments stay as they are. What a function's body becomes when it is
    written into another function whose locals it must not overwrite.
    """
    pattern = re.compile(rf"{_SKIPPED}|(?<![.\w])({local})(?!\w)")

    def rename(match: re.Match[str]) -> str:
        return match.group(0) if match.group(1) is None else match.group(1) + suffix

    return [pattern.sub(rename, line) for line in lines]


class Source:
    """Python source being generated, with the constants it refers to.

    Args:
        prefix: what the names of its constants start with (``_k0``, ``_k1``, ...),
            apart from the names of the functions it defines.
        namespace: the names the code may use besides its constants (helpers).

    """

    def __init__(self, prefix: str, namespace: Mapping[str, object] | None = None) -> None:
        self.lines: list[str] = []
        self.namespace: dict[str, object] = dict(namespace or {})
        self._prefix = prefix
        self._constants: dict[tuple[type, object], str] = {}

    def constant(self, value: object) -> str:
        """Return the name under which the generated code sees a value (one name per value)."""
        key = (type(value), value if isinstance(value, str | bytes | int) else id(value))
        if key not in self._constants:
            name = f"_{self._prefix}{len(self._constants)}"
            self._constants[key] = name
            self.namespace[name] = value
        return self._constants[key]

    def define(self, name: str, parameters: str, body: list[str]) -> None:
        """Add the function ``def name(parameters)`` with the lines of its body (indented)."""
        self.lines += [f"def {name}({parameters}):", *body, ""]

    def compile(self, title: str) -> dict[str, object]:
        """Execute the source once and return its namespace, with the functions it defined.

        ``title`` names the source in tracebacks (``<title>``).
        """
        code = compile("\n".join(self.lines) + "\n", f"<{title}>", "exec")
        exec(code, self.namespace)  # noqa: S102 - our own source, built from descriptors
        return self.namespace
