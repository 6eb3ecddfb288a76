"""Frames between the server and its helper processes: a length, then ``marshal`` bytes.

The writer and the reader process talk with the server over a private socket
pair, both ends on the same interpreter: each message is a 4-byte
little-endian length, then the ``marshal`` bytes of its payload.

This module imports only the standard library: the helper processes run it.
"""

from __future__ import annotations

import marshal
import struct
from typing import Any, Final

_LENGTH: Final = struct.Struct("<I")
READ_SIZE: Final = 1 << 16
"""How many bytes one read of the socket takes at most."""


def frame(payload: Any) -> bytes:  # noqa: ANN401 - whatever marshal takes
    """Return a payload as a frame: its length, then its marshal bytes."""
    data = marshal.dumps(payload)
    return _LENGTH.pack(len(data)) + data


class Frames:
    """Cuts a byte stream into the payloads of its frames."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Any]:
        """Take more bytes; return the payloads of the frames now complete."""
        buffer = self._buffer
        buffer += data
        payloads = []
        start = 0
        with memoryview(buffer) as view:
            while len(buffer) - start >= _LENGTH.size:
                (length,) = _LENGTH.unpack_from(buffer, start)
                end = start + _LENGTH.size + length
                if end > len(buffer):
                    break
                # Only the other end of a private socket pair, our own code, writes these.
                with view[start + _LENGTH.size : end] as frame:
                    payloads.append(marshal.loads(frame))  # noqa: S302
                start = end
        del buffer[:start]
        return payloads
