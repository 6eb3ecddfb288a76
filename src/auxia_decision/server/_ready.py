"""The start contract: the ready file a started server writes, for a harness in any language.

``auxia-decision serve --ready-file PATH`` writes, once both ports serve, one
JSON object (atomically, mode 0600)::

    {"restUrl": "http://127.0.0.1:8080", "grpcTarget": "127.0.0.1:50051",
     "pid": 4242, "projectId": "PROJECT_ID", "apiKey": "TEST_API_KEY",
     "adminKey": "..."}

``projectId`` and ``apiKey`` are the seed's first project and its first key;
``adminKey`` the seed's first admin key, left out when it has none. The
server removes the file when it stops. ``ENV_NAMES`` are the environment
variables every shipped client reads (``auxia-decision env`` prints them).
docs/other-languages.md is the contract's page.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import shlex
import subprocess
import tempfile
import time
from dataclasses import dataclass
from typing import Any, Final

from auxia.decision.server import seed_pb2

ENV_NAMES: Final = {
    "rest_url": "AUXIA_BASE_URL",
    "grpc_target": "AUXIA_GRPC_TARGET",
    "api_key": "AUXIA_API_KEY",
    "admin_key": "AUXIA_EMULATOR_ADMIN_KEY",
}
"""The environment variable of each field a client needs, by field."""
_POLL_SECONDS: Final = 0.01


class ReadyFileError(Exception):
    """A ready file cannot be written or read; the message is one line naming it."""


@dataclass(frozen=True)
class ReadyInfo:
    """What a started server tells its starter: where it serves, and the keys to call it."""

    rest_url: str
    """The REST base URL (``http://127.0.0.1:8080``)."""
    grpc_target: str
    """The gRPC address (``127.0.0.1:50051``)."""
    pid: int
    """The server's process id."""
    project_id: str
    """The seed's first project."""
    api_key: str
    """The first API key of the seed's first project."""
    admin_key: str | None
    """The seed's first admin key, or None when the emulator admin API is off."""

    @classmethod
    def of(cls, host: str, rest_port: int, grpc_port: int, seed: seed_pb2.Seed) -> ReadyInfo:
        """Return what a server on ``host`` with these ports and this seed tells its starter."""
        address = f"[{host}]" if ":" in host else host
        project = seed.projects[0] if seed.projects else seed_pb2.Project()
        return cls(
            rest_url=f"http://{address}:{rest_port}",
            grpc_target=f"{address}:{grpc_port}",
            pid=os.getpid(),
            project_id=project.project_id,
            api_key=project.api_keys[0] if project.api_keys else "",
            admin_key=seed.admin_keys[0] if seed.admin_keys else None,
        )

    def to_json(self) -> bytes:
        """Return the ready file's content: one JSON object, camelCase names."""
        document: dict[str, Any] = {
            "restUrl": self.rest_url,
            "grpcTarget": self.grpc_target,
            "pid": self.pid,
            "projectId": self.project_id,
            "apiKey": self.api_key,
        }
        if self.admin_key is not None:
            document["adminKey"] = self.admin_key
        return json.dumps(document).encode() + b"\n"

    @classmethod
    def from_json(cls, text: bytes | str) -> ReadyInfo:
        """Read a ready file's content; raise ValueError when it is not one."""
        document = json.loads(text)
        try:
            return cls(
                rest_url=str(document["restUrl"]),
                grpc_target=str(document["grpcTarget"]),
                pid=int(document["pid"]),
                project_id=str(document["projectId"]),
                api_key=str(document["apiKey"]),
                admin_key=None if "adminKey" not in document else str(document["adminKey"]),
            )
        except (KeyError, TypeError) as error:
            msg = f"not a ready file: {error!r} is missing or wrong"
            raise ValueError(msg) from None

    def env(self) -> dict[str, str]:
        """Return the environment variables of ``ENV_NAMES`` (no admin key when there is none)."""
        return {
            name: value
            for field, name in ENV_NAMES.items()
            if (value := getattr(self, field)) is not None
        }

    def export_lines(self) -> str:
        """Return the environment as one ``export`` line of sh syntax, each value quoted."""
        pairs = " ".join(f"{name}={shlex.quote(value)}" for name, value in self.env().items())
        return f"export {pairs}"


def check_writable(path: pathlib.Path) -> None:
    """Raise ReadyFileError, one line naming the path, unless a ready file can be written there."""
    folder = path.parent
    if path.is_dir():
        raise ReadyFileError(f"the ready file {path} is a directory")
    if not folder.is_dir():
        raise ReadyFileError(f"the ready file {path} cannot be written: no folder {folder}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ReadyFileError(f"the ready file {path} cannot be written: {folder} is not writable")


def write_ready_file(path: pathlib.Path, info: ReadyInfo) -> None:
    """Write a ready file atomically (a reader sees all of it or none), mode 0600."""
    try:
        descriptor, temporary = tempfile.mkstemp(prefix=".ready-", dir=path.parent)
        try:
            with os.fdopen(descriptor, "wb") as file:  # mkstemp makes it 0600
                file.write(info.to_json())
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
    except OSError as error:
        raise ReadyFileError(f"the ready file {path} cannot be written: {error.strerror}") from None


def remove_ready_file(path: pathlib.Path, pid: int) -> None:
    """Remove a ready file if it is still the one server ``pid`` wrote."""
    with contextlib.suppress(OSError, ValueError):
        if ReadyInfo.from_json(path.read_bytes()).pid == pid:
            path.unlink()


def read_ready_file(path: pathlib.Path) -> ReadyInfo:
    """Read a ready file; raise ReadyFileError, one line naming it, when it cannot be read."""
    try:
        return ReadyInfo.from_json(path.read_bytes())
    except OSError as error:
        raise ReadyFileError(f"the ready file {path} cannot be read: {error.strerror}") from None
    except ValueError as error:
        raise ReadyFileError(f"the ready file {path} is not one: {error}") from None


def wait_for_ready_file(
    path: pathlib.Path, process: subprocess.Popen[Any], timeout: float
) -> ReadyInfo | None:
    """Wait until a starting server has written its ready file; return what it says.

    Returns None when the process exits first; raises TimeoutError when the
    file has not come within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        if path.exists():
            return read_ready_file(path)
        if process.poll() is not None:
            return None
        if time.monotonic() > deadline:
            msg = f"the server wrote no ready file ({path}) within {timeout} s"
            raise TimeoutError(msg)
        time.sleep(_POLL_SECONDS)
