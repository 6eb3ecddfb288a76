"""What the proxy finds in an exchange, and the report of JSON lines it writes them to."""

from __future__ import annotations

import collections
import json
from dataclasses import asdict, dataclass
from typing import IO, Final

REQUEST: Final = "request"
RESPONSE: Final = "response"

# The kinds of a request that our server would not accept.
UNKNOWN_METHOD: Final = "unknown_method"
"""The request's HTTP method and path name no RPC of the API."""
INVALID_JSON: Final = "invalid_json"
"""The body is not JSON text (or not UTF-8)."""
MISSING_REQUIRED: Final = "missing_required"
"""A REQUIRED field, or a oneof one of whose fields is required, is not set."""
RULE_VIOLATION: Final = "rule_violation"
"""A value breaks a rule of the schema (a pattern, a minimum, a rule across fields)."""
OUTPUT_ONLY: Final = "output_only"
"""The request sets an OUTPUT_ONLY field, which the server ignores."""
# The kinds of a response the schema does not describe (besides find_drift's kinds).
NOT_A_STATUS: Final = "not_a_status"
"""An error answer whose body is not a ``google.rpc.Status``."""
UNLISTED_STATUS: Final = "unlisted_status"
"""An HTTP status (or a Status code) the method's documentation does not list."""
# What went wrong between the proxy and the upstream: the caller got 502 or 504.
UPSTREAM_UNREACHABLE: Final = "upstream_unreachable"
UPSTREAM_TIMEOUT: Final = "upstream_timeout"
UPSTREAM_BROKEN: Final = "upstream_broken"
"""The upstream answered something that is not HTTP, or cut its answer short."""


@dataclass(frozen=True)
class Finding:
    """One place where an exchange departs from the schema."""

    time: str
    """When the exchange began (RFC 3339, UTC)."""
    method: str
    """The RPC's short name, or the request's path when it names none."""
    side: str
    """``request`` or ``response``."""
    path: str
    """The JSON path of the value (empty: the body, or the answer, as a whole)."""
    kind: str
    detail: str

    def json_line(self) -> str:
        """Return the finding as one line of JSON (with its newline)."""
        return json.dumps(asdict(self), ensure_ascii=False) + "\n"


class Tally:
    """Findings counted by method, side and kind, and the exchanges seen."""

    def __init__(self) -> None:
        self.exchanges = 0
        self.counts: collections.Counter[tuple[str, str, str]] = collections.Counter()

    def add(self, findings: list[Finding]) -> None:
        """Count one exchange and its findings."""
        self.exchanges += 1
        if findings:
            self.counts.update((found.method, found.side, found.kind) for found in findings)

    @property
    def findings(self) -> int:
        """How many findings were counted."""
        return sum(self.counts.values())

    def summary(self, what: str) -> str:
        """Return the summary: a line of totals, then one line per method, side and kind."""
        lines = [f"{what}: {self.exchanges} exchanges, {self.findings} findings"]
        width = max((len(method) for method, _, _ in self.counts), default=0)
        for (method, side, kind), count in sorted(self.counts.items()):
            lines.append(f"  {method:<{width}}  {side:<8}  {kind:<20}  {count}")
        return "\n".join(lines)


class Report:
    """Writes findings as JSON lines to a file, if any, and counts them.

    Args:
        stream: the open report file; None: findings are only counted.

    """

    def __init__(self, stream: IO[str] | None) -> None:
        self._stream = stream
        self.tally = Tally()

    def add(self, findings: list[Finding]) -> None:
        """Write and count the findings of one exchange."""
        self.tally.add(findings)
        if self._stream is not None and findings:
            self._stream.write("".join(found.json_line() for found in findings))
            self._stream.flush()
