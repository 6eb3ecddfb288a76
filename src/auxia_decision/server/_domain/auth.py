"""API keys: held only as SHA-256 digests, compared in constant time."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import importlib
from collections.abc import Callable, Mapping
from typing import Any, Final, cast

from auxia_decision._errors import ApiError, Code
from auxia_decision.server._storage.seam import ProjectRecord


def _builtin_sha256() -> Callable[[bytes], Any]:
    """Return CPython's own SHA-256 constructor, else hashlib's.

    Every request's key is digested. Through OpenSSL 3 each new hash looks
    its algorithm up again, taking locks (openssl/openssl#19612), several
    times slower under load than the interpreter's own implementation of the
    same SHA-256 (bench/NOTES.md, "SHA-256 of API keys").
    """
    for module_name in ("_sha2", "_sha256"):  # Python 3.12+, 3.11
        with contextlib.suppress(ImportError):
            module = importlib.import_module(module_name)
            return cast(Callable[[bytes], Any], module.sha256)
    return hashlib.sha256


_sha256: Final = _builtin_sha256()


def key_digest(api_key: str) -> bytes:
    """Return the SHA-256 digest under which an API key is stored (keys are never stored)."""
    digest: bytes = _sha256(api_key.encode()).digest()
    return digest


_DIGEST_MARK: Final = "\x00sha256:"
"""What a key written as its digest starts with: no header carries a NUL, so no real key does."""


def as_digest(key: str) -> str:
    """Return a seed's key written as its digest, which ``seed_key_digest`` reads back.

    For a seed shared with other processes through a store (replicas on
    PostgreSQL): it then holds no key in clear.
    """
    return key if key.startswith(_DIGEST_MARK) else _DIGEST_MARK + key_digest(key).hex()


def seed_key_digest(key: str) -> bytes:
    """Return the digest of a seed's key, which may be written as its digest (``as_digest``)."""
    if key.startswith(_DIGEST_MARK):
        return bytes.fromhex(key.removeprefix(_DIGEST_MARK))
    return key_digest(key)


class KeyRing:
    """The API keys of every project, by digest.

    Args:
        projects_by_digest: each key's SHA-256 digest and the project it
            belongs to.

    """

    __slots__ = ("_projects",)

    def __init__(self, projects_by_digest: Mapping[bytes, ProjectRecord]) -> None:
        self._projects = tuple(projects_by_digest.items())

    def project_of(self, api_key: str | None) -> ProjectRecord:
        """Return the project of an API key; raise UNAUTHENTICATED for a missing or unknown key.

        Every known digest is compared in constant time, so timing tells
        nothing about the keys.
        """
        if not api_key:
            raise ApiError(
                Code.UNAUTHENTICATED,
                "missing API key: send it in the x-api-key header",
            )
        digest = key_digest(api_key)
        found: ProjectRecord | None = None
        for known, project in self._projects:
            if hmac.compare_digest(known, digest):
                found = project
        if found is None:
            raise ApiError(Code.UNAUTHENTICATED, "the API key is not valid")
        return found
