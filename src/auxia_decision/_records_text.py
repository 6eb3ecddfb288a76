"""The interactions and decisions a local server stored, as lines for people.

``auxia-decision admin interactions`` and ``admin decisions`` print them: one
line a record, oldest first, each with its time (by the server's clock for a
decision, as sent for an interaction), its project and user, and what it was.
"""

from __future__ import annotations

from collections.abc import Iterable

from google.protobuf import timestamp_pb2

from auxia.decision.emulator.v1 import emulator_pb2
from auxia.decision.model import treatment_interaction_service_pb2 as interactions

_Type = interactions.LogTreatmentInteractionRequest.InteractionType


def _time(micros: int) -> str:
    """Return a time in microseconds since the Unix epoch as RFC 3339 (UTC), if it has one.

    A client may log any int64 (nanoseconds by mistake: past the year 9999): such a time
    shows as its number of microseconds.
    """
    stamp = timestamp_pb2.Timestamp()
    try:
        stamp.FromMicroseconds(micros)
        return stamp.ToJsonString()
    except ValueError:
        return f"{micros}µs"


def interaction_lines(logged: Iterable[emulator_pb2.LoggedInteraction]) -> list[str]:
    """Return one line an interaction: sequence, time, project/user, type, treatment, tracking."""
    lines = []
    for item in logged:
        interaction = item.interaction
        kind = _Type.Name(interaction.interaction_type)
        lines.append(
            f"{item.sequence:>8}  {_time(interaction.interaction_time_micros)}  "
            f"{interaction.project_id}/{interaction.user_id}  {kind}  "
            f"{interaction.treatment_id or '-'} on {interaction.surface or '-'}  "
            f"{interaction.treatment_tracking_id}"
        )
    return lines


def decision_lines(decisions: Iterable[emulator_pb2.ServedDecision]) -> list[str]:
    """Return one line a decision: time, project/user, response id, what it served where."""
    return [
        f"{decision.decide_time.ToJsonString()}  {decision.project_id}/{decision.user_id}  "
        f"{decision.response_id}  "
        + ", ".join(f"{s.treatment_id} on {s.surface}" for s in decision.served_treatments)
        for decision in decisions
    ]
