"""The Java jar of ``make dist-java``: what it holds, its JUnit suite, and AuxiaEmulator's life.

The jar is built once for the session (the ``java_dist`` fixture) and used
from a classpath with Debian's protobuf-java, its util and Gson, as a team
would. ``java/EmulatorProbe.java`` is a JVM that starts an emulator and says
so on one line; the tests kill it, or break its start, and look at what is
left running. The Java of docs/other-languages.md runs as written.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import signal
import subprocess
import zipfile
from collections.abc import Iterator
from typing import Final

import pytest

from auxia_decision._version import __version__
from tests._docs import code_blocks
from tests._drift_draws import (  # noqa: F401 - tests of this module's answer_lines
    test_find_drift_finds_pythons_drifts_at_the_edges,
    test_find_drift_finds_pythons_drifts_in_drawn_answers,
    test_find_drift_reads_numbers_and_key_order_as_written,
)
from tests._java import (
    JUNIT,
    QUICK_ENV,
    QUICK_RUN,
    JavaDist,
    checked,
    compile_java,
    joined,
    require,
)
from tests._node import LineScript
from tests._repo import ROOT, VENV_BIN
from tests._rule_draws import (  # noqa: F401 - tests of this module's answer_lines
    test_validate_gives_pythons_verdict_at_the_rules_edges,
    test_validate_gives_pythons_verdict_on_drawn_requests,
    test_validate_gives_pythons_verdict_on_what_no_api_field_has_yet,
)
from tools.dist_java import OPENAPI
from tools.processes import gone_within, process_tree, running

HERE: Final = pathlib.Path(__file__).parent / "java"
COMMAND: Final = str(VENV_BIN / "auxia-decision")
DOC: Final = ROOT / "docs" / "other-languages.md"


@pytest.fixture(scope="module")
def classes(java_dist: JavaDist, tmp_path_factory: pytest.TempPathFactory) -> list[pathlib.Path]:
    """The classpath of this module's Java: its compiled tests, then the jar and its needs."""
    out = compile_java(
        sorted(HERE.glob("*.java")), tmp_path_factory.mktemp("java-tests"), [*java_dist.classpath]
    )
    return [out, *java_dist.classpath]


@pytest.fixture
def drift_reader_is_javascript() -> bool:
    """Whether Drift.find reads JavaScript values: no, Gson keeps every number as written."""
    return False


@pytest.fixture(scope="module")
def answer_lines(
    classes: list[pathlib.Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LineScript]:
    """The jar's ``Validation.validate`` and ``Drift.find``, asked a line each (``AnswerLines``)."""
    stderr = tmp_path_factory.mktemp("answers") / "stderr"
    script = LineScript(
        [require("java"), *QUICK_RUN, "-cp", joined(classes), "AnswerLines"], stderr
    )
    yield script
    script.close()


def _processes_naming(text: str) -> list[int]:
    """Return the running processes whose command line holds ``text``."""
    found = []
    for entry in pathlib.Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if text in command and running(int(entry.name)):
                found.append(int(entry.name))
    return found


def test_the_jar_holds_the_classes_the_protos_and_the_version(java_dist: JavaDist) -> None:
    assert java_dist.jar.name == f"auxia-decision-api-{__version__}.jar"
    with zipfile.ZipFile(java_dist.jar) as jar:
        names = set(jar.namelist())
        manifest = jar.read("META-INF/MANIFEST.MF").decode()
        for document in OPENAPI:
            assert jar.read(document) == (ROOT / "generated" / document).read_bytes(), document
    for name in (
        "io/auxia/decision/model/GetTreatmentsRequest.class",
        "io/auxia/decision/emulator/v1/Fault.class",
        "io/auxia/decision/server/Seed.class",
        "com/google/rpc/Status.class",
        "com/google/rpc/BadRequest.class",
        "com/google/api/FieldBehaviorProto.class",
        "io/auxia/decision/client/AuxiaClient.class",
        "io/auxia/decision/testing/AuxiaEmulator.class",
        "auxia/decision/model/treatment.proto",
        "google/rpc/status.proto",
    ):
        assert name in names, name
    assert f"Implementation-Version: {__version__}\r\n" in manifest


def test_the_sources_jar_has_the_source_of_every_class(java_dist: JavaDist) -> None:
    with zipfile.ZipFile(java_dist.jar) as jar:
        classes = {
            name.removesuffix(".class")
            for name in jar.namelist()
            if name.endswith(".class") and "$" not in name
        }
    with zipfile.ZipFile(java_dist.sources) as sources:
        names = set(sources.namelist())
    assert java_dist.sources.name == f"auxia-decision-api-{__version__}-sources.jar"
    missing = sorted(name for name in classes if f"{name}.java" not in names)
    assert missing == []
    assert len(classes) > 150


def test_the_jar_passes_its_junit_suite(
    classes: list[pathlib.Path], tmp_path: pathlib.Path
) -> None:
    run = checked(
        [
            require("java"),
            *QUICK_RUN,
            f"-Dauxia.command={COMMAND}",
            f"-Dauxia.classpath={joined(classes)}",
            f"-Dauxia.fixtures={ROOT / 'tests' / 'fixtures'}",
            "-jar",
            str(JUNIT),
            "--disable-banner",
            "--disable-ansi-colors",
            "--details=summary",
            "--class-path",
            joined(classes),
            "--select-class",
            "JarTest",
        ],
        tmp_path,
    )
    assert "26 tests successful" in run.stdout, run.stdout


@pytest.fixture
def probe(classes: list[pathlib.Path], tmp_path: pathlib.Path) -> list[str]:
    """The command line of EmulatorProbe, less its mode and arguments.

    Its JVM's temporary folder is ``tmp_path / "jvm-tmp"``.
    """
    temporary = tmp_path / "jvm-tmp"
    temporary.mkdir()
    return [
        require("java"),
        *QUICK_RUN,
        f"-Djava.io.tmpdir={temporary}",
        "-cp",
        joined(classes),
        "EmulatorProbe",
    ]


def _started(process: subprocess.Popen[str]) -> int:
    """Read EmulatorProbe's first line; return the pid of the server it started."""
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.startswith("started "), line + (process.stderr.read() if process.stderr else "")
    return int(line.split()[1])


def test_the_server_is_gone_2_s_after_the_jvm_that_started_it_is_killed(
    probe: list[str], tmp_path: pathlib.Path
) -> None:
    with subprocess.Popen(
        [*probe, "hold", COMMAND], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as jvm:
        try:
            server = _started(jvm)
            tree = process_tree(server)
            assert running(server)
            jvm.send_signal(signal.SIGKILL)
            jvm.wait(timeout=10)
            assert gone_within(tree, 2.0), [pid for pid in tree if running(pid)]
        finally:
            jvm.kill()
    # The server stopped cleanly, as on SIGTERM: it removed its ready file.
    assert list((tmp_path / "jvm-tmp").glob("*/ready.json")) == []


def test_close_stops_the_server(probe: list[str], tmp_path: pathlib.Path) -> None:
    run = checked([*probe, "stop", COMMAND], tmp_path)
    started, stopped = run.stdout.splitlines()
    assert stopped == "stopped"
    assert not running(int(started.split()[1]))
    assert list((tmp_path / "jvm-tmp").iterdir()) == []


def test_a_server_that_cannot_start_is_an_exception_with_its_reason(
    probe: list[str], tmp_path: pathlib.Path
) -> None:
    seed = tmp_path / "broken-seed.json"
    seed.write_text('{"projects": [{"projectId": 5}]}')
    run = checked([*probe, "stop", COMMAND, str(seed)], tmp_path)
    failed, reason = run.stdout.splitlines()
    assert failed.startswith(
        f"failed auxia-decision serve could not start (exit 2): error: the seed {seed}"
    )
    assert reason.startswith(f"reason error: the seed {seed} is invalid: projects[0].projectId")
    assert _processes_naming(str(seed)) == []
    assert list((tmp_path / "jvm-tmp").iterdir()) == []


def test_a_missing_auxia_decision_is_one_line_saying_how_to_install_it(
    probe: list[str], tmp_path: pathlib.Path
) -> None:
    java_folder = pathlib.Path(require("java")).resolve().parent
    path = f"{java_folder}:/usr/bin:/bin"
    run = checked([*probe, "stop", "auxia-decision"], tmp_path, env={"PATH": path})
    failed, _ = run.stdout.splitlines()
    assert failed == (
        "failed auxia-decision is not installed (not found on PATH): install it with "
        "pipx install 'auxia-decision-api[server]', "
        "or pass its path to AuxiaEmulator.builder().command(...)"
    )
    assert os.environ["PATH"] != path


def test_the_docs_java_example_prints_what_they_say(
    java_dist: JavaDist, tmp_path: pathlib.Path
) -> None:
    (example,) = code_blocks(DOC, "java", under="Java")
    (commands,) = code_blocks(DOC, "sh", under="Java")
    expected = code_blocks(DOC, "text", under="Java")[-1]
    (tmp_path / "Example.java").write_text(example)
    shutil.copy2(java_dist.jar, tmp_path)
    run = checked(
        ["bash", "-euo", "pipefail", "-c", commands],
        tmp_path,
        env={"PATH": f"{VENV_BIN}:{os.environ['PATH']}", **QUICK_ENV},
    )
    assert run.stdout == expected
