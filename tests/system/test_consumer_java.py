"""``examples/consumer-java``: a Java service and its JUnit tests, on the jar of ``make dist``.

The example is copied to a folder of its own with the jar in ``libs/`` (not
this repository's sources), and its README's lines run there as written,
with ``auxia-decision`` on the PATH as ``pipx install`` would put it.
"""

from __future__ import annotations

import os
import pathlib
import shutil
from typing import Final

from tests._docs import code_blocks
from tests._java import QUICK_ENV, JavaDist, checked, require
from tests._repo import ROOT, VENV_BIN

EXAMPLE: Final = ROOT / "examples" / "consumer-java"


def test_the_example_passes_its_junit_tests_on_the_jar(
    java_dist: JavaDist, tmp_path: pathlib.Path
) -> None:
    require("javac")
    project = shutil.copytree(EXAMPLE, tmp_path / "consumer-java")
    (project / "libs").mkdir()
    shutil.copy2(java_dist.jar, project / "libs")
    shutil.copy2(java_dist.sources, project / "libs")  # beside it, as an IDE would want
    (block,) = code_blocks(EXAMPLE / "README.md", "sh")
    run = checked(
        ["bash", "-euo", "pipefail", "-c", block],
        project,
        env={"PATH": f"{VENV_BIN}:{os.environ['PATH']}", **QUICK_ENV},
    )
    assert "[         5 tests successful      ]" in run.stdout, run.stdout
    assert "[         0 tests failed          ]" in run.stdout, run.stdout
