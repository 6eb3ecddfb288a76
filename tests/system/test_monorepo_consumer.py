"""A polyglot monorepo that vendors this repository, built the way docs/schema.md says.

The workspace has its own module, whose proto imports ``TreatmentPb``, and
this repository's tracked files under ``third_party/auxia`` (as a git
submodule would put them). Its ``buf.yaml`` and ``buf.gen.yaml`` are the
documentation's, as written; ``buf lint``, ``buf breaking`` and ``buf
generate`` run on it, and the output is used in three languages: the Python
imports (with this package installed), the JavaScript runs with protobuf-es,
and the Java compiles (against Debian's protobuf Java library) and runs. The
documentation's protoc lines run from a folder of their own, and their Java
compiles too. ``make test`` installs what this needs from Debian
(``make system-packages``); without it the tests fail, naming the packages.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import textwrap
from typing import Final

import pytest

from tests._docs import code_blocks
from tests._node import TS, install_ts
from tests._repo import ROOT, VENV_BIN, tracked_files

SCHEMA_DOC: Final = ROOT / "docs" / "schema.md"
PROTOBUF_JAR: Final = pathlib.Path("/usr/share/java/protobuf.jar")
OFFERS: Final = """\
syntax = "proto3";

package acme.shop.v1;

import "auxia/decision/model/treatment.proto";

option java_multiple_files = true;
option java_package = "com.acme.shop.v1";

// An offer of the shop, made of an Auxia treatment.
message Offer {
  // The SKU the offer is for.
  string sku = 1;
  // The treatment behind the offer.
  io.auxia.decision.model.TreatmentPb treatment = 2;
}
"""
JAVA_MAIN: Final = """\
import com.acme.shop.v1.Offer;
import com.google.api.FieldBehaviorProto;
import io.auxia.decision.model.TreatmentPb;

public class Main {
  public static void main(String[] args) throws Exception {
    Offer offer = Offer.newBuilder()
        .setSku("SKU-1")
        .setTreatment(TreatmentPb.newBuilder().setTreatmentId("T1").setName("Coupons"))
        .build();
    Offer back = Offer.parseFrom(offer.toByteArray());
    System.out.println(back.getSku() + " " + back.getTreatment().getName());
    System.out.println(TreatmentPb.getDescriptor().findFieldByName("name").getOptions()
        .getExtension(FieldBehaviorProto.fieldBehavior));
  }
}
"""
PROTOC_MAIN: Final = """\
import com.google.api.FieldBehaviorProto;
import io.auxia.decision.model.InsertTreatmentRequest;

public class Main {
  public static void main(String[] args) {
    InsertTreatmentRequest request = InsertTreatmentRequest.newBuilder().setProjectId("P").build();
    System.out.println(request.getProjectId() + " " + InsertTreatmentRequest.getDescriptor()
        .findFieldByName("project_id").getOptions().getExtension(FieldBehaviorProto.fieldBehavior));
  }
}
"""
JS_MAIN: Final = """\
import { create, toJson } from "@bufbuild/protobuf";
import { OfferSchema } from "./gen/ts/acme/shop/v1/offers_pb.js";
import { TreatmentPbSchema } from "./gen/ts/auxia/decision/model/treatment_pb.js";

const offer = create(OfferSchema, {
  sku: "SKU-1",
  treatment: create(TreatmentPbSchema, { treatmentId: "T1", name: "Coupons" }),
});
console.log(JSON.stringify(toJson(OfferSchema, offer)));
"""


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"{name} is not on PATH: run `make system-packages` (Debian's protobuf-compiler, "
            "libprotobuf-dev, libprotobuf-java and a JDK)",
            pytrace=False,
        )
    return path


def _run(args: list[str], cwd: pathlib.Path, **environment: str) -> str:
    result = subprocess.run(
        args,
        cwd=cwd,
        env={**os.environ, **environment},
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert result.returncode == 0, f"{' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def _yaml_block(containing: str) -> str:
    (block,) = [text for text in code_blocks(SCHEMA_DOC, "yaml") if containing in text]
    return block


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """The monorepo: its module, this repository vendored, the documented buf files, in git."""
    for tool in ("protoc", "javac", "java"):
        _tool(tool)
    if not PROTOBUF_JAR.is_file():
        pytest.fail(f"{PROTOBUF_JAR} is missing: run `make system-packages`", pytrace=False)
    root = tmp_path_factory.mktemp("monorepo")
    for name in tracked_files():
        if name.startswith("ts/"):
            continue
        target = root / "third_party" / "auxia" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    offers = root / "proto" / "acme" / "shop" / "v1" / "offers.proto"
    offers.parent.mkdir(parents=True)
    offers.write_text(OFFERS)
    (root / "buf.yaml").write_text(_yaml_block("third_party/auxia/proto"))
    (root / "buf.gen.yaml").write_text(_yaml_block("protoc_builtin"))
    for args in (
        ["git", "init", "--quiet"],
        ["git", "add", "--all"],
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "--quiet", "-m", "v1"],
    ):
        _run(args, root)
    return root


def test_buf_lints_only_the_consumers_module(workspace: pathlib.Path) -> None:
    _run([str(VENV_BIN / "buf"), "lint"], workspace)


def test_buf_breaking_tells_an_addition_from_a_break(workspace: pathlib.Path) -> None:
    offers = workspace / "proto/acme/shop/v1/offers.proto"
    original = offers.read_text()
    try:
        added = "  // Where the offer shows.\n  string surface = 3;\n}\n"
        offers.write_text(original.removesuffix("}\n") + added)
        _run([str(VENV_BIN / "buf"), "breaking", "--against", ".git#ref=HEAD"], workspace)
        offers.write_text(original.replace("string sku = 1;", "int64 sku = 1;"))
        broken = subprocess.run(
            [str(VENV_BIN / "buf"), "breaking", "--against", ".git#ref=HEAD"],
            cwd=workspace,
            capture_output=True,
            text=True,
            check=False,
        )
        assert broken.returncode != 0
        assert 'Field "1" with name "sku" on message "Offer" changed type' in broken.stdout
    finally:
        offers.write_text(original)


@pytest.fixture(scope="module")
def generated(workspace: pathlib.Path) -> pathlib.Path:
    """The workspace after `buf generate` with the documented buf.gen.yaml."""
    install_ts()
    path = f"{TS / 'node_modules' / '.bin'}:{os.environ['PATH']}"
    _run([str(VENV_BIN / "buf"), "generate"], workspace, PATH=path)
    return workspace


def test_the_python_imports_ours_from_the_package(generated: pathlib.Path) -> None:
    code = textwrap.dedent(
        """
        from acme.shop.v1 import offers_pb2
        from auxia.decision.model import treatment_pb2
        offer = offers_pb2.Offer(sku="SKU-1", treatment=treatment_pb2.TreatmentPb(name="Coupons"))
        print(offers_pb2.Offer.FromString(offer.SerializeToString()).treatment.name)
        """
    )
    out = _run(
        [str(VENV_BIN / "python"), "-W", "error", "-c", code],
        generated,
        PYTHONPATH=str(generated / "gen" / "python"),
    )
    assert out == "Coupons\n"
    assert not (generated / "gen/python/auxia").exists()  # ours comes from the package


def test_the_javascript_runs_with_protobuf_es(generated: pathlib.Path) -> None:
    (generated / "package.json").write_text('{"type": "module"}\n')
    modules = generated / "node_modules"
    if not modules.exists():
        modules.symlink_to(TS / "node_modules", target_is_directory=True)
    (generated / "main.mjs").write_text(JS_MAIN)
    out = _run([_tool("node"), "main.mjs"], generated)
    assert out == '{"sku":"SKU-1","treatment":{"treatmentId":"T1","name":"Coupons"}}\n'


def _compile_and_run_java(sources: pathlib.Path, folder: pathlib.Path, main: str) -> str:
    """Compile generated Java and a ``Main`` against Debian's protobuf library; run ``Main``."""
    classes = folder / "classes"
    classes.mkdir(parents=True)
    (folder / "Main.java").write_text(main)
    files = [str(path) for path in sources.rglob("*.java")]
    classpath = f"{PROTOBUF_JAR}:{classes}"
    _run([_tool("javac"), "-nowarn", "-d", str(classes), "-cp", classpath, *files], folder)
    _run([_tool("javac"), "-d", str(classes), "-cp", classpath, "Main.java"], folder)
    return _run([_tool("java"), "-cp", classpath, "Main"], folder)


def test_the_java_compiles_and_runs(generated: pathlib.Path) -> None:
    out = _compile_and_run_java(generated / "gen" / "java", generated / "java-build", JAVA_MAIN)
    assert out == "SKU-1 Coupons\n[REQUIRED]\n"


def test_the_documented_protoc_lines_work_from_any_folder(tmp_path: pathlib.Path) -> None:
    (block,) = [text for text in code_blocks(SCHEMA_DOC, "sh") if "--java_out" in text]
    _run(
        ["bash", "-euo", "pipefail", "-c", block], tmp_path, PATH=f"{VENV_BIN}:{os.environ['PATH']}"
    )
    out = _compile_and_run_java(tmp_path / "gen" / "java", tmp_path / "build", PROTOC_MAIN)
    assert out == "P [REQUIRED]\n"
