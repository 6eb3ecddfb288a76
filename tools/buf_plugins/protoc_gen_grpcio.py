#!/usr/bin/env python3
"""A protoc plugin that runs a code generator bundled in grpcio-tools.

buf has no built-in ``grpc_python`` generator, and its ``python`` built-in
needs a ``protoc`` binary on the PATH. grpcio-tools ships both generators
inside its bundled protoc, so this plugin forwards buf's request to it:

    plugins:
      - local: [python, tools/buf_plugins/protoc_gen_grpcio.py]
        opt: python          # or: grpc_python
        out: generated

The request's descriptors (with source info, so comments reach the
generated docstrings) are written to a temporary FileDescriptorSet, the
bundled protoc compiles the requested files from it, and the files it writes
are returned to buf. The output therefore depends only on the pinned
grpcio-tools version.
"""

from __future__ import annotations

import pathlib
import sys
import tempfile

from google.protobuf import descriptor_pb2
from google.protobuf.compiler import plugin_pb2
from grpc_tools import protoc

_GENERATORS = ("python", "grpc_python")


def _generate(request: plugin_pb2.CodeGeneratorRequest) -> plugin_pb2.CodeGeneratorResponse:
    """Run the generator named by the plugin parameter over the request's files."""
    response = plugin_pb2.CodeGeneratorResponse(
        supported_features=plugin_pb2.CodeGeneratorResponse.FEATURE_PROTO3_OPTIONAL,
    )
    generator = request.parameter
    if generator not in _GENERATORS:
        response.error = f"parameter must be one of {', '.join(_GENERATORS)}, got {generator!r}"
        return response
    with tempfile.TemporaryDirectory() as tmp:
        root = pathlib.Path(tmp)
        descriptor_set = root / "request.binpb"
        descriptor_set.write_bytes(
            descriptor_pb2.FileDescriptorSet(file=request.proto_file).SerializeToString()
        )
        out = root / "out"
        out.mkdir()
        argv = [
            "protoc",
            f"--descriptor_set_in={descriptor_set}",
            f"--{generator}_out={out}",
            *request.file_to_generate,
        ]
        if protoc.main(argv) != 0:
            response.error = f"grpcio-tools protoc failed running the {generator} generator"
            return response
        for path in sorted(p for p in out.rglob("*") if p.is_file()):
            response.file.add(name=path.relative_to(out).as_posix(), content=path.read_text())
    return response


def main() -> None:
    """Read a CodeGeneratorRequest on stdin and write the response to stdout."""
    request = plugin_pb2.CodeGeneratorRequest.FromString(sys.stdin.buffer.read())
    sys.stdout.buffer.write(_generate(request).SerializeToString())


if __name__ == "__main__":
    main()
