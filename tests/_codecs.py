"""Codecs whose fast decoders parse with a named JSON backend (orjson or the stdlib)."""

from __future__ import annotations

from auxia_decision import RestCodec
from auxia_decision._fastjson.json_backend import JsonBackend


class CodecOn(RestCodec):
    """A ``RestCodec`` whose fast decoders (fields decoders too) parse with a named JSON backend.

    Args:
        backend: the backend to parse with (``json_backend.ORJSON`` or ``STDLIB``).

    """

    def __init__(self, backend: JsonBackend) -> None:
        super().__init__()
        self.backend = backend

    def _json_backend(self) -> JsonBackend:
        return self.backend
