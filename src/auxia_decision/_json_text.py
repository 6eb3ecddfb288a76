"""The texts proto3 JSON holds in strings: numbers, and timestamps.

Python's ``int()``, ``float()`` and ``Timestamp.FromJsonString`` read more
than proto3 JSON writes (``"+1"``, ``" 1"``, ``"1_000"``, a one-digit
month); the codec and the OpenAPI document read exactly these forms.
"""

from __future__ import annotations

import re
from typing import Final

# A number in a JSON string, as proto3 JSON reads one: a JSON number's text
# (leading zeros allowed), nothing around it: no "+", no spaces, no "_", no
# digits but ASCII ones (Python's int() and float() would take all of those).
NUMBER_TEXT: Final = re.compile(r"(-?)([0-9]+)(?:\.([0-9]+))?(?:[eE]([+-]?[0-9]+))?")
INTEGER_TEXT: Final = re.compile(r"-?[0-9]+")
RFC3339_TEXT: Final = re.compile(
    r"(000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})-[0-9]{2}-[0-9]{2}"
    r"T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])"
)
"""A timestamp's text, as proto3 JSON reads one (RFC 3339: upper-case T and Z, an offset
of hours and minutes); Timestamp.FromJsonString also takes a one-digit month, an empty
fraction, ``+1:5``, ...). The calendar and the range are FromJsonString's to check."""
EXACT_LIMIT: Final = 2**53
"""Written with a fraction or an exponent, an integer is read as a double, which
holds every integer up to this magnitude exactly: beyond it, such a text is refused."""


def integer_of(value: int | float | str) -> int | None:
    """Return the integer a JSON number or string holds, exactly; None if it holds no integer."""
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    match = NUMBER_TEXT.fullmatch(value)
    return None if match is None else _integer_of_text(*match.groups())


BEYOND_EVERY_RANGE: Final = 2**65
DIGITS_BEYOND_EVERY_RANGE: Final = 21
"""An integer of more digits than this is beyond every integer type's range: never computed."""


def _integer_of_text(
    sign: str, whole: str, fraction: str | None, exponent: str | None
) -> int | None:
    """Return the integer of a number's text, from its parts; None if it is not an integer.

    A value beyond 2^64 in magnitude is returned as one as far out of every
    range (``BEYOND_EVERY_RANGE``), rather than computed.
    """
    digits = (whole + (fraction or "")).lstrip("0")
    shift = -len(fraction or "")
    if exponent is not None:
        power = exponent.lstrip("+-").lstrip("0") or "0"
        # More than a million digits either way: no integer of any range, or none at all.
        scale = 10**7 if len(power) > 6 else int(power)
        shift += -scale if exponent.startswith("-") else scale
    if not digits:
        return 0
    if shift < 0:
        if digits[shift:].strip("0"):
            return None  # a fraction that is not zero
        digits, shift = digits[:shift] or "0", 0
    beyond = len(digits) + shift > DIGITS_BEYOND_EVERY_RANGE
    magnitude = BEYOND_EVERY_RANGE if beyond else int(digits) * 10**shift
    return -magnitude if sign else magnitude


def python_reads_integer(text: str) -> bool:
    """Whether Python's ``int()`` (and so json_format) reads a text as an integer."""
    try:
        int(text)
    except ValueError:
        return False
    return True
