"""Codecs whose fast decoders parse with a named JSON backend (orjson or the stdlib)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar
from unittest import mock

from google.protobuf.message import Message

from auxia_decision import RestCodec
from auxia_decision._fastjson import json_backend
from auxia_decision._fastjson.json_backend import JsonBackend

M = TypeVar("M", bound=Message)


class CodecOn(RestCodec):
    """A ``RestCodec`` whose fast decoders parse with a named JSON backend.

    Each decoder is built by the codec itself, through ``_fastjson.decoder``,
    with that backend made the one in use while it is built.
    """

    def __init__(self, backend: JsonBackend) -> None:
        super().__init__()
        self.backend = backend

    def _build_decoder(self, message_type: type[M], *, strict: bool) -> Callable[[bytes | str], M]:
        with mock.patch.object(json_backend, "in_use", return_value=self.backend):
            return super()._build_decoder(message_type, strict=strict)
