"""Exchanges as JSON lines, keys redacted: what ``--record`` writes and ``drift-check`` reads.

One line per exchange: ``time``, ``method`` (the RPC, or the path), the
``request`` (HTTP method, target, headers, body) and the ``response``
(status, headers, body; ``error`` when the upstream failed and the proxy
answered). A body is text when it is UTF-8, else ``bodyBase64``. The values
of key headers and key query parameters (``auxia_decision._redaction``, the
same as the request journal's) are redacted, and so is every other
occurrence of those values in the line (a key echoed in a body or an error
message).
"""

from __future__ import annotations

import base64
import json
import urllib.parse
from collections.abc import Iterator, Sequence
from typing import IO, Any, NamedTuple

from auxia_decision._redaction import KEY_HEADERS, KEY_PARAMETERS, REDACTED

Headers = Sequence[tuple[bytes, bytes]]


class Exchange(NamedTuple):
    """One call through the proxy: what was asked, and what was answered."""

    time: str
    method: str
    http_method: str
    target: str
    """The path and query string, as received."""
    request_headers: Headers
    request_body: bytes
    status: int
    response_headers: Headers
    response_body: bytes
    error: str = ""
    """The finding kind of an upstream failure the proxy answered (502, 504); empty otherwise."""

    @property
    def path(self) -> str:
        """Return the target's path, without its query string."""
        return self.target.partition("?")[0]


def secrets_of(exchange: Exchange) -> list[str]:
    """Return the keys an exchange carries in its headers and query string, longest first."""
    secrets: set[str] = set()
    _headers(exchange.request_headers, secrets)
    _headers(exchange.response_headers, secrets)
    _target(exchange.target, secrets)
    return sorted(secrets, key=len, reverse=True)


def scrubbed(text: str, secrets: Sequence[str]) -> str:
    """Return text with every occurrence of each secret redacted (longest first)."""
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    return text


def redacted_line(exchange: Exchange) -> str:
    """Return an exchange as one JSON line (with its newline), every key redacted."""
    secrets: set[str] = set()
    request_headers = _headers(exchange.request_headers, secrets)
    target = _target(exchange.target, secrets)
    record: dict[str, Any] = {
        "time": exchange.time,
        "method": exchange.method,
        "request": {
            "method": exchange.http_method,
            "target": target,
            "headers": request_headers,
            **_body(exchange.request_body),
        },
        "response": {
            "status": exchange.status,
            "headers": _headers(exchange.response_headers, secrets),
            **_body(exchange.response_body),
            **({"error": exchange.error} if exchange.error else {}),
        },
    }
    return _scrubbed(record, sorted(secrets, key=len, reverse=True)) + "\n"


def _headers(headers: Headers, secrets: set[str]) -> list[list[str]]:
    shown = []
    for raw_name, raw_value in headers:
        name, value = raw_name.decode("latin-1"), raw_value.decode("latin-1")
        if name.lower() in KEY_HEADERS:
            secrets.update(_secret_parts(value))
            value = REDACTED
        shown.append([name, value])
    return shown


def _secret_parts(value: str) -> set[str]:
    """Return a key header's value, and what may be a key in it: a scheme's token, cookie values."""
    parts = {value.strip(), value.strip().partition(" ")[2].strip()}
    parts.update(pair.partition("=")[2].strip() for pair in value.split(";"))
    return {part for part in parts if part}


def _target(target: str, secrets: set[str]) -> str:
    path, mark, query = target.partition("?")
    if not mark:
        return target
    pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
    kept = []
    for name, value in pairs:
        if name.lower() in KEY_PARAMETERS:
            secrets.update(_secret_parts(value))
            kept.append((name, REDACTED))
        else:
            kept.append((name, value))
    return f"{path}?{urllib.parse.urlencode(kept, safe='<>')}"


def _body(body: bytes) -> dict[str, str]:
    try:
        return {"body": body.decode("utf-8")}
    except UnicodeDecodeError:
        return {"bodyBase64": base64.b64encode(body).decode()}


def _scrubbed(record: dict[str, Any], secrets: list[str]) -> str:
    """Return the record as JSON with every secret replaced, wherever it occurs."""

    def scrub(value: Any) -> Any:  # noqa: ANN401 - JSON
        if isinstance(value, str):
            return scrubbed(value, secrets)
        if isinstance(value, list):
            return [scrub(item) for item in value]
        if isinstance(value, dict):
            return {key: scrub(item) for key, item in value.items()}
        return value

    return json.dumps(scrub(record) if secrets else record, ensure_ascii=False)


class RecordingError(Exception):
    """A recording that cannot be read: names the file and the line."""


def read_recording(stream: IO[str], name: str) -> Iterator[Exchange]:
    """Read the exchanges of a recording, in order; raise RecordingError at a bad line."""
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            request, response = record["request"], record["response"]
            yield Exchange(
                time=str(record["time"]),
                method=str(record["method"]),
                http_method=str(request["method"]),
                target=str(request["target"]),
                request_headers=_read_headers(request["headers"]),
                request_body=_read_body(request),
                status=int(response["status"]),
                response_headers=_read_headers(response["headers"]),
                response_body=_read_body(response),
                error=str(response.get("error", "")),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            msg = f"{name} line {number} is not an exchange that proxy --record wrote: {error!r}"
            raise RecordingError(msg) from None


def _read_headers(headers: list[list[str]]) -> list[tuple[bytes, bytes]]:
    return [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers]


def _read_body(part: dict[str, Any]) -> bytes:
    if "bodyBase64" in part:
        return base64.b64decode(part["bodyBase64"], validate=True)
    return str(part["body"]).encode()
