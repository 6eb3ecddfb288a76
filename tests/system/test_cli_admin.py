"""``auxia-decision admin``: the emulator admin API from a shell, against a real local server."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from typing import Final

import pytest

from auxia.decision.model import treatment_decision_service_pb2 as decisions
from auxia.decision.model import treatment_interaction_service_pb2 as interactions
from auxia_decision import ApiError, Code
from auxia_decision.server import LocalServer
from auxia_decision.server._storage import filters
from tests._repo import VENV_BIN

CLI: Final = str(VENV_BIN / "auxia-decision")
ADMIN_KEY: Final = "cli-admin-key-0e1d2c3b"
CART: Final = (
    '{"projectId": "PROJECT_ID", "userId": "u1", "surfaces": [{"surface": "CART_SCREEN"}]}'
)


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with LocalServer(admin_key=ADMIN_KEY) as started:
        yield started


@pytest.fixture(autouse=True)
def _reset(server: LocalServer) -> None:
    server.reset()


def admin(server: LocalServer, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``auxia-decision admin`` with the server's URL and key in the environment."""
    environment = {
        **os.environ,
        "AUXIA_BASE_URL": server.rest_url,
        "AUXIA_EMULATOR_ADMIN_KEY": ADMIN_KEY,
        **env,
    }
    return subprocess.run(
        [CLI, "admin", *args],
        capture_output=True,
        text=True,
        check=False,
        env=environment,
        timeout=60,
    )


def test_clock_freeze_advance_read_and_back_to_real(server: LocalServer) -> None:
    frozen = admin(server, "clock", "--freeze", "2030-01-01T00:00:00Z")
    assert frozen.returncode == 0, frozen.stderr
    assert json.loads(frozen.stdout)["clock"] == {"now": "2030-01-01T00:00:00Z", "frozen": True}
    advanced = admin(server, "clock", "--advance", "1d")
    assert json.loads(advanced.stdout)["clock"]["now"] == "2030-01-02T00:00:00Z"
    read = admin(server, "clock")
    assert json.loads(read.stdout)["clock"]["now"] == "2030-01-02T00:00:00Z"
    real = admin(server, "clock", "--real")
    assert "frozen" not in json.loads(real.stdout)["clock"]


def test_faults_add_list_and_clear(server: LocalServer) -> None:
    added = admin(server, "faults", "add", "GetTreatments", "--code", "internal", "--count", "2")
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["name"] == "faults/1"
    listed = json.loads(admin(server, "faults", "list").stdout)["faults"]
    assert [(f["method"], f["code"], f["count"]) for f in listed] == [
        ("GetTreatments", "INTERNAL", 2)
    ]
    assert json.loads(admin(server, "faults", "clear").stdout) == {"clearedCount": 1}


def test_a_fault_on_no_method_is_refused_naming_the_field(server: LocalServer) -> None:
    result = admin(server, "faults", "add", "DeleteEverything")
    assert result.returncode == 1
    assert "fault.method" in result.stderr


def test_reset_puts_the_seed_back(server: LocalServer) -> None:
    server.clock.advance(3600)
    result = admin(server, "reset")
    assert result.returncode == 0, result.stderr
    assert "clock" in json.loads(result.stdout)


def test_explain_says_why_at_a_time(server: LocalServer) -> None:
    result = admin(server, "explain", "--data", CART, "--at", "2030-01-01T00:00:00Z")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "as decided at 2030-01-01T00:00:00Z (the server's clock):"
    assert "  CART_SCREEN CART_REMINDER: served: rank 1" in lines


def test_explain_data_naming_a_file_gets_the_hint(server: LocalServer) -> None:
    result = admin(server, "explain", "--data", "cart.json")
    assert result.returncode == 2
    assert "pass --data @cart.json" in result.stderr


def test_the_journal_shows_what_failed_and_why(server: LocalServer) -> None:
    request = decisions.GetTreatmentsRequest(
        project_id="PROJECT_ID",
        user_id="u1",
        surfaces=[decisions.SurfaceRequest(surface="CART_SCREEN")],
    )
    server.faults.fail_next("GetTreatments", Code.INTERNAL, message="the fault's words")
    with server.client() as client:
        with pytest.raises(ApiError):
            client.get_treatments(request)
        client.get_treatments(request)
    result = admin(server, "journal", "--api-only")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert " REST POST /v1/GetTreatments: 500 INTERNAL in " in lines[0]
    assert lines[1] == "    INTERNAL: the fault's words"
    assert lines[2].startswith('    request: {"projectId": "PROJECT_ID"')
    assert " REST POST /v1/GetTreatments: 200 OK in " in lines[3]
    failed = json.loads(admin(server, "journal", "--failed", "--json").stdout)["entries"]
    assert [e["error"]["message"] for e in failed] == ["the fault's words"]
    # Every admin call is kept too, and no key is in any of them.
    entries = json.loads(admin(server, "journal", "--json").stdout)["entries"]
    assert {e["method"] for e in entries} >= {"Reset", "ListJournal", "CreateFault"}
    assert not [e for e in entries if ADMIN_KEY in json.dumps(e)]


def test_the_last_interactions_and_decisions_one_a_line_oldest_of_them_first(
    server: LocalServer,
) -> None:
    interaction = interactions.LogTreatmentInteractionRequest
    with server.client() as client:
        served = [
            client.get_treatments(
                decisions.GetTreatmentsRequest(
                    project_id="PROJECT_ID",
                    user_id=user,
                    surfaces=[decisions.SurfaceRequest(surface="CART_SCREEN")],
                )
            )
            for user in ("u1", "u2", "u3")
        ]
        for number, answer in enumerate(served, start=1):
            client.log_treatment_interaction(
                interaction(
                    project_id="PROJECT_ID",
                    user_id=f"u{number}",
                    treatment_id="CART_REMINDER",
                    surface="CART_SCREEN",
                    treatment_tracking_id=answer.user_treatments[0].treatment_tracking_id,
                    interaction_type=interaction.VIEWED,
                    interaction_time_micros=1_893_456_000_000_000 + number,
                )
            )
    result = admin(server, "interactions", "--limit", "2")
    assert (result.returncode, result.stderr) == (0, "")  # full pages: nothing to say
    tracking = served[2].user_treatments[0].treatment_tracking_id
    viewed = "VIEWED  CART_REMINDER on CART_SCREEN"
    assert result.stdout.splitlines() == [
        "(older interactions may be left out: --limit 2 shows the newest 2)",
        f"       2  2030-01-01T00:00:00.000002Z  PROJECT_ID/u2  {viewed}  "
        f"{served[1].user_treatments[0].treatment_tracking_id}",
        f"       3  2030-01-01T00:00:00.000003Z  PROJECT_ID/u3  {viewed}  {tracking}",
    ]
    listed = json.loads(admin(server, "interactions", "--user", "u1", "--json").stdout)
    assert [found["sequence"] for found in listed["interactions"]] == ["1"]
    assert "nextPageToken" not in listed
    assert json.loads(admin(server, "interactions", "--limit", "1", "--json").stdout)[
        "nextPageToken"
    ]
    result = admin(server, "decisions", "--tracking-id", tracking)
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()
    assert line.endswith(f"  PROJECT_ID/u3  {served[2].response_id}  CART_REMINDER on CART_SCREEN")
    newest = json.loads(admin(server, "decisions", "--limit", "3", "--json").stdout)["decisions"]
    assert [found["userId"] for found in newest] == ["u1", "u2", "u3"]
    assert admin(server, "decisions", "--user", "nobody").stdout == "(no decisions)\n"


@pytest.mark.parametrize("limit", [3, 5])
def test_short_pages_of_a_filter_no_index_serves_are_followed_to_the_limit(
    server: LocalServer, monkeypatch: pytest.MonkeyPatch, limit: int
) -> None:
    # The server (in this process) reads 3 records a call for a treatment filter: its pages
    # come back short or empty, with a token, and the command follows them.
    monkeypatch.setattr(filters, "SCAN_ROWS", 3)
    interaction = interactions.LogTreatmentInteractionRequest
    rare = (1, 6, 13, 19)
    with server.client() as client:
        for number in range(20):
            client.log_treatment_interaction(
                interaction(
                    project_id="PROJECT_ID",
                    user_id=f"u{number}",
                    treatment_id="RARE_ONE" if number in rare else "CART_REMINDER",
                    treatment_tracking_id=f"tracking-{number}",
                    interaction_type=interaction.VIEWED,
                    interaction_time_micros=1_893_456_000_000_000 + number,
                )
            )
    result = admin(server, "interactions", "--treatment", "RARE_ONE", "--limit", str(limit))
    assert result.returncode == 0, result.stderr
    # Said once, on stderr, as the first short page comes back.
    assert result.stderr == (
        "(searching older interactions: the filters leave pages short, so each call reads a "
        "stretch of the store; Ctrl-C stops)\n"
    )
    lines = result.stdout.splitlines()
    shown = rare[-limit:]
    if limit < len(rare):
        assert (
            lines.pop(0)
            == f"(older interactions may be left out: --limit {limit} shows the newest {limit})"
        )
    assert [line.split()[2] for line in lines] == [f"PROJECT_ID/u{n}" for n in shown]


def test_listings_by_interaction_type_and_time_window(server: LocalServer) -> None:
    interaction = interactions.LogTreatmentInteractionRequest
    kinds = [interaction.VIEWED, interaction.CLICKED, interaction.VIEWED, interaction.DISMISSED]
    with server.client() as client:
        for number, kind in enumerate(kinds):
            client.log_treatment_interaction(
                interaction(
                    project_id="PROJECT_ID",
                    user_id="u1",
                    treatment_id="CART_REMINDER",
                    surface="CART_SCREEN",
                    treatment_tracking_id=f"t{number}",
                    interaction_type=kind,
                    interaction_time_micros=1_893_456_000_000_000 + number * 3_600_000_000,
                )
            )

    def tracking_ids(*args: str) -> list[str]:
        result = admin(server, "interactions", "--json", *args)
        assert result.returncode == 0, result.stderr
        listed = json.loads(result.stdout).get("interactions", [])
        return [found["interaction"]["treatmentTrackingId"] for found in listed]

    assert tracking_ids("--type", "clicked") == ["t1"]
    assert tracking_ids("--type", "VIEWED") == ["t0", "t2"]
    window = ("--since", "2030-01-01T01:00:00Z", "--until", "2030-01-01T03:00:00+00:00")
    assert tracking_ids(*window) == ["t1", "t2"]
    assert tracking_ids(*window, "--type", "VIEWED") == ["t2"]
    assert admin(server, "journal", "--since", "2999-01-01T00:00:00Z").stdout == "(no call)\n"
    refused = admin(server, "interactions", "--type", "LIKED")
    assert refused.returncode == 2
    assert "argument --type: not an interactionType: 'LIKED' (one of VIEWED, " in refused.stderr
    refused = admin(server, "decisions", "--until", "tomorrow")
    assert refused.returncode == 2
    assert "argument --until: not an RFC 3339 time" in refused.stderr


@pytest.mark.parametrize("command", ["interactions", "decisions", "journal"])
@pytest.mark.parametrize("limit", ["0", "1001", "-5", "many"])
def test_a_limit_past_one_page_is_refused_naming_it(
    server: LocalServer, command: str, limit: str
) -> None:
    result = admin(server, command, "--limit", limit)
    assert result.returncode == 2
    assert f"argument --limit: not a number from 1 to 1000: '{limit}'" in result.stderr


def test_without_an_admin_key_it_says_how_to_give_one(server: LocalServer) -> None:
    result = admin(server, "journal", AUXIA_EMULATOR_ADMIN_KEY="")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "error: no admin key: pass --admin-key or set AUXIA_EMULATOR_ADMIN_KEY"
    ]


def test_an_admin_key_no_header_can_carry_is_refused_unshown(server: LocalServer) -> None:
    result = admin(server, "journal", "--admin-key", "ADMIN_S3CRET\n")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "error: --admin-key holds a character a header cannot carry (a space at either end, a "
        "line break or another control character, or a non-ASCII one); the key is not shown: "
        "check where it is read from"
    ]


def test_an_api_key_is_not_an_admin_key(server: LocalServer) -> None:
    result = admin(server, "journal", "--admin-key", server.api_key)
    assert result.returncode == 1
    assert result.stderr.startswith("UNAUTHENTICATED (HTTP 401)")


def test_the_flags_come_before_the_environment(server: LocalServer) -> None:
    result = admin(
        server,
        "clock",
        "--base-url",
        server.rest_url,
        "--admin-key",
        ADMIN_KEY,
        AUXIA_BASE_URL="http://127.0.0.1:9",
        AUXIA_EMULATOR_ADMIN_KEY="wrong",
    )
    assert result.returncode == 0, result.stderr


def test_output_cut_short_by_its_reader_stops_it_quietly(server: LocalServer) -> None:
    # `auxia-decision admin journal | head -1`: the reader goes before the output is written.
    with server.client() as client:
        for number in range(3):
            client.get_treatments(
                decisions.GetTreatmentsRequest(
                    project_id="PROJECT_ID",
                    user_id=f"u{number}",
                    surfaces=[decisions.SurfaceRequest(surface="CART_SCREEN")],
                )
            )
    environment = {**os.environ, "AUXIA_BASE_URL": server.rest_url}
    environment["AUXIA_EMULATOR_ADMIN_KEY"] = ADMIN_KEY
    reading, writing = os.pipe()
    os.close(reading)  # before it writes anything
    try:
        ended = subprocess.run(
            [CLI, "admin", "journal"],
            stdout=writing,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
            env=environment,
            timeout=60,
        )
    finally:
        os.close(writing)
    assert ended.stderr == ""
    assert ended.returncode == 141
