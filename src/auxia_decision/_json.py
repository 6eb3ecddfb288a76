"""JSON text as the API reads it: strict parsing with positions, and JSON paths."""

from __future__ import annotations

import json
import re
from typing import Any, Final

from auxia_decision._errors import ApiError, FieldViolation

# What a member name written after a dot in a JSON path may not hold.
_NOT_PLAIN = re.compile(r'[\s.\[\]"]')


class _Object(dict[str, Any]):
    """A JSON object that remembers the keys it saw more than once."""

    duplicates: list[str]


def _object_from_pairs(pairs: list[tuple[str, Any]]) -> _Object:
    result = _Object(pairs)
    result.duplicates = []
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                result.duplicates.append(key)
            seen.add(key)
    return result


def _reject_constant(name: str) -> float:
    msg = f"{name} is not valid JSON"
    raise ValueError(msg)


def load_json(data: bytes | str) -> object:
    """Parse JSON text, raising ApiError with the line and column of a syntax error."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as error:
            description = f"the body is not valid UTF-8: invalid byte at offset {error.start}"
            raise ApiError.invalid_argument([FieldViolation(description=description)]) from None
    try:
        return json.loads(
            data, object_pairs_hook=_object_from_pairs, parse_constant=_reject_constant
        )
    except json.JSONDecodeError as error:
        description = f"malformed JSON at line {error.lineno} column {error.colno}: {error.msg}"
    except ValueError as error:
        description = f"malformed JSON: {_without_python(error)}"
    except RecursionError:
        description = "malformed JSON: nested too deeply"
    raise ApiError.invalid_argument([FieldViolation(description=description)])


_TOO_MANY_DIGITS: Final = re.compile(r"\((\d+) digits\).*value has (\d+) digits")


def _without_python(error: ValueError) -> str:
    """Return what a ValueError of ``json.loads`` says, in our words where Python's are its own."""
    found = _TOO_MANY_DIGITS.search(str(error))  # int()'s limit: "use sys.set_int_max_str_digits"
    if found is not None:
        return f"an integer of {found[2]} digits: at most {found[1]} are read"
    return str(error)


def json_path(parent: str, name: str) -> str:
    """Return the JSON path of a member ``name`` of the value at ``parent``.

    ``parent.name``, or ``parent["name"]`` for a name that is empty or holds
    white space, a dot, a bracket or a quote (as map keys are written).
    """
    if not name or _NOT_PLAIN.search(name):
        return f"{parent}[{json.dumps(name, ensure_ascii=False)}]"
    return f"{parent}.{name}" if parent else name


def map_member_path(parent: str, key: object) -> str:
    """Return the JSON path of a map's value by its key: ``parent["key"]``, as JSON writes keys.

    A bool key is ``true`` or ``false`` (not Python's ``True``), a number its digits.
    """
    text = ("true" if key else "false") if isinstance(key, bool) else key
    return f'{parent}["{text}"]'


def kind_of(value: object) -> str:
    """Return what a JSON value is, as error messages say it (``a string``, ``null``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"
