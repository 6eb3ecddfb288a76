"""What the generated code calls: its helpers, and :class:`Fallback`, the signal it raises.

Every generated function runs in a namespace that starts as :data:`HELPERS`,
so the generated source refers to these helpers by the names given there
(``_integer``, ``_timestamp_text``, ...). The decoding helpers check that a
JSON value has its canonical type and convert it, or raise :class:`Fallback`
(or the error the check ran into) when the generic path must decide; the
encoding helpers write one value as ``json_format`` writes it.
"""

from __future__ import annotations

import datetime
import json
import math
import re
from collections.abc import Callable
from typing import Any

from google.protobuf.message import Message


class Fallback(Exception):  # noqa: N818 - it is a signal, not an error
    """The fast path does not decide this input; the generic path must."""


_TIMESTAMP_MIN_SECONDS = -62_135_596_800
_TIMESTAMP_MAX_SECONDS = 253_402_300_799
_SECONDS_PER_DAY = 86_400
_EPOCH_ORDINAL = datetime.date(1970, 1, 1).toordinal()
_TIMESTAMP = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))?Z"
)
# Integers above this magnitude may have come from an integer literal that
# the JSON parser read as a float (orjson does so beyond 64 bits, and the
# standard-library backend reads as orjson does), so they are left to the
# generic path, which reads such literals exactly.
_SAFE_FLOAT_INTEGER = 2.0**53
# The integers a string holds that are read here: decimal digits, and a minus.
_INTEGER_TEXT = re.compile(r"-?[0-9]{1,30}")
_SPECIAL_DOUBLES = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
# Unknown members of a leniently read document deeper than this are left to
# the generic path, whose stdlib parser stops at Python's recursion limit,
# well before orjson's 1024 levels.
_MAX_UNKNOWN_DEPTH = 32
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1

string_text: Callable[[str], str] = json.encoder.encode_basestring_ascii
"""Write a string as JSON: json.dumps's own (C) escaper, which MessageToJson's
default ensure_ascii=True uses."""


# ---------------------------------------------------------------------------
# Decoding: check and convert one JSON value.


def _fail() -> Any:  # noqa: ANN401 - stands in for a value of any type
    raise Fallback


def _integer(value: object, low: int, high: int) -> int:
    """Read an integer given as a JSON number or string, as json_format does."""
    if type(value) is float:
        if not (value.is_integer() and -_SAFE_FLOAT_INTEGER < value < _SAFE_FLOAT_INTEGER):
            raise Fallback
        number = int(value)
    elif type(value) is str:
        if _INTEGER_TEXT.fullmatch(value) is None:
            raise Fallback  # an exponent, a fraction or no integer: the generic path decides
        number = int(value)
    elif type(value) is int:
        number = value
    else:
        raise Fallback
    if not low <= number <= high:
        raise Fallback
    return number


def _double(value: object) -> float:
    """Read a double given other than as a finite JSON float."""
    if type(value) is int:
        return float(value)  # OverflowError: the generic path decides
    if type(value) is str and value in _SPECIAL_DOUBLES:
        return _SPECIAL_DOUBLES[value]
    raise Fallback


def _enum_number(value: object) -> int:
    """Read an open enum given by number."""
    if type(value) is int and INT32_MIN <= value <= INT32_MAX:
        return value
    raise Fallback


def _closed_enum_number(value: object, known: frozenset[int]) -> int:
    """Read a closed enum given by number: only its declared values."""
    if type(value) is int and value in known:
        return value
    raise Fallback


def _timestamp(value: object) -> dict[str, int]:
    """Read an RFC 3339 UTC timestamp in its canonical form."""
    if type(value) is not str:
        raise Fallback
    match = _TIMESTAMP.fullmatch(value)
    if match is None:
        raise Fallback
    year, month, day, hour, minute, second, fraction = match.groups()
    hours, minutes, seconds = int(hour), int(minute), int(second)
    if hours > 23 or minutes > 59 or seconds > 59:
        raise Fallback
    days = datetime.date(int(year), int(month), int(day)).toordinal() - _EPOCH_ORDINAL
    return {
        "seconds": days * _SECONDS_PER_DAY + hours * 3600 + minutes * 60 + seconds,
        "nanos": int(fraction.ljust(9, "0")) if fraction else 0,
    }


def _counted(members: dict[str, Any], count: list[int]) -> dict[str, Any]:
    """Add the members of an object (a map) to the members read so far (``count[0]``)."""
    count[0] += len(members)
    return members


def _same_size(converted: dict[Any, Any], original: dict[str, Any]) -> dict[Any, Any]:
    """Refuse a map whose keys collapsed when converted ("1" and "01")."""
    if len(converted) != len(original):
        raise Fallback
    return converted


def _too_deep(value: object, depth: int) -> bool:
    if depth > _MAX_UNKNOWN_DEPTH:
        return True
    if type(value) is dict:
        return any(_too_deep(item, depth + 1) for item in value.values())
    if type(value) is list:
        return any(_too_deep(item, depth + 1) for item in value)
    return False


def _skip_unknown(key: str, value: object) -> None:
    """Check that an unknown member may simply be ignored (lenient reading)."""
    if key.startswith("["):
        raise Fallback  # json_format reads "[...]" as an extension name
    if _too_deep(value, 1):
        raise Fallback


def _unknown_members(members: dict[str, Any], known: frozenset[str], found: int) -> None:
    """Check the members of a leniently read object that no field took."""
    taken = 0
    for key, value in members.items():
        if key in known:
            taken += 1
        else:
            _skip_unknown(key, value)
    if taken != found:
        raise Fallback  # a field given under both of its names


# ---------------------------------------------------------------------------
# Encoding: write one value as json_format does.


def _double_text(value: float) -> str:
    if value - value == 0.0:
        return float.__repr__(value)
    if math.isnan(value):
        return '"NaN"'
    return '"Infinity"' if value > 0 else '"-Infinity"'


def _is_negative_zero(value: float) -> bool:
    return value == 0.0 and math.copysign(1.0, value) < 0.0


def _enum_text(value: int) -> str:
    """Write an open enum's unknown number as json_format does: a bare integer."""
    return "%d" % value  # noqa: UP031 - the fastest way to write an int


def _closed_enum_text(value: int) -> str:
    raise Fallback  # json_format refuses it; let it say so


_DATES: dict[int, str] = {}
_MAX_DATES = 4096
_HOURS_OR_MINUTES = [f"{number:02d}:" for number in range(60)]
_SECONDS = [f"{number:02d}" for number in range(60)]
_MILLISECONDS = [f'.{number:03d}Z"' for number in range(1000)]


def _date_text(days: int) -> str:
    """Return the opening quote and date of a day since the epoch (``"2017-01-15T``)."""
    if len(_DATES) >= _MAX_DATES:
        _DATES.clear()
    date = datetime.date.fromordinal(_EPOCH_ORDINAL + days)
    text = _DATES[days] = f'"{date.year:04d}-{date.month:02d}-{date.day:02d}T'
    return text


def _timestamp_text(timestamp: Message) -> str:
    seconds: int = timestamp.seconds  # type: ignore[attr-defined]
    nanos: int = timestamp.nanos  # type: ignore[attr-defined]
    if not (
        _TIMESTAMP_MIN_SECONDS <= seconds <= _TIMESTAMP_MAX_SECONDS and 0 <= nanos < 1_000_000_000
    ):
        raise Fallback
    days, second = divmod(seconds, _SECONDS_PER_DAY)
    if nanos == 0:
        fraction = 'Z"'
    elif nanos % 1_000_000 == 0:
        fraction = _MILLISECONDS[nanos // 1_000_000]
    elif nanos % 1_000 == 0:
        fraction = f'.{nanos // 1_000:06d}Z"'
    else:
        fraction = f'.{nanos:09d}Z"'
    return (
        (_DATES.get(days) or _date_text(days))
        + _HOURS_OR_MINUTES[second // 3600]
        + _HOURS_OR_MINUTES[second // 60 % 60]
        + _SECONDS[second % 60]
        + fraction
    )


# What the generated decoders get for a member the object does not have.
_ABSENT = object()

HELPERS: dict[str, object] = {
    "_Fallback": Fallback,
    "_fail": _fail,
    "_integer": _integer,
    "_double": _double,
    "_enum_number": _enum_number,
    "_closed_enum_number": _closed_enum_number,
    "_timestamp": _timestamp,
    "_same_size": _same_size,
    "_skip_unknown": _skip_unknown,
    "_unknown_members": _unknown_members,
    "_ABSENT": _ABSENT,
    "_string": string_text,
    "_double_text": _double_text,
    "_is_negative_zero": _is_negative_zero,
    "_counted": _counted,
    "_enum_text": _enum_text,
    "_closed_enum_text": _closed_enum_text,
    "_timestamp_text": _timestamp_text,
}
"""The namespace every piece of generated code starts from, by the names it uses."""
