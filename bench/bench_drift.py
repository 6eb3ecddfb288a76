"""Benchmark of the clients' drift check against today's lenient decode (``make bench``).

For each response type, it measures in one process, in interleaved rounds,
the median time per call of:

- *lenient*: ``RestCodec().decode_response``, the decode of a client without
  drift reports (and the baseline);
- *drift-checked*: ``RestCodec().decode_response_drift``, the decode and
  drift check every client call makes;
- *drift-checked, drifted*: the same on the sample with one unknown field
  added at its root (the slow path: a lenient decode, then the walk).

The target: drift-checked / lenient ≤ 1.05 on every sample that did not
drift. Responses are the documentation's samples, and a GetTreatments answer
of three treatments.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import pathlib
import statistics
import sys
import time
from collections.abc import Callable

from google.protobuf.message import Message

from auxia.decision.model import treatment_decision_service_pb2 as decisions
from auxia_decision import RestCodec
from bench._report import publish
from bench.bench_codec import SAMPLES, _machine

ROOT = pathlib.Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = ROOT / "bench" / "results" / "drift.md"
TARGET = 1.05
KINDS = ("lenient", "drift-checked", "drift-checked, drifted")
GET_TREATMENTS = {
    "responseId": "7f1c0c2e-5a55-4c1e-9a4b-0d7f0c1b2a3c",
    "userTreatments": [
        {
            "treatmentId": str(1000 + rank),
            "treatmentTrackingId": f"{1000 + rank}_7f1c0c2e-5a55-4c1e-9a4b-0d7f0c1b2a3c",
            "rank": str(rank),
            "contentLanguageCode": "en",
            "treatmentContent": json.dumps({"title": f"Offer {rank}", "cta": "Shop now"}),
            "treatmentType": "banner",
            "surface": "home",
        }
        for rank in (1, 2, 3)
    ],
}


@dataclasses.dataclass
class Sample:
    """A response's three decodes, their times, and the paired ratios of two of them."""

    name: str
    calls: dict[str, Callable[[], object]]
    times: dict[str, list[float]] = dataclasses.field(
        default_factory=lambda: {kind: [] for kind in KINDS}
    )
    ratios: list[float] = dataclasses.field(default_factory=list)
    """drift-checked / lenient, each round's: the two timed back to back (A B B A)."""

    def median(self, kind: str) -> float:
        """Return the median time of one call of a decode, in seconds."""
        return statistics.median(self.times[kind])


def _responses() -> list[tuple[type[Message], bytes]]:
    samples = [(s.message_type, s.data()) for s in SAMPLES if not s.is_request]
    samples.append((decisions.GetTreatmentsResponse, json.dumps(GET_TREATMENTS).encode()))
    return samples


def _sample(message_type: type[Message], data: bytes) -> Sample:
    codec = RestCodec()
    name = str(message_type.DESCRIPTOR.name)
    drifted = json.dumps({**json.loads(data), "fieldAddedLater": {"a": [1, 2]}}).encode()
    message, drifts = codec.decode_response_drift(data, message_type)
    if message != codec.decode_response(data, message_type) or drifts:
        raise SystemExit(f"{name}: the drift-checked decode differs from the lenient one")
    if len(codec.decode_response_drift(drifted, message_type)[1]) != 1:
        raise SystemExit(f"{name}: the drifted sample's drift was not found")
    calls: dict[str, Callable[[], object]] = {
        "lenient": lambda: codec.decode_response(data, message_type),
        "drift-checked": lambda: codec.decode_response_drift(data, message_type),
        "drift-checked, drifted": lambda: codec.decode_response_drift(drifted, message_type),
    }
    return Sample(name, calls)


def _timed(call: Callable[[], object], number: int) -> float:
    """Return the time of one call, over ``number`` calls with the collector off."""
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        for _ in range(number):
            call()
        return (time.perf_counter() - start) / number
    finally:
        gc.enable()


def _measure(samples: list[Sample], rounds: int, round_seconds: float) -> None:
    # Each round times the lenient and the drift-checked decode back to back,
    # A B B A, so that a slow spell of the (shared) machine weighs on both
    # alike: the ratio reported is the median of the rounds' ratios.
    numbers = {
        (sample.name, kind): max(1, int(round_seconds / _timed(call, 200)))
        for sample in samples
        for kind, call in sample.calls.items()
    }
    lenient, checked, drifted = KINDS
    for index in range(rounds):
        for sample in samples:
            number = numbers[(sample.name, lenient)]
            first = _timed(sample.calls[lenient], number)
            second = _timed(sample.calls[checked], number)
            third = _timed(sample.calls[checked], number)
            fourth = _timed(sample.calls[lenient], number)
            sample.times[lenient] += [first, fourth]
            sample.times[checked] += [second, third]
            sample.ratios.append((second + third) / (first + fourth))
            slow = sample.calls[drifted]
            sample.times[drifted].append(_timed(slow, numbers[(sample.name, drifted)]))
        print(f"  round {index + 1}/{rounds}", end="\r", file=sys.stderr, flush=True)
    print(file=sys.stderr)


def _table(samples: list[Sample]) -> list[str]:
    header = [*(f"{kind} µs" for kind in KINDS), "drift-checked / lenient", "drifted / lenient"]
    lines = ["| response | " + " | ".join(header) + " |", "|" + " --- |" * (len(header) + 1)]
    for sample in samples:
        times = " | ".join(f"{sample.median(kind) * 1e6:.1f}" for kind in KINDS)
        slow = sample.median(KINDS[2]) / sample.median(KINDS[0])
        ratio = statistics.median(sample.ratios)
        lines.append(f"| {sample.name} | {times} | **{ratio:.3f}** | {slow:.2f} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the table and write it to a markdown file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=61, help="interleaved rounds per case")
    parser.add_argument(
        "--round-ms", type=float, default=5.0, help="approximate duration of one timing"
    )
    parser.add_argument("--output", type=pathlib.Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    samples = [_sample(message_type, data) for message_type, data in _responses()]
    print(f"measuring {len(samples)} responses, {args.rounds} rounds", file=sys.stderr)
    _measure(samples, args.rounds, args.round_ms / 1000)
    worst = max(statistics.median(sample.ratios) for sample in samples)
    met = worst <= TARGET
    lines = [
        "# Drift check benchmark",
        "",
        "Produced by `make bench` (`bench/bench_drift.py`). *lenient* is "
        "`RestCodec().decode_response`, the decode of a response without drift reports; "
        "*drift-checked* is `RestCodec().decode_response_drift`, what `Client` and "
        "`AsyncClient` call for every answer (a strict fast decode, which refuses anything "
        "unknown; only then a lenient decode and a walk for drift); *drifted* is the same "
        "sample with one unknown member added at its root. Each round times *lenient* and "
        "*drift-checked* back to back (A B B A); the ratio is the median of the rounds' ratios.",
        "",
        *_machine(args.rounds),
        "",
        *_table(samples),
        "",
        f"Highest drift-checked / lenient ratio when nothing drifted: {worst:.3f}; "
        f"target ≤ {TARGET:.2f} on every row: {'met' if met else 'NOT met'}.",
    ]
    publish("\n".join(lines) + "\n", args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
