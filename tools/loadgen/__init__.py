"""A closed-loop load generator of LogTreatmentInteraction (REST, gRPC) and GetTreatments (REST).

It runs in a process of its own (``python -m tools.loadgen``, or ``spawn``) so
that it does not share an interpreter with the server or the test that drives
it, and prints one JSON document: how many requests it sent, which were
acknowledged (HTTP 2xx or gRPC OK), the statuses it saw and the latency
percentiles. Each request carries a unique ``treatmentTrackingId``
(``<tag>-<index>``), so what the server stored can be checked request by
request (``reconcile``). The run is bounded both in count and in time; it
targets loopback addresses only. README.md says why its clients are our own.
"""

from __future__ import annotations

from tools.loadgen._requests import (
    DECISION_SURFACES,
    DEFAULT_KEY,
    GRPC_METHOD,
    PROJECT_ID,
    REST_PATH,
    decide_body,
    grpc_request,
    rest_body,
    tracking_id,
    user_attributes,
    user_id,
)
from tools.loadgen._run import Reconciliation, collect, generate, reconcile, run_in_process, spawn
from tools.loadgen._tally import LoadResult, is_server_error

__all__ = [
    "DECISION_SURFACES",
    "DEFAULT_KEY",
    "GRPC_METHOD",
    "PROJECT_ID",
    "REST_PATH",
    "LoadResult",
    "Reconciliation",
    "collect",
    "decide_body",
    "generate",
    "grpc_request",
    "is_server_error",
    "reconcile",
    "rest_body",
    "run_in_process",
    "spawn",
    "tracking_id",
    "user_attributes",
    "user_id",
]
