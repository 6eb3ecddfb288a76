"""The CLI's help, written without the server extra, against the server's own defaults."""

from __future__ import annotations

import re

import pytest

from auxia_decision._cli import main
from auxia_decision.server._emulator.journal import DEFAULT_SIZE
from auxia_decision.server._storage.activity import DEFAULT_CAPACITY


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
