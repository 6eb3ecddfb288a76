"""Under load, over REST and gRPC at once, every acknowledged request is stored exactly once.

The load generator is ``tools.loadgen`` (the one ``make bench-server`` uses, at
100,000 requests), run in its own processes against ``auxia-decision serve``
on loopback; every request carries a distinct tracking id, so the store is
checked request by request after the server stopped.
"""

from __future__ import annotations

import pathlib

from tests._served import served
from tests._stored import stored_tracking_ids
from tools.loadgen import collect, is_server_error, reconcile, spawn

REQUESTS = 2_000
CONNECTIONS = 64


def test_every_acknowledged_request_is_stored_exactly_once(tmp_path: pathlib.Path) -> None:
    db = tmp_path / "load.db"
    with served(db) as running:
        rest = spawn(
            "rest",
            running.rest_url,
            requests=REQUESTS,
            connections=CONNECTIONS,
            time_limit=60,
            tag="rest",
        )
        grpc = spawn(
            "grpc",
            running.grpc_target,
            requests=REQUESTS,
            connections=CONNECTIONS,
            time_limit=60,
            tag="grpc",
        )
        rest_result, grpc_result = collect(rest, timeout=120), collect(grpc, timeout=120)
        code, output = running.stop()
    assert code == 0, output
    assert rest_result.statuses == {"200": REQUESTS}, rest_result.first_failure
    assert grpc_result.statuses == {"OK": REQUESTS}, grpc_result.first_failure
    assert not rest_result.count(is_server_error)
    stored = stored_tracking_ids(db)
    assert len(stored) == 2 * REQUESTS
    for result, tag in ((rest_result, "rest"), (grpc_result, "grpc")):
        found = reconcile(result, stored, tag)
        assert (found.acknowledged, found.stored) == (REQUESTS, REQUESTS)
        assert found.exact, found
