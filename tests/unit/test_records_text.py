"""The stored interactions and decisions as ``auxia-decision admin`` prints them."""

from __future__ import annotations

import pytest

from auxia.decision.emulator.v1 import emulator_pb2
from auxia.decision.model import treatment_interaction_service_pb2 as interactions
from auxia_decision._records_text import decision_lines, interaction_lines

Interaction = interactions.LogTreatmentInteractionRequest


@pytest.mark.parametrize(
    ("micros", "shown"),
    [
        (1_893_456_000_000_001, "2030-01-01T00:00:00.000001Z"),
        (0, "1970-01-01T00:00:00Z"),
        # Nanoseconds sent by mistake: no RFC 3339 time, the number as stored.
        (1_893_456_000_000_000_000, "1893456000000000000µs"),
        (-(2**63), f"{-(2**63)}µs"),
    ],
)
def test_an_interaction_is_one_line_its_time_as_it_can_be_shown(micros: int, shown: str) -> None:
    logged = emulator_pb2.LoggedInteraction(
        sequence=7,
        interaction=Interaction(
            project_id="P",
            user_id="u1",
            treatment_id="T",
            surface="S",
            treatment_tracking_id="T_r",
            interaction_type=Interaction.CLICKED,
            interaction_time_micros=micros,
        ),
    )
    assert interaction_lines([logged]) == [f"       7  {shown}  P/u1  CLICKED  T on S  T_r"]


def test_an_interaction_without_treatment_or_surface_shows_dashes() -> None:
    logged = emulator_pb2.LoggedInteraction(
        sequence=1, interaction=Interaction(project_id="P", user_id="u", treatment_tracking_id="x")
    )
    (line,) = interaction_lines([logged])
    assert line.endswith("P/u  INTERACTION_TYPE_UNSPECIFIED  - on -  x")


def test_a_decision_is_one_line_with_what_it_served_where() -> None:
    decision = emulator_pb2.ServedDecision(project_id="P", user_id="u", response_id="r")
    decision.decide_time.FromMicroseconds(0)
    decision.served_treatments.add(treatment_id="A", surface="S1")
    decision.served_treatments.add(treatment_id="B", surface="S2")
    assert decision_lines([decision]) == ["1970-01-01T00:00:00Z  P/u  r  A on S1, B on S2"]
