"""Build the Java jar and its -sources.jar with Debian's JDK, protoc and protobuf-java.

The jar holds the classes protoc generates from the API's protos
(``io.auxia.decision.model``), the googleapis protos they use and the error
model (``com.google.api``, ``com.google.rpc``), the emulator admin API and the
seed (``io.auxia.decision.emulator.v1``, ``io.auxia.decision.server``), the
hand-written Java of ``java/`` (the REST client and ``AuxiaEmulator``), and
the ``.proto`` files themselves. Its version is the Python package's. Nothing
is downloaded: what it needs is in Debian's ``protobuf-compiler``,
``libprotobuf-java``, ``libgoogle-gson-java`` and a JDK.

Run: ``python -m tools.dist_java [--out DIR]`` (``make dist-java``).
"""

from __future__ import annotations

import argparse
import pathlib
import shutil
import subprocess
import sys
import tempfile
from typing import Final

from auxia_decision._version import __version__

ROOT: Final = pathlib.Path(__file__).resolve().parent.parent
NAME: Final = "auxia-decision-api"
JAVA_RELEASE: Final = "11"
"""The oldest Java the jar runs on: java.net.http and ProcessHandle need 11."""
# A fixed time for every entry, so that one source tree builds one jar.
ENTRY_DATE: Final = "1980-01-01T00:00:02Z"
QUICK_JVM: Final = ("-J-XX:TieredStopAtLevel=1", "-J-XX:+UseSerialGC")
"""Options of the JDK tools' own JVM: for a run of seconds, C1 alone halves javac's CPU time."""

SHARE: Final = pathlib.Path("/usr/share/java")
CLASSPATH: Final = (SHARE / "protobuf.jar", SHARE / "protobuf-util.jar", SHARE / "gson.jar")
"""What the jar needs at run time: Debian's protobuf-java 3.21, its util (JsonFormat), Gson."""
DEBIAN_PACKAGES: Final = (
    "protobuf-compiler libprotobuf-java libgoogle-gson-java default-jdk-headless"
)

# Each folder of protos and the files of it that go into the jar.
PROTOS: Final = {
    ROOT / "proto": ["auxia/decision/model/*.proto"],
    ROOT / "third_party" / "googleapis": ["google/api/*.proto", "google/rpc/*.proto"],
    ROOT / "server-proto": [
        "auxia/decision/emulator/v1/emulator.proto",
        "auxia/decision/server/seed.proto",
    ],
}
JAVA_SOURCES: Final = ROOT / "java" / "src" / "main" / "java"
OPENAPI: Final = ("auxia/decision/model/openapi.json", "auxia/decision/emulator/v1/openapi.json")
"""The OpenAPI documents under ``generated/``, resources of the jar at the same paths."""


class BuildError(Exception):
    """A tool is missing or failed; the message says which, and how to get it."""


def jar_names(version: str = __version__) -> tuple[str, str]:
    """Return the file names of the jar and of its sources jar."""
    return f"{NAME}-{version}.jar", f"{NAME}-{version}-sources.jar"


def tool(name: str) -> str:
    """Return the path of a tool (``javac``); raise BuildError naming the packages if missing."""
    path = shutil.which(name)
    if path is None:
        msg = f"{name} is not on PATH: install Debian's {DEBIAN_PACKAGES} (make system-packages)"
        raise BuildError(msg)
    return path


def _run(args: list[str]) -> None:
    result = subprocess.run(args, capture_output=True, text=True, check=False)  # noqa: S603 - our tools
    if result.returncode != 0:
        msg = f"{args[0]} failed ({result.returncode}):\n{result.stdout}{result.stderr}"
        raise BuildError(msg)


def _protos() -> list[tuple[pathlib.Path, pathlib.Path]]:
    """Return each proto file as (its include folder, its path in that folder)."""
    found = []
    for folder, patterns in PROTOS.items():
        for pattern in patterns:
            matched = sorted(folder.glob(pattern))
            if not matched:
                msg = f"no proto matches {folder / pattern}"
                raise BuildError(msg)
            found += [(folder, path.relative_to(folder)) for path in matched]
    return found


def _copy(files: list[tuple[pathlib.Path, pathlib.Path]], destination: pathlib.Path) -> None:
    for folder, name in files:
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(folder / name, target)


def _jar(jar: str, output: pathlib.Path, manifest: pathlib.Path, content: pathlib.Path) -> None:
    _run(
        [
            jar,
            *QUICK_JVM,
            "--create",
            "--file",
            str(output),
            "--manifest",
            str(manifest),
            f"--date={ENTRY_DATE}",
            "-C",
            str(content),
            ".",
        ]
    )


def build(out: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    """Build the jar and the sources jar into ``out``; return their paths."""
    protoc, javac, jar = tool("protoc"), tool("javac"), tool("jar")
    for library in CLASSPATH:
        if not library.is_file():
            msg = f"{library} is missing: install Debian's {DEBIAN_PACKAGES}"
            raise BuildError(msg)
    protos = _protos()
    with tempfile.TemporaryDirectory(prefix="dist-java-") as temporary:
        work = pathlib.Path(temporary)
        generated, classes, sources = work / "generated", work / "classes", work / "sources"
        for folder in (generated, classes, sources):
            folder.mkdir()
        includes = [f"-I{folder}" for folder in PROTOS]
        _run([protoc, *includes, f"--java_out={generated}", *(str(f / n) for f, n in protos)])
        classpath = ":".join(str(library) for library in CLASSPATH)
        options = [*QUICK_JVM, "--release", JAVA_RELEASE, "-encoding", "UTF-8", "-d", str(classes)]
        generated_java = [str(path) for path in sorted(generated.rglob("*.java"))]
        _run([javac, *options, "-nowarn", "-cp", classpath, *generated_java])
        # Ours is held to every lint and to documented public members.
        written = [str(path) for path in sorted(JAVA_SOURCES.rglob("*.java"))]
        lints = ["-Xlint:all", "-Xdoclint:all/protected", "-Werror"]
        _run([javac, *options, *lints, "-cp", f"{classpath}:{classes}", *written])
        _copy(protos, classes)
        # The OpenAPI documents (their request schemas carry the rules), as the wheel has them.
        _copy([(ROOT / "generated", pathlib.Path(name)) for name in OPENAPI], classes)
        _copy(protos, sources)
        shutil.copytree(generated, sources, dirs_exist_ok=True)
        shutil.copytree(JAVA_SOURCES, sources, dirs_exist_ok=True)
        manifest = work / "MANIFEST.MF"
        manifest.write_text(
            "Manifest-Version: 1.0\n"
            f"Implementation-Title: {NAME}\n"
            f"Implementation-Version: {__version__}\n"
            "Automatic-Module-Name: io.auxia.decision\n"
        )
        out.mkdir(parents=True, exist_ok=True)
        binary, source = (out / name for name in jar_names())
        _jar(jar, binary, manifest, classes)
        _jar(jar, source, manifest, sources)
    return binary, source


def main() -> None:
    """Build the jars into ``--out`` (``dist/``) and print their paths."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", type=pathlib.Path, default=ROOT / "dist")
    arguments = parser.parse_args()
    try:
        for path in build(arguments.out):
            print(path)
    except BuildError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
