"""The gRPC load: a minimal HTTP/2 client carrying unary calls, several streams per connection."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Final, cast

import grpc
import hpack

from tools.loadgen._requests import GRPC_METHOD, grpc_request
from tools.loadgen._tally import Tally, keep_connected

# HTTP/2 (RFC 9113) frame types and flags, for the gRPC client.
_DATA: Final = 0x0
_HEADERS: Final = 0x1
_RST_STREAM: Final = 0x3
_SETTINGS: Final = 0x4
_PING: Final = 0x6
_GOAWAY: Final = 0x7
_WINDOW_UPDATE: Final = 0x8
_CONTINUATION: Final = 0x9
_END_STREAM: Final = 0x1
_ACK: Final = 0x1
_END_HEADERS: Final = 0x4
_PADDED: Final = 0x8
_PRIORITY: Final = 0x20
_PREFACE: Final = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_SETTINGS_HEADER_TABLE_SIZE: Final = 0x1
_SETTINGS_INITIAL_WINDOW_SIZE: Final = 0x4
_RECEIVE_WINDOW: Final = 1 << 30
_DEFAULT_WINDOW: Final = 65_535


def _frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    return (
        len(payload).to_bytes(3, "big") + bytes((kind, flags)) + stream.to_bytes(4, "big") + payload
    )


def _literal(name: str, value: str) -> bytes:
    """Return an HPACK literal header field without indexing (RFC 7541, 6.2.2)."""
    raw_name, raw_value = name.encode(), value.encode()
    assert len(raw_name) < 127, name
    assert len(raw_value) < 127, value
    return b"\x00" + bytes((len(raw_name),)) + raw_name + bytes((len(raw_value),)) + raw_value


def _request_header_block(authority: str, key: str) -> bytes:
    """Return the HPACK block of every call: it indexes nothing, so it can be sent again as is."""
    return (
        b"\x83\x86"  # :method POST, :scheme http (static table entries 3 and 6)
        + _literal(":path", GRPC_METHOD)
        + _literal(":authority", authority)
        + _literal("content-type", "application/grpc")
        + _literal("te", "trailers")
        + _literal("x-api-key", key)
    )


class _Http2Connection(asyncio.Protocol):
    """A minimal HTTP/2 client carrying unary gRPC calls, several streams at a time.

    It asks the server for no HPACK dynamic table, so each header block it
    receives decodes on its own (and identical blocks are decoded once), and
    it opens its receive windows wide; it honours the server's send window.
    """

    def __init__(self, tally: Tally, header_block: bytes, tag: str, streams: int) -> None:
        self.tally = tally
        self.header_block = header_block
        self.tag = tag
        self.streams = streams
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.next_stream = 1
        self.open: dict[int, tuple[int, int]] = {}  # stream -> (index, started_ns)
        self.status: dict[int, str] = {}  # stream -> grpc-status, once known
        self.send_window = _DEFAULT_WINDOW
        self.parked: list[tuple[int, bytes]] = []  # calls waiting for send window
        self.received = 0
        self.header_fragments = bytearray()
        self.header_stream = 0
        self.header_flags = 0
        self.decoded: dict[bytes, dict[str, str]] = {}
        self.decoder = hpack.Decoder()
        self.closing = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        settings = (
            _SETTINGS_HEADER_TABLE_SIZE.to_bytes(2, "big")
            + (0).to_bytes(4, "big")
            + _SETTINGS_INITIAL_WINDOW_SIZE.to_bytes(2, "big")
            + _RECEIVE_WINDOW.to_bytes(4, "big")
        )
        self.transport.write(
            _PREFACE
            + _frame(_SETTINGS, 0, 0, settings)
            + _frame(_WINDOW_UPDATE, 0, 0, (_RECEIVE_WINDOW - _DEFAULT_WINDOW).to_bytes(4, "big"))
        )
        for _ in range(self.streams):
            self._start_call()

    def _start_call(self) -> None:
        assert self.transport is not None
        if self.closing:
            return
        index = self.tally.take()
        if index is None:
            if not self.open and not self.parked:
                self.transport.close()
            return
        message = grpc_request(self.tag, index).SerializeToString()
        data = b"\x00" + len(message).to_bytes(4, "big") + message
        stream = self.next_stream
        self.next_stream += 2
        self.open[stream] = (index, time.perf_counter_ns())
        if self.parked or len(data) > self.send_window:
            self.parked.append((stream, data))
            return
        self._send(stream, data)

    def _send(self, stream: int, data: bytes) -> None:
        assert self.transport is not None
        self.send_window -= len(data)
        self.transport.write(
            _frame(_HEADERS, _END_HEADERS, stream, self.header_block)
            + _frame(_DATA, _END_STREAM, stream, data)
        )

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        offset = 0
        buffer = self.buffer
        while len(buffer) - offset >= 9:
            length = int.from_bytes(buffer[offset : offset + 3], "big")
            end = offset + 9 + length
            if len(buffer) < end:
                break
            kind, flags = buffer[offset + 3], buffer[offset + 4]
            stream = int.from_bytes(buffer[offset + 5 : offset + 9], "big") & 0x7FFF_FFFF
            self._frame_received(kind, flags, stream, bytes(buffer[offset + 9 : end]))
            offset = end
        del buffer[:offset]

    def _frame_received(self, kind: int, flags: int, stream: int, payload: bytes) -> None:
        if kind == _DATA:
            self._data(flags, stream, payload)
        elif kind in (_HEADERS, _CONTINUATION):
            self._headers(kind, flags, stream, payload)
        elif kind in (_SETTINGS, _PING, _WINDOW_UPDATE):
            self._control(kind, flags, stream, payload)
        elif kind == _RST_STREAM:
            self.status.setdefault(stream, "reset")
            self._finish(stream)
        elif kind == _GOAWAY:
            self._go_away(int.from_bytes(payload[:4], "big") & 0x7FFF_FFFF)

    def _data(self, flags: int, stream: int, payload: bytes) -> None:
        assert self.transport is not None
        self.received += len(payload)
        if self.received > _RECEIVE_WINDOW // 2:
            increment = self.received.to_bytes(4, "big")
            self.transport.write(_frame(_WINDOW_UPDATE, 0, 0, increment))
            self.received = 0
        if flags & _END_STREAM:
            self._finish(stream)

    def _headers(self, kind: int, flags: int, stream: int, payload: bytes) -> None:
        if kind == _HEADERS:
            payload = _header_fragment(flags, payload)
            self.header_stream, self.header_flags = stream, flags
            self.header_fragments.clear()
        self.header_fragments += payload
        if not flags & _END_HEADERS:
            return
        headers = self._decode(bytes(self.header_fragments))
        if "grpc-status" in headers:
            self.status[self.header_stream] = headers["grpc-status"]
        if self.header_flags & _END_STREAM:
            self._finish(self.header_stream)

    def _control(self, kind: int, flags: int, stream: int, payload: bytes) -> None:
        assert self.transport is not None
        if kind == _SETTINGS and not flags & _ACK:
            for at in range(0, len(payload) - 5, 6):
                if int.from_bytes(payload[at : at + 2], "big") == _SETTINGS_HEADER_TABLE_SIZE:
                    self.decoder.header_table_size = int.from_bytes(payload[at + 2 : at + 6], "big")
            self.transport.write(_frame(_SETTINGS, _ACK, 0))
        elif kind == _PING and not flags & _ACK:
            self.transport.write(_frame(_PING, _ACK, 0, payload))
        elif kind == _WINDOW_UPDATE and stream == 0:
            self.send_window += int.from_bytes(payload[:4], "big") & 0x7FFF_FFFF
            while self.parked and len(self.parked[0][1]) <= self.send_window:
                self._send(*self.parked.pop(0))

    def _go_away(self, last_stream: int) -> None:
        """Stop: calls past ``last_stream`` were not processed, the others are still answered."""
        assert self.transport is not None
        self.closing = True
        for unprocessed in [s for s in self.open if s > last_stream]:
            del self.open[unprocessed]
            self.tally.lost("GOAWAY: the server did not process the call")
        self.parked.clear()
        if not self.open:
            self.transport.close()

    def _decode(self, block: bytes) -> dict[str, str]:
        headers = self.decoded.get(block)
        if headers is None:
            table = self.decoder.header_table
            headers = {
                str(name): str(value) for name, value in self.decoder.decode(block, raw=False)
            }
            if not table.dynamic_entries:
                # With no dynamic table the block decodes the same every time.
                self.decoded[block] = headers
        return headers

    def _finish(self, stream: int) -> None:
        call = self.open.pop(stream, None)
        if call is None:
            return
        index, started_ns = call
        status = self.status.pop(stream, "missing grpc-status")
        name = _GRPC_CODE_NAMES.get(status, status)
        if name == "UNAVAILABLE":
            self.tally.lost("UNAVAILABLE")
        else:
            self.tally.record(name, ok=status == "0", index=index, started_ns=started_ns)
        if self.closing:
            if not self.open:
                assert self.transport is not None
                self.transport.close()
            return
        self._start_call()

    def connection_lost(self, exc: Exception | None) -> None:
        for _ in self.open:
            self.tally.lost(f"connection lost: {exc or 'closed by the server'}")
        self.open.clear()
        if not self.done.done():
            self.done.set_result(None)


def _header_fragment(flags: int, payload: bytes) -> bytes:
    """Return a HEADERS frame's header block fragment, without padding and priority."""
    start, end = 0, len(payload)
    if flags & _PADDED:
        start, end = 1, end - payload[0]
    if flags & _PRIORITY:
        start += 5
    return payload[start:end]


_GRPC_CODE_NAMES: Final = {str(code.value[0]): code.name for code in grpc.StatusCode}


async def run_grpc(
    target: str, tally: Tally, *, connections: int, key: str, tag: str, channels: int
) -> None:
    host, _, port = target.rpartition(":")
    block = _request_header_block(target, key)
    per_channel = [connections // channels + (n < connections % channels) for n in range(channels)]
    loop = asyncio.get_running_loop()

    def connector(streams: int) -> Callable[[], Awaitable[asyncio.Future[None]]]:
        async def connect() -> asyncio.Future[None]:
            _, protocol = await loop.create_connection(
                lambda: _Http2Connection(tally, block, tag, streams), host, int(port)
            )
            return protocol.done

        return connect

    await asyncio.gather(
        *(keep_connected(tally, connector(streams)) for streams in per_channel if streams)
    )
