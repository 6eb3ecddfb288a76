"""The decision of GetTreatments: which treatments one user sees, on which surface, in what order.

Deterministic, so that a consumer's test can predict it (docs/decisions.md):

1. Candidates for a surface: the treatments LIVE now (their latest LIVE
   version) whose version may be shown on the surface (its type offers it and
   the version did not remove it) and has content in the requested language.
2. Eligible: every eligibility rule of that version holds (a rule whose data
   field has no value does not hold).
3. Order: by the CRC-32 of the user id, a NUL byte and the treatment id,
   ascending (ties by treatment id): each user sees their own order, the same
   every time.
4. Choice, surface by surface in the order requested: in that order, a
   treatment not yet chosen for this response and whose mutual exclusion group
   has no treatment in it yet, until the surface has its maximum; a surface
   that cannot reach its minimum gets none (and its treatments free their
   groups again).
"""

from __future__ import annotations

import os
import random
import time
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from auxia.decision.model import treatment_decision_service_pb2 as decisions
from auxia_decision._errors import ApiError, FieldViolation, violation
from auxia_decision.server._domain.catalog import (
    DEFAULT_LANGUAGE,
    Catalog,
    Context,
    Treatment,
    Version,
)
from auxia_decision.server._storage.seam import UserActivity

_VALUE_KIND: Final = {
    # The field an attribute of each declared type is given in.
    "STRING": "string_value",
    "BOOLEAN": "bool_value",
    "INTEGER": "integer_value",
    "TIMESTAMP_SECONDS": "integer_value",
    "DOUBLE": "integer_value",
}
_VALUE_ONEOF: Final = decisions.ContextualAttribute.DESCRIPTOR.oneofs_by_name["value"]
_VALUE_FIELDS: Final = tuple(value_field.name for value_field in _VALUE_ONEOF.fields)
"""The fields that may hold an attribute's value."""
_JSON_KINDS: Final = {
    value_field.name: value_field.json_name for value_field in _VALUE_ONEOF.fields
}
"""The JSON name of each of them (``stringValue``, ...), for the errors' paths."""


Fields = Mapping[str, Any]
"""A message as the keyword arguments of its constructor: a field absent or None is unset."""


@dataclass(slots=True)
class DecisionRequest:
    """What a decision reads of a GetTreatments request.

    Read from the request message (``from_message``) or from the arguments of
    its constructor as the REST gateway decodes them (``from_fields``): the
    same request is decided the same either way. Surfaces and attributes are
    the fields of each ``SurfaceRequest`` and ``ContextualAttribute``.
    """

    user_id: str
    language_code: str
    """As asked: empty for the default language."""
    surfaces: Sequence[Fields]
    attributes: Sequence[Fields]

    @classmethod
    def from_message(cls, request: decisions.GetTreatmentsRequest) -> DecisionRequest:
        """Return what a decision reads of a request message."""
        attributes: list[Fields] = []
        # A slice is a list: iterating the container itself ends on an IndexError.
        for attribute in request.contextual_attributes[:]:
            kind = attribute.WhichOneof("value")
            given = {"key": attribute.key}
            if kind is not None:
                given[kind] = getattr(attribute, kind)
            attributes.append(given)
        surfaces = [
            {
                "surface": asked.surface,
                "maximum_treatment_count": asked.maximum_treatment_count,
                "minimum_treatment_count": asked.minimum_treatment_count,
            }
            for asked in request.surfaces[:]
        ]
        return cls(request.user_id, request.language_code, surfaces, attributes)

    @classmethod
    def from_fields(cls, fields: Fields) -> DecisionRequest:
        """Return what a decision reads of a request given as its constructor's arguments.

        ``fields`` are what the REST codec's fields decoding returns.
        """
        return cls(
            fields.get("user_id") or "",
            fields.get("language_code") or "",
            fields.get("surfaces") or (),
            fields.get("contextual_attributes") or (),
        )


@dataclass(slots=True)
class Choice:
    """A treatment chosen for a surface."""

    surface: str
    treatment: Treatment
    version: Version
    rank: int
    """1 is best, on its surface."""
    content: str
    """The content in the language used, as the response's JSON string."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """Why a treatment was, or was not, chosen for a surface."""

    surface: str
    treatment_id: str
    outcome: str
    """``served``, or why not: ``not live``, ``not on this surface``, ``no content``,
    ``suppressed`` (a rule does not hold), ``chosen for another surface``, ``exclusion group``,
    ``surface full``, ``below the minimum``."""
    detail: str
    """The specifics, for a person: the rule that failed and the value it read, ..."""


@dataclass(slots=True)
class _Surface:
    name: str
    maximum: int
    minimum: int


@dataclass
class Decision:
    """What GetTreatments decided for one request, and, when asked, why."""

    language: str
    choices: list[Choice] = field(default_factory=list)
    verdicts: list[Verdict] | None = None


def decide(
    catalog: Catalog,
    request: DecisionRequest,
    activity: UserActivity,
    now: int,
    *,
    explain: bool = False,
) -> Decision:
    """Decide which treatments a user sees; raise INVALID_ARGUMENT for a bad request.

    ``now`` is microseconds since the Unix epoch. With ``explain``, the
    decision also says, for every treatment and surface, why it was or was not
    chosen.
    """
    surfaces = _surfaces(request, catalog)
    attributes = _attributes(request, catalog)
    if surfaces is None or attributes is None:
        problems = _surface_problems(request, catalog)
        problems += _attribute_problems(request, catalog.attribute_types)
        raise ApiError.invalid_argument(problems)
    context = Context(attributes, activity, now)
    decision = Decision(request.language_code or DEFAULT_LANGUAGE)
    if explain:
        decision.verdicts = []
    _Decider(catalog, request.user_id, context, decision).run(surfaces)
    return decision


class _Decider:
    """One decision being made: what is chosen so far, surface by surface."""

    def __init__(
        self, catalog: Catalog, user_id: str, context: Context, decision: Decision
    ) -> None:
        self.catalog = catalog
        # The CRC-32 of the user id and a NUL byte, continued over each treatment id.
        self.user_crc = zlib.crc32(user_id.encode() + b"\0")
        self.context = context
        self.decision = decision
        self.verdicts = decision.verdicts
        self.eligible: dict[str, tuple[bool, str]] = {}
        self.chosen: set[str] = set()
        self.groups: set[str] = set()

    def run(self, surfaces: list[_Surface]) -> None:
        for surface in surfaces:
            if self.verdicts is None:
                picked = self.pick_lazily(surface)
            else:
                picked = self.pick_explained(surface, self.ranked_with_verdicts(surface.name))
            if len(picked) < surface.minimum:
                self.release(surface, picked)
                continue
            for rank, (treatment, version) in enumerate(picked, start=1):
                content = version.content[self.decision.language]
                self.decision.choices.append(
                    Choice(surface.name, treatment, version, rank, content)
                )
                if self.verdicts is not None:
                    self.verdict(surface.name, treatment.treatment_id, "served", f"rank {rank}")

    def verdict(self, surface: str, treatment_id: str, outcome: str, detail: str) -> None:
        if self.verdicts is not None:
            self.verdicts.append(Verdict(surface, treatment_id, outcome, detail))

    def pick_lazily(self, surface: _Surface) -> list[tuple[Treatment, Version]]:
        """Take the treatments ``pick_explained`` takes, reading rules only of those reached.

        The user's order does not depend on eligibility, so the candidates are
        ranked first and a candidate's rules are read only when it is next in
        line: once the surface is full, the rest are never looked at.
        """
        context = self.context
        user_crc = self.user_crc
        crc32 = zlib.crc32
        ranked = sorted(
            [
                (crc32(encoded, user_crc), treatment.treatment_id, treatment, version)
                for treatment, version, encoded in self.catalog.candidates(
                    surface.name, self.decision.language, context.now
                )
            ]
        )
        picked: list[tuple[Treatment, Version]] = []
        maximum = surface.maximum
        chosen = self.chosen
        groups = self.groups
        eligible = self.eligible
        for _, treatment_id, treatment, version in ranked:
            if treatment_id in chosen:
                continue
            group = treatment.group
            if group is not None and group in groups:
                continue
            found = eligible.get(treatment_id)
            if found is None:
                holds = True
                for rule in version.rules:
                    if not rule.check(context):
                        holds = False
                        break
                found = eligible[treatment_id] = (holds, "")
            if not found[0]:
                continue
            picked.append((treatment, version))
            chosen.add(treatment_id)
            if group is not None:
                groups.add(group)
            if len(picked) >= maximum:
                break
        return picked

    def ranked_with_verdicts(self, surface: str) -> list[tuple[int, str, Treatment, Version]]:
        """Return the eligible candidates for a surface, in the user's order.

        Every treatment's rules are read, and each one that is not a candidate
        gets its verdict: why not.
        """
        ranked = []
        for treatment in self.catalog.treatments:
            version = _candidate(
                treatment, surface, self.decision.language, self.context.now, self.verdicts
            )
            if version is None:
                continue
            found = self.eligible.get(treatment.treatment_id)
            if found is None:
                found = _eligibility(version, self.context, self.verdicts is not None)
                self.eligible[treatment.treatment_id] = found
            if not found[0]:
                self.verdict(surface, treatment.treatment_id, "suppressed", found[1])
                continue
            key = zlib.crc32(treatment.treatment_id.encode(), self.user_crc)
            ranked.append((key, treatment.treatment_id, treatment, version))
        ranked.sort(key=lambda item: (item[0], item[1]))
        return ranked

    def pick_explained(
        self, surface: _Surface, ranked: list[tuple[int, str, Treatment, Version]]
    ) -> list[tuple[Treatment, Version]]:
        """Take treatments for a surface, in order, within its maximum and the groups.

        Every candidate gets its verdict (the explained decision); ``pick_lazily``
        takes the same ones without them.
        """
        picked: list[tuple[Treatment, Version]] = []
        for _, treatment_id, treatment, version in ranked:
            if treatment_id in self.chosen:
                reason = ("chosen for another surface", "a treatment is served once a response")
            elif treatment.group is not None and treatment.group in self.groups:
                reason = ("exclusion group", f"another treatment of {treatment.group!r} is served")
            elif len(picked) >= surface.maximum:
                reason = ("surface full", f"the surface takes {surface.maximum}")
            else:
                picked.append((treatment, version))
                self.chosen.add(treatment_id)
                if treatment.group is not None:
                    self.groups.add(treatment.group)
                continue
            self.verdict(surface.name, treatment_id, *reason)
        return picked

    def release(self, surface: _Surface, picked: list[tuple[Treatment, Version]]) -> None:
        """Give up what was picked for a surface that cannot reach its minimum."""
        for treatment, _ in picked:
            self.chosen.discard(treatment.treatment_id)
            if treatment.group is not None:
                self.groups.discard(treatment.group)
            self.verdict(
                surface.name,
                treatment.treatment_id,
                "below the minimum",
                f"{len(picked)} eligible, the surface asks for at least {surface.minimum}",
            )


def _candidate(
    treatment: Treatment,
    surface: str,
    language: str,
    now: int,
    verdicts: list[Verdict] | None,
) -> Version | None:
    """Return the version of a treatment that may be shown on a surface now, or None."""
    version = treatment.live_version(now)
    reason = None
    if version is None:
        reason = ("not live", "no version is LIVE now")
    elif surface not in version.surfaces:
        reason = ("not on this surface", f"its version offers {sorted(version.surfaces)}")
    elif language not in version.content:
        reason = ("no content", f"its version has content in {sorted(version.content)}")
    if reason is None:
        return version
    if verdicts is not None:
        verdicts.append(Verdict(surface, treatment.treatment_id, *reason))
    return None


def _eligibility(version: Version, context: Context, explain: bool) -> tuple[bool, str]:
    """Return whether every rule of a version holds, and (when explaining) which failed."""
    for rule in version.rules:
        holds, value = rule.evaluate(context)
        if not holds:
            if not explain:
                return False, ""
            shown = "no value" if value is None else f"the value is {value!r}"
            return False, f"rule failed: {rule.description} ({shown})"
    return True, ""


def _surfaces(request: DecisionRequest, catalog: Catalog) -> list[_Surface] | None:
    """Return the surfaces asked for, or None if a name or a count is wrong (see the problems)."""
    found: list[_Surface] = []
    known = catalog.surfaces
    for asked in request.surfaces:
        name = asked.get("surface") or ""
        # Negative counts are refused by validation (the fields' rules).
        maximum = asked.get("maximum_treatment_count") or 1
        minimum = asked.get("minimum_treatment_count") or 0
        if name not in known or minimum > maximum:
            return None
        found.append(_Surface(name, maximum, minimum))
    return found


def _surface_problems(request: DecisionRequest, catalog: Catalog) -> list[FieldViolation]:
    """Return every unknown surface and every minimum above its maximum."""
    problems: list[FieldViolation] = []
    for index, asked in enumerate(request.surfaces):
        path = f"surfaces[{index}]"
        name = asked.get("surface") or ""
        if name not in catalog.surfaces:
            known = ", ".join(sorted(catalog.surfaces)) or "none"
            problems.append(
                violation(
                    f"{path}.surface",
                    f'"{name}" is not a surface of the project (surfaces: {known})',
                )
            )
        maximum = asked.get("maximum_treatment_count") or 1
        minimum = asked.get("minimum_treatment_count") or 0
        if minimum > maximum:
            problems.append(
                violation(
                    f"{path}.minimumTreatmentCount",
                    f"{minimum} is above the maximum, {maximum}",
                )
            )
    return problems


def _attributes(request: DecisionRequest, catalog: Catalog) -> dict[str, object] | None:
    """Return the contextual attributes by key, or None if one is repeated or mistyped."""
    values: dict[str, object] = {}
    declared_types = catalog.attribute_types
    for attribute in request.attributes:
        key = attribute.get("key") or ""
        declared = declared_types.get(key)
        if key in values:
            return None
        if declared is None:
            value = _value_of(attribute)[1]
        else:
            # Validation requires a value: in the field of its type, or it is mistyped.
            value = attribute.get(_VALUE_KIND[declared])
            if value is None:
                return None
            if declared == "DOUBLE":
                value = float(value)
        values[key] = value
    return values


def _value_of(attribute: Fields) -> tuple[str | None, object]:
    """Return the field holding an attribute's value and the value; (None, None) when unset."""
    for kind in _VALUE_FIELDS:
        value = attribute.get(kind)
        if value is not None:
            return kind, value
    return None, None


def _attribute_problems(
    request: DecisionRequest, declared_types: Mapping[str, str]
) -> list[FieldViolation]:
    """Return every attribute given twice or as a value of another type than its declared one."""
    seen: set[str] = set()
    problems: list[FieldViolation] = []
    for index, attribute in enumerate(request.attributes):
        key = attribute.get("key") or ""
        kind = str(_value_of(attribute)[0])
        if key in seen:
            path = f"contextualAttributes[{index}].key"
            problems.append(violation(path, f'"{key}" is given more than once'))
            continue
        seen.add(key)
        declared = declared_types.get(key)
        if declared is not None and kind != _VALUE_KIND[declared]:
            expected = _JSON_KINDS[_VALUE_KIND[declared]]
            path = f"contextualAttributes[{index}].{_JSON_KINDS[kind]}"
            problems.append(
                violation(path, f'"{key}" is a {declared} attribute: give it as {expected}')
            )
    return problems


def tracking_id(treatment_id: str, response_id: str) -> str:
    """Return the tracking id of a treatment served in a response: ``<treatment>_<response>``."""
    return f"{treatment_id}_{response_id}"


def response_of_tracking_id(tracking: str) -> str:
    """Return the response id in a tracking id ``tracking_id`` made: what follows its last ``_``.

    A response id has no ``_``; any other string gives a string no response has, or its own.
    """
    return tracking.rpartition("_")[2]


def response_fields(decision: Decision, response_id: str, tracking_ids: list[str]) -> Fields:
    """Return the GetTreatments response of a decision, as its constructor's arguments.

    With the tracking id of each choice.
    """
    language = decision.language
    return {
        "response_id": response_id,
        "user_treatments": [
            {
                "treatment_id": choice.treatment.treatment_id,
                "treatment_tracking_id": tracking,
                "rank": choice.rank,
                "content_language_code": language,
                "treatment_content": choice.content,
                "treatment_type": choice.treatment.type_name,
                "surface": choice.surface,
            }
            for choice, tracking in zip(decision.choices, tracking_ids, strict=True)
        ],
    }


# Response ids need to be unique, not secret: a generator seeded from the
# system's randomness, once per process, draws them (faster than os.urandom
# per id: bench/NOTES.md, "Response ids").
_random_bits = random.Random(os.urandom(32)).getrandbits  # noqa: S311 - ids, not secrets
_UUID_CLEAR: Final = ~((0xF << 76) | (0x3 << 62))
_UUID7_SET: Final = (0x7 << 76) | (0x2 << 62)  # version 7, RFC 9562 variant


def response_id() -> str:
    """Return a new response id: a time-ordered (version 7, RFC 9562) UUID.

    Its first 48 bits are the system clock's milliseconds since the Unix epoch
    (not the emulator's clock), the rest random: the ids, and the tracking ids
    made of them, sort by time, so the store's indexes of them grow at one end.
    """
    bits = (time.time_ns() // 1_000_000) << 80 | _random_bits(80)
    digits = "%032x" % (bits & _UUID_CLEAR | _UUID7_SET)
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"
