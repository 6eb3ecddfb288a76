"""Evolution faults on a real local server: answers as a newer API could send them, over REST.

A consumer's code must survive what the API may add; an evolution fault makes
our own server add it (unknown fields at every depth, unknown enum values, a
new object), the same way on every call, and our own client must read the
rest of the answer as before.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import warnings
from collections.abc import Iterator
from typing import Final

import httpx
import pytest
from google.rpc import code_pb2

from auxia.decision.emulator.v1 import emulator_pb2
from auxia.decision.model import treatment_management_service_pb2 as management
from auxia.decision.model import treatment_management_service_pb2_grpc as management_grpc
from auxia_decision import ApiError, Drift, SchemaDriftWarning
from auxia_decision.server import LocalServer
from tests._evolution import evolution_paths
from tests._repo import VENV_BIN

ADMIN_KEY: Final = "evolution-admin-key-3a9d"
ASKED: Final = {"projectId": "PROJECT_ID", "treatmentId": "CART_REMINDER"}


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with LocalServer(admin_key=ADMIN_KEY) as started:
        yield started


@pytest.fixture(autouse=True)
def _reset(server: LocalServer) -> None:
    server.reset()


def _get_treatment(server: LocalServer) -> httpx.Response:
    return httpx.post(
        f"{server.rest_url}/v1/GetTreatment",
        json=ASKED,
        headers={"x-api-key": server.api_key},
        timeout=30,
    )


def test_the_client_reads_an_evolved_answer_as_it_reads_the_usual_one(
    server: LocalServer,
) -> None:
    request = management.GetTreatmentRequest(project_id="PROJECT_ID", treatment_id="CART_REMINDER")
    with server.client() as client:
        usual = client.get_treatment(request)
        fault = server.faults.evolve("GetTreatment")
        with pytest.warns(SchemaDriftWarning):  # what it does not know, it says
            evolved = client.get_treatment(request)
    assert fault.evolve
    assert (fault.count, fault.fraction) == (0, 1.0)
    # every enum now reads as a value the schema lacks (0); everything else is as before
    assert evolved.treatment.treatment_id == usual.treatment.treatment_id
    assert evolved.treatment.versions[0].content == usual.treatment.versions[0].content
    assert evolved.treatment.versions[0].status != usual.treatment.versions[0].status
    assert evolved.treatment.versions[0].status == 0


def test_an_evolved_answer_is_the_same_every_time_and_counted_faults_run_out(
    server: LocalServer,
) -> None:
    server.faults.evolve("GetTreatment", count=2)
    first, second, third = (_get_treatment(server) for _ in range(3))
    assert first.status_code == second.status_code == 200
    assert first.content == second.content
    document = first.json()
    assert document["evolvedObject"]["note"]
    assert document["treatment"]["evolvedField"]
    assert document["treatment"]["versions"][0]["status"] == "EVOLVED_VALUE"
    assert document["treatment"]["treatmentType"]["deliveryType"] == "EVOLVED_VALUE"
    assert "evolved" not in third.text.lower()
    assert server.faults.list() == []


def test_grpc_answers_are_not_changed(server: LocalServer) -> None:
    request = management.GetTreatmentRequest(project_id="PROJECT_ID", treatment_id="CART_REMINDER")
    metadata = (("x-api-key", server.api_key),)
    with server.grpc_channel() as channel:
        stub = management_grpc.TreatmentManagementServiceStub(channel)
        usual = stub.GetTreatment(request, metadata=metadata)
        server.faults.evolve("*")
        answer = stub.GetTreatment(request, metadata=metadata)
    assert answer == usual
    assert server.faults.list()[0].selected_count == 1


def test_an_evolution_fault_with_a_code_is_refused_naming_the_field(server: LocalServer) -> None:
    with pytest.raises(ApiError) as refused:
        server.faults.arm(
            emulator_pb2.Fault(method="GetTreatment", count=1, evolve=True, code=code_pb2.INTERNAL)
        )
    assert [v.field for v in refused.value.field_violations] == ["fault.evolve"]


def _admin(server: LocalServer, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_BIN / "auxia-decision"), "admin", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={
            **os.environ,
            "AUXIA_BASE_URL": server.rest_url,
            "AUXIA_EMULATOR_ADMIN_KEY": ADMIN_KEY,
        },
    )


def test_the_admin_command_arms_an_evolution_fault(server: LocalServer) -> None:
    added = _admin(server, "faults", "add", "GetTreatment", "--evolve", "--count", "1")
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["evolve"] is True
    assert "EVOLVED_VALUE" in _get_treatment(server).text
    refused = _admin(server, "faults", "add", "GetTreatment", "--evolve", "--code", "internal")
    assert refused.returncode == 2
    assert "--evolve answers calls that succeed: give it no --code" in refused.stderr


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
def test_our_client_reports_every_addition_of_an_evolution_fault_by_its_path(
    server: LocalServer, asynchronous: bool
) -> None:
    server.faults.evolve("GetTreatment", count=1)
    expected = evolution_paths(_get_treatment(server).json())  # the same additions on every answer
    server.faults.evolve("GetTreatment", count=2)
    request = management.GetTreatmentRequest(project_id="PROJECT_ID", treatment_id="CART_REMINDER")
    seen: list[Drift] = []

    def on_drift(method: str, drift: Drift) -> None:
        assert method == "GetTreatment"
        seen.append(drift)

    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        if asynchronous:

            async def calls() -> None:
                async with server.async_client(on_drift=on_drift) as client:
                    await client.get_treatment(request)
                    await client.get_treatment(request)

            asyncio.run(calls())
        else:
            with server.client(on_drift=on_drift) as client:
                client.get_treatment(request)
                client.get_treatment(request)
    assert {drift.path for drift in seen} == expected
    assert len(seen) == 2 * len(expected)  # the callback hears every answer
    drift_warnings = [w for w in warned if issubclass(w.category, SchemaDriftWarning)]
    assert drift_warnings  # once per place, not per answer
    assert len(drift_warnings) <= len(expected)


def test_a_strict_client_refuses_an_evolved_answer(server: LocalServer) -> None:
    server.faults.evolve("GetTreatment", count=1)
    request = management.GetTreatmentRequest(project_id="PROJECT_ID", treatment_id="CART_REMINDER")
    with server.client(strict_responses=True) as client, pytest.raises(ApiError) as refused:
        client.get_treatment(request)
    assert "evolvedField" in str(refused.value)
