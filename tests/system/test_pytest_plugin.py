"""The pytest plugin, run by pytest in a subprocess as a consuming project runs it.

The example consumer (``examples/consumer``) and small test projects written
here run with this checkout's environment; ``test_install.py`` runs the
example with the built wheel in a fresh one.
"""

from __future__ import annotations

import json
import pathlib
import shutil
import subprocess
import textwrap
from typing import Final

import pytest

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
    assert "auxia_server: the seed bad.json is invalid: projects[0].numericProjectId: required" in (
        result.stdout
    )
    assert "Traceback" not in result.stdout


def test_the_plugin_can_be_turned_off(tmp_path: pathlib.Path) -> None:
    project = _project(tmp_path, {"test_off.py": "def test_it(auxia_server):\n    pass\n"})
    result = run_pytest(project, "-p", "no:auxia_decision")
    assert result.returncode == 1
    assert "fixture 'auxia_server' not found" in result.stdout
