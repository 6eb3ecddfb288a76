"""Which ``Host`` a REST request may name, and which origins get CORS headers.

A web page can make its own domain name resolve to 127.0.0.1 (DNS
rebinding) and then call a server on the developer's machine as if it were
the page's own origin. The browser then sends the page's name in ``Host``:
REST answers only requests whose ``Host`` is a name of this machine that no
page can own (``localhost`` and its subdomains, an IP address), the host the
server was bound to, or a name allowed by ``--allowed-host``; any other gets
403. This is what Vite's dev server (CVE-2025-24010), webpack-dev-server
(``allowedHosts``) and Jupyter check too.

No answer carries CORS headers unless origins are given (``--cors-origin``):
a request from one of them then gets ``Access-Control-Allow-Origin``, and its
preflight (``OPTIONS``) is answered.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Final

from auxia_decision._errors import ApiError, Code

ANY_HOST: Final = "*"
"""The ``--allowed-host`` that turns the check off."""
ANY_ORIGIN: Final = "*"
"""The ``--cors-origin`` that admits every origin."""
_CACHED_HOSTS: Final = 64
"""Host values found allowed by parsing, remembered to be matched as bytes."""
_PREFLIGHT_HEADERS: Final = (
    (b"access-control-allow-methods", b"GET, POST"),
    (b"access-control-allow-headers", b"content-type, x-api-key, api-key, x-admin-key"),
    (b"access-control-max-age", b"600"),
)


def host_name(value: str) -> str:
    """Return the name of a ``Host`` value: no port, no brackets, lower case, no final dot."""
    value = value.strip()
    if value.startswith("["):
        end = value.find("]")
        return value[1:end].lower() if end > 0 else value.lower()
    name, colon, port = value.rpartition(":")
    if colon and port.isdigit():
        value = name
    return value.lower().rstrip(".")


def _names(name: str, allowed: str) -> bool:
    """Whether an ``--allowed-host`` value names a host (``.name``: it and its subdomains)."""
    allowed = allowed.lower().rstrip(".")
    if allowed.startswith("."):
        return name == allowed[1:] or name.endswith(allowed)
    return name == host_name(allowed)


def _is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class HostPolicy:
    """The hosts REST answers and the origins that get CORS headers.

    Args:
        bound_host: the address or name the server was bound to (``--host``).
        allowed_hosts: other names to answer (``--allowed-host``): a name, a
            name with a leading dot for it and its subdomains
            (``.example.test``), or ``*`` for any host.
        cors_origins: the origins (``http://localhost:3000``) whose requests
            get CORS headers, or ``*`` for any origin; none by default.

    """

    bound_host: str = "127.0.0.1"
    allowed_hosts: tuple[str, ...] = ()
    cors_origins: tuple[str, ...] = ()

    @property
    def checks_hosts(self) -> bool:
        """Whether some hosts are refused (no ``*`` among the allowed hosts)."""
        return ANY_HOST not in self.allowed_hosts

    def allows(self, value: str) -> bool:
        """Whether REST answers a request whose ``Host`` header is ``value``."""
        if not self.checks_hosts:
            return True
        name = host_name(value)
        if not name:
            return False
        return (
            name == "localhost"
            or name.endswith(".localhost")
            or _is_address(name)
            or name == host_name(self.bound_host)
            or any(_names(name, allowed) for allowed in self.allowed_hosts)
        )

    def refusal(self, value: str) -> ApiError:
        """Return the 403 of a request whose ``Host`` is refused, naming the flag that admits it."""
        name = host_name(value) or value
        return ApiError(
            Code.PERMISSION_DENIED,
            f'the Host "{value}" is not a name of this server: it answers localhost, IP '
            f"addresses and its --host ({self.bound_host}), so that no web page can reach it "
            f"by rebinding a domain name to it; start it with --allowed-host {name} "
            "to answer this name",
            http_status=403,
        )


class HostCheck:
    """A ``HostPolicy`` as the gateway applies it: allowed ``Host`` values matched as bytes.

    The values seen allowed are remembered (a few dozen), so that a request
    costs one lookup in a set; others are parsed once.

    Args:
        policy: the hosts to answer and the origins to give CORS headers.
        port: the port REST listens on, for the ``Host`` values browsers send.

    """

    def __init__(self, policy: HostPolicy, port: int) -> None:
        self.policy = policy
        names = ["localhost", "127.0.0.1", "[::1]", policy.bound_host]
        names += [name for name in policy.allowed_hosts if not name.startswith(".")]
        self.known: set[bytes | None] = {None}
        """``Host`` values known to be allowed (None: no Host, as HTTP/1.0 may send)."""
        for name in names:
            shown = f"[{name}]" if ":" in name and not name.startswith("[") else name
            self.known.update({shown.encode(), f"{shown}:{port}".encode()})
        self._origins = {origin.encode() for origin in policy.cors_origins}
        self._any_origin = ANY_ORIGIN in policy.cors_origins
        self._cors: dict[bytes, list[tuple[bytes, bytes]]] = {}

    def allows(self, host: bytes | None) -> bool:
        """Whether a request with this ``Host`` (None: without one) is answered."""
        if host in self.known:
            return True
        if host is None or not self.policy.allows(host.decode("latin-1")):
            return False
        if len(self.known) < _CACHED_HOSTS * 2:
            self.known.add(host)
        return True

    def refusal(self, host: bytes | None) -> ApiError:
        """Return the 403 of a ``Host`` that ``allows`` refused."""
        return self.policy.refusal((host or b"").decode("latin-1"))

    @property
    def gives_cors(self) -> bool:
        """Whether some origins get CORS headers."""
        return bool(self._origins)

    def cors_headers(
        self, origin: bytes | None, headers: list[tuple[bytes, bytes]]
    ) -> list[tuple[bytes, bytes]]:
        """Return ``headers`` with the CORS headers for a request from ``origin``, if it gets any.

        The lists returned are kept, one per origin and answer headers, so that
        an answer's head can be cached by their identity.
        """
        if origin is None or not (self._any_origin or origin in self._origins):
            return headers
        key = origin + b"\0" + b"".join(name + b":" + value for name, value in headers)
        found = self._cors.get(key)
        if found is None:
            allowed = b"*" if self._any_origin else origin
            found = [*headers, (b"access-control-allow-origin", allowed), (b"vary", b"origin")]
            if len(self._cors) >= _CACHED_HOSTS:
                self._cors.clear()
            self._cors[key] = found
        return found

    def preflight_headers(self, origin: bytes | None) -> list[tuple[bytes, bytes]] | None:
        """Return the headers answering a CORS preflight; None: not from an origin given."""
        if origin is None or not (self._any_origin or origin in self._origins):
            return None
        return [*self.cors_headers(origin, []), *_PREFLIGHT_HEADERS]
