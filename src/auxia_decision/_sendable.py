"""Keys and base URLs checked before a client sends anything, without ever showing a key.

A key with a line break, another control character or a non-ASCII one (read
from a file with its newline, say) cannot go in an HTTP header: the HTTP
library's own error would quote the whole header value, key included. A base
URL with credentials, a query or a fragment puts a secret where URLs are
logged. Both are refused at construction, in words that name neither.
"""

from __future__ import annotations

import re
import urllib.parse
from typing import Final

# Visible ASCII, with spaces inside but not at either end (a header's value is trimmed).
_SENDABLE_KEY: Final = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?")


def check_key(key: str, what: str) -> None:
    """Raise ValueError, not showing ``key``, if a header cannot carry it as it is.

    Args:
        key: the key to be sent in a header (or gRPC metadata).
        what: what the error calls it, e.g. ``"the API key (AUXIA_API_KEY)"``.

    """
    if _SENDABLE_KEY.fullmatch(key) is None:
        msg = (
            f"{what} holds a character a header cannot carry (a space at either end, a line "
            "break or another control character, or a non-ASCII one); the key is not shown: "
            "check where it is read from"
        )
        raise ValueError(msg)


def check_base_url(url: str, what: str = "base_url", *, example: str | None = None) -> None:
    """Raise ValueError if ``url`` is no http(s) URL, or carries credentials, a query or a fragment.

    The error shows the URL only without its query and fragment (a key may
    be in them), and not at all when it carries credentials.

    Args:
        url: the URL requests' paths are appended to.
        what: what the error calls it, e.g. ``"--base-url"``.
        example: a URL the error gives as an example of a good one.

    """
    parts = urllib.parse.urlsplit(url)
    if parts.username is not None or parts.password is not None:
        msg = f"{what}: carries credentials, and a key goes in its header (the URL is not shown)"
        raise ValueError(msg)
    shown = urllib.parse.urlunsplit(parts._replace(query="", fragment=""))
    if parts.scheme not in ("http", "https") or not parts.hostname or not _port_readable(parts):
        such_as = f" such as {example}" if example else ""
        msg = f"{what}: not an http:// or https:// URL{such_as}: {shown!r}"
        raise ValueError(msg)
    if parts.query or parts.fragment:
        msg = (
            f"{what}: must not carry a query or a fragment "
            f"(not shown: a key may be in it): {shown!r}"
        )
        raise ValueError(msg)


def _port_readable(parts: urllib.parse.SplitResult) -> bool:
    """Return whether a URL's port, if it has one, is a number from 0 to 65535."""
    try:
        _ = parts.port
    except ValueError:
        return False
    return True
