"""The local server's request journal and verdicts as text for people.

``auxia-decision admin journal`` and ``admin explain`` print them, and the
pytest plugin puts them in the report of a failed test: one line a call
(when, how, what, how it ended, how long), then the error's words, the
request of a call that failed, and the verdicts of a GetTreatments that
served nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final

from google.rpc import code_pb2

from auxia.decision.emulator.v1 import emulator_pb2
from auxia_decision._errors import ApiError

_SHOWN_REQUEST: Final = 300
"""How much of a failed call's request a line shows."""
_INDENT: Final = "    "


_Outcome = emulator_pb2.Verdict.Outcome
_NOT_CANDIDATES: Final = frozenset(
    {_Outcome.NOT_LIVE, _Outcome.NOT_ON_SURFACE, _Outcome.NO_CONTENT}
)


def _weight(verdict: emulator_pb2.Verdict) -> int:
    """Return where a verdict is listed: served, candidates not served, not candidates."""
    if verdict.outcome == _Outcome.SERVED:
        return 0
    return 2 if verdict.outcome in _NOT_CANDIDATES else 1


def verdict_lines(verdicts: Iterable[emulator_pb2.Verdict], indent: str = "") -> list[str]:
    """Return one line a verdict: surface, treatment, outcome and why; served ones first.

    On each surface (in the order asked), what was served comes first, then
    the candidates that were not, then the treatments that were not candidates.
    """
    surfaces: dict[str, int] = {}
    listed = list(verdicts)
    for verdict in listed:
        surfaces.setdefault(verdict.surface, len(surfaces))
    lines = []
    for verdict in sorted(listed, key=lambda v: (surfaces[v.surface], _weight(v))):
        outcome = emulator_pb2.Verdict.Outcome.Name(verdict.outcome).lower().replace("_", " ")
        detail = f": {verdict.detail}" if verdict.detail else ""
        lines.append(f"{indent}{verdict.surface} {verdict.treatment_id}: {outcome}{detail}")
    return lines


def entry_lines(entry: emulator_pb2.JournalEntry) -> list[str]:
    """Return the lines of one call of the journal."""
    when = entry.receive_time.ToJsonString()
    transport = emulator_pb2.JournalEntry.Transport.Name(entry.transport)
    code = code_pb2.Code.Name(entry.code)
    ended = f"{entry.http_status} {code}" if entry.http_status else code
    milliseconds = entry.duration.ToNanoseconds() / 1e6
    head = f"#{entry.sequence} {when} {transport} {entry.target}: {ended} in {milliseconds:.1f} ms"
    if entry.user_id:
        head += f", user {entry.user_id}"
    lines = [head]
    if entry.HasField("error"):
        error = ApiError.from_status(entry.error)
        lines += [_INDENT + line.strip() for line in str(error).splitlines()[:20]]
        request = " ".join(entry.request.split())
        if len(request) > _SHOWN_REQUEST:
            request = request[:_SHOWN_REQUEST] + "..."
        lines.append(f"{_INDENT}request: {request or '(empty)'}")
    if entry.verdicts:
        lines.append(f"{_INDENT}served nothing; the verdicts at that moment:")
        lines += verdict_lines(entry.verdicts, _INDENT * 2)
    return lines


def journal_text(entries: Sequence[emulator_pb2.JournalEntry], earlier: int = 0) -> str:
    """Return the text of calls of the journal, one line a call and the lines that explain it.

    ``earlier`` is how many calls before these are not shown.
    """
    lines = [] if not earlier else [f"({earlier} earlier calls not shown)"]
    for entry in entries:
        lines += entry_lines(entry)
    if not entries:
        lines.append("(no call)")
    return "\n".join(lines)
