"""The built wheel installed into fresh virtual environments, as users install it.

Used by the install tests (which check what each install holds and can do)
and by ``make bench-install`` (which measures what each install weighs).
Every install takes the versions of ``uv.lock`` (exported as constraints), so
what is measured and tested is what ``make test`` runs against.
"""

from __future__ import annotations

import io
import json
import os
import pathlib
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from typing import Final

ROOT: Final = pathlib.Path(__file__).resolve().parent.parent
VENV_BIN: Final = ROOT / ".venv" / "bin"
DISTRIBUTION: Final = "auxia-decision-api"

FLAVOURS: Final = {
    "core": "",
    "client": "[client]",
    "grpc": "[grpc]",
    "server": "[server]",
    "all": "[all]",
}
"""Each way of installing the package, and the extras it names."""


def _run(args: list[str], cwd: pathlib.Path) -> str:
    environment = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "UV_NO_PROGRESS": "1"}
    return subprocess.run(  # noqa: S603 - our own tools, with arguments we build
        args, cwd=cwd, env=environment, check=True, capture_output=True, text=True
    ).stdout


def build_wheel(folder: pathlib.Path) -> pathlib.Path:
    """Build the package's wheel from this checkout into ``folder``; return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    _run([str(VENV_BIN / "hatchling"), "build", "--target", "wheel", "-d", str(folder)], ROOT)
    (wheel,) = folder.glob("*.whl")
    return wheel


def build_wheel_at(ref: str, folder: pathlib.Path) -> pathlib.Path:
    """Build the wheel of a git commit of this repository into ``folder``; return its path."""
    source = folder / f"source-{ref}"
    source.mkdir(parents=True)
    archive = subprocess.run(  # noqa: S603 - git, with a ref we were given
        ["git", "archive", "--format=tar", ref],  # noqa: S607 - git from PATH
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as files:
        files.extractall(source, filter="data")
    _run([str(VENV_BIN / "hatchling"), "build", "--target", "wheel", "-d", str(folder)], source)
    (wheel,) = folder.glob("*.whl")
    return wheel


def locked_constraints(folder: pathlib.Path) -> pathlib.Path:
    """Write the locked versions of every runtime dependency as a constraints file."""
    target = folder / "constraints.txt"
    _run(
        [
            str(VENV_BIN / "uv"),
            "export",
            "--format",
            "requirements.txt",
            "--all-extras",
            "--no-dev",
            "--no-hashes",
            "--no-emit-project",
            "--quiet",
            "--output-file",
            str(target),
        ],
        ROOT,
    )
    return target


@dataclass(frozen=True)
class Install:
    """A fresh virtual environment with the wheel installed one way."""

    flavour: str
    venv: pathlib.Path

    @property
    def python(self) -> pathlib.Path:
        """Return the environment's interpreter."""
        return self.venv / "bin" / "python"

    @property
    def command(self) -> pathlib.Path:
        """Return the environment's ``auxia-decision`` command."""
        return self.venv / "bin" / "auxia-decision"

    def packages(self) -> dict[str, str]:
        """Return the distributions installed in the environment, by normalized name."""
        out = _run(
            [
                str(VENV_BIN / "uv"),
                "pip",
                "list",
                "--python",
                str(self.python),
                "--format",
                "json",
            ],
            self.venv,
        )
        return {
            entry["name"].lower().replace("_", "-"): entry["version"] for entry in json.loads(out)
        }

    def site_packages_bytes(self) -> int:
        """Return the size on disk of everything installed in the environment."""
        (site,) = (self.venv / "lib").glob("python3*/site-packages")
        return tree_bytes(site)


def empty_venv(venv: pathlib.Path) -> pathlib.Path:
    """Create a virtual environment with nothing installed (not even pip); return it."""
    _run(
        [str(VENV_BIN / "uv"), "venv", "--quiet", "--python", sys.executable, str(venv)],
        venv.parent,
    )
    return venv


def install(
    wheel: pathlib.Path,
    flavour: str,
    folder: pathlib.Path,
    constraints: pathlib.Path,
    *,
    extras: str | None = None,
) -> Install:
    """Install the wheel into a new environment in ``folder``, named after ``flavour``.

    ``extras`` (``"[server]"``) defaults to those of the flavour.
    """
    installed = Install(flavour, empty_venv(folder / f"venv-{flavour}"))
    requirement = f"{DISTRIBUTION}{FLAVOURS[flavour] if extras is None else extras}"
    add_packages(installed, "--constraint", str(constraints), f"{requirement} @ {wheel.as_uri()}")
    return installed


def add_packages(installed: Install, *arguments: str) -> None:
    """Install distributions into an install's environment (``uv pip install`` arguments)."""
    _run(
        [
            str(VENV_BIN / "uv"),
            "pip",
            "install",
            "--quiet",
            "--python",
            str(installed.python),
            *arguments,
        ],
        installed.venv,
    )


def tree_bytes(folder: pathlib.Path) -> int:
    """Return the apparent size of every file below a folder, links not followed."""
    files = (path for path in folder.rglob("*") if path.is_file() and not path.is_symlink())
    return sum(path.lstat().st_size for path in files)
