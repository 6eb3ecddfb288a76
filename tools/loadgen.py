"""A closed-loop load generator of LogTreatmentInteraction (REST, gRPC) and GetTreatments (REST).

It runs in a process of its own (``python -m tools.loadgen``) so that it does
not share an interpreter with the server or the test that drives it, and
prints one JSON document: how many requests it sent, which were acknowledged
(HTTP 2xx or gRPC OK), the statuses it saw and the latency percentiles.

Each request carries a unique ``treatmentTrackingId`` (``<tag>-<index>``), so
what the server stored can be checked request by request. The run is bounded
both in count (``--requests``) and in time (``--time-limit``); every
connection sends one request at a time over keep-alive (REST) or one
HTTP/2 channel (gRPC).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import functools
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Final, cast

import grpc
import hpack

from auxia.decision.model import treatment_interaction_service_pb2 as interactions
from auxia_decision.server import run_event_loop

REST_PATH: Final = "/v1/LogTreatmentInteraction"
GRPC_METHOD: Final = "/io.auxia.decision.model.TreatmentInteractionService/LogTreatmentInteraction"
DEFAULT_KEY: Final = "TEST_API_KEY"
PROJECT_ID: Final = "PROJECT_ID"
_INTERACTION_TIME: Final = 1_732_312_345_123_456
_CONNECT_ATTEMPTS: Final = 3
_GRACE_SECONDS: Final = 10.0
_ROOT: Final = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tracking_id(tag: str, index: int) -> str:
    """Return the ``treatmentTrackingId`` of request ``index`` of a run tagged ``tag``."""
    return f"{tag}-{index}"


_BODY_START: Final = (
    f'{{"projectId":"{PROJECT_ID}","userId":"USER_ID","treatmentTrackingId":"'
).encode()
_BODY_END: Final = (
    '","treatmentId":"TREATMENT_ID","surface":"SURFACE","interactionType":"CLICKED",'
    f'"interactionTimeMicros":"{_INTERACTION_TIME}","actionName":"ACTION_NAME"}}'
).encode()


def rest_body(tag: str, index: int) -> bytes:
    """Return the JSON body of request ``index``: the docs' sample with a unique tracking id."""
    return _BODY_START + tracking_id(tag, index).encode() + _BODY_END


DECIDE_PATH: Final = "/v1/GetTreatments"
DECISION_SURFACES: Final = ("HOME_SCREEN", "CART_SCREEN", "ARTICLE_PAGE")
COUNTRIES: Final = ("US", "DE", "FR", "GB")


def user_id(index: int) -> str:
    """Return the id of user ``index`` of a decision world."""
    return f"u{index}"


def user_attributes(index: int) -> list[dict[str, object]]:
    """Return the contextual attributes user ``index`` sends, as a production client does."""
    return [
        {"key": "country", "stringValue": COUNTRIES[index % len(COUNTRIES)]},
        {"key": "age", "integerValue": 16 + index % 50},
        {"key": "subscriber", "boolValue": index % 3 == 0},
        {"key": "daily_article_count", "integerValue": index % 7},
        {"key": "current_screen", "stringValue": "article"},
    ]


def decide_body(index: int, users: int) -> bytes:
    """Return GetTreatments request ``index``: of one of ``users`` users, for one surface."""
    user = index % users
    document = {
        "projectId": PROJECT_ID,
        "userId": user_id(user),
        "contextualAttributes": user_attributes(user),
        "surfaces": [
            {
                "surface": DECISION_SURFACES[index % len(DECISION_SURFACES)],
                "maximumTreatmentCount": 1,
            }
        ],
        "languageCode": "en",
    }
    return json.dumps(document, separators=(",", ":")).encode()


_SERVED: Final = b'"treatmentTrackingId"'


def grpc_request(tag: str, index: int) -> interactions.LogTreatmentInteractionRequest:
    """Return request ``index`` as a message: the same content as ``rest_body``."""
    return interactions.LogTreatmentInteractionRequest(
        project_id=PROJECT_ID,
        user_id="USER_ID",
        treatment_tracking_id=tracking_id(tag, index),
        treatment_id="TREATMENT_ID",
        surface="SURFACE",
        interaction_type=interactions.LogTreatmentInteractionRequest.CLICKED,
        interaction_time_micros=_INTERACTION_TIME,
        action_name="ACTION_NAME",
    )


@dataclass
class LoadResult:
    """What one load run did and saw."""

    transport: str
    requests: int
    """How many requests were sent (whole or in part)."""
    acknowledged: list[int]
    """The indices of the requests answered with HTTP 2xx or gRPC OK."""
    statuses: dict[str, int]
    """Answers by HTTP status or gRPC code name; ``no answer`` counts lost connections."""
    elapsed: float
    """Seconds from the first request to the last answer."""
    latency_ms: dict[str, float]
    """p50, p90, p99 and max latency of the answered requests, in milliseconds."""
    cpu_seconds: float
    """CPU time the generator process used (user + system)."""
    first_failure: str = ""
    """The first transport error, for the report."""
    served: int = 0
    """Treatments in the GetTreatments answers acknowledged (the decide workload)."""

    @property
    def throughput(self) -> float:
        """Return answered requests per second."""
        answered = sum(n for status, n in self.statuses.items() if status != "no answer")
        return answered / self.elapsed if self.elapsed > 0 else 0.0

    def count(self, predicate: Callable[[str], bool]) -> int:
        """Return how many answers have a status the predicate accepts."""
        return sum(n for status, n in self.statuses.items() if predicate(status))


def is_server_error(status: str) -> bool:
    """Whether an answer is a server failure: an HTTP 5xx or a gRPC INTERNAL/UNKNOWN/DATA_LOSS."""
    return status.startswith("5") or status in ("INTERNAL", "UNKNOWN", "DATA_LOSS")


@dataclass
class _Tally:
    """The shared budget of a run and what its workers recorded."""

    total: int
    deadline: float
    next_index: int = 0
    acknowledged: list[int] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    latencies_ns: list[int] = field(default_factory=list)
    first_failure: str = ""
    served: int = 0

    def take(self) -> int | None:
        """Return the next request index, or None when the count or the time is spent."""
        if self.next_index >= self.total or time.monotonic() >= self.deadline:
            return None
        index = self.next_index
        self.next_index += 1
        return index

    def record(self, status: str, *, ok: bool, index: int, started_ns: int) -> None:
        """Record an answer."""
        self.statuses[status] = self.statuses.get(status, 0) + 1
        self.latencies_ns.append(time.perf_counter_ns() - started_ns)
        if ok:
            self.acknowledged.append(index)

    def lost(self, reason: str) -> None:
        """Record a request that got no answer."""
        self.statuses["no answer"] = self.statuses.get("no answer", 0) + 1
        self.first_failure = self.first_failure or reason


class _HttpConnection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection sending requests one after the other."""

    def __init__(
        self,
        tally: _Tally,
        head: bytes,
        body: Callable[[int], bytes],
        done: asyncio.Future[None],
        count_served: bool,
    ) -> None:
        self.tally = tally
        self.head = head
        self.body = body
        self.done = done
        self.count_served = count_served
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.index: int | None = None
        self.started_ns = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        self._send_next()

    def _send_next(self) -> None:
        assert self.transport is not None
        self.index = self.tally.take()
        if self.index is None:
            self.transport.close()
            return
        body = self.body(self.index)
        self.started_ns = time.perf_counter_ns()
        self.transport.write(self.head + b"%d\r\n\r\n" % len(body) + body)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.index is not None:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end]).lower()
            length = 0
            close = False
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name == b"content-length":
                    length = int(value)
                elif name == b"connection" and value.strip() == b"close":
                    close = True
            if len(self.buffer) < end + 4 + length:
                return
            status = head[9:12].decode()
            if self.count_served and status.startswith("2"):
                self.tally.served += self.buffer.count(_SERVED, end + 4, end + 4 + length)
            del self.buffer[: end + 4 + length]
            self.tally.record(
                status,
                ok=status.startswith("2"),
                index=self.index,
                started_ns=self.started_ns,
            )
            self.index = None
            if close:
                assert self.transport is not None
                self.transport.close()
                return
            self._send_next()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.index is not None:
            self.tally.lost(f"connection lost: {exc or 'closed by the server'}")
            self.index = None
        if not self.done.done():
            self.done.set_result(None)


async def _rest_worker(
    host: str,
    port: int,
    head: bytes,
    tally: _Tally,
    *,
    body: Callable[[int], bytes],
    count_served: bool,
) -> None:
    loop = asyncio.get_running_loop()
    attempts = 0
    while tally.next_index < tally.total and time.monotonic() < tally.deadline:
        done: asyncio.Future[None] = loop.create_future()
        try:
            await loop.create_connection(
                functools.partial(_HttpConnection, tally, head, body, done, count_served),
                host,
                port,
            )
        except OSError as error:
            tally.first_failure = tally.first_failure or f"connect: {error}"
            attempts += 1
            if attempts >= _CONNECT_ATTEMPTS:
                return
            await asyncio.sleep(0.05)
            continue
        attempts = 0
        await done


async def _run_rest(
    url: str,
    tally: _Tally,
    connections: int,
    *,
    key: str,
    tag: str,
    workload: str,
    users: int,
) -> None:
    address = url.removeprefix("http://").rstrip("/")
    host, _, port = address.rpartition(":")
    path = DECIDE_PATH if workload == "decide" else REST_PATH
    head = (
        f"POST {path} HTTP/1.1\r\nhost: {address}\r\ncontent-type: application/json\r\n"
        f"x-api-key: {key}\r\ncontent-length: "
    ).encode()
    if workload == "decide":
        body: Callable[[int], bytes] = functools.partial(_decide_body_of, users)
    else:
        body = functools.partial(rest_body, tag)
    await asyncio.gather(
        *(
            _rest_worker(host, int(port), head, tally, body=body, count_served=workload == "decide")
            for _ in range(connections)
        )
    )


def _decide_body_of(users: int, index: int) -> bytes:
    return decide_body(index, users)


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

    def __init__(self, tally: _Tally, header_block: bytes, tag: str, streams: int) -> None:
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


async def _run_grpc(
    target: str, tally: _Tally, *, connections: int, key: str, tag: str, channels: int
) -> None:
    host, _, port = target.rpartition(":")
    block = _request_header_block(target, key)
    per_channel = [connections // channels + (n < connections % channels) for n in range(channels)]
    loop = asyncio.get_running_loop()

    async def channel(streams: int) -> None:
        attempts = 0
        while tally.next_index < tally.total and time.monotonic() < tally.deadline:
            try:
                _, protocol = await loop.create_connection(
                    lambda: _Http2Connection(tally, block, tag, streams), host, int(port)
                )
            except OSError as error:
                tally.first_failure = tally.first_failure or f"connect: {error}"
                attempts += 1
                if attempts >= _CONNECT_ATTEMPTS:
                    return
                await asyncio.sleep(0.05)
                continue
            attempts = 0
            await protocol.done

    await asyncio.gather(*(channel(streams) for streams in per_channel if streams))


def _percentiles(latencies_ns: list[int]) -> dict[str, float]:
    if not latencies_ns:
        return {}
    ordered = sorted(latencies_ns)

    def at(fraction: float) -> float:
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] / 1e6

    return {"p50": at(0.50), "p90": at(0.90), "p99": at(0.99), "max": ordered[-1] / 1e6}


def generate(
    transport: str,
    address: str,
    *,
    requests: int,
    connections: int,
    time_limit: float,
    key: str = DEFAULT_KEY,
    tag: str = "load",
    channels: int = 4,
    workload: str = "log",
    users: int = 1000,
) -> LoadResult:
    """Run one closed-loop load in this process and return what it saw.

    ``workload`` is ``log`` (LogTreatmentInteraction, REST or gRPC) or
    ``decide`` (GetTreatments over REST, for ``users`` users).
    """
    tally = _Tally(total=requests, deadline=time.monotonic() + time_limit)
    cpu_before = os.times()
    started = time.perf_counter()
    if transport == "rest":
        runner = _run_rest(
            address, tally, connections, key=key, tag=tag, workload=workload, users=users
        )
    else:
        runner = _run_grpc(
            address, tally, connections=connections, key=key, tag=tag, channels=channels
        )
    # A server that stops answering must not hang the run: past its time
    # limit and a grace period, what is still unanswered counts as lost.
    run_event_loop(_bounded(runner, time_limit + _GRACE_SECONDS))
    elapsed = time.perf_counter() - started
    unanswered = tally.next_index - sum(tally.statuses.values())
    if unanswered > 0:
        tally.statuses["no answer"] = tally.statuses.get("no answer", 0) + unanswered
        tally.first_failure = tally.first_failure or "no answer within the time limit"
    cpu_after = os.times()
    return LoadResult(
        transport=transport,
        requests=tally.next_index,
        acknowledged=sorted(tally.acknowledged),
        statuses=dict(sorted(tally.statuses.items())),
        elapsed=elapsed,
        latency_ms=_percentiles(tally.latencies_ns),
        cpu_seconds=(cpu_after.user - cpu_before.user) + (cpu_after.system - cpu_before.system),
        first_failure=tally.first_failure,
        served=tally.served,
    )


async def _bounded(runner: Coroutine[Any, Any, None], seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(runner, seconds)


def spawn(
    transport: str,
    address: str,
    *,
    requests: int,
    connections: int,
    time_limit: float,
    key: str = DEFAULT_KEY,
    tag: str = "load",
    workload: str = "log",
) -> subprocess.Popen[str]:
    """Start ``generate`` in a separate Python process; ``collect`` returns its result."""
    command = [
        sys.executable,
        "-m",
        "tools.loadgen",
        transport,
        address,
        "--requests",
        str(requests),
        "--connections",
        str(connections),
        "--time-limit",
        str(time_limit),
        "--key",
        key,
        "--tag",
        tag,
        "--workload",
        workload,
    ]
    return subprocess.Popen(  # noqa: S603  # our own interpreter and module
        command, cwd=_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def collect(process: subprocess.Popen[str], timeout: float) -> LoadResult:
    """Wait for a spawned generator and return its result (kill it past ``timeout``)."""
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        msg = f"the load generator did not finish within {timeout} s:\n{err}"
        raise RuntimeError(msg) from None
    if process.returncode != 0:
        msg = f"the load generator failed ({process.returncode}):\n{err}"
        raise RuntimeError(msg)
    return LoadResult(**json.loads(out))


def run_in_process(
    transport: str,
    address: str,
    *,
    requests: int,
    connections: int,
    time_limit: float,
    key: str = DEFAULT_KEY,
    tag: str = "load",
    workload: str = "log",
) -> LoadResult:
    """Run ``generate`` in a separate Python process and return its result."""
    process = spawn(
        transport,
        address,
        requests=requests,
        connections=connections,
        time_limit=time_limit,
        key=key,
        tag=tag,
        workload=workload,
    )
    return collect(process, timeout=time_limit + 2 * _GRACE_SECONDS + 30)


@dataclass(frozen=True)
class Reconciliation:
    """What a store holds of one run, request by request, against what was acknowledged."""

    acknowledged: int
    stored: int
    """Rows of the run in the store."""
    lost: int
    """Acknowledged requests with no row."""
    duplicated: int
    """Rows beyond the first of a request."""
    stored_unacknowledged: int
    """Requests with a row whose answer never reached the generator (allowed: not lost)."""

    @property
    def exact(self) -> bool:
        """Whether every acknowledged request has exactly one row, and nothing else is stored."""
        return self.lost == 0 and self.duplicated == 0 and self.stored_unacknowledged == 0


def reconcile(result: LoadResult, stored_ids: list[str], tag: str) -> Reconciliation:
    """Compare the rows of run ``tag`` with the requests it saw acknowledged."""
    prefix = f"{tag}-"
    counts = collections.Counter(i for i in stored_ids if i.startswith(prefix))
    acknowledged = {tracking_id(tag, index) for index in result.acknowledged}
    return Reconciliation(
        acknowledged=len(acknowledged),
        stored=sum(counts.values()),
        lost=len(acknowledged - counts.keys()),
        duplicated=sum(n - 1 for n in counts.values()),
        stored_unacknowledged=len(counts.keys() - acknowledged),
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run a load from the command line and print its result as JSON."""
    parser = argparse.ArgumentParser(prog="python -m tools.loadgen", description=__doc__)
    parser.add_argument("transport", choices=["rest", "grpc"])
    parser.add_argument("address", help="http://HOST:PORT for rest, HOST:PORT for grpc")
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--time-limit", type=float, default=60.0, help="seconds")
    parser.add_argument("--key", default=DEFAULT_KEY)
    parser.add_argument("--tag", default="load")
    parser.add_argument("--workload", choices=["log", "decide"], default="log")
    parser.add_argument("--users", type=int, default=1000, help="users of the decide workload")
    args = parser.parse_args(argv)
    if args.workload == "decide" and args.transport != "rest":
        parser.error("the decide workload runs over REST")
    host = args.address.removeprefix("http://").rpartition(":")[0]
    if host not in ("127.0.0.1", "localhost", "[::1]") and not host.startswith("127."):
        parser.error("the load generator only targets loopback addresses")
    result = generate(
        args.transport,
        args.address,
        requests=args.requests,
        connections=args.connections,
        time_limit=args.time_limit,
        key=args.key,
        tag=args.tag,
        workload=args.workload,
        users=args.users,
    )
    json.dump(asdict(result), sys.stdout)
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
