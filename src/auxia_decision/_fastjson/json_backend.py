r"""The JSON parsers the fast decoders can parse with: orjson, or the standard library.

orjson is an optional accelerator (installed with the server extra, absent
from the core install), so importing this package imports no parser:
:func:`in_use` chooses the backend once, when the first fast decoder is
built: :data:`ORJSON` if orjson can be imported, else :data:`STDLIB`.
Encoding never needs either: encoders write their text themselves.

A backend is what a generated decoder calls to read text (:class:`Parser`):
a parser, and the check of repeated keys that completes it (both parsers
keep the last value of a repeated key; counting colons finds those).
:data:`STDLIB` parses exactly the documents orjson parses, into the same
values, and raises for every other text, so a decoder decides the same
whichever backend it parses with. Where ``json`` differs from orjson:

- bytes: ``json.loads(bytes)`` also reads UTF-16 and UTF-32 (and skips a
  UTF-8 BOM), orjson only UTF-8, without a BOM: bytes are decoded as strict
  UTF-8 first, and the stdlib refuses a BOM in text.
- ``NaN``, ``Infinity`` and ``-Infinity`` literals: the stdlib reads them,
  orjson refuses them: ``parse_constant`` raises.
- numbers: orjson reads an integer beyond 64 bits as the nearest double,
  and refuses a number whose double is infinite (``1e400``, an integer of
  309 digits); the stdlib reads integers exactly and ``1e400`` as ``inf``:
  ``parse_int`` and ``parse_float`` read as orjson does.
- surrogates: orjson refuses a lone surrogate, escaped (``"\ud800"``) or in
  a ``str`` (which it reads as UTF-8), in any string of the text, even one a
  repeated key then drops; the stdlib keeps it: such texts are refused.
- repeated keys: the colons of the document written again are counted with
  ``json.dumps`` rather than ``orjson.dumps``: as many colons either way.
- nesting: orjson stops at 1024 levels, the stdlib sooner where Python's
  recursion limit stops it (``RecursionError``): the one difference left,
  since the decoders refuse documents deeper than their message types, or
  with unknown members deeper than 32 levels, before either limit matters.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, AnyStr, NoReturn

from auxia_decision._fastjson._runtime import Fallback


@dataclass(frozen=True)
class Parser:
    """The functions a generated decoder calls to read JSON text."""

    loads: Callable[[bytes | str], Any]
    """Parse JSON text (UTF-8 bytes or a str) into a document, or raise."""

    check_no_repeated_keys: Callable[[bytes | str, Any], None]
    """Raise Fallback if the text repeats a key of an object, given the text and its document."""


class JsonBackend:
    """A JSON parser the fast decoders can be built on, imported on first need."""

    def __init__(self, name: str, load: Callable[[], Parser]) -> None:
        self.name = name
        self._load = functools.cache(load)

    def parser(self) -> Parser:
        """Return the backend's functions, importing its parser the first time.

        Raises ImportError if the parser is not installed.
        """
        return self._load()

    def __repr__(self) -> str:
        return f"JsonBackend({self.name!r})"


# "\u003a" not itself escaped (preceded by an even number of backslashes).
_ESCAPED_COLON = re.compile(rb"(?<!\\)(?:\\\\)*\\u003[aA]")
_ESCAPED_COLON_TEXT = re.compile(r"(?<!\\)(?:\\\\)*\\u003[aA]")


def _repeated_key_check(
    dumps: Callable[[Any], AnyStr], colon: AnyStr
) -> Callable[[bytes | str, Any], None]:
    """Return the check of repeated keys that writes documents again with ``dumps``."""

    def check_no_repeated_keys(data: bytes | str, document: object) -> None:
        r"""Raise Fallback if the text repeats a key of an object (the parser keeps the last one).

        Every key in the text is followed by a colon, so when the colons are as
        many as the members of every object read no key was repeated (the
        caller checks that). Otherwise a colon in the text is a key's or
        inside a string, and one inside a string is written as ":" or as
        "\u003a"; so the colons of the text and its escaped colons add up to
        the colons of the document written again exactly when no key was
        dropped.
        """
        if isinstance(data, str):
            colons = data.count(":")
            if "\\u003" in data:
                colons += len(_ESCAPED_COLON_TEXT.findall(data))
        else:
            colons = data.count(b":")
            if b"\\u003" in data:
                colons += len(_ESCAPED_COLON.findall(data))
        if colons != dumps(document).count(colon):
            raise Fallback

    return check_no_repeated_keys


def _orjson_parser() -> Parser:
    import orjson  # noqa: PLC0415 - an optional accelerator, imported on first need

    return Parser(orjson.loads, _repeated_key_check(orjson.dumps, b":"))


ORJSON = JsonBackend("orjson", _orjson_parser)
"""Parses with orjson (several times faster than the standard library)."""


# ---------------------------------------------------------------------------
# The standard library, reading as orjson does.

_INT64_MIN = -(2**63)
_UINT64_MAX = 2**64 - 1


def _integer_literal(text: str) -> int | float:
    """Read an integer literal as orjson does: exact within 64 bits, else the nearest double."""
    number = int(text)  # ValueError beyond 4300 digits, where orjson refuses an infinite double
    if _INT64_MIN <= number <= _UINT64_MAX:
        return number
    return float(number)  # OverflowError where orjson refuses an infinite double


def _float_literal(text: str) -> float:
    """Read a number literal with a fraction or an exponent, refusing an infinite one."""
    number = float(text)
    if number - number != 0.0:
        raise Fallback  # orjson: "number is infinity when parsed as double"
    return number


def _refuse_constant(name: str) -> NoReturn:
    """Refuse the ``NaN``, ``Infinity`` and ``-Infinity`` literals, as orjson does."""
    raise Fallback


_decode = json.JSONDecoder(
    parse_float=_float_literal, parse_int=_integer_literal, parse_constant=_refuse_constant
).decode


# Reads a text keeping every member of every object, as a list of pairs.
_decode_every_member = json.JSONDecoder(object_pairs_hook=list).decode


def _check_no_lone_surrogates(text: str) -> None:
    """Raise Fallback if a string of the text holds a lone surrogate.

    Every string counts, as it does for orjson: also the values and keys of
    members that a repeated key drops from the document.
    """
    try:
        json.dumps(_decode_every_member(text), ensure_ascii=False).encode()
    except UnicodeEncodeError:
        raise Fallback from None


def _stdlib_loads(data: bytes | str) -> object:
    """Parse JSON text with the standard library as orjson does: the same documents, or raise."""
    if isinstance(data, str):
        if not data.isascii():
            data.encode()  # UnicodeEncodeError for a surrogate: orjson reads a str as UTF-8
        text = data
    else:
        text = data.decode()  # strict UTF-8, not json.loads's guess among UTF-8, -16 and -32
    document = _decode(text)
    if "\\ud" in text or "\\uD" in text:
        # An escaped surrogate: a pair is one character for both parsers,
        # a lone one is refused by orjson and kept by the stdlib.
        _check_no_lone_surrogates(text)
    return document


def _stdlib_parser() -> Parser:
    return Parser(_stdlib_loads, _repeated_key_check(json.dumps, ":"))


STDLIB = JsonBackend("stdlib", _stdlib_parser)
"""Parses with the standard library's ``json``, as orjson would."""


@functools.cache
def in_use() -> JsonBackend:
    """Return the backend the fast decoders parse with: orjson if installed, else the stdlib.

    It is chosen once, when first asked (as the first fast decoder is built).
    """
    try:
        ORJSON.parser()
    except ImportError:
        return STDLIB
    return ORJSON
