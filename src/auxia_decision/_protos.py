"""Where the schema's ``.proto`` sources are installed."""

from __future__ import annotations

import pathlib

import auxia.decision.model


def proto_include_path() -> pathlib.Path:
    """Return the folder to pass to protoc ``-I`` or a buf module to import our protos.

    The ``.proto`` files ship next to the generated modules, so the folder that
    contains the ``auxia/`` package is the include path. In a source checkout
    (an editable install) the ``proto/`` folder of the checkout is returned.
    """
    for entry in auxia.decision.model.__path__:
        candidate = pathlib.Path(entry).parents[2]
        if (candidate / "auxia/decision/model/treatment.proto").is_file():
            return candidate
        checkout = candidate.parent / "proto"
        if (checkout / "auxia/decision/model/treatment.proto").is_file():
            return checkout
    msg = "the auxia/decision/model .proto files are not installed next to the package"
    raise FileNotFoundError(msg)


def descriptor_set_path() -> pathlib.Path:
    """Return the FileDescriptorSet of the schema (with source info and its imports).

    It holds ``io.auxia.decision.model`` and the googleapis and well-known
    types it imports, comments included, for tools that take a descriptor
    set (``protoc --descriptor_set_in``, ``buf curl --schema``, grpcurl).
    """
    for entry in auxia.decision.model.__path__:
        candidate = pathlib.Path(entry) / "descriptor_set.binpb"
        if candidate.is_file():
            return candidate
    msg = "descriptor_set.binpb is not installed next to auxia.decision.model"
    raise FileNotFoundError(msg)
