"""The pytest plugin's options, read as pytest hands them over."""

from __future__ import annotations

import pytest

from auxia_decision.pytest_plugin import debug_ports


@pytest.mark.parametrize(
    ("setting", "worker", "ports"),
    [
        ("", None, None),
        ("false", "gw1", None),
        ("true", None, (8080, 50051)),
        ("TRUE", "gw3", (8083, 50054)),
        ("9000,9100", None, (9000, 9100)),
        (" 9000 , 9100 ", "gw1", (9001, 9101)),
        ("9000,9100", "master", (9000, 9100)),
    ],
)
def test_the_debug_ports(setting: str, worker: str | None, ports: tuple[int, int] | None) -> None:
    assert debug_ports(setting, worker) == ports


@pytest.mark.parametrize("setting", ["9000", "9000,9100,9200", "rest,grpc", "maybe"])
def test_a_debug_setting_that_is_not_one_is_a_usage_error(setting: str) -> None:
    with pytest.raises(pytest.UsageError, match="expected true or REST_PORT,GRPC_PORT"):
        debug_ports(setting)
