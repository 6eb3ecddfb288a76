"""The CLI's help, written without the server extra, against the server's defaults and the docs."""

from __future__ import annotations

import re
from typing import Final

import pytest

from auxia_decision._cli import main
from auxia_decision.server._emulator.journal import DEFAULT_SIZE
from auxia_decision.server._storage.activity import DEFAULT_CAPACITY
from tests._docs import code_blocks
from tests._repo import ROOT


@pytest.mark.parametrize(
    ("flag", "default"),
    [("--journal-size", DEFAULT_SIZE), ("--activity-cache-users", DEFAULT_CAPACITY)],
)
def test_serve_help_states_the_default_the_server_uses(
    flag: str, default: int, capsys: pytest.CaptureFixture[str]
) -> None:
    # The help is built where the server may not be installed, so it repeats the figure.
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    entry = re.search(rf"{flag} N (.*?)(?= --[a-z]|$)", text)
    assert entry is not None, text
    assert f"(default: {default:,})" in entry.group(1)


def _admin_synopsis() -> dict[tuple[str, ...], set[str]]:
    """Return the flags docs/python.md shows for each ``auxia-decision admin`` command."""
    (block,) = [
        text for text in code_blocks(ROOT / "docs" / "python.md", "sh") if "admin reset" in text
    ]
    lines: list[str] = []
    for line in block.splitlines():
        if line.startswith(" ") and lines:  # a line continued
            lines[-1] += line
        else:
            lines.append(line)
    shown: dict[tuple[str, ...], set[str]] = {}
    for line in lines:
        words = line.split("#")[0].split()
        flags = set(re.findall(r"--[a-z][a-z-]*", line.split("#")[0]))
        if words[:2] == ["auxia-decision", "admin"]:
            actions = words[3].split("|") if words[2] == "faults" else [""]
            for action in actions:
                shown[(words[2], action) if action else (words[2],)] = flags
        elif line.startswith("# the three:"):  # the listings' flags
            for command in ("journal", "interactions", "decisions"):
                shown[(command,)] |= set(re.findall(r"--[a-z][a-z-]*", line))
    return shown


ADMIN_SYNOPSIS: Final = _admin_synopsis()


# Every admin command's flags, which the docs state once, in prose.
COMMON_FLAGS: Final = {"--help", "--base-url", "--admin-key"}


@pytest.mark.parametrize("command", sorted(ADMIN_SYNOPSIS), ids=" ".join)
def test_the_docs_show_every_flag_of_each_admin_command_and_no_other(
    command: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main(["admin", *command, "--help"])
    taken = set(re.findall(r"--[a-z][a-z-]*", capsys.readouterr().out))
    assert ADMIN_SYNOPSIS[command] == taken - COMMON_FLAGS


@pytest.mark.parametrize("command", [(), ("faults",)], ids=["admin", "admin faults"])
def test_the_docs_show_every_admin_command(
    command: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main(["admin", *command, "--help"])
    choices = re.search(r"\{([a-z,]+)\}", capsys.readouterr().out)
    assert choices is not None
    depth = len(command)
    shown = {
        documented[depth]
        for documented in ADMIN_SYNOPSIS
        if documented[:depth] == command and len(documented) > depth
    }
    assert set(choices.group(1).split(",")) <= shown
