"""Our own server's answers hold nothing the schema does not know: strict clients accept them."""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Iterator

import pytest
from google.protobuf.message import Message

from auxia.decision.model import treatment_management_service_pb2 as management
from auxia_decision import Drift, RestCodec
from auxia_decision._routes import routes
from auxia_decision.server import LocalServer
from tests._fixtures import REQUESTS


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    """A local server holding the documentation's sample treatment."""
    with LocalServer(in_process=True) as running:
        with running.client() as client:
            client.call("InsertTreatment", _request("InsertTreatment"))
        yield running


def _request(method: str) -> Message:
    """Return the documentation's sample request of a method."""
    sample = REQUESTS[method]
    return RestCodec().decode_request(sample.text(), sample.message_type)


@pytest.mark.parametrize("method", sorted(route.name for route in routes()))
@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
def test_every_answer_of_the_local_server_is_free_of_drift(
    server: LocalServer, method: str, asynchronous: bool
) -> None:
    seen: list[Drift] = []
    request = _request(method)
    if isinstance(request, management.InsertTreatmentRequest):  # one more, beside the sample's
        request.external_treatment_id = f"drift-check-{asynchronous}"

    def on_drift(_: str, drift: Drift) -> None:
        seen.append(drift)

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        if asynchronous:

            async def call() -> Message:
                async with server.async_client(strict_responses=True, on_drift=on_drift) as client:
                    return await client.call(method, request)

            answer = asyncio.run(call())
        else:
            with server.client(strict_responses=True, on_drift=on_drift) as client:
                answer = client.call(method, request)
                assert dict(client.drift) == {}
    assert isinstance(answer, Message)
    assert seen == []
