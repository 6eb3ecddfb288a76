"""The decision never breaks its own rules, on random worlds.

Random treatment types, treatments (versions, launch windows, removed
surfaces, languages, groups, rules on attributes and on view counts), users
and requests; the chosen treatments are checked against a plain reading of
the rules written here, not against the server's own code.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auxia.decision.model import data_field_pb2, treatment_pb2
from auxia.decision.model import treatment_decision_service_pb2 as decisions
from auxia_decision import ApiError, RestCodec
from auxia_decision.server._domain.catalog import compile_catalog
from auxia_decision.server._domain.decisions import DecisionRequest, decide
from auxia_decision.server._storage.activity import DailyActivity
from auxia_decision.server._storage.seam import StoredTreatment

NOW = 1_750_000_000_000_000  # 2025-06-15, in microseconds
DAY = 86_400_000_000
SURFACES = ["S1", "S2", "S3"]
LANGUAGES = ["en", "de"]
GROUPS = [None, "G1", "G2"]
VIEWED = int(data_field_pb2.DataFieldParams.TreatmentDataFieldParams.VIEWED)
Condition = treatment_pb2.Condition
CONDITIONS = [
    Condition.LESS_THAN,
    Condition.LESS_THAN_OR_EQUALS,
    Condition.GREATER_THAN,
    Condition.GREATER_THAN_OR_EQUALS,
    Condition.EQUALS,
    Condition.NOT_EQUALS,
]
# Data fields: 1 an INTEGER attribute, 2 a STRING one, 3 a BOOLEAN one, 4 views in 7 days.
_Params = data_field_pb2.DataFieldParams


def _attribute(name: str) -> data_field_pb2.DataFieldParams:
    return _Params(
        user_attribute_data_field_params=_Params.UserAttributeDataFieldParams(property_name=name)
    )


_VIEWS_IN_A_WEEK = _Params(
    treatment_data_field_params=_Params.TreatmentDataFieldParams(
        treatment_interaction_type=_Params.TreatmentDataFieldParams.VIEWED,
        daily_count_aggregation=data_field_pb2.DailyCountAggregation(window_name="LAST_7D"),
    )
)
DATA_FIELDS = {
    1: (_attribute("n"), "INTEGER"),
    2: (_attribute("s"), "STRING"),
    3: (_attribute("b"), "BOOLEAN"),
    4: (_VIEWS_IN_A_WEEK, "INTEGER"),
}
ATTRIBUTE_TYPES = {"n": "INTEGER", "s": "STRING", "b": "BOOLEAN"}
CODEC = RestCodec()
_DECODE_FIELDS = CODEC.request_fields_decoder(decisions.GetTreatmentsRequest)
assert _DECODE_FIELDS is not None
DECODE_FIELDS = _DECODE_FIELDS
RHS = {1: st.integers(0, 5).map(str), 2: st.sampled_from(["x", "y"]),
       3: st.sampled_from(["true", "false"]), 4: st.integers(0, 4).map(str)}  # fmt: skip


@dataclass
class World:
    types: list[treatment_pb2.TreatmentTypePb]
    treatments: list[StoredTreatment]
    attributes: dict[str, object]
    views: list[int]
    """The days (before today) of the user's views."""
    request: decisions.GetTreatmentsRequest


@st.composite
def rules(draw: st.DrawFn) -> treatment_pb2.EligibilityRulePb:
    field = draw(st.sampled_from(sorted(DATA_FIELDS)))
    return treatment_pb2.EligibilityRulePb(
        data_field_id=field, condition=draw(st.sampled_from(CONDITIONS)), rhs_value=draw(RHS[field])
    )


@st.composite
def versions(
    draw: st.DrawFn, type_surfaces: list[str]
) -> tuple[bool, treatment_pb2.TreatmentVersionPb]:
    version = treatment_pb2.TreatmentVersionPb()
    start = draw(st.one_of(st.none(), st.integers(-3, 3)))
    if start is not None:
        version.start_timestamp.FromMicroseconds(NOW + start * DAY)
    end = draw(st.one_of(st.none(), st.integers(-3, 3)))
    if end is not None:
        version.end_timestamp.FromMicroseconds(NOW + end * DAY)
    for name in draw(st.lists(st.sampled_from(type_surfaces), unique=True)):
        version.removed_surfaces.surfaces.add(name=name)
    for language in draw(st.lists(st.sampled_from(LANGUAGES), unique=True)):
        by_language = version.content.content_by_language.add()
        by_language.language_code.language_code = language
        by_language.content_fields.add(field_name="title", string_value=f"title {language}")
    version.eligibility_rules.rules.extend(draw(st.lists(rules(), max_size=3)))
    return draw(st.booleans()), version


@st.composite
def worlds(draw: st.DrawFn) -> World:
    types = []
    for index in range(draw(st.integers(1, 3))):
        treatment_type = treatment_pb2.TreatmentTypePb(project_id="P", name=f"T{index}")
        treatment_type.language_specific_content_field_types.add(
            field_name="title", value_length_limit=50
        )
        for name in draw(st.lists(st.sampled_from(SURFACES), min_size=1, unique=True)):
            treatment_type.surfaces.add(name=name)
        types.append(treatment_type)
    treatments = []
    for index in range(draw(st.integers(0, 10))):
        treatment_type = draw(st.sampled_from(types))
        treatment = treatment_pb2.TreatmentPb(
            project_id="P", treatment_id=f"t{index}", treatment_type=treatment_type, name="n"
        )
        group = draw(st.sampled_from(GROUPS))
        if group is not None:
            treatment.mutual_exclusion_group.name = group
        surfaces = [surface.name for surface in treatment_type.surfaces]
        published = []
        for flag, version in draw(st.lists(versions(surfaces), min_size=1, max_size=2)):
            treatment.versions.append(version)
            published.append(flag)
        treatments.append(StoredTreatment(treatment, published))
    attributes: dict[str, object] = {}
    request = decisions.GetTreatmentsRequest(
        project_id="P", user_id=draw(st.text("abc", min_size=1, max_size=3))
    )
    if draw(st.booleans()):
        attributes["n"] = draw(st.integers(0, 5))
        request.contextual_attributes.add(key="n", integer_value=attributes["n"])
    if draw(st.booleans()):
        attributes["s"] = draw(st.sampled_from(["x", "y"]))
        request.contextual_attributes.add(key="s", string_value=attributes["s"])
    if draw(st.booleans()):
        attributes["b"] = draw(st.booleans())
        request.contextual_attributes.add(key="b", bool_value=attributes["b"])
    offered = sorted({surface.name for t in types for surface in t.surfaces})
    for name in draw(st.lists(st.sampled_from(offered), min_size=1, max_size=3, unique=True)):
        maximum = draw(st.integers(0, 3))
        minimum = draw(st.integers(0, maximum or 1))
        request.surfaces.add(
            surface=name, maximum_treatment_count=maximum, minimum_treatment_count=minimum
        )
    request.language_code = draw(st.sampled_from(["", "en", "de"]))
    views = draw(st.lists(st.integers(0, 10), max_size=6))
    return World(types, treatments, attributes, views, request)


def _live_version(stored: StoredTreatment) -> treatment_pb2.TreatmentVersionPb | None:
    live = None
    for published, version in zip(
        stored.published_versions, stored.treatment.versions, strict=True
    ):
        starts = not version.HasField("start_timestamp") or (
            version.start_timestamp.ToMicroseconds() <= NOW
        )
        ends = version.HasField("end_timestamp") and version.end_timestamp.ToMicroseconds() <= NOW
        if published and starts and not ends:
            live = version
    return live


def _value(world: World, field: int) -> object:
    if field == 4:
        return sum(1 for day in world.views if day < 7)
    return world.attributes.get({1: "n", 2: "s", 3: "b"}[field])


def _holds(world: World, rule: treatment_pb2.EligibilityRulePb) -> bool:
    value = _value(world, rule.data_field_id)
    if value is None:
        return False
    kind = DATA_FIELDS[rule.data_field_id][1]
    rhs: object = (
        int(rule.rhs_value) if kind == "INTEGER" else rule.rhs_value == "true"
        if kind == "BOOLEAN" else rule.rhs_value
    )  # fmt: skip
    results = {
        Condition.LESS_THAN: value < rhs,  # type: ignore[operator]
        Condition.LESS_THAN_OR_EQUALS: value <= rhs,  # type: ignore[operator]
        Condition.GREATER_THAN: value > rhs,  # type: ignore[operator]
        Condition.GREATER_THAN_OR_EQUALS: value >= rhs,  # type: ignore[operator]
        Condition.EQUALS: value == rhs,
        Condition.NOT_EQUALS: value != rhs,
    }
    return bool(results[rule.condition])


def _eligible_for(world: World, surface: str, language: str) -> set[str]:
    """Return the treatments a plain reading of the rules allows on a surface."""
    types = {t.name: t for t in world.types}
    allowed = set()
    for stored in world.treatments:
        version = _live_version(stored)
        if version is None:
            continue
        offered = {s.name for s in types[stored.treatment.treatment_type.name].surfaces}
        offered -= {s.name for s in version.removed_surfaces.surfaces}
        languages = {c.language_code.language_code for c in version.content.content_by_language}
        rules_hold = all(_holds(world, rule) for rule in version.eligibility_rules.rules)
        if surface in offered and language in languages and rules_hold:
            allowed.add(stored.treatment.treatment_id)
    return allowed


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(world=worlds())
def test_the_decision_keeps_every_rule(world: World) -> None:
    catalog = compile_catalog("P", world.types, ATTRIBUTE_TYPES, DATA_FIELDS, world.treatments)
    activity = DailyActivity()
    for day in world.views:
        activity.add(VIEWED, "someone", "S1", NOW - day * DAY)
    values = DecisionRequest.from_message(world.request)
    try:
        decision = decide(catalog, values, activity, NOW)
    except ApiError:
        raise AssertionError("a valid request was refused") from None
    # The REST gateway reads the request's fields instead of the message: the same decision.
    fields = DECODE_FIELDS(CODEC.encode(world.request))
    assert fields is not None
    from_fields = decide(catalog, DecisionRequest.from_fields(fields), activity, NOW)
    assert from_fields.choices == decision.choices
    # Explaining reads every candidate's rules; deciding stops at a full surface: same choices.
    explained = decide(catalog, values, activity, NOW, explain=True)
    assert [(c.surface, c.treatment.treatment_id, c.rank) for c in explained.choices] == [
        (c.surface, c.treatment.treatment_id, c.rank) for c in decision.choices
    ]
    language = world.request.language_code or "en"
    groups = {
        s.treatment.treatment_id: (
            s.treatment.mutual_exclusion_group.name
            if s.treatment.HasField("mutual_exclusion_group")
            else None
        )
        for s in world.treatments
    }
    chosen = [choice.treatment.treatment_id for choice in decision.choices]
    assert len(chosen) == len(set(chosen)), "a treatment served twice"
    used = [groups[t] for t in chosen if groups[t] is not None]
    assert len(used) == len(set(used)), "two treatments of one exclusion group"
    taken: set[str] = set()
    for asked in world.request.surfaces:
        on_surface = [c for c in decision.choices if c.surface == asked.surface]
        maximum = asked.maximum_treatment_count or 1
        assert len(on_surface) <= maximum
        assert not on_surface or len(on_surface) >= asked.minimum_treatment_count
        assert [c.rank for c in on_surface] == list(range(1, len(on_surface) + 1))
        allowed = _eligible_for(world, asked.surface, language)
        assert {c.treatment.treatment_id for c in on_surface} <= allowed
        if on_surface or not asked.minimum_treatment_count:
            # Nothing eligible was passed over but for a reason: full, taken, or its group.
            left = allowed - {c.treatment.treatment_id for c in on_surface}
            for treatment_id in left:
                blocked = (
                    len(on_surface) == maximum
                    or treatment_id in taken
                    or (groups[treatment_id] is not None and groups[treatment_id] in {
                        groups[t] for t in chosen})
                )  # fmt: skip
                assert blocked, f"{treatment_id} was eligible on {asked.surface} and left out"
        # The order is the user's: ascending CRC-32 of user id, NUL and treatment id.
        keys = [
            zlib.crc32(world.request.user_id.encode() + b"\0" + c.treatment.treatment_id.encode())
            for c in on_surface
        ]
        assert keys == sorted(keys)
        taken |= {c.treatment.treatment_id for c in on_surface}
