"""generated/ is exactly what buf produces, and the build guards catch drift and breaks."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys
import zipfile

import google.rpc
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool

from tests._repo import ROOT, VENV_BIN, copy_tree, run

MODULES = sorted(
    ".".join(path.relative_to(ROOT / "generated").with_suffix("").parts)
    for path in (ROOT / "generated").rglob("*.py")
)


def test_regeneration_matches_generated_byte_for_byte() -> None:
    result = run(["make", "checkgenerate"], ROOT, check=False)
    assert result.returncode == 0, result.stderr
    assert len(MODULES) >= 10


def test_descriptor_set_ships_with_source_info_and_imports() -> None:
    data = (ROOT / "generated/auxia/decision/model/descriptor_set.binpb").read_bytes()
    files = {f.name: f for f in descriptor_pb2.FileDescriptorSet.FromString(data).file}
    assert {
        "auxia/decision/model/treatment.proto",
        "auxia/decision/model/treatment_management_service.proto",
        "google/api/field_behavior.proto",
        "google/protobuf/timestamp.proto",
    } <= set(files)
    assert not any(name.startswith("auxia/decision/server/") for name in files)
    service = files["auxia/decision/model/treatment_interaction_service.proto"]
    comments = [loc.leading_comments for loc in service.source_code_info.location]
    assert any("Logs one interaction of a user with a treatment." in c for c in comments)
    pool = descriptor_pool.DescriptorPool()
    for name in _dependency_order(files):
        pool.Add(files[name])
    assert pool.FindMethodByName(
        "io.auxia.decision.model.TreatmentManagementService.InsertTreatment"
    )
    # The error body and its details, for every language to type an error.
    assert pool.FindMessageTypeByName("google.rpc.Status")
    assert pool.FindMessageTypeByName("google.rpc.BadRequest")
    assert pool.FindEnumTypeByName("google.rpc.Code")


@pytest.mark.parametrize("name", ["code.proto", "status.proto", "error_details.proto"])
def test_the_vendored_error_protos_are_googleapis_own_unchanged(name: str) -> None:
    vendored = ROOT / "third_party" / "googleapis" / "google" / "rpc" / name
    installed = pathlib.Path(next(iter(google.rpc.__path__))) / name
    assert vendored.read_bytes() == installed.read_bytes()


def _dependency_order(files: dict[str, descriptor_pb2.FileDescriptorProto]) -> list[str]:
    ordered: list[str] = []

    def visit(name: str) -> None:
        if name not in ordered:
            for dependency in files[name].dependency:
                visit(dependency)
            ordered.append(name)

    for name in files:
        visit(name)
    return ordered


@pytest.mark.parametrize("module", MODULES)
def test_module_imports_without_warnings(module: str) -> None:
    subprocess.run([sys.executable, "-W", "error", "-c", f"import {module}"], check=True)


def test_drift_check_fails_when_a_generated_file_is_edited(tmp_path: pathlib.Path) -> None:
    tree = copy_tree(tmp_path / "tree")
    assert run(["make", "checkgenerate"], tree).returncode == 0
    edited = tree / "generated/auxia/decision/model/treatment_pb2.py"
    edited.write_text(edited.read_text() + "# hand edit\n")
    result = run(["make", "checkgenerate"], tree, check=False)
    assert result.returncode != 0
    assert "run `make generate`" in result.stderr


def test_breaking_check_fails_when_a_field_number_changes(tmp_path: pathlib.Path) -> None:
    tree = copy_tree(tmp_path / "tree")
    for args in (
        ["git", "init", "--quiet", "--initial-branch=main"],
        ["git", "add", "--all"],
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "--quiet", "-m", "base"],
    ):
        run(args, tree)
    assert run(["make", "breaking"], tree).returncode == 0
    proto = tree / "proto/auxia/decision/model/treatment_interaction_service.proto"
    text = proto.read_text()
    assert "string action_name = 8" in text
    proto.write_text(text.replace("string action_name = 8", "string action_name = 9"))
    result = run(["make", "breaking"], tree, check=False)
    assert result.returncode != 0
    assert 'Previously present field "8" with name "action_name"' in result.stdout + result.stderr


def test_wheel_ships_generated_package_sources_and_protos(tmp_path: pathlib.Path) -> None:
    run([str(VENV_BIN / "hatchling"), "build", "--target", "wheel", "-d", str(tmp_path)], ROOT)
    (wheel,) = tmp_path.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for stem in ("treatment", "data_field", "treatment_management_service"):
        for suffix in ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", ".proto"):
            assert f"auxia/decision/model/{stem}{suffix}" in names
    assert "auxia/decision/model/py.typed" in names
    assert "auxia/decision/model/descriptor_set.binpb" in names
    assert "auxia/decision/model/openapi.json" in names
    assert "auxia_decision/__init__.py" in names
    assert "auxia_decision/py.typed" in names
    assert not any(name.startswith(("generated/", "src/", "proto/", "google/")) for name in names)
    metadata = zipfile.ZipFile(wheel).read(
        next(n for n in names if n.endswith(".dist-info/METADATA"))
    )
    requires = re.findall(rb"^Requires-Dist: (.*)$", metadata, re.MULTILINE)
    # The core needs what a schema needs; the rest comes with extras.
    assert sorted(r for r in requires if b"extra ==" not in r) == [
        b"googleapis-common-protos<2,>=1.76.0",
        b"protobuf<8,>=7.35.1",
    ]
    assert b"grpcio<2,>=1.85.1; extra == 'grpc'" in requires
    assert b"httpx<1,>=0.28.1; extra == 'client'" in requires
    assert b"uvicorn<1,>=0.54.0; extra == 'server'" in requires
    extras = re.findall(rb"^Provides-Extra: (.*)$", metadata, re.MULTILINE)
    assert sorted(extras) == [b"all", b"client", b"grpc", b"postgres", b"server"]


def test_generated_code_version_checks_match_the_runtime_bounds() -> None:
    pb2 = (ROOT / "generated/auxia/decision/model/treatment_pb2.py").read_text()
    assert "# Protobuf Python Version: 7.35.1" in pb2
    grpc = ROOT / "generated/auxia/decision/model/treatment_management_service_pb2_grpc.py"
    assert "GRPC_GENERATED_VERSION = '1.85.1'" in grpc.read_text()
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert '"protobuf>=7.35.1,<8"' in pyproject
    assert '"grpcio>=1.85.1,<2"' in pyproject
