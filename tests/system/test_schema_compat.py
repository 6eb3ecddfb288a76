"""The schema stays readable across versions: the previous release's protos against today's.

The previous version is the latest release tag (``v*``), or before the first
release the protos before their last change (``tools/release.py previous``).
Both are built with buf from git; over every message type of ours, messages
written by either version are read by the other, in binary and in JSON, and
no field is renumbered, renamed or retyped (docs/versioning.md).
"""

from __future__ import annotations

import dataclasses
import importlib
import pathlib
import shutil
from typing import Any

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from google.protobuf.message import Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests._repo import ROOT
from tests._schema_versions import (
    at_revision,
    descriptor_set,
    incompatibilities,
    our_message_types,
    pool_of,
)
from tests._strategies import messages
from tools import release

PREVIOUS = release.previous_schema(ROOT)

# Today's message types, read from the generated modules (buf builds the same protos).
_MODULES = (
    "auxia.decision.model.treatment_decision_service_pb2",
    "auxia.decision.model.treatment_interaction_service_pb2",
    "auxia.decision.model.treatment_management_service_pb2",
    "auxia.decision.server.seed_pb2",
    "auxia.decision.emulator.v1.emulator_pb2",
)
TODAY = our_message_types(
    descriptor_pb2.FileDescriptorSet(
        file=[
            descriptor_pb2.FileDescriptorProto.FromString(
                importlib.import_module(name).DESCRIPTOR.serialized_pb
            )
            for name in _MODULES
        ]
    )
)


@dataclasses.dataclass
class Version:
    """One version of the schema: its files, and a pool of its own holding them."""

    files: descriptor_pb2.FileDescriptorSet
    pool: descriptor_pool.DescriptorPool

    def message_class(self, name: str) -> type[Message]:
        """Return the class of a message type of this version."""
        return message_factory.GetMessageClass(self.pool.FindMessageTypeByName(name))


def _version(tree: pathlib.Path, out: pathlib.Path) -> Version:
    files = descriptor_set(tree, out)
    return Version(files, pool_of(files))


@pytest.fixture(scope="module")
def previous(tmp_path_factory: pytest.TempPathFactory) -> Version:
    """The previous version's protos, built from git."""
    tree = at_revision(PREVIOUS, tmp_path_factory.mktemp("previous"))
    return _version(tree, tree / "image.binpb")


@pytest.fixture(scope="module")
def current(tmp_path_factory: pytest.TempPathFactory) -> Version:
    """Today's protos, built from the work tree."""
    return _version(ROOT, tmp_path_factory.mktemp("current") / "image.binpb")


def test_the_previous_version_holds_our_types(previous: Version) -> None:
    # Not an empty comparison: the previous version had the API's types.
    names = our_message_types(previous.files)
    assert "io.auxia.decision.model.GetTreatmentsRequest" in names
    assert len(names) > 40


def test_no_field_is_renumbered_renamed_or_retyped(previous: Version, current: Version) -> None:
    assert incompatibilities(previous.pool, current.pool, our_message_types(previous.files)) == []


def _within(read: Any, written: Any) -> bool:
    """Whether JSON read by one version says nothing the written JSON did not (it may say less)."""
    if isinstance(read, dict) and isinstance(written, dict):
        return all(key in written and _within(value, written[key]) for key, value in read.items())
    if isinstance(read, list) and isinstance(written, list):
        return len(read) == len(written) and all(map(_within, read, written))
    return bool(read == written)


def _crossing(message: Message, reader: type[Message]) -> None:
    """Hold a message of one version readable by the other, in binary and in JSON."""
    data = message.SerializeToString()
    read = reader.FromString(data)
    assert type(message).FromString(read.SerializeToString()) == message  # nothing lost
    written = json_format.MessageToDict(message)
    parsed = json_format.ParseDict(written, reader(), ignore_unknown_fields=True)
    assert _within(json_format.MessageToDict(parsed), written)


@pytest.mark.parametrize("name", TODAY)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_messages_of_either_version_read_in_the_other(
    name: str, previous: Version, current: Version, data: st.DataObject
) -> None:
    if name not in our_message_types(previous.files):
        pytest.skip(f"{name} is new since {PREVIOUS}")
    older, newer = previous.message_class(name), current.message_class(name)
    _crossing(data.draw(messages(older, cache=False, max_depth=3)), newer)
    _crossing(data.draw(messages(newer, cache=False, max_depth=3)), older)


@pytest.mark.parametrize(
    ("change", "found"),
    [
        (
            ("string user_id = 2", "string user_id = 20"),
            "GetTreatmentsRequest.user_id = 2: removed without reserving its number",
        ),
        (("string user_id = 2", "int64 user_id = 2"), "user_id = 2: string became int64"),
        (("string user_id = 2", "string customer_id = 2"), "user_id = 2: renamed customer_id"),
    ],
)
def test_a_renumbered_retyped_or_renamed_field_is_found(
    tmp_path: pathlib.Path, previous: Version, change: tuple[str, str], found: str
) -> None:
    tree = tmp_path / "tree"
    at_revision("HEAD", tree)
    service = tree / "proto/auxia/decision/model/treatment_decision_service.proto"
    text = service.read_text()
    assert change[0] in text
    service.write_text(text.replace(change[0], change[1], 1))
    changed = _version(tree, tmp_path / "image.binpb")
    problems = incompatibilities(previous.pool, changed.pool, our_message_types(previous.files))
    assert any(found in problem for problem in problems), problems


def test_a_removed_type_is_found(tmp_path: pathlib.Path, previous: Version) -> None:
    tree = tmp_path / "tree"
    at_revision("HEAD", tree)
    shutil.rmtree(tree / "server-proto")
    (tree / "buf.yaml").write_text(
        (tree / "buf.yaml").read_text().replace("  - path: server-proto\n", "")
    )
    changed = _version(tree, tmp_path / "image.binpb")
    problems = incompatibilities(previous.pool, changed.pool, our_message_types(previous.files))
    assert "io.auxia.decision.emulator.v1.ResetRequest: removed" in problems
