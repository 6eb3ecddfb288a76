"""What the console ships: a pinned explorer, the documentation's samples, and little weight."""

from __future__ import annotations

import hashlib
import json
from typing import Final

import pytest

from auxia_decision._routes import routes
from tests._repo import ROOT

CONSOLE: Final = ROOT / "src" / "auxia_decision" / "server" / "_emulator" / "console_assets"
RAPIDOC_SHA256: Final = "affbd173a65e870e18f392cca963113bcdafb6e50e88cd2f6a834a65b22db94d"
FIXTURES: Final = {
    "InsertTreatment": "docs/insert_treatment_request.json",
    "UpdateTreatment": "docs/update_treatment_request.json",
    "GetDataFields": "docs/get_data_fields_request.corrected.json",
    "LogTreatmentInteraction": "examples/log_treatment_interaction_request.json",
    "GetTreatments": "examples/get_treatments_request.json",
    "GetTreatment": "examples/get_treatment_request.json",
    "GetAllTreatments": "examples/get_all_treatments_request.json",
}


def test_the_explorer_is_the_pinned_rapidoc() -> None:
    script = (CONSOLE / "vendor" / "rapidoc-min.js").read_bytes()
    assert hashlib.sha256(script).hexdigest() == RAPIDOC_SHA256
    assert (CONSOLE / "vendor" / "rapidoc-LICENSE.txt").read_text().startswith("MIT License")
    assert RAPIDOC_SHA256 in (CONSOLE / "vendor" / "README.md").read_text()


@pytest.mark.parametrize("method", sorted(route.name for route in routes()))
def test_every_method_has_the_documentations_sample_as_its_example(method: str) -> None:
    example = json.loads((CONSOLE / "examples" / f"{method}.json").read_text())
    fixture = json.loads((ROOT / "tests" / "fixtures" / FIXTURES[method]).read_text())
    assert example == fixture


def test_the_console_weighs_under_2_mb_and_holds_no_python() -> None:
    files = [path for path in CONSOLE.rglob("*") if path.is_file()]
    assert sum(path.stat().st_size for path in files) < 2 * 1024 * 1024
    assert not [path for path in files if path.suffix == ".py"]


def test_the_pages_load_nothing_from_elsewhere() -> None:
    for name in ("index.html", "explorer.html", "console.js"):
        text = (CONSOLE / name).read_text()
        assert "http://" not in text
        assert "https://" not in text
        assert "<script>" not in text  # no inline script: every script is a file of ours
