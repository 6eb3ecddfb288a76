"""Two versions of the schema side by side: built from git, compared field by field.

``descriptor_set(tree)`` builds a tree's protos with buf; ``at_revision``
takes the protos of a git revision out first. ``incompatibilities`` lists
what makes messages of one version unreadable by the other (a field
renumbered or retyped, a type removed); the round trips themselves are the
test's (tests/system/test_schema_compat.py).
"""

from __future__ import annotations

import io
import pathlib
import subprocess
import tarfile

from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor

from tests._repo import ROOT, VENV_BIN, run

# What buf needs to build the protos of a revision (the folders it lists as modules).
_BUILD_INPUTS = ("buf.yaml", "proto", "server-proto", "third_party")
OUR_PACKAGES = ("io.auxia.decision.",)


def descriptor_set(tree: pathlib.Path, out: pathlib.Path) -> descriptor_pb2.FileDescriptorSet:
    """Build the protos of a source tree (its buf.yaml's modules), imports included."""
    run([str(VENV_BIN / "buf"), "build", "--output", str(out)], tree)
    return descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())


def at_revision(revision: str, destination: pathlib.Path) -> pathlib.Path:
    """Write the protos (and buf.yaml) of a git revision of this repository to destination."""
    present = [
        path
        for path in _BUILD_INPUTS
        if subprocess.run(
            ["git", "cat-file", "-e", f"{revision}:{path}"], cwd=ROOT, check=False
        ).returncode
        == 0
    ]
    archive = subprocess.run(
        ["git", "archive", "--format=tar", revision, *present],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(destination, filter="data")
    return destination


def pool_of(files: descriptor_pb2.FileDescriptorSet) -> descriptor_pool.DescriptorPool:
    """Return a descriptor pool of its own holding a set's files."""
    pool = descriptor_pool.DescriptorPool()
    for file in files.file:
        pool.Add(file)
    return pool


def our_message_types(files: descriptor_pb2.FileDescriptorSet) -> list[str]:
    """Return the full names of our message types in a set (nested ones too, no map entries)."""
    names: list[str] = []

    def walk(prefix: str, messages: list[descriptor_pb2.DescriptorProto]) -> None:
        for message in messages:
            if not message.options.map_entry:
                names.append(f"{prefix}.{message.name}")
                walk(f"{prefix}.{message.name}", list(message.nested_type))

    for file in files.file:
        if file.package.startswith(OUR_PACKAGES):
            walk(file.package, list(file.message_type))
    return names


def _type_of(field: FieldDescriptor) -> str:
    """Name what a field holds on the wire and in JSON: its type, its message or enum type."""
    held = field.message_type or field.enum_type
    kind = "repeated " if field.is_repeated else ""
    scalar = descriptor_pb2.FieldDescriptorProto.Type.Name(
        field.type  # type: ignore[arg-type]
    ).removeprefix("TYPE_")
    return f"{kind}{held.full_name if held else scalar.lower()}"


def _message_incompatibilities(old: Descriptor, new: Descriptor) -> list[str]:
    problems = []
    declared = descriptor_pb2.DescriptorProto()
    new.CopyToProto(declared)
    reserved = {n for span in declared.reserved_range for n in range(span.start, span.end)}
    for field in old.fields:
        twin = new.fields_by_number.get(field.number)
        where = f"{old.full_name}.{field.name} = {field.number}"
        if twin is None:
            if field.number not in reserved:
                problems.append(f"{where}: removed without reserving its number")
        elif twin.name != field.name or twin.json_name != field.json_name:
            problems.append(f"{where}: renamed {twin.name} (JSON {twin.json_name})")
        elif _type_of(twin) != _type_of(field):
            problems.append(f"{where}: {_type_of(field)} became {_type_of(twin)}")
    return problems


def _enum_incompatibilities(old: EnumDescriptor, new: EnumDescriptor) -> list[str]:
    problems = []
    for value in old.values:
        twin = new.values_by_name.get(value.name)
        if twin is None:
            problems.append(f"{old.full_name}.{value.name}: removed")
        elif twin.number != value.number:
            problems.append(f"{old.full_name}.{value.name}: {value.number} became {twin.number}")
    return problems


def incompatibilities(
    old: descriptor_pool.DescriptorPool, new: descriptor_pool.DescriptorPool, names: list[str]
) -> list[str]:
    """List what keeps messages of ``names`` written by one version from reading in the other."""
    problems = []
    enums: dict[str, tuple[EnumDescriptor, EnumDescriptor]] = {}
    for name in names:
        before = old.FindMessageTypeByName(name)
        try:
            after = new.FindMessageTypeByName(name)
        except KeyError:
            problems.append(f"{name}: removed")
            continue
        problems += _message_incompatibilities(before, after)
        for field in before.fields:
            twin = after.fields_by_number.get(field.number)
            if field.enum_type is not None and twin is not None and twin.enum_type is not None:
                enums[field.enum_type.full_name] = (field.enum_type, twin.enum_type)
    for before_enum, after_enum in enums.values():
        problems += _enum_incompatibilities(before_enum, after_enum)
    return problems
