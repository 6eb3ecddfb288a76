"""Where the schema's ``.proto`` sources are installed."""

from __future__ import annotations

import hashlib
import pathlib
import tempfile

import google.api

import auxia.decision.model

_MARKER = "auxia/decision/model/treatment.proto"
# The checkout's buf modules, and the packages each holds.
_CHECKOUT_PACKAGES = {
    "proto": ("auxia/decision/model",),
    "server-proto": ("auxia/decision/server", "auxia/decision/emulator"),
}


def proto_include_path() -> pathlib.Path:
    """Return the folder to pass to protoc ``-I`` or a buf module to import our protos.

    It holds ``auxia/decision/...`` and the googleapis protos they import
    (``google/api/...``, ``google/rpc/...``); the well-known types
    (``google/protobuf/...``) come with protoc. Installed from the wheel, the
    ``.proto`` files ship next to the generated modules, so it is the folder
    that contains the ``auxia/`` package. In a source checkout (an editable
    install) it is a folder of links, made once per checkout in the temporary
    folder, to the checkout's modules and the installed googleapis protos.
    """
    for entry in auxia.decision.model.__path__:
        candidate = pathlib.Path(entry).parents[2]
        if (candidate / _MARKER).is_file():
            return candidate
        checkout = candidate.parent
        if (checkout / "proto" / _MARKER).is_file():
            return _linked_include_path(checkout)
    msg = "the auxia/decision/model .proto files are not installed next to the package"
    raise FileNotFoundError(msg)


def _googleapis_root() -> pathlib.Path:
    """Return the folder holding ``google/api/*.proto`` (googleapis-common-protos)."""
    for entry in google.api.__path__:
        folder = pathlib.Path(entry)
        if (folder / "annotations.proto").is_file():
            return folder.parents[1]
    msg = "google/api/annotations.proto is not installed (googleapis-common-protos)"
    raise FileNotFoundError(msg)


def _linked_include_path(checkout: pathlib.Path) -> pathlib.Path:
    """Return a folder of links to a checkout's protos and the googleapis ones, made if missing."""
    digest = hashlib.sha256(str(checkout.resolve()).encode()).hexdigest()[:16]
    folder = pathlib.Path(tempfile.gettempdir()) / f"auxia-decision-include-{digest}"
    links = {
        pathlib.Path(package): checkout / module / package
        for module, packages in _CHECKOUT_PACKAGES.items()
        for package in packages
    }
    links[pathlib.Path("google")] = _googleapis_root() / "google"
    for name, target in links.items():
        link = folder / name
        if link.is_symlink() and link.resolve() == target.resolve():
            continue
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink():
            link.unlink()
        try:
            link.symlink_to(target, target_is_directory=True)
        except FileExistsError:  # another process made it meanwhile
            if link.resolve() != target.resolve():
                raise
    return folder


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
