"""What a client does with schema drift: a warning once per method and path, a callback, counts."""

from __future__ import annotations

import os
import re
import sys
import threading
import types
import warnings
from collections.abc import Callable, Mapping, Sequence

from google.rpc import error_details_pb2

from auxia_decision._drift import Drift
from auxia_decision._errors import ApiError, Code, violation

DriftCallback = Callable[[str, Drift], None]
"""Called with the method's name and one drift, for every drift of every answer."""

# An array index or a map key in a JSON path ("[0]", '["sku"]'), counted as one place.
_INDEX_OR_KEY = re.compile(r'\[(?:\d+|"(?:[^"\\]|\\.)*")\]')
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


class SchemaDriftWarning(UserWarning):
    """An answer of the API held what the installed schema does not know.

    A field, an enum value or a JSON type the schema lacks: the API is
    likely newer than this package (upgrade it), or the two disagree (report
    it). The call's result is what it would be without the warning: the
    unknown field dropped, the unknown enum value read as unset. A client
    warns once per method and place (``place``: the JSON path with ``[*]``
    for every array index and map key).
    """

    method: str
    """The method that answered (``GetTreatments``)."""
    drift: Drift
    """What the answer held, and where: its first occurrence at this place."""
    place: str
    """The JSON path with ``[*]`` for every array index and map key."""

    def __init__(self, method: str, drift: Drift) -> None:
        self.method = method
        self.drift = drift
        self.place = place_of(drift.path)
        super().__init__(
            f"{method} answered what the schema does not know ({drift.kind} at "
            f"{drift.path or 'the root'}): {drift.detail}; this package may be older than the API"
        )


def place_of(path: str) -> str:
    """Return a JSON path with every array index and map key written ``[*]``."""
    return _INDEX_OR_KEY.sub("[*]", path)


class DriftReports:
    """A client's record of schema drift: counts, warnings once per place, a callback.

    Args:
        on_drift: called with the method's name and each drift of each answer.
        strict: whether drift is an error (see :meth:`error`) rather than a warning.

    """

    def __init__(self, on_drift: DriftCallback | None, *, strict: bool) -> None:
        self.on_drift = on_drift
        self.strict = strict
        self._counts: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()
        self.counts: Mapping[tuple[str, str], int] = types.MappingProxyType(self._counts)
        """How many answers of each method held drift at each place (read-only, live)."""

    def report(self, method: str, drifts: Sequence[Drift], *, warn: bool = True) -> None:
        """Count the drifts of one answer, pass each to the callback, warn of new places."""
        firsts: dict[str, Drift] = {}
        for drift in drifts:
            firsts.setdefault(place_of(drift.path), drift)
        new: list[Drift] = []
        with self._lock:
            for place, drift in firsts.items():
                key = (method, place)
                count = self._counts.get(key, 0)
                if count == 0:
                    new.append(drift)
                self._counts[key] = count + 1
        if self.on_drift is not None:
            for drift in drifts:
                self.on_drift(method, drift)
        if warn and not self.strict:
            level = _stacklevel_outside_package()
            for drift in new:
                warnings.warn(SchemaDriftWarning(method, drift), stacklevel=level)

    @staticmethod
    def error(method: str, drifts: Sequence[Drift], http_status: int) -> ApiError:
        """Return the error of an answer with drift, under ``strict_responses`` (UNKNOWN)."""
        first = drifts[0]
        more = f" (and {len(drifts) - 1} more)" if len(drifts) > 1 else ""
        message = (
            f"the server's answer to {method} holds what the schema does not know: "
            f"{first.kind} at {first.path or 'the root'}: {first.detail}{more}"
        )
        violations = [violation(d.path, f"{d.kind}: {d.detail}") for d in drifts]
        details = [error_details_pb2.BadRequest(field_violations=violations)]
        return ApiError.answered(Code.UNKNOWN, message, http_status, details=details)


def _stacklevel_outside_package() -> int:
    """Return the ``stacklevel`` of the innermost caller outside this package, for warn()."""
    frame = sys._getframe(1)  # our caller, who calls warnings.warn: stacklevel 1
    level = 1
    while frame.f_back is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back
        level += 1
    return level
