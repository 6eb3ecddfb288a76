"""LocalServer, the public start API: in a thread or a subprocess, and how it stops."""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import os
import pathlib
import socket
import subprocess
from collections.abc import Iterator

import grpc
import httpx
import pytest

from auxia.decision.model import treatment_management_service_pb2 as management
from auxia.decision.server import seed_pb2
from auxia_decision import ApiError, Code
from auxia_decision.server import LocalServer, StartupError
from tests._repo import VENV_BIN
from tests._served import served
from tools.processes import process_tree

MODES = pytest.mark.parametrize("in_process", [True, False], ids=["thread", "subprocess"])
FIELDS_REQUEST = management.GetDataFieldsByParamsRequest(project_id="PROJECT_ID")
FIELDS_REQUEST.data_field_params.add().user_attribute_data_field_params.property_name = "country"


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def _children() -> set[int]:
    return set(process_tree(os.getpid())) - {os.getpid()}


@MODES
def test_it_serves_rest_and_grpc_on_free_ports(in_process: bool) -> None:
    with LocalServer(in_process=in_process) as server:
        assert server.rest_url.startswith("http://127.0.0.1:")
        assert server.grpc_target.startswith("127.0.0.1:")
        with server.client() as client:
            assert client.get_data_fields(FIELDS_REQUEST).data_fields[0].data_field_id == 2
        with server.grpc_channel() as channel:
            call = channel.unary_unary(
                "/io.auxia.decision.model.TreatmentManagementService/GetDataFields",
                request_serializer=lambda message: message.SerializeToString(),
                response_deserializer=management.GetDataFieldsByParamsResponse.FromString,
            )
            answer = call(FIELDS_REQUEST, metadata=(("x-api-key", server.api_key),))
            assert answer.data_fields[0].data_field_id == 2
        assert server.interactions() == []


@MODES
def test_a_seed_message_and_a_frozen_clock(in_process: bool, tmp_path: pathlib.Path) -> None:
    seed = seed_pb2.Seed(
        projects=[
            seed_pb2.Project(
                project_id="SHOP",
                numeric_project_id=3,
                api_keys=["SHOP_KEY"],
                supported_language_codes=["en"],
            )
        ]
    )
    moment = datetime.datetime(2031, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    with LocalServer(seed=seed, in_process=in_process, frozen_at=moment) as server:
        assert (server.project_id, server.api_key) == ("SHOP", "SHOP_KEY")
        assert server.clock.now() == moment
        with server.client(api_key="TEST_API_KEY") as client, pytest.raises(ApiError) as raised:
            client.get_data_fields(FIELDS_REQUEST)
        assert raised.value.code == Code.UNAUTHENTICATED
    # The caller's seed is not changed by the admin key added to it.
    assert list(seed.admin_keys) == []


def test_a_seed_file(tmp_path: pathlib.Path) -> None:
    seed_file = tmp_path / "seed.json"
    seed_file.write_text(
        json.dumps(
            {
                "projects": [
                    {
                        "projectId": "FILE",
                        "numericProjectId": "4",
                        "apiKeys": ["FILE_KEY"],
                        "supportedLanguageCodes": ["en"],
                    }
                ]
            }
        )
    )
    with LocalServer(seed=seed_file) as server:
        assert server.project_id == "FILE"


@MODES
def test_a_busy_port_is_one_line_naming_it(in_process: bool, busy_port: int) -> None:
    with pytest.raises(StartupError) as raised:
        LocalServer(in_process=in_process, rest_port=busy_port).start()
    assert str(raised.value).endswith(
        f"the REST port 127.0.0.1:{busy_port} cannot be bound: it is in use"
    )


def test_a_bad_seed_file_is_one_line(tmp_path: pathlib.Path) -> None:
    seed_file = tmp_path / "seed.json"
    seed_file.write_text('{"projects": [{"projectId": 5}]}')
    with pytest.raises(StartupError) as raised:
        LocalServer(seed=seed_file).start()
    assert str(raised.value).startswith(f"the seed {seed_file} is invalid: ")
    assert "\n" not in str(raised.value)


@MODES
def test_it_stops_with_its_writer_even_when_the_block_fails(
    in_process: bool, tmp_path: pathlib.Path
) -> None:
    before = _children()
    running: list[str] = []

    def failing_test() -> None:
        with LocalServer(in_process=in_process, db=tmp_path / "server.db") as server:
            with server.client() as client:
                client.get_data_fields(FIELDS_REQUEST)
            assert _children() - before  # the writer (and the server, as a subprocess)
            running.append(server.rest_url)
            raise RuntimeError("the test failed")

    with pytest.raises(RuntimeError, match="the test failed"):
        failing_test()
    (rest_url,) = running
    assert _children() == before
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{rest_url}/healthz")


def test_async_with_starts_and_stops_it() -> None:
    async def main() -> list[int]:
        async with LocalServer() as server, server.async_client() as client:
            answer = await client.get_data_fields(FIELDS_REQUEST)
            return [field.data_field_id for field in answer.data_fields]

    assert asyncio.run(main()) == [2]


def test_grpc_calls_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    with LocalServer() as server, server.grpc_channel() as channel:
        call = channel.unary_unary(
            "/io.auxia.decision.model.TreatmentManagementService/GetDataFields",
            request_serializer=lambda message: message.SerializeToString(),
            response_deserializer=management.GetDataFieldsByParamsResponse.FromString,
        )
        with caplog.at_level(logging.INFO, logger="auxia_decision.grpc"):
            call(FIELDS_REQUEST, metadata=(("x-api-key", server.api_key),))
            with pytest.raises(grpc.RpcError):
                call(FIELDS_REQUEST, metadata=(("x-api-key", "WRONG"),))
    lines = [
        record.getMessage() for record in caplog.records if record.name == "auxia_decision.grpc"
    ]
    assert [line.rsplit(" ", 1)[0] for line in lines] == [
        "gRPC GetDataFields OK",
        "gRPC GetDataFields UNAUTHENTICATED",
    ]
    assert not [line for line in lines if "WRONG" in line or server.api_key in line]


def test_the_admin_api_is_off_when_the_seed_has_no_admin_key(tmp_path: pathlib.Path) -> None:
    seed_file = tmp_path / "seed.json"
    seed_file.write_text(
        json.dumps(
            {
                "projects": [
                    {
                        "projectId": "P",
                        "numericProjectId": "1",
                        "apiKeys": ["K"],
                        "supportedLanguageCodes": ["en"],
                    }
                ]
            }
        )
    )
    with served(":memory:", "--seed", str(seed_file)) as running:
        answer = httpx.post(
            f"http://127.0.0.1:{running.rest_port}/emulator/v1/GetClock",
            json={},
            headers={"x-admin-key": "ANYTHING"},
        )
    assert answer.status_code == 403
    assert answer.json()["message"] == "the seed has no adminKeys, so the emulator admin API is off"


def test_serve_takes_a_frozen_clock_and_refuses_a_bad_one() -> None:
    with served(":memory:", "--clock", "2030-02-03T04:05:06Z") as running:
        answer = httpx.post(
            f"http://127.0.0.1:{running.rest_port}/emulator/v1/GetClock",
            json={},
            headers={"x-admin-key": "EMULATOR_ADMIN_KEY"},
        )
    assert answer.json() == {"clock": {"now": "2030-02-03T04:05:06Z", "frozen": True}}
    refused = subprocess.run(
        [str(VENV_BIN / "auxia-decision"), "serve", "--clock", "tomorrow"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert refused.returncode == 2
    assert refused.stderr.splitlines() == [
        "auxia-decision serve: error: argument --clock: neither real nor an RFC 3339 time "
        "with an offset (such as 2030-01-01T00:00:00Z): 'tomorrow' "
        "(see auxia-decision serve --help)"
    ]


def test_its_repr_names_where_it_serves() -> None:
    server = LocalServer(rest_port=0, grpc_port=0)
    assert repr(server) == "<LocalServer not running, on free ports>"
    with server:
        rest = server.rest_url
        assert repr(server) == (
            f"<LocalServer REST {rest}, gRPC {server.grpc_target}, console {rest}/console/>"
        )
        assert server.admin_key not in repr(server)
