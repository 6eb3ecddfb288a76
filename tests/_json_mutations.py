r"""Mutated JSON documents: a valid document changed at its edges, member by member or as text.

``mutated(data, text, words)`` parses a document into a tree that keeps
what a decoder must see exactly (the members of an object in order, repeated
keys too, and number literals as written), changes it one to three times and
writes it again: a value replaced by an edge value (other JSON types,
numbers beyond every integer type, integers as strings or floats, exponents,
``-0``, 310-digit literals, special floats, timestamps and durations just
outside their forms, enum names of other enums, lone surrogates as
``\udc00`` escapes, deep nesting, repeated keys inside an unknown member),
a member added, repeated, renamed to another of the schema's words, dropped
or set to null, a value wrapped in an array or an object; and sometimes the
text itself cut short, given stray bytes, a BOM or trailing text.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from typing import Any

from hypothesis import strategies as st


class Object(list[tuple[Any, Any]]):
    """A JSON object as its members in order (a key may repeat); a key may be Raw."""


class Raw(str):
    """JSON text written as it is: a number literal, or a string with raw escapes."""


def parse(text: str) -> Any:
    """Parse JSON text into a tree of Object, list, Raw numbers and Python values."""
    return json.loads(text, object_pairs_hook=Object, parse_int=Raw, parse_float=Raw)


def write(value: Any) -> str:
    """Write a tree as JSON text (with the separators json_format uses)."""
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, Object):
        members = (f"{_key(key)}: {write(item)}" for key, item in value)
        return "{" + ", ".join(members) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(write(item) for item in value) + "]"
    return json.dumps(value)


def _key(key: str) -> str:
    return str(key) if isinstance(key, Raw) else json.dumps(key)


def _deep(depth: int) -> Raw:
    return Raw("[" * depth + "1" + "]" * depth)


# Values at the edges of every JSON type a field takes.
EDGE_VALUES: list[Any] = [
    None,
    True,
    False,
    Raw("0"),
    Raw("-0"),
    Raw("1"),
    Raw("-1"),
    Raw("0.5"),
    Raw("1.0"),
    Raw("1e0"),
    Raw("1E2"),
    Raw("-1e-7"),
    Raw("1e400"),
    Raw("-1e400"),
    Raw("1" + "0" * 310),
    Raw("-" + "9" * 400),
    Raw("123456789012345678901234567890"),
    Raw("2147483647"),
    Raw("2147483648"),
    Raw("-2147483649"),
    Raw("4294967295"),
    Raw("4294967296"),
    Raw("9007199254740993"),
    Raw("9223372036854775807"),
    Raw("9223372036854775808"),
    Raw("-9223372036854775809"),
    Raw("18446744073709551615"),
    Raw("18446744073709551616"),
    Raw("1.7976931348623157e308"),
    Raw("5e-324"),
    Raw("3.4028235e38"),
    Raw("3.4028236e38"),
    Raw("1e-50"),
    "",
    "a",
    "0",
    "-0",
    "1",
    " 1",
    "1 ",
    "1.0",
    "1e2",
    "1.5",
    "0x1",
    "+1",
    "01",
    "-01",
    "2147483648",
    "4294967296",
    "9223372036854775808",
    "18446744073709551616",
    "1e400",
    "NaN",
    "Infinity",
    "-Infinity",
    "nan",
    "inf",
    "true",
    "True",
    "null",
    "1970-01-01T00:00:00Z",
    "1970-01-01T00:00:00.123456789Z",
    "1970-01-01T00:00:00.1234567891Z",
    "1970-01-01T00:00:00.Z",
    "1970-01-01t00:00:00z",
    "1970-01-01T00:00:00+01:00",
    "1970-01-01T00:00:00-00:00",
    "1970-01-01 00:00:00Z",
    "0001-01-01T00:00:00Z",
    "0000-12-31T23:59:59Z",
    "9999-12-31T23:59:59.999999999Z",
    "10000-01-01T00:00:00Z",
    "1970-01-01T00:00:60Z",
    "1970-02-30T00:00:00Z",
    "1970-01-01T00:00:00.1e999Z",
    "1s",
    "-1.5s",
    "0.000000001s",
    "1.0000000001s",
    "-0s",
    "315576000000s",
    "315576000001s",
    "1.s",
    "AAE=",
    "AAE",
    "AA==",
    "A-_/",
    "!!",
    "a.b,c_d",
    "aB.c",
    "a_b",
    "a..b",
    "@type",
    "type.googleapis.com/google.protobuf.Duration",
    "\u2028",
    "é",
    "😀",
    Raw('"\\ud800"'),
    Raw('"\\udc00x"'),
    Raw('"\\ud83d\\ude00"'),
    Raw('"\\u0000"'),
    Raw('"\\u003a"'),
    [],
    {},
    [None],
    [Raw("1"), "a"],
    [[]],
    Object([("a", Raw("1"))]),
    Object([("a", Raw("1")), ("a", Raw("2"))]),
    Object([("@type", "type.googleapis.com/google.protobuf.Duration"), ("value", "1s")]),
    Object([("@type", "type.googleapis.com/google.protobuf.Empty")]),
    Object([("x", Object([("y", Object([("y", None), ("y", None)]))]))]),
    _deep(40),
    _deep(120),
]
# Keys at the edges of a map's key types, and of member names.
EDGE_KEYS: list[Any] = [
    "",
    "0",
    "01",
    "-0",
    " 1",
    "1.0",
    "1e2",
    "-1",
    "true",
    "True",
    "2147483648",
    "-2147483649",
    "4294967296",
    "9223372036854775808",
    "18446744073709551616",
    "@type",
    "[fuzz.x]",
    "[x]",
    "é",
    Raw('"a\\udc00"'),
    Raw('"\\ud800"'),
    Raw('"\\u0061"'),
    Raw('"a\\u003ab"'),
]


def _slots(value: Any, found: list[tuple[Any, int]]) -> None:
    """Collect every (container, index) of a tree: where a value can be changed."""
    if isinstance(value, Object):
        for index, (_, item) in enumerate(value):
            found.append((value, index))
            _slots(item, found)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.append((value, index))
            _slots(item, found)


def _objects(value: Any) -> list[Object]:
    """Return every object of a tree, the root first."""
    found = [value] if isinstance(value, Object) else []
    items = (
        [item for _, item in value]
        if isinstance(value, Object)
        else value
        if isinstance(value, list)
        else []
    )
    for item in items:
        found += _objects(item)
    return found


def _get(container: Any, index: int) -> Any:
    return container[index][1] if isinstance(container, Object) else container[index]


def _set(container: Any, index: int, value: Any) -> None:
    if isinstance(container, Object):
        container[index] = (container[index][0], value)
    else:
        container[index] = value


def _alternatives(value: Any, words: Sequence[str]) -> list[Any]:
    """Return other forms of a value that a reader may or may not take as the same."""
    if isinstance(value, Raw):
        return [str(value), Raw(f"{value}.0"), Raw(f"{value}e0"), Raw(f"-{value}")]
    if isinstance(value, str):
        forms: list[Any] = [value.lower(), value.upper(), f" {value}", value + "x"]
        if value.lstrip("-").isdigit():
            forms += [Raw(value), Raw(f"{value}.0"), Raw(f"{value}e0")]
        return forms + list(words[:3])
    if isinstance(value, bool):
        return [str(value).lower(), Raw("1" if value else "0")]
    return []


def _mutate_once(data: st.DataObject, tree: Any, words: Sequence[str]) -> Any:
    """Return a tree changed once, in place where it can be."""
    draw = data.draw
    kind = draw(st.sampled_from(["replace", "add", "repeat", "rename", "drop", "retype", "wrap"]))
    slots: list[tuple[Any, int]] = []
    _slots(tree, slots)
    objects = _objects(tree)
    # Copies: a mutation changes objects in place, never the edge values themselves.
    values = (st.sampled_from(EDGE_VALUES) | st.sampled_from(list(words) or ["x"])).map(
        copy.deepcopy
    )
    keys = st.sampled_from(list(words) or ["x"]) | st.sampled_from(EDGE_KEYS)
    if kind == "add" and objects:
        draw(st.sampled_from(objects)).append((draw(keys), draw(values)))
    elif kind == "repeat" and objects:
        target = draw(st.sampled_from(objects))
        if target:
            key, value = draw(st.sampled_from(target))
            target.append((key, draw(st.just(value) | values)))
    elif kind == "rename" and objects:
        target = draw(st.sampled_from(objects))
        if target:
            index = draw(st.integers(0, len(target) - 1))
            target[index] = (draw(keys), target[index][1])
    elif not slots:
        return draw(values)  # the root itself
    else:
        container, index = draw(st.sampled_from(slots))
        old = _get(container, index)
        if kind == "drop":
            del container[index]
        elif kind == "retype" and _alternatives(old, words):
            _set(container, index, draw(st.sampled_from(_alternatives(old, words))))
        elif kind == "wrap":
            _set(container, index, draw(st.sampled_from([[old], Object([("x", old)]), None])))
        else:
            _set(container, index, draw(values))
    return tree


def _mutate_text(data: st.DataObject, text: bytes) -> bytes:
    """Return the text changed as bytes: cut short, a stray byte, a BOM, or trailing text."""
    draw = data.draw
    kind = draw(st.sampled_from(["cut", "byte", "bom", "trailing", "nest"]))
    if kind == "cut":
        return text[: draw(st.integers(0, max(0, len(text) - 1)))]
    if kind == "byte":
        where = draw(st.integers(0, len(text)))
        stray = draw(st.sampled_from([b"\xff", b"\xc3", b"\x00", b" ", b"\t", b"\\", b'"', b","]))
        return text[:where] + stray + text[where:]
    if kind == "bom":
        return b"\xef\xbb\xbf" + text
    if kind == "trailing":
        return text + draw(st.sampled_from([b" ", b"\n", b"x", b"{}", b",", b"\x00"]))
    depth = draw(st.sampled_from([1, 200, 2000]))
    return b"[" * depth + text + b"]" * depth


def mutated(data: st.DataObject, text: str, words: Sequence[str]) -> bytes:
    """Draw a mutation of a JSON document, as UTF-8 bytes (or stray bytes).

    ``words`` are names from the schema (field and JSON names, oneof names,
    enum value names) that added members, renamed keys and replaced values use.
    """
    tree = parse(text)
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        tree = _mutate_once(data, tree, words)
    written = write(tree).encode()
    if data.draw(st.integers(0, 9)) == 0:
        written = _mutate_text(data, written)
    return written
