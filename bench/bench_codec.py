"""Benchmark of the REST JSON codec against json_format (``make bench``).

For each message type, built from the API documentation's JSON samples, it
measures in one run the median time per call of:

- ``json_format``: ``MessageToJson(indent=None)`` to encode, ``Parse`` to decode;
- ``MessageToDict`` + orjson: ``orjson.dumps(MessageToDict(m))`` to encode,
  ``ParseDict(orjson.loads(data))`` to decode;
- the generic codec, ``RestCodec(fast=False)`` (json_format behind our
  JSON-path checks), the codec before the fast path existed;
- ours: ``RestCodec()``, the default codec with its specialised fast path;

and the ratio json_format / ours, plus the peak memory one call allocates
(tracemalloc) and the process's peak resident memory. Every timing is the
median over many interleaved rounds, because the machines are noisy.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import os
import pathlib
import platform
import resource
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from importlib import metadata

import orjson
from google.protobuf import json_format
from google.protobuf.internal import api_implementation
from google.protobuf.message import Message

from auxia.decision.model import treatment_interaction_service_pb2 as interactions
from auxia.decision.model import treatment_management_service_pb2 as management
from auxia_decision import RestCodec
from bench._report import publish

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
DEFAULT_OUTPUT = ROOT / "bench" / "results" / "codec.md"
TARGET = 3.0


@dataclasses.dataclass(frozen=True)
class Sample:
    """A message type and the documentation sample it is built from."""

    message_type: type[Message]
    fixture: str
    is_request: bool

    @property
    def name(self) -> str:
        """Return the message type's name."""
        return str(self.message_type.DESCRIPTOR.name)

    def data(self) -> bytes:
        """Return the sample's JSON text."""
        return (FIXTURES / self.fixture).read_bytes()


SAMPLES = [
    Sample(
        interactions.LogTreatmentInteractionRequest,
        "examples/log_treatment_interaction_request.json",
        is_request=True,
    ),
    Sample(management.InsertTreatmentRequest, "docs/insert_treatment_request.json", True),
    Sample(
        management.InsertTreatmentResponse, "docs/insert_treatment_response.corrected.json", False
    ),
    Sample(
        management.GetDataFieldsByParamsRequest,
        "docs/get_data_fields_request.corrected.json",
        is_request=True,
    ),
    Sample(management.GetDataFieldsByParamsResponse, "docs/get_data_fields_response.json", False),
    Sample(management.UpdateTreatmentRequest, "docs/update_treatment_request.json", True),
    Sample(
        management.UpdateTreatmentResponse, "docs/update_treatment_response.corrected.json", False
    ),
]
IMPLEMENTATIONS = ("json_format", "MessageToDict + orjson", "generic codec", "ours")


@dataclasses.dataclass
class Case:
    """One operation of one implementation on one sample, and what was measured."""

    sample: Sample
    operation: str
    implementation: str
    call: Callable[[], object]
    times: list[float] = dataclasses.field(default_factory=list)
    peak_bytes: int = 0

    @property
    def median(self) -> float:
        """Return the median time of one call, in seconds."""
        return statistics.median(self.times)


def _cases(sample: Sample) -> list[Case]:
    message_type = sample.message_type
    data = sample.data()
    message = json_format.Parse(data, message_type())
    fast, generic = RestCodec(), RestCodec(fast=False)
    lenient = not sample.is_request
    fast_decode = fast.decode_request if sample.is_request else fast.decode_response
    generic_decode = generic.decode_request if sample.is_request else generic.decode_response
    if fast.encode(message) != json_format.MessageToJson(message, indent=None).encode():
        raise SystemExit(f"{sample.name}: the fast encoder differs from json_format")
    if fast_decode(data, message_type) != message:
        raise SystemExit(f"{sample.name}: the fast decoder differs from json_format")
    calls: dict[tuple[str, str], Callable[[], object]] = {
        ("encode", "json_format"): lambda: json_format.MessageToJson(message, indent=None).encode(),
        ("encode", "MessageToDict + orjson"): lambda: orjson.dumps(
            json_format.MessageToDict(message)
        ),
        ("encode", "generic codec"): lambda: generic.encode(message),
        ("encode", "ours"): lambda: fast.encode(message),
        ("decode", "json_format"): lambda: json_format.Parse(
            data, message_type(), ignore_unknown_fields=lenient
        ),
        ("decode", "MessageToDict + orjson"): lambda: json_format.ParseDict(
            orjson.loads(data), message_type(), ignore_unknown_fields=lenient
        ),
        ("decode", "generic codec"): lambda: generic_decode(data, message_type),
        ("decode", "ours"): lambda: fast_decode(data, message_type),
    }
    return [
        Case(sample, operation, implementation, call)
        for (operation, implementation), call in calls.items()
    ]


def _calls_per_round(case: Case, round_seconds: float) -> int:
    number = 1
    while True:
        start = time.perf_counter()
        for _ in range(number):
            case.call()
        elapsed = time.perf_counter() - start
        if elapsed >= round_seconds / 4:
            return max(1, int(number * round_seconds / elapsed))
        number *= 2


def _measure(cases: list[Case], rounds: int, round_seconds: float) -> None:
    numbers = [_calls_per_round(case, round_seconds) for case in cases]
    for index in range(rounds):
        # Interleaved rounds: a slow spell of the machine hits every case alike.
        order = cases if index % 2 == 0 else cases[::-1]
        for case in order:
            number = numbers[cases.index(case)]
            gc.collect()
            gc.disable()
            try:
                start = time.perf_counter()
                for _ in range(number):
                    case.call()
                case.times.append((time.perf_counter() - start) / number)
            finally:
                gc.enable()
        print(f"  round {index + 1}/{rounds}", end="\r", file=sys.stderr, flush=True)
    print(file=sys.stderr)


def _measure_memory(cases: list[Case]) -> None:
    for case in cases:
        case.call()  # warm caches (the fast path compiles per type once)
        gc.collect()
        tracemalloc.start()
        try:
            baseline = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            case.call()
            case.peak_bytes = tracemalloc.get_traced_memory()[1] - baseline
        finally:
            tracemalloc.stop()


def _cpu_model() -> str:
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _machine(rounds: int) -> list[str]:
    return [
        f"- CPU: {_cpu_model()}, {os.cpu_count()} logical CPUs ({platform.machine()})",
        f"- Python {platform.python_version()} ({platform.python_implementation()}), "
        f"protobuf {metadata.version('protobuf')} ({api_implementation.Type()} backend), "
        f"orjson {metadata.version('orjson')}",
        f"- {rounds} interleaved rounds per case; times are medians per call, in µs",
    ]


def _table(cases: list[Case]) -> list[str]:
    by_key = {(c.sample.name, c.operation, c.implementation): c for c in cases}
    header = [
        "message",
        "op",
        *(f"{name} µs" for name in IMPLEMENTATIONS),
        "json_format / ours",
        "peak KiB json_format / ours",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for sample in SAMPLES:
        for operation in ("encode", "decode"):
            row = [by_key[(sample.name, operation, name)] for name in IMPLEMENTATIONS]
            baseline, ours = row[0], row[-1]
            ratio = baseline.median / ours.median
            lines.append(
                "| "
                + " | ".join(
                    [
                        sample.name,
                        operation,
                        *(f"{case.median * 1e6:.1f}" for case in row),
                        f"**{ratio:.2f}**",
                        f"{baseline.peak_bytes / 1024:.1f} / {ours.peak_bytes / 1024:.1f}",
                    ]
                )
                + " |"
            )
    return lines


def _summary(cases: list[Case]) -> list[str]:
    ratios = {
        (c.sample.name, c.operation): c.median / ours.median
        for c in cases
        if c.implementation == "json_format"
        for ours in cases
        if ours.implementation == "ours"
        and ours.sample is c.sample
        and ours.operation == c.operation
    }
    worst = min(ratios, key=lambda key: ratios[key])
    met = all(ratio >= TARGET for ratio in ratios.values())
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return [
        f"Lowest ratio: {ratios[worst]:.2f} ({worst[0]} {worst[1]}); "
        f"target {TARGET:.1f} on every row: {'met' if met else 'NOT met'}.",
        "",
        f"Peak resident memory of the benchmark process: {peak_rss:.0f} MiB.",
    ]


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the table and write it to a markdown file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=31, help="interleaved rounds per case")
    parser.add_argument(
        "--round-ms", type=float, default=20.0, help="approximate duration of one round of a case"
    )
    parser.add_argument("--output", type=pathlib.Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    cases = [case for sample in SAMPLES for case in _cases(sample)]
    print(f"measuring {len(cases)} cases, {args.rounds} rounds", file=sys.stderr)
    _measure(cases, args.rounds, args.round_ms / 1000)
    _measure_memory(cases)
    lines = [
        "# JSON codec benchmark",
        "",
        "Produced by `make bench` (`bench/bench_codec.py`). Encode is message to JSON bytes; "
        "decode is the documentation sample's JSON text to a message (requests strictly, "
        "responses leniently). *generic codec* is `RestCodec(fast=False)`, json_format behind "
        "our JSON-path checks; *ours* is `RestCodec()`. Peak KiB is what one call allocates "
        "at most (tracemalloc).",
        "",
        *_machine(args.rounds),
        "",
        *_table(cases),
        "",
        *_summary(cases),
    ]
    publish("\n".join(lines) + "\n", args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
