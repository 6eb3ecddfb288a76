"""When a client sends a call again, and how long it waits first."""

from __future__ import annotations

import datetime
import random
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    """When and how long a client waits before it sends a call again.

    - An answer of 429 or 503 is retried for every method: the server did not
      act on the call. A ``Retry-After`` header (seconds or an HTTP date) is
      honoured; when it asks for more than ``max_retry_after`` seconds the
      error is raised instead.
    - A connection that could not be opened (connect error or connect
      timeout) is retried for every method: nothing was sent.
    - A connection whose other end does not speak the protocol asked for (TLS
      to a plain-HTTP port, plain HTTP to a TLS port, an answer that is not
      HTTP: ``protocol_mismatch``) is never retried: it would fail again.
    - A timeout or a broken connection after the call was sent is retried only
      for the methods in ``safe_to_repeat``, since the server may have acted on
      it. By default these are GetDataFields (the same parameters always resolve
      to the same data field), UpdateTreatment (setting the same values
      twice gives the same treatment), GetTreatment and GetAllTreatments (they
      read). LogTreatmentInteraction is not: the server records every call, so
      a repeat logs the interaction twice. InsertTreatment is not: a repeat
      creates a second treatment. GetTreatments is not: what it returns counts
      as SENT, and a repeat counts again.

    Waits grow exponentially from ``initial_backoff`` by ``multiplier`` up to
    ``max_backoff`` seconds, with full jitter. ``max_attempts`` counts the
    first attempt; 1 disables retries.
    """

    max_attempts: int = 4
    initial_backoff: float = 0.2
    max_backoff: float = 5.0
    multiplier: float = 2.0
    max_retry_after: float = 30.0
    retry_http_statuses: frozenset[int] = frozenset({429, 503})
    safe_to_repeat: frozenset[str] = frozenset(
        {"GetDataFields", "UpdateTreatment", "GetTreatment", "GetAllTreatments"}
    )

    def backoff(self, attempt: int) -> float:
        """Return a jittered wait in seconds before attempt ``attempt + 1``."""
        ceiling = min(self.max_backoff, self.initial_backoff * self.multiplier ** (attempt - 1))
        return random.uniform(0, ceiling)  # noqa: S311 - jitter, not cryptography


def retry_after_seconds(value: str | None) -> float | None:
    """Return the wait a ``Retry-After`` header asks for (seconds or an HTTP date), or None."""
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        moment = _parse_http_date(value)
        return max(0.0, moment.timestamp() - time.time())
    except (TypeError, ValueError, ArithmeticError, IndexError):  # not a date, or none there is
        return None


def protocol_mismatch(error: BaseException) -> str | None:
    """Say what a transport error means when the other end speaks another protocol, else None.

    TLS failed (an ``ssl.SSLError`` caused it: ``https://`` to a plain-HTTP
    port, a certificate refused), or what came back was not HTTP (an error of
    the HTTP parser, h11: ``http://`` to a TLS port).
    """
    import ssl  # noqa: PLC0415 - only a client that meets a transport error pays for it

    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return "TLS failed (is the server plain HTTP? then use an http:// URL)"
        if type(seen).__module__.partition(".")[0] == "h11":
            return "the answer is not HTTP (is the server TLS? then use an https:// URL)"
        seen = seen.__cause__ or seen.__context__
    return None


DEFAULT_RETRY = RetryPolicy()
"""The policy of a client given none: up to 4 attempts."""


def _parse_http_date(value: str) -> datetime.datetime:
    # Imported here: email.utils costs about 10 ms at import (it imports
    # socket and urllib), paid only by a client that meets a Retry-After date.
    import email.utils  # noqa: PLC0415

    return email.utils.parsedate_to_datetime(value)
