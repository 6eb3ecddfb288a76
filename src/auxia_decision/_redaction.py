"""Which header and query parameter names carry keys: what journals and recordings redact.

The request journal (``ListJournal``) and the proxy's recordings show calls
as received; the values under these names show as ``REDACTED`` in both, and
so, in the journal, does any key of the seed wherever it appears.
"""

from __future__ import annotations

from typing import Final

REDACTED: Final = "<redacted>"
"""What a redacted value shows as."""
KEY_HEADERS: Final = frozenset(
    {"x-api-key", "api-key", "x-admin-key", "authorization", "proxy-authorization", "cookie"}
)
"""The headers (and gRPC metadata keys) whose values are redacted, lower case."""
KEY_PARAMETERS: Final = frozenset(
    {"api-key", "api_key", "apikey", "key", "x-api-key", "admin-key", "admin_key", "token"}
)
"""The query parameters whose values are redacted, lower case."""
