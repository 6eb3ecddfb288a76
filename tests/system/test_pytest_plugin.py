"""The pytest plugin, run by pytest in a subprocess as a consuming project runs it.

The example consumer (``examples/consumer``) and small test projects written
here run with this checkout's environment; ``test_install.py`` runs the
example with the built wheel in a fresh one.
"""

from __future__ import annotations

import json
import pathlib
import random
import shutil
import socket
import subprocess
import textwrap
from typing import Final

import pytest

from tests._processes import own_pytest_environment
from tests._repo import ROOT, VENV_BIN

EXAMPLE: Final = ROOT / "examples" / "consumer"
SEED: Final = {
    "projects": [
        {
            "projectId": "FROM_INI",
            "numericProjectId": "9",
            "apiKeys": ["INI_KEY"],
            "supportedLanguageCodes": ["en"],
        }
    ]
}


def run_pytest(folder: pathlib.Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run pytest in a project folder, as its developers would, and return what it did."""
    return subprocess.run(
        [str(VENV_BIN / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=folder,
        env=own_pytest_environment(),
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


@pytest.mark.parametrize("in_process", ["true", "false"], ids=["thread", "subprocess"])
def test_the_example_consumer_passes(tmp_path: pathlib.Path, in_process: str) -> None:
    project = shutil.copytree(EXAMPLE, tmp_path / "consumer")
    result = run_pytest(project, "-o", f"auxia_server_in_process={in_process}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 passed" in result.stdout


def _project(folder: pathlib.Path, files: dict[str, str]) -> pathlib.Path:
    for name, text in files.items():
        (folder / name).write_text(textwrap.dedent(text))
    return folder


def test_the_ini_seed_and_an_overridden_seed_fixture(tmp_path: pathlib.Path) -> None:
    (tmp_path / "seed.json").write_text(json.dumps(SEED))
    project = _project(
        tmp_path,
        {
            "pytest.ini": "[pytest]\nauxia_seed = seed.json\nfilterwarnings = error\n",
            "test_ini.py": """
                def test_the_ini_seed(auxia_server):
                    assert auxia_server.project_id == "FROM_INI"
            """,
            "test_override.py": """
                import pytest

                @pytest.fixture
                def auxia_seed():
                    return None  # the default seed, for this module

                def test_the_default_seed(auxia_server):
                    assert auxia_server.project_id == "PROJECT_ID"
            """,
        },
    )
    result = run_pytest(project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout


def test_a_bad_seed_fails_the_test_with_one_line(tmp_path: pathlib.Path) -> None:
    project = _project(
        tmp_path,
        {
            "bad.json": '{"projects": [{"projectId": "P"}]}',
            "test_bad.py": """
                import pytest

                @pytest.mark.auxia_seed("bad.json")
                def test_it(auxia_server):
                    pass
            """,
        },
    )
    result = run_pytest(project)
    assert result.returncode == 1
    seed = project / "bad.json"  # relative to the rootdir, named whole
    assert (
        f"auxia_server: the seed {seed} is invalid: projects[0].numericProjectId: required"
        in result.stdout
    )
    assert "Traceback" not in result.stdout


def test_the_plugin_can_be_turned_off(tmp_path: pathlib.Path) -> None:
    project = _project(tmp_path, {"test_off.py": "def test_it(auxia_server):\n    pass\n"})
    result = run_pytest(project, "-p", "no:auxia_decision")
    assert result.returncode == 1
    assert "fixture 'auxia_server' not found" in result.stdout


FAILING: Final = """
    import time

    import httpx

    from auxia.decision.model import treatment_interaction_service_pb2 as interactions

    Interaction = interactions.LogTreatmentInteractionRequest
    CART = {
        "projectId": "PROJECT_ID",
        "userId": "shopper-9",
        "surfaces": [{"surface": "CART_SCREEN"}],
    }


    def test_the_cart_shows_a_reminder(auxia_server):
        with auxia_server.client() as client:
            client.log_treatment_interaction(
                Interaction(
                    project_id="PROJECT_ID",
                    user_id="shopper-9",
                    treatment_id="CART_REMINDER",
                    treatment_tracking_id="T",
                    interaction_type=Interaction.DISMISSED,
                    interaction_time_micros=time.time_ns() // 1000,
                )
            )
        headers = {"x-api-key": auxia_server.api_key}
        url = auxia_server.rest_url + "/v1/GetTreatments"
        httpx.post(url, json={**CART, "userId": 5}, headers=headers)
        answer = httpx.post(url, json=CART, headers=headers)
        assert answer.json().get("userTreatments"), "no reminder"


    def test_a_passing_test(auxia_server):
        assert auxia_server.project_id == "PROJECT_ID"
"""


def test_a_failed_test_reports_its_calls_and_the_why_not(tmp_path: pathlib.Path) -> None:
    project = _project(tmp_path, {"test_cart.py": FAILING})
    result = run_pytest(project, "-o", "auxia_server_in_process=true")
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    assert out.count("auxia_server: the test's calls") == 1
    section = out[out.index("auxia_server: the test's calls") :]
    assert "<LocalServer REST http://127.0.0.1:" in section
    assert "Reset" not in section
    assert "REST POST /v1/LogTreatmentInteraction: 200 OK in" in section
    assert "REST POST /v1/GetTreatments: 400 INVALID_ARGUMENT in" in section
    assert "    INVALID_ARGUMENT: userId: expected a string, got a number" in section
    assert '    request: {"projectId":"PROJECT_ID","userId":5,' in section
    assert "REST POST /v1/GetTreatments: 200 OK in" in section
    assert "    served nothing; the verdicts at that moment:" in section
    verdicts = section[section.index("the verdicts at that moment:") :].splitlines()
    assert verdicts[1].startswith("        CART_SCREEN CART_REMINDER: suppressed: rule failed: ")
    assert "1 failed, 1 passed" in out


def test_the_failure_report_can_be_turned_off(tmp_path: pathlib.Path) -> None:
    project = _project(tmp_path, {"test_cart.py": FAILING})
    result = run_pytest(project, "-o", "auxia_failure_report=false")
    assert result.returncode == 1
    assert "auxia_server: the test's calls" not in result.stdout


def _free_ports(workers: int = 1) -> tuple[int, int]:
    """Return a REST and a gRPC port free for ``workers`` xdist workers (each adds its number)."""
    for _ in range(200):
        rest = random.randrange(20_000, 30_000)
        grpc = rest + 1000
        wanted = [*range(rest, rest + workers), *range(grpc, grpc + workers)]
        try:
            for port in wanted:
                socket.create_server(("127.0.0.1", port)).close()
        except OSError:
            continue
        return rest, grpc
    raise AssertionError("no free ports")


WHERE: Final = """
    import json, os, pathlib

    def test_where(auxia_server):
        worker = os.environ.get("PYTEST_XDIST_WORKER", "")
        found = {"worker": worker, "rest": auxia_server.rest_url, "key": auxia_server.admin_key}
        pathlib.Path(f"where-{worker or 'main'}-{os.getpid()}.json").write_text(json.dumps(found))

    def test_where_too(auxia_server):
        test_where(auxia_server)
"""


def _where(folder: pathlib.Path) -> list[dict[str, str]]:
    return [json.loads(path.read_text()) for path in sorted(folder.glob("where-*.json"))]


def test_the_debug_option_keeps_fixed_ports_and_a_known_key(tmp_path: pathlib.Path) -> None:
    rest, grpc = _free_ports()
    project = _project(tmp_path, {"test_where.py": WHERE})
    result = run_pytest(project, f"--auxia-debug={rest},{grpc}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (
        f"auxia_server for debugging: <LocalServer REST http://127.0.0.1:{rest}, "
        f"gRPC 127.0.0.1:{grpc}, console http://127.0.0.1:{rest}/console/>, "
        "admin key EMULATOR_ADMIN_KEY"
    ) in result.stdout
    assert {(w["rest"], w["key"]) for w in _where(project)} == {
        (f"http://127.0.0.1:{rest}", "EMULATOR_ADMIN_KEY")
    }


def test_under_xdist_each_worker_has_its_server_and_its_debug_ports(
    tmp_path: pathlib.Path,
) -> None:
    project = _project(tmp_path, {"test_where.py": WHERE})
    result = run_pytest(project, "-n", "2", "-p", "xdist")
    assert result.returncode == 0, result.stdout + result.stderr
    found = _where(project)
    assert len({w["worker"] for w in found}) == 2
    assert len({w["rest"] for w in found}) == 2  # a server per worker
    for stale in project.glob("where-*.json"):
        stale.unlink()
    rest, grpc = _free_ports(workers=2)
    result = run_pytest(project, "-n", "2", "-p", "xdist", "-o", f"auxia_debug={rest},{grpc}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert {w["worker"]: w["rest"] for w in _where(project)} == {
        "gw0": f"http://127.0.0.1:{rest}",
        "gw1": f"http://127.0.0.1:{rest + 1}",
    }


def test_a_relative_seed_path_is_relative_to_the_rootdir_in_the_marker_and_the_ini(
    tmp_path: pathlib.Path,
) -> None:
    (tmp_path / "seeds").mkdir()
    (tmp_path / "seeds" / "seed.json").write_text(json.dumps(SEED))
    (tmp_path / "tests").mkdir()
    _project(tmp_path, {"pytest.ini": "[pytest]\nauxia_seed = seeds/seed.json\n"})
    _project(
        tmp_path / "tests",
        {
            "test_seeds.py": """
                import pytest

                @pytest.mark.auxia_seed("seeds/seed.json")
                def test_the_marker(auxia_server):
                    assert auxia_server.project_id == "FROM_INI"

                def test_the_ini(auxia_server):
                    assert auxia_server.project_id == "FROM_INI"
            """
        },
    )
    for folder in (tmp_path, tmp_path / "tests"):  # wherever pytest is run from
        result = run_pytest(folder)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "2 passed" in result.stdout
