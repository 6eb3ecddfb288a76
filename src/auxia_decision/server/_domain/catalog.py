"""A project's treatments, compiled once for deciding: versions, content and rules.

GetTreatments runs on every page view; what it needs of a project's
treatments, treatment types and data fields is read from the store once and
compiled here: each version's launch window, the surfaces it may be shown
on, its content as the JSON string a response carries (per language), and
its eligibility rules as functions of a user's context. A catalog is
replaced, not changed, when the project's treatments or data fields change.
"""

from __future__ import annotations

import bisect
import json
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from auxia.decision.model import data_field_pb2, treatment_pb2
from auxia_decision.server._storage.seam import MICROS_PER_DAY, StoredTreatment, UserActivity

_Condition = treatment_pb2.Condition
_Interaction = data_field_pb2.DataFieldParams.TreatmentDataFieldParams
DEFAULT_LANGUAGE: Final = "en"
_SECONDS: Final = 1_000_000


@dataclass(slots=True)
class Context:
    """What rules read about one request: the user's attributes and activity, and the time."""

    attributes: Mapping[str, object]
    """The contextual attributes by key, as values of their declared types."""
    activity: UserActivity
    now: int
    """Microseconds since the Unix epoch."""


@dataclass(frozen=True, slots=True)
class Rule:
    """One eligibility rule: a data field's value compared with a constant."""

    data_field_id: int
    description: str
    """The rule as a person reads it: ``country EQUALS "US"``."""
    value: Callable[[Context], object]
    """The data field's value for a request, or None when it has none."""
    holds: Callable[[object], bool]
    """Whether a (present) value satisfies the rule."""
    check: Callable[[Context], bool]
    """Whether the rule holds for a request: ``value`` then ``holds``, in one call."""
    costly: bool = False
    """Whether reading the value counts a user's activity (rather than reading an attribute)."""

    def evaluate(self, context: Context) -> tuple[bool, object]:
        """Return whether the rule holds for a request, and the value it read."""
        value = self.value(context)
        return (value is not None and self.holds(value)), value


@dataclass(frozen=True, slots=True)
class Version:
    """One version of a treatment, as a decision reads it."""

    index: int
    """Its position among the treatment's versions, 0 the oldest."""
    published: bool
    start: int | None
    """Microseconds since the Unix epoch, or None: no start time."""
    end: int | None
    surfaces: frozenset[str]
    """The surfaces it may be shown on: its type's, less the ones it removed."""
    content: Mapping[str, str]
    """The response's ``treatment_content`` (a JSON object as a string) by language code."""
    rules: tuple[Rule, ...]

    def live_at(self, now: int) -> bool:
        """Whether the version is LIVE at ``now``: published and inside its launch window."""
        return (
            self.published
            and (self.start is None or self.start <= now)
            and (self.end is None or self.end > now)
        )


@dataclass(frozen=True, slots=True)
class Treatment:
    """A treatment, as a decision reads it."""

    treatment_id: str
    name: str
    type_name: str
    group: str | None
    """The name of its mutual exclusion group, or None."""
    versions: tuple[Version, ...]

    def live_version(self, now: int) -> Version | None:
        """Return the latest version LIVE at ``now``, or None when none is."""
        for version in reversed(self.versions):
            if version.live_at(now):
                return version
        return None


Candidates = tuple[tuple[Treatment, Version, bytes], ...]
"""Treatments with their LIVE version and their identifier as UTF-8 (what ranking hashes)."""


@dataclass(frozen=True)
class Catalog:
    """A project's treatments and what GetTreatments needs to know of its configuration."""

    project_id: str
    treatments: tuple[Treatment, ...]
    surfaces: frozenset[str]
    """Every surface of the project's treatment types."""
    attribute_types: Mapping[str, str]
    """The declared type of each user attribute (``INTEGER``, ``STRING``, ...)."""
    kinds_read: frozenset[int]
    """The interaction kinds (``TreatmentInteractionType``, SENT included) its rules count:
    what the store must keep exact for its decisions (``Store.fold_kinds``)."""
    boundaries: tuple[int, ...] = ()
    """Every start and end time of every version, sorted: what is LIVE changes only there."""
    _candidates: dict[tuple[str, str], tuple[int, int, Candidates]] = field(
        default_factory=dict, compare=False, repr=False
    )

    def candidates(self, surface: str, language: str, now: int) -> Candidates:
        """Return the treatments LIVE at ``now`` that may be shown on a surface in a language.

        Each with the version that is LIVE and its identifier as UTF-8; by
        treatment identifier. The answer holds between two boundaries, and is
        kept until ``now`` leaves them.
        """
        key = (surface, language)
        cached = self._candidates.get(key)
        if cached is not None and cached[0] <= now < cached[1]:
            return cached[2]
        position = bisect.bisect_right(self.boundaries, now)
        valid_from = self.boundaries[position - 1] if position else -(1 << 62)
        valid_until = self.boundaries[position] if position < len(self.boundaries) else 1 << 62
        found = []
        for treatment in self.treatments:
            version = treatment.live_version(now)
            if version is not None and surface in version.surfaces and language in version.content:
                found.append((treatment, version, treatment.treatment_id.encode()))
        candidates = tuple(found)
        self._candidates[key] = (valid_from, valid_until, candidates)
        return candidates


def compile_catalog(
    project_id: str,
    treatment_types: Sequence[treatment_pb2.TreatmentTypePb],
    attribute_types: Mapping[str, str],
    data_fields: Mapping[int, tuple[data_field_pb2.DataFieldParams, str]],
    treatments: Sequence[StoredTreatment],
) -> Catalog:
    """Compile a project's treatments, their types and the data fields their rules name."""
    types = {treatment_type.name: treatment_type for treatment_type in treatment_types}
    rules: dict[tuple[int, int, str], Rule] = {}

    def rule(message: treatment_pb2.EligibilityRulePb) -> Rule:
        key = (message.data_field_id, message.condition, message.rhs_value)
        if key not in rules:
            rules[key] = _compile_rule(message, data_fields)
        return rules[key]

    compiled = []
    for stored in treatments:
        treatment = stored.treatment
        treatment_type = types.get(treatment.treatment_type.name, treatment.treatment_type)
        type_surfaces = frozenset(surface.name for surface in treatment_type.surfaces)
        versions = tuple(
            Version(
                index=index,
                published=published,
                start=_micros(version, "start_timestamp"),
                end=_micros(version, "end_timestamp"),
                surfaces=type_surfaces
                - {surface.name for surface in version.removed_surfaces.surfaces},
                content=_content_by_language(version.content, treatment_type),
                rules=_cheapest_first(
                    tuple(rule(message) for message in version.eligibility_rules.rules)
                ),
            )
            for index, (published, version) in enumerate(
                zip(stored.published_versions, treatment.versions, strict=True)
            )
        )
        group = (
            treatment.mutual_exclusion_group.name
            if treatment.HasField("mutual_exclusion_group")
            else None
        )
        compiled.append(
            Treatment(treatment.treatment_id, treatment.name, treatment_type.name, group, versions)
        )
    surfaces = frozenset(
        surface.name for treatment_type in treatment_types for surface in treatment_type.surfaces
    )
    boundaries = sorted(
        {
            moment
            for treatment in compiled
            for version in treatment.versions
            for moment in (version.start, version.end)
            if moment is not None
        }
    )
    return Catalog(
        project_id,
        tuple(sorted(compiled, key=lambda t: t.treatment_id)),
        surfaces,
        dict(attribute_types),
        _kinds_read(
            data_fields[field_id][0] for field_id, _, _ in rules if field_id in data_fields
        ),
        tuple(boundaries),
    )


def _kinds_read(fields: Iterable[data_field_pb2.DataFieldParams]) -> frozenset[int]:
    """Return the interaction kinds the activity data fields among ``fields`` count."""
    return frozenset(
        int(params.treatment_data_field_params.treatment_interaction_type)
        for params in fields
        if params.WhichOneof("params") == "treatment_data_field_params"
    )


def _cheapest_first(rules: tuple[Rule, ...]) -> tuple[Rule, ...]:
    """Order rules to read attributes before counting activity: all must hold, in any order."""
    return tuple(sorted(rules, key=lambda rule: rule.costly))


def _micros(
    version: treatment_pb2.TreatmentVersionPb, name: Literal["start_timestamp", "end_timestamp"]
) -> int | None:
    if not version.HasField(name):
        return None
    timestamp = getattr(version, name)
    return int(timestamp.seconds) * _SECONDS + int(timestamp.nanos) // 1000


def _content_by_language(
    content: treatment_pb2.ContentPb, treatment_type: treatment_pb2.TreatmentTypePb
) -> dict[str, str]:
    """Return, per language, the content fields of that language and the agnostic ones as JSON.

    The fields are in the order the treatment type declares them (the
    language-specific ones first); fields without a value are left out.
    """
    order = [f.field_name for f in treatment_type.language_specific_content_field_types]
    order += [f.field_name for f in treatment_type.language_agnostic_content_field_types]
    position = {name: index for index, name in enumerate(order)}
    agnostic = {
        field.field_name: field.string_value
        for field in content.language_agnostic_content_fields
        if field.HasField("string_value")
    }
    result = {}
    for by_language in content.content_by_language:
        values = {
            field.field_name: field.string_value
            for field in by_language.content_fields
            if field.HasField("string_value")
        }
        values.update(agnostic)
        ordered = dict(sorted(values.items(), key=lambda item: position.get(item[0], len(order))))
        result[by_language.language_code.language_code] = json.dumps(
            ordered, ensure_ascii=False, separators=(",", ":")
        )
    return result


# Rules.

_COMPARISONS: Final[dict[int, Callable[[Any, Any], Any]]] = {
    _Condition.LESS_THAN: operator.lt,
    _Condition.LESS_THAN_OR_EQUALS: operator.le,
    _Condition.GREATER_THAN: operator.gt,
    _Condition.GREATER_THAN_OR_EQUALS: operator.ge,
    _Condition.EQUALS: operator.eq,
    _Condition.NOT_EQUALS: operator.ne,
}


def parse_value(data_field_type: str, text: str) -> object:
    """Return a rule's right-hand side as a value of the data field's type."""
    if data_field_type in ("INTEGER", "TIMESTAMP_SECONDS"):
        return int(text, 10)
    if data_field_type == "DOUBLE":
        return float(text)
    if data_field_type == "BOOLEAN":
        return text == "true"
    return text


def _compile_rule(
    message: treatment_pb2.EligibilityRulePb,
    data_fields: Mapping[int, tuple[data_field_pb2.DataFieldParams, str]],
) -> Rule:
    condition_name = treatment_pb2.Condition.Name(message.condition)
    found = data_fields.get(message.data_field_id)
    if found is None or message.condition not in _COMPARISONS:
        # Checked when the rule was written; a rule that cannot be read never holds.
        return Rule(
            message.data_field_id,
            f"data field {message.data_field_id} {condition_name} {message.rhs_value!r}",
            lambda context: None,
            lambda value: False,
            lambda context: False,
        )
    params, data_field_type = found
    rhs = parse_value(data_field_type, message.rhs_value)
    compare = _COMPARISONS[message.condition]
    value, name = _value_reader(params)
    shown = json.dumps(message.rhs_value) if data_field_type == "STRING" else message.rhs_value

    def check(context: Context) -> bool:
        current = value(context)
        return current is not None and bool(compare(current, rhs))

    return Rule(
        message.data_field_id,
        f"{name} {condition_name} {shown}",
        value,
        lambda current: bool(compare(current, rhs)),
        check,
        costly=params.WhichOneof("params") == "treatment_data_field_params",
    )


def _value_reader(params: data_field_pb2.DataFieldParams) -> tuple[Callable[[Context], Any], str]:
    """Return how to read a data field's value for a request, and the field as a person names it."""
    kind = params.WhichOneof("params")
    if kind == "user_attribute_data_field_params":
        key = params.user_attribute_data_field_params.property_name
        return (lambda context: context.attributes.get(key)), key
    if kind == "event_data_field_params":
        # No events are ingested by this API: counts are 0, times absent.
        event = params.event_data_field_params
        name = f"events {event.event_schema_name!r} ({event.WhichOneof('aggregation')})"
        if event.WhichOneof("aggregation") == "daily_count_aggregation":
            return (lambda context: 0), name
        return (lambda context: None), name
    return _interaction_reader(params.treatment_data_field_params)


def _interaction_reader(
    params: data_field_pb2.DataFieldParams.TreatmentDataFieldParams,
) -> tuple[Callable[[Context], Any], str]:
    kind = int(params.treatment_interaction_type)
    treatment_id = (
        params.treatment_id if params.WhichOneof("aggregate_by") == "treatment_id" else None
    )
    surface = params.surface_id if params.WhichOneof("aggregate_by") == "surface_id" else None
    distinct = params.is_distinct_interaction
    kind_name = _Interaction.TreatmentInteractionType.Name(params.treatment_interaction_type)
    scope = (f" of {treatment_id}" if treatment_id else f" on {surface}" if surface else "") + (
        " (distinct treatments)" if distinct else ""
    )
    aggregation = params.WhichOneof("aggregation")
    if aggregation == "daily_count_aggregation":
        days = int(params.daily_count_aggregation.window_name[len("LAST_") : -1])

        if treatment_id is not None and surface is None and not distinct:
            one = treatment_id

            def count(context: Context) -> int:
                today = context.now // MICROS_PER_DAY
                return context.activity.count_of(kind, one, today - days + 1, today)

        else:

            def count(context: Context) -> int:
                today = context.now // MICROS_PER_DAY
                return context.activity.count(
                    kind,
                    treatment_id=treatment_id,
                    surface=surface,
                    distinct=distinct,
                    first_day=today - days + 1,
                    last_day=today,
                )

        return count, f"{kind_name} count{scope} in the last {days} days"
    first = aggregation in ("first_timestamp_aggregation", "days_since_first_timestamp_aggregation")

    def time(context: Context) -> int | None:
        activity = context.activity
        if first:
            return activity.first(kind, treatment_id=treatment_id, surface=surface)
        return activity.latest(kind, treatment_id=treatment_id, surface=surface)

    which = "first" if first else "latest"
    if aggregation in ("first_timestamp_aggregation", "latest_timestamp_aggregation"):

        def seconds(context: Context) -> int | None:
            found = time(context)
            return None if found is None else found // _SECONDS

        return seconds, f"time of the {which} {kind_name}{scope} (seconds)"

    def days_since(context: Context) -> int | None:
        found = time(context)
        return None if found is None else (context.now - found) // MICROS_PER_DAY

    return days_since, f"days since the {which} {kind_name}{scope}"
