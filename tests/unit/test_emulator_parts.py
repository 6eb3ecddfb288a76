"""The emulator's clock and fault plan, apart from any transport."""

from __future__ import annotations

import json

import pytest
from google.protobuf import descriptor_pb2, json_format
from google.rpc import code_pb2

from auxia.decision.emulator.v1 import emulator_pb2
from auxia.decision.model import treatment_decision_service_pb2 as decisions_pb2
from auxia.decision.model import treatment_management_service_pb2 as management_pb2
from auxia.decision.model import treatment_pb2
from auxia_decision import ApiError, Code
from auxia_decision._drift import find_drift
from auxia_decision.server._domain.clock import ControlledClock
from auxia_decision.server._domain.decisions import Verdict
from auxia_decision.server._domain.servicer import AnsweredDecision
from auxia_decision.server._emulator.evolution import (
    EVOLVED_ENUM_VALUE,
    EVOLVED_FIELD,
    EVOLVED_OBJECT,
    evolved_json,
)
from auxia_decision.server._emulator.faults import FaultPlan, drawn
from auxia_decision.server._emulator.journal import KEPT_BYTES, REST, Journal
from auxia_decision.server._emulator.recent_decisions import (
    NEAR_MISS_SHARE,
    RecentDecisions,
    served_nothing,
)
from tests._evolution import ADDED_ENUM_VALUE, ADDED_MEMBERS, evolution_paths

METHODS = ("GetTreatments", "LogTreatmentInteraction")
FULL_NAMES = {"io.auxia.decision.model.TreatmentDecisionService.GetTreatments": "GetTreatments"}


class _Ticking:
    """A system clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1_000

    def __call__(self) -> int:
        return self.now


def test_a_real_clock_runs_shifted_by_its_advances() -> None:
    system = _Ticking()
    clock = ControlledClock(source=system)
    clock.advance(500)
    system.now += 10
    assert (clock.now(), clock.frozen) == (1_510, False)
    clock.use_real_time()
    assert clock.now() == 1_010


def test_a_frozen_clock_stands_until_advanced_and_restores_to_its_start() -> None:
    system = _Ticking()
    clock = ControlledClock(frozen_at=50, source=system)
    system.now += 10
    assert clock.now() == 50
    clock.advance(7)
    assert clock.now() == 57
    clock.use_real_time()
    assert clock.now() == system.now
    clock.restore()
    assert (clock.now(), clock.frozen) == (50, True)


@pytest.mark.parametrize("micros", [0, -1])
def test_a_clock_only_advances(micros: int) -> None:
    with pytest.raises(ValueError, match="positive"):
        ControlledClock().advance(micros)


def _plan(*faults: emulator_pb2.Fault) -> FaultPlan:
    plan = FaultPlan(METHODS)
    for fault in faults:
        plan.arm(fault, FULL_NAMES)
    return plan


def test_a_counted_fault_selects_the_next_calls_of_its_method_then_is_gone() -> None:
    plan = _plan(emulator_pb2.Fault(method="GetTreatments", count=2, code=code_pb2.ABORTED))
    assert plan.select("LogTreatmentInteraction") is None
    first, second = plan.select("GetTreatments"), plan.select("GetTreatments")
    assert first is not None
    assert second is first
    error = first.error()
    assert isinstance(error, ApiError)
    assert error.code == Code.ABORTED
    assert plan.select("GetTreatments") is None
    assert not plan.armed


def test_faults_apply_in_the_order_they_were_made() -> None:
    plan = _plan(
        emulator_pb2.Fault(method="*", count=1, code=code_pb2.INTERNAL),
        emulator_pb2.Fault(
            method="io.auxia.decision.model.TreatmentDecisionService.GetTreatments",
            count=1,
            code=code_pb2.UNAVAILABLE,
        ),
    )
    names = [getattr(plan.select("GetTreatments"), "name", None) for _ in range(3)]
    assert names == ["faults/1", "faults/2", None]


def test_a_fraction_is_the_same_draw_for_the_same_seed() -> None:
    def draws(seed: int) -> list[bool]:
        plan = _plan(
            emulator_pb2.Fault(
                method="GetTreatments", fraction=0.25, random_seed=seed, code=code_pb2.INTERNAL
            )
        )
        return [plan.select("GetTreatments") is not None for _ in range(400)]

    assert draws(3) == draws(3)
    assert draws(3) != draws(4)
    assert 60 <= draws(3).count(True) <= 140


def test_a_fraction_goes_on_where_a_copy_of_the_plan_left_it() -> None:
    # Processes sharing a store keep the plan as bytes: each call loads it, draws, stores it.
    fault = emulator_pb2.Fault(
        method="GetTreatments", fraction=0.5, random_seed=-9, code=code_pb2.INTERNAL
    )
    whole = _plan(fault)
    once = [whole.select("GetTreatments") is not None for _ in range(200)]
    copied = _plan(fault)
    again = []
    for _ in range(200):
        plan = FaultPlan(METHODS)
        plan.load(copied.encode())
        again.append(plan.select("GetTreatments") is not None)
        copied = plan
    assert again == once
    assert 60 <= once.count(True) <= 140


def test_a_plan_that_took_many_draws_takes_the_next_without_the_others() -> None:
    fault = emulator_pb2.Fault(method="*", fraction=0.5, random_seed=1, code=code_pb2.INTERNAL)
    stored = json.loads(_plan(fault).encode())
    stored["faults"][0]["draws"] = 2**62  # a replay of them would not end
    plan = FaultPlan(METHODS)
    plan.load(json.dumps(stored).encode())
    selected = plan.select("GetTreatments") is not None
    assert selected == (drawn(1, 2**62 + 1) < 0.5)
    assert plan.faults()[0].draws == 2**62 + 1


@pytest.mark.parametrize("index", [1, 2, 10**6, 2**63])
def test_a_draw_is_of_its_seed_and_index_alone(index: int) -> None:
    assert drawn(5, index) == drawn(5, index)
    assert 0 <= drawn(5, index) < 1
    assert drawn(5, index) != drawn(6, index)


def test_reset_numbers_faults_from_1_again() -> None:
    plan = _plan(emulator_pb2.Fault(method="*", count=1, code=code_pb2.INTERNAL))
    plan.reset()
    assert plan.faults() == []
    armed = plan.arm(emulator_pb2.Fault(method="*", count=1, code=code_pb2.INTERNAL), FULL_NAMES)
    assert armed.name == "faults/1"


def test_near_misses_take_at_most_their_share_of_a_second() -> None:
    explained: list[str] = []
    clock = [1000.0]

    def explain(answered: AnsweredDecision) -> list[Verdict]:
        explained.append(str(served_nothing(answered[3])))
        clock[0] += NEAR_MISS_SHARE / 4  # an explanation takes a quarter of the share
        return [Verdict("S", "T", "suppressed", "why")]

    recent = RecentDecisions(timer=lambda: clock[0])
    recent.explain_with(explain)
    served = {"response_id": "s", "user_treatments": [{"treatment_id": "T"}]}
    recent.record((1, "P", b"{}", served))
    assert not explained
    for number in range(10):
        recent.record((1, "P", b"{}", {"response_id": f"r{number}", "user_treatments": []}))
    # Four explanations use the share of this second up.
    assert explained == ["r0", "r1", "r2", "r3"]
    assert recent.near_miss("r0") == [Verdict("S", "T", "suppressed", "why")]
    assert recent.near_miss("r9") is None
    clock[0] += 1.0  # the next second has its share again
    recent.record((1, "P", b"{}", {"response_id": "r10", "user_treatments": []}))
    assert explained[-1] == "r10"
    recent.forget()
    assert recent.near_miss("r0") is None


def test_an_evolution_fault_answers_json_text_and_neither_fails_nor_delays() -> None:
    plan = _plan(emulator_pb2.Fault(method="GetTreatments", count=1, evolve=True))
    fault = plan.select("GetTreatments")
    assert fault is not None
    assert (fault.error(), fault.delay_seconds) == (None, 0)
    response = decisions_pb2.GetTreatmentsResponse(response_id="r1")
    answer = fault.answer(response)
    assert isinstance(answer, bytes)
    assert json.loads(answer)["responseId"] == "r1"
    assert plan.faults() == []


@pytest.mark.parametrize(
    ("fault", "field"),
    [
        (
            emulator_pb2.Fault(
                method="GetTreatments", count=1, evolve=True, code=code_pb2.INTERNAL
            ),
            "fault.evolve",
        ),
        (emulator_pb2.Fault(method="GetTreatments", count=1), "fault.code"),
    ],
    ids=["evolve-with-a-code", "neither-fails-delays-nor-evolves"],
)
def test_a_fault_that_evolves_and_fails_or_does_nothing_is_refused(
    fault: emulator_pb2.Fault, field: str
) -> None:
    with pytest.raises(ApiError) as refused:
        _plan(fault)
    assert [v.field for v in refused.value.field_violations] == [field]


def test_an_evolved_answer_adds_at_every_depth_the_same_way_every_time() -> None:
    treatment = treatment_pb2.TreatmentPb(treatment_id="T1", name="n")
    version = treatment.versions.add()
    version.start_timestamp.FromSeconds(1_700_000_000)
    response = management_pb2.GetTreatmentResponse(treatment=treatment)
    assert (ADDED_MEMBERS, ADDED_ENUM_VALUE) == (
        (EVOLVED_FIELD, EVOLVED_OBJECT),
        EVOLVED_ENUM_VALUE,
    )
    evolved = evolved_json(response)
    assert evolved == evolved_json(response)
    document = json.loads(evolved)
    assert document["treatment"]["versions"][0]["status"] == EVOLVED_ENUM_VALUE  # unset before
    assert document["treatment"]["versions"][0]["startTimestamp"] == "2023-11-14T22:13:20Z"
    assert {"evolvedObject", "treatment.evolvedField", "treatment.versions[0].evolvedField"} <= (
        evolution_paths(document)
    )
    drifts = find_drift(document, management_pb2.GetTreatmentResponse.DESCRIPTOR)
    assert {drift.path for drift in drifts} == evolution_paths(document)
    assert {drift.kind for drift in drifts} == {"unknown_field", "unknown_enum_value"}
    # what the schema knows reads as before
    read = management_pb2.GetTreatmentResponse()
    json_format.Parse(evolved, read, ignore_unknown_fields=True)
    assert read.treatment.versions[0].start_timestamp == version.start_timestamp


def test_a_repeated_enum_gets_the_new_valueevolution_paths() -> None:
    options = descriptor_pb2.FieldOptions(targets=[descriptor_pb2.FieldOptions.TARGET_TYPE_FILE])
    document = json.loads(evolved_json(options))
    assert document["targets"] == ["TARGET_TYPE_FILE", EVOLVED_ENUM_VALUE]


_REQUEST = b'{"projectId": "P\x00"}'
_HEAD = b"POST /v1/GetTreatments?a=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nX-Empty:\r\n"
_HEADERS = ((b"host", b"127.0.0.1:8080"), (b"x-empty", b""))


@pytest.mark.parametrize(
    ("headers", "received", "read_back"),
    [
        ([], None, ()),
        (list(_HEADERS), None, _HEADERS),
        ([(b"host", b"h"), (b"x-odd", b"a\x00b")], None, ((b"host", b"h"), (b"x-odd", b"a\x00b"))),
        # the head and the body received in one read: the headers are read from it
        ([], _HEAD + b"\r\n" + _REQUEST, _HEADERS),
        # spaces around a value, LF line ends, a folded value, empty lines before the head
        (
            [],
            b"\r\nPOST / HTTP/1.1\nHost:  h \nX-Folded: a\n\tb\n\n" + _REQUEST,
            ((b"host", b"h"), (b"x-folded", b"a b")),
        ),
        # two requests in one read, with the same body: the first one's head
        ([], (_HEAD + b"X-Second: 1\r\n\r\n" + _REQUEST) * 2, (*_HEADERS, (b"x-second", b"1"))),
        # the body came in another read: the scope's headers are kept
        (list(_HEADERS), _HEAD + b"\r\n" + _REQUEST[:5], _HEADERS),
        # a read too long to keep
        (list(_HEADERS), _HEAD + b"\r\n" + b" " * (2 * KEPT_BYTES) + _REQUEST, _HEADERS),
    ],
    ids=[
        "no-headers",
        "headers",
        "a-NUL-in-a-header",
        "received-whole",
        "received-loosely",
        "received-with-the-next",
        "received-in-parts",
        "received-too-long",
    ],
)
def test_the_journal_gives_back_a_rest_call_as_it_was_recorded(
    headers: list[tuple[bytes, bytes]],
    received: bytes | None,
    read_back: tuple[tuple[bytes, bytes], ...],
) -> None:
    journal = Journal(2, ControlledClock())
    scope = {
        "method": "POST",
        "path": "/v1/GetTreatments",
        "query_string": b"a=1",
        "headers": headers,
    }
    answer = b"x" * (KEPT_BYTES + 5)
    for _ in range(3):  # the oldest is dropped
        journal.rest(10, 25, scope, received, _REQUEST, 200, answer)
    kept = journal.records()
    assert [record[0] for record in kept] == [2, 3]
    assert journal.dropped == 1
    assert kept[-1] == (
        3,
        REST,
        10,
        25,
        "POST",
        "/v1/GetTreatments",
        b"a=1",
        read_back,
        _REQUEST,
        200,
        answer[: KEPT_BYTES + 1],
    )


def test_a_long_body_received_whole_is_cut_as_any_other() -> None:
    journal = Journal(1, ControlledClock())
    scope = {"method": "POST", "path": "/", "query_string": b"", "headers": list(_HEADERS)}
    request = b"y" * (KEPT_BYTES + 100)
    journal.rest(1, 2, scope, _HEAD + b"\r\n" + request, request, 200, b"{}")
    (kept,) = journal.records()
    assert (kept[7], kept[8]) == (_HEADERS, request[: KEPT_BYTES + 1])
