"""The emulator admin API on both transports, through the auxia_server fixture as consumers use it.

Each admin call is made over REST (httpx, the ``x-admin-key`` header) and
over gRPC (``x-admin-key`` metadata); the server is the session's
``auxia_server``, reset before every test.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable, Iterator
from typing import Final

import grpc
import httpx
import pytest
from google.protobuf import duration_pb2, message_factory
from google.protobuf.message import Message
from google.rpc import code_pb2

from auxia.decision.emulator.v1 import emulator_pb2
from auxia.decision.model import treatment_decision_service_pb2 as decisions
from auxia.decision.model import treatment_interaction_service_pb2 as interactions
from auxia.decision.model import treatment_management_service_pb2 as management
from auxia.decision.model import treatment_pb2
from auxia.decision.server import seed_pb2
from auxia_decision import ApiError, Client, Code, RestCodec
from auxia_decision.server import LocalServer
from auxia_decision.server._emulator.admin_api import SERVICE
from tests._fixtures import FIXTURES

TRANSPORTS: Final = ("rest", "grpc")
UTC: Final = datetime.UTC
Interaction = interactions.LogTreatmentInteractionRequest
AdminCall = Callable[[str, Message], Message]


def _rest_admin(
    http: httpx.Client, server: LocalServer, key: str | None, **headers: str
) -> AdminCall:
    codec = RestCodec()

    def call(method: str, request: Message) -> Message:
        sent = {"content-type": "application/json", **headers}
        if key is not None:
            sent["x-admin-key"] = key
        answer = http.post(
            f"{server.rest_url}/emulator/v1/{method}", content=codec.encode(request), headers=sent
        )
        if answer.status_code != 200:
            raise ApiError.from_http_response(
                answer.status_code, answer.headers.get("content-type", ""), answer.content
            )
        output = message_factory.GetMessageClass(SERVICE.methods_by_name[method].output_type)
        return codec.decode_response(answer.content, output)

    return call


def _grpc_admin(
    channel: grpc.Channel, key: str | None, metadata: tuple[tuple[str, str], ...] = ()
) -> AdminCall:
    def call(method: str, request: Message) -> Message:
        output = message_factory.GetMessageClass(SERVICE.methods_by_name[method].output_type)
        stub = channel.unary_unary(
            f"/{SERVICE.full_name}/{method}",
            request_serializer=lambda message: message.SerializeToString(),
            response_deserializer=output.FromString,
        )
        sent = (*metadata, *((("x-admin-key", key),) if key is not None else ()))
        try:
            response: Message = stub(request, metadata=sent, timeout=10)
        except grpc.RpcError as error:
            raise ApiError.from_grpc_error(error) from None
        return response

    return call


@pytest.fixture
def channel(auxia_server: LocalServer) -> Iterator[grpc.Channel]:
    with auxia_server.grpc_channel() as opened:
        yield opened


@pytest.fixture(params=TRANSPORTS)
def admin(
    request: pytest.FixtureRequest, auxia_server: LocalServer, http: httpx.Client
) -> AdminCall:
    """An admin call over one transport, with the server's admin key."""
    if request.param == "rest":
        return _rest_admin(http, auxia_server, auxia_server.admin_key)
    channel: grpc.Channel = request.getfixturevalue("channel")
    return _grpc_admin(channel, auxia_server.admin_key)


@pytest.fixture
def client(auxia_server: LocalServer) -> Iterator[Client]:
    with auxia_server.client() as opened:
        yield opened


def _log(
    client: Client,
    user_id: str,
    kind: Interaction.InteractionType.ValueType = Interaction.VIEWED,
    *,
    treatment_id: str = "",
    time_micros: int = 1_700_000_000_000_000,
) -> None:
    client.log_treatment_interaction(
        Interaction(
            project_id="PROJECT_ID",
            user_id=user_id,
            treatment_id=treatment_id,
            treatment_tracking_id=f"T-{user_id}",
            interaction_type=kind,
            interaction_time_micros=time_micros,
        )
    )


def _cart(client: Client, user_id: str) -> decisions.GetTreatmentsResponse:
    return client.get_treatments(
        decisions.GetTreatmentsRequest(
            project_id="PROJECT_ID",
            user_id=user_id,
            surfaces=[decisions.SurfaceRequest(surface="CART_SCREEN")],
        )
    )


# Every admin call, on both transports.


def test_interactions_are_listed_as_they_were_logged(admin: AdminCall, client: Client) -> None:
    _log(client, "u1", Interaction.CLICKED, treatment_id="CART_REMINDER")
    listed = admin("ListInteractions", emulator_pb2.ListInteractionsRequest())
    assert isinstance(listed, emulator_pb2.ListInteractionsResponse)
    (logged,) = listed.interactions
    assert logged.sequence == 1
    assert logged.interaction.user_id == "u1"
    assert logged.interaction.interaction_type == Interaction.CLICKED
    assert logged.interaction.treatment_id == "CART_REMINDER"


def test_decisions_are_listed_with_what_they_served(admin: AdminCall, client: Client) -> None:
    answer = _cart(client, "u2")
    listed = admin("ListDecisions", emulator_pb2.ListDecisionsRequest(user_id="u2"))
    assert isinstance(listed, emulator_pb2.ListDecisionsResponse)
    (decision,) = listed.decisions
    assert decision.response_id == answer.response_id
    assert [
        (s.treatment_id, s.surface, s.treatment_tracking_id) for s in decision.served_treatments
    ] == [(t.treatment_id, t.surface, t.treatment_tracking_id) for t in answer.user_treatments]


def test_the_clock_is_read_frozen_and_advanced(admin: AdminCall) -> None:
    frozen = emulator_pb2.SetClockRequest()
    frozen.freeze_time.FromDatetime(datetime.datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC))
    clock = admin("SetClock", frozen)
    assert isinstance(clock, emulator_pb2.SetClockResponse)
    assert (clock.clock.now.ToJsonString(), clock.clock.frozen) == ("2031-05-06T07:08:09Z", True)
    advanced = admin(
        "SetClock", emulator_pb2.SetClockRequest(advance=duration_pb2.Duration(seconds=3600))
    )
    assert isinstance(advanced, emulator_pb2.SetClockResponse)
    assert advanced.clock.now.ToJsonString() == "2031-05-06T08:08:09Z"
    read = admin("GetClock", emulator_pb2.GetClockRequest())
    assert isinstance(read, emulator_pb2.GetClockResponse)
    assert read.clock == advanced.clock
    real = admin("SetClock", emulator_pb2.SetClockRequest(real_time=True))
    assert isinstance(real, emulator_pb2.SetClockResponse)
    assert not real.clock.frozen
    now = datetime.datetime.now(UTC)
    assert abs(real.clock.now.ToDatetime(tzinfo=UTC) - now) < datetime.timedelta(minutes=1)


def test_faults_are_created_listed_and_cleared(admin: AdminCall) -> None:
    created = admin(
        "CreateFault",
        emulator_pb2.CreateFaultRequest(
            fault=emulator_pb2.Fault(method="GetTreatments", count=2, code=code_pb2.UNAVAILABLE)
        ),
    )
    assert isinstance(created, emulator_pb2.Fault)
    assert (created.name, created.remaining_count) == ("faults/1", 2)
    listed = admin("ListFaults", emulator_pb2.ListFaultsRequest())
    assert isinstance(listed, emulator_pb2.ListFaultsResponse)
    assert list(listed.faults) == [created]
    cleared = admin("ClearFaults", emulator_pb2.ClearFaultsRequest())
    assert isinstance(cleared, emulator_pb2.ClearFaultsResponse)
    assert cleared.cleared_count == 1
    after = admin("ListFaults", emulator_pb2.ListFaultsRequest())
    assert isinstance(after, emulator_pb2.ListFaultsResponse)
    assert not after.faults


def test_reset_answers_with_the_clock(admin: AdminCall, client: Client) -> None:
    _log(client, "u3")
    reset = admin("Reset", emulator_pb2.ResetRequest())
    assert isinstance(reset, emulator_pb2.ResetResponse)
    assert not reset.clock.frozen
    listed = admin("ListInteractions", emulator_pb2.ListInteractionsRequest())
    assert isinstance(listed, emulator_pb2.ListInteractionsResponse)
    assert not listed.interactions


def test_a_bad_admin_request_names_the_field(admin: AdminCall) -> None:
    with pytest.raises(ApiError) as raised:
        admin(
            "CreateFault",
            emulator_pb2.CreateFaultRequest(
                fault=emulator_pb2.Fault(method="Nope", count=0, code=code_pb2.UNAVAILABLE)
            ),
        )
    assert raised.value.code == Code.INVALID_ARGUMENT
    assert {v.field for v in raised.value.field_violations} == {"fault.method", "fault.count"}


def test_reset_of_a_project_the_seed_lacks_is_not_found(admin: AdminCall) -> None:
    with pytest.raises(ApiError) as raised:
        admin("Reset", emulator_pb2.ResetRequest(project_id="NOPE"))
    assert raised.value.code == Code.NOT_FOUND


# Keys.


@pytest.mark.parametrize(
    ("headers", "query"),
    [
        ({"x-api-key": "TEST_API_KEY"}, ""),
        ({"api-key": "API_KEY"}, ""),
        ({}, "?api-key=TEST_API_KEY"),
        ({"x-admin-key": "TEST_API_KEY"}, ""),
        ({"x-admin-key": "TEST_API_KEY", "x-api-key": "TEST_API_KEY"}, ""),
        ({}, ""),
    ],
    ids=["x-api-key", "api-key", "query", "api-key-as-admin-key", "both", "none"],
)
def test_an_api_key_never_reaches_the_admin_api_over_rest(
    auxia_server: LocalServer, http: httpx.Client, headers: dict[str, str], query: str
) -> None:
    answer = http.post(
        f"{auxia_server.rest_url}/emulator/v1/Reset{query}",
        json={},
        headers=headers,
    )
    assert answer.status_code == 401
    assert answer.json()["code"] == Code.UNAUTHENTICATED
    assert "TEST_API_KEY" not in answer.text
    assert "API_KEY" not in answer.json()["message"].replace("x-api-key", "")


@pytest.mark.parametrize(
    "metadata",
    [
        (("x-api-key", "TEST_API_KEY"),),
        (("x-admin-key", "TEST_API_KEY"),),
        (),
    ],
    ids=["x-api-key", "api-key-as-admin-key", "none"],
)
def test_an_api_key_never_reaches_the_admin_api_over_grpc(
    channel: grpc.Channel, metadata: tuple[tuple[str, str], ...]
) -> None:
    call = _grpc_admin(channel, None, metadata)
    with pytest.raises(ApiError) as raised:
        call("Reset", emulator_pb2.ResetRequest())
    assert raised.value.code == Code.UNAUTHENTICATED


def test_the_admin_key_is_not_an_api_key(auxia_server: LocalServer) -> None:
    with (
        auxia_server.client(api_key=auxia_server.admin_key) as client,
        pytest.raises(ApiError) as raised,
    ):
        _cart(client, "u4")
    assert raised.value.code == Code.UNAUTHENTICATED


def test_a_seed_whose_admin_key_is_an_api_key_does_not_start() -> None:
    seed = seed_pb2.Seed(
        admin_keys=["API_KEY"],
        projects=[
            seed_pb2.Project(
                project_id="P",
                numeric_project_id=1,
                api_keys=["API_KEY"],
                supported_language_codes=["en"],
            )
        ],
    )
    from auxia_decision.server import StartupError  # noqa: PLC0415

    with pytest.raises(StartupError) as raised:
        LocalServer(seed=seed).start()
    assert str(raised.value) == (
        'the seed is invalid: adminKeys[0]: the key is also an API key of project "P" '
        "(projects[0]): admin keys and API keys must differ"
    )


# Reset.


def test_reset_puts_the_seed_back(auxia_server: LocalServer, client: Client) -> None:
    sample = (FIXTURES / "docs" / "insert_treatment_request.json").read_text()
    request = RestCodec().decode_request(sample, management.InsertTreatmentRequest)
    inserted = client.insert_treatment(request).treatment
    field = RestCodec().decode_request(
        '{"projectId": "PROJECT_ID", "dataFieldParams": [{"eventDataFieldParams": '
        '{"eventSchemaName": "Checkout", "dailyCountAggregation": {"windowName": "LAST_3D"}}}]}',
        management.GetDataFieldsByParamsRequest,
    )
    first_id = client.get_data_fields(field).data_fields[0].data_field_id
    assert first_id == 10  # the seed's are 1 to 9
    _log(client, "u5")
    _cart(client, "u5")

    auxia_server.reset()

    assert auxia_server.interactions() == []
    assert auxia_server.decisions() == []
    with pytest.raises(ApiError) as raised:
        client.get_treatment(
            management.GetTreatmentRequest(
                project_id="PROJECT_ID", treatment_id=inserted.treatment_id
            )
        )
    assert raised.value.code == Code.NOT_FOUND
    # The docs' sample can be inserted again, and data fields are numbered as before.
    assert client.insert_treatment(request).treatment.name == inserted.name
    assert client.get_data_fields(field).data_fields[0].data_field_id == first_id
    seeded = client.get_treatment(
        management.GetTreatmentRequest(project_id="PROJECT_ID", treatment_id="CART_REMINDER")
    )
    assert seeded.treatment.status == treatment_pb2.TreatmentPb.LIVE


def test_a_whole_reset_clears_faults_and_restores_the_clock(auxia_server: LocalServer) -> None:
    auxia_server.faults.fail_next("GetTreatments", count=5)
    auxia_server.clock.freeze(datetime.datetime(2040, 1, 1, tzinfo=UTC))
    auxia_server.reset()
    assert auxia_server.faults.list() == []
    assert abs(auxia_server.clock.now() - datetime.datetime.now(UTC)) < datetime.timedelta(
        minutes=1
    )


def _two_projects() -> seed_pb2.Seed:
    projects = [
        seed_pb2.Project(
            project_id=name,
            numeric_project_id=number,
            api_keys=[f"{name}_KEY"],
            supported_language_codes=["en"],
        )
        for number, name in enumerate(("ALPHA", "BETA"), start=1)
    ]
    return seed_pb2.Seed(projects=projects)


@pytest.mark.auxia_seed(_two_projects())
def test_resetting_one_project_leaves_the_others(auxia_server: LocalServer) -> None:
    for project in ("ALPHA", "BETA"):
        with auxia_server.client(api_key=f"{project}_KEY") as client:
            client.log_treatment_interaction(
                Interaction(
                    project_id=project,
                    treatment_tracking_id="T",
                    interaction_type=Interaction.VIEWED,
                    interaction_time_micros=1,
                )
            )
    auxia_server.faults.fail_next("GetTreatments")
    frozen = auxia_server.clock.freeze(datetime.datetime(2033, 3, 3, tzinfo=UTC))

    auxia_server.reset("ALPHA")

    assert auxia_server.interactions(project_id="ALPHA") == []
    assert len(auxia_server.interactions(project_id="BETA")) == 1
    assert len(auxia_server.faults.list()) == 1
    assert auxia_server.clock.now() == frozen


@pytest.mark.auxia_seed(_two_projects())
def test_a_custom_seed_gets_a_server_of_its_own(auxia_server: LocalServer) -> None:
    assert [project.project_id for project in auxia_server.seed.projects] == ["ALPHA", "BETA"]
    assert auxia_server.api_key == "ALPHA_KEY"


# The clock.


def test_statuses_and_stored_times_follow_the_clock(
    auxia_server: LocalServer, client: Client
) -> None:
    def status(treatment_id: str) -> int:
        return client.get_treatment(
            management.GetTreatmentRequest(project_id="PROJECT_ID", treatment_id=treatment_id)
        ).treatment.status

    # Before the seed's treatments start (2024-01-01): scheduled, and nothing is served.
    before = auxia_server.clock.freeze(datetime.datetime(2023, 6, 1, tzinfo=UTC))
    assert status("CART_REMINDER") == treatment_pb2.TreatmentPb.SCHEDULED
    assert not _cart(client, "u6").user_treatments
    # After TREATMENT_ID's end (2127-01-15): archived.
    auxia_server.clock.freeze(datetime.datetime(2130, 1, 1, tzinfo=UTC))
    assert status("TREATMENT_ID") == treatment_pb2.TreatmentPb.ARCHIVED
    assert status("CART_REMINDER") == treatment_pb2.TreatmentPb.LIVE
    # What is stored carries the server's time.
    auxia_server.clock.freeze(before)
    auxia_server.clock.advance(datetime.timedelta(days=365))
    now = auxia_server.clock.now()
    answer = _cart(client, "u6")
    (decision,) = auxia_server.decisions(user_id="u6")
    assert decision.response_id == answer.response_id
    assert decision.decide_time.ToDatetime(tzinfo=UTC) == now
    sample = (FIXTURES / "docs" / "insert_treatment_request.json").read_text()
    request = RestCodec().decode_request(sample, management.InsertTreatmentRequest)
    inserted = client.insert_treatment(request).treatment
    assert inserted.last_modified_timestamp.ToDatetime(tzinfo=UTC) == now


def test_day_windows_follow_the_clock(auxia_server: LocalServer, client: Client) -> None:
    # CART_REMINDER is not shown for 30 days after a DISMISSED of it.
    start = auxia_server.clock.freeze(datetime.datetime(2030, 1, 10, 12, tzinfo=UTC))
    micros = int(start.timestamp() * 1_000_000)
    _log(client, "u7", Interaction.DISMISSED, treatment_id="CART_REMINDER", time_micros=micros)
    assert not _cart(client, "u7").user_treatments
    auxia_server.clock.advance(datetime.timedelta(days=29))
    assert not _cart(client, "u7").user_treatments
    auxia_server.clock.advance(datetime.timedelta(days=1))
    assert [t.treatment_id for t in _cart(client, "u7").user_treatments] == ["CART_REMINDER"]


def test_the_default_seed_works_years_from_now() -> None:
    # The README's flows, at a clock a decade ahead: the docs' world is still LIVE.
    with (
        LocalServer(frozen_at=datetime.datetime(2036, 11, 30, tzinfo=UTC)) as server,
        server.client() as client,
    ):
        assert [t.treatment_id for t in _cart(client, "reader-1").user_treatments] == [
            "CART_REMINDER"
        ]
        _log(client, "reader-1")
        for treatment_id in ("TREATMENT_ID", "CART_REMINDER", "WELCOME_BACK"):
            treatment = client.get_treatment(
                management.GetTreatmentRequest(project_id="PROJECT_ID", treatment_id=treatment_id)
            ).treatment
            assert treatment.status == treatment_pb2.TreatmentPb.LIVE, treatment_id
        field = management.GetDataFieldsByParamsRequest(project_id="PROJECT_ID")
        field.data_field_params.add().user_attribute_data_field_params.property_name = "country"
        assert client.get_data_fields(field).data_fields[0].data_field_id == 2


# Faults.


def test_a_fault_fails_the_next_calls_on_rest_and_grpc_alike(
    auxia_server: LocalServer, client: Client, channel: grpc.Channel
) -> None:
    auxia_server.faults.fail_next("LogTreatmentInteraction", Code.INTERNAL, count=2)
    stub = channel.unary_unary(
        "/io.auxia.decision.model.TreatmentInteractionService/LogTreatmentInteraction",
        request_serializer=lambda message: message.SerializeToString(),
        response_deserializer=interactions.LogTreatmentInteractionResponse.FromString,
    )
    request = Interaction(
        project_id="PROJECT_ID",
        user_id="u8",
        treatment_tracking_id="T",
        interaction_type=Interaction.VIEWED,
        interaction_time_micros=1,
    )
    with pytest.raises(ApiError) as over_rest:
        client.log_treatment_interaction(request)
    assert (over_rest.value.code, over_rest.value.http_status) == (Code.INTERNAL, 500)
    assert "faults/1" in over_rest.value.message
    with pytest.raises(grpc.RpcError) as over_grpc:
        stub(request, metadata=(("x-api-key", "TEST_API_KEY"),))
    assert over_grpc.value.code() == grpc.StatusCode.INTERNAL
    # Used up: the third call is stored, the failed ones are not.
    stub(request, metadata=(("x-api-key", "TEST_API_KEY"),))
    assert len(auxia_server.interactions(user_id="u8")) == 1
    assert auxia_server.faults.list() == []


def test_a_fault_may_give_rest_its_own_http_status(
    auxia_server: LocalServer, client: Client
) -> None:
    auxia_server.faults.fail_next(
        "GetTreatments", Code.UNAVAILABLE, count=4, http_status=502, message="bad gateway"
    )
    with pytest.raises(ApiError) as raised:
        _cart(client, "u9")  # the client retries UNAVAILABLE: four attempts, four failures
    assert (raised.value.code, raised.value.http_status) == (Code.UNAVAILABLE, 502)
    assert raised.value.message == "bad gateway"


def test_a_fraction_of_calls_fails_the_same_way_for_the_same_seed(
    auxia_server: LocalServer,
) -> None:
    def pattern() -> list[bool]:
        auxia_server.reset()
        auxia_server.faults.fail_fraction(
            "LogTreatmentInteraction", 0.3, Code.INTERNAL, random_seed=7
        )
        outcomes = []
        with auxia_server.client() as client:
            for index in range(60):
                try:
                    _log(client, f"f{index}")
                except ApiError:
                    outcomes.append(False)
                else:
                    outcomes.append(True)
        return outcomes

    first = pattern()
    assert first == pattern()
    assert 5 <= first.count(False) <= 35
    (fault,) = auxia_server.faults.list()
    assert fault.selected_count == first.count(False)


def test_a_delay_holds_the_call_then_runs_it(auxia_server: LocalServer, client: Client) -> None:
    auxia_server.faults.delay_next("*", 0.3)
    started = datetime.datetime.now(UTC)
    _log(client, "u10")
    assert datetime.datetime.now(UTC) - started >= datetime.timedelta(seconds=0.3)
    assert len(auxia_server.interactions(user_id="u10")) == 1


@pytest.mark.parametrize(
    ("fault", "field"),
    [
        ({"method": "GetTreatments", "count": 1}, "fault.code"),
        (
            {"method": "GetTreatments", "count": 1, "code": "UNAVAILABLE", "httpStatus": 200},
            "fault.httpStatus",
        ),
        ({"method": "GetTreatments", "fraction": 1.5, "code": "UNAVAILABLE"}, "fault.fraction"),
        ({"method": "GetTreatments", "count": 1, "delay": "61s"}, "fault.delay"),
        ({"method": "ListFaults", "count": 1, "code": "UNAVAILABLE"}, "fault.method"),
        ({"method": "GetTreatments", "code": "UNAVAILABLE"}, "fault.count"),
    ],
    ids=["no-effect", "http-status", "fraction", "delay", "admin-method", "no-selection"],
)
def test_a_fault_that_cannot_apply_is_refused(
    auxia_server: LocalServer, http: httpx.Client, fault: dict[str, object], field: str
) -> None:
    answer = http.post(
        f"{auxia_server.rest_url}/emulator/v1/CreateFault",
        json={"fault": fault},
        headers={"x-admin-key": auxia_server.admin_key},
    )
    assert answer.status_code == 400, answer.text
    fields = [
        violation["field"]
        for detail in answer.json()["details"]
        for violation in detail.get("fieldViolations", [])
    ]
    assert fields == [field]


# Listing.


def test_listings_filter_and_page(auxia_server: LocalServer, client: Client) -> None:
    for index in range(5):
        _log(
            client,
            f"user-{index % 2}",
            Interaction.CLICKED if index == 4 else Interaction.VIEWED,
            time_micros=1_000_000 * (index + 1),
            treatment_id="CART_REMINDER" if index < 2 else "WELCOME_BACK",
        )
    assert len(auxia_server.interactions(user_id="user-0")) == 3
    assert len(auxia_server.interactions(treatment_id="CART_REMINDER")) == 2
    assert len(auxia_server.interactions(interaction_type="CLICKED")) == 1
    assert len(auxia_server.interactions(treatment_tracking_id="T-user-1")) == 2
    window = auxia_server.interactions(
        start_time=datetime.datetime.fromtimestamp(2, UTC),
        end_time=datetime.datetime.fromtimestamp(4, UTC),
    )
    assert [i.interaction_time_micros for i in window] == [2_000_000, 3_000_000]
    newest = auxia_server.interactions(user_id="user-0", newest_first=True)
    assert [i.interaction_time_micros for i in newest] == [5_000_000, 3_000_000, 1_000_000]
    assert _pages_of_sequences(auxia_server, newest_first=False) == [[1, 2], [3, 4], [5]]
    assert _pages_of_sequences(auxia_server, newest_first=True) == [[5, 4], [3, 2], [1]]


@pytest.mark.parametrize(
    "changed",
    [{"userId": "user-1"}, {"newestFirst": True}, {"treatmentId": "CART_REMINDER"}],
    ids=["filter", "order", "filter-added"],
)
def test_a_page_token_holds_for_the_filters_and_order_it_came_with(
    auxia_server: LocalServer, http: httpx.Client, client: Client, changed: dict[str, object]
) -> None:
    for index in range(4):
        _log(client, f"user-{index % 2}", Interaction.VIEWED, time_micros=1_000_000 * (index + 1))
    asked: dict[str, object] = {"userId": "user-0", "pageSize": 1}

    def listed(body: dict[str, object]) -> httpx.Response:
        return http.post(
            f"{auxia_server.rest_url}/emulator/v1/ListInteractions",
            json=body,
            headers={"x-admin-key": auxia_server.admin_key},
        )

    token = listed(asked).json()["nextPageToken"]
    # Another page size is the same listing, in pages of another size.
    again = listed({**asked, "pageSize": 5, "pageToken": token})
    assert again.status_code == 200, again.text
    assert len(again.json()["interactions"]) == 1
    refused = listed({**asked, **changed, "pageToken": token})
    assert refused.status_code == 400
    (found,) = refused.json()["details"][0]["fieldViolations"]
    assert found["field"] == "pageToken"
    assert "other filters or another order" in found["description"]


def _pages_of_sequences(server: LocalServer, *, newest_first: bool) -> list[list[int]]:
    """Return the sequence numbers of every page of ListInteractions, two a page."""
    pages = []
    request = emulator_pb2.ListInteractionsRequest(page_size=2, newest_first=newest_first)
    admin = server.admin
    while True:
        page = admin.call(admin.stub.ListInteractions, request)
        pages.append([logged.sequence for logged in page.interactions])
        if not page.next_page_token:
            return pages
        request.page_token = page.next_page_token


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"pageSize": -1}, "pageSize"),
        ({"pageToken": "abc"}, "pageToken"),
        ({"pageToken": str(2**63)}, "pageToken"),  # past any sequence: was a 500
        ({"pageToken": "9" * 5000}, "pageToken"),  # past Python's int() of a string
        ({"startTime": "2030-01-02T00:00:00Z", "endTime": "2030-01-01T00:00:00Z"}, "endTime"),
        ({"interactionType": "LOOKED"}, "interactionType"),
    ],
    ids=["page-size", "page-token", "page-token-too-big", "page-token-too-long", "window", "type"],
)
def test_a_bad_listing_names_the_field(
    auxia_server: LocalServer, http: httpx.Client, body: dict[str, object], field: str
) -> None:
    answer = http.post(
        f"{auxia_server.rest_url}/emulator/v1/ListInteractions",
        json=body,
        headers={"x-admin-key": auxia_server.admin_key},
    )
    assert answer.status_code == 400
    assert answer.json()["details"][0]["fieldViolations"][0]["field"] == field


# Health and documents.


def test_health_and_the_documents(auxia_server: LocalServer, http: httpx.Client) -> None:
    health = http.get(f"{auxia_server.rest_url}/healthz")
    assert (health.status_code, health.json()) == (200, {"status": "SERVING"})
    api = http.get(f"{auxia_server.rest_url}/openapi.json").json()
    emulator = http.get(f"{auxia_server.rest_url}/emulator/v1/openapi.json").json()
    assert not [path for path in api["paths"] if "emulator" in path]
    assert "/emulator/v1/ListInteractions" in emulator["paths"]
    assert json.dumps(api).count("x-admin-key") == 0


# Why (not), and the projects.


def test_a_decision_is_explained_without_being_made(admin: AdminCall, client: Client) -> None:
    asked = decisions.GetTreatmentsRequest(
        project_id="PROJECT_ID",
        user_id="u11",
        surfaces=[decisions.SurfaceRequest(surface="CART_SCREEN")],
    )
    explained = admin("ExplainDecision", emulator_pb2.ExplainDecisionRequest(request=asked))
    assert isinstance(explained, emulator_pb2.ExplainDecisionResponse)
    outcomes = {v.treatment_id: v.outcome for v in explained.verdicts}
    assert outcomes["CART_REMINDER"] == emulator_pb2.Verdict.SERVED
    assert outcomes["WELCOME_BACK"] == emulator_pb2.Verdict.NOT_ON_SURFACE
    # Explaining served nothing: no decision is listed.
    assert admin("ListDecisions", emulator_pb2.ListDecisionsRequest(user_id="u11")) == (
        emulator_pb2.ListDecisionsResponse()
    )
    now = datetime.datetime.now(UTC).timestamp()
    _log(
        client,
        "u11",
        Interaction.DISMISSED,
        treatment_id="CART_REMINDER",
        time_micros=int(now * 1_000_000),
    )
    again = admin("ExplainDecision", emulator_pb2.ExplainDecisionRequest(request=asked))
    assert isinstance(again, emulator_pb2.ExplainDecisionResponse)
    (suppressed,) = [v for v in again.verdicts if v.treatment_id == "CART_REMINDER"]
    assert suppressed.outcome == emulator_pb2.Verdict.SUPPRESSED
    assert suppressed.detail.startswith("rule failed: DISMISSED count of CART_REMINDER")


@pytest.mark.parametrize(
    ("asked", "code"),
    [
        (decisions.GetTreatmentsRequest(project_id="NOPE", user_id="u"), Code.INVALID_ARGUMENT),
        (
            decisions.GetTreatmentsRequest(
                project_id="NOPE",
                user_id="u",
                surfaces=[decisions.SurfaceRequest(surface="S")],
            ),
            Code.NOT_FOUND,
        ),
    ],
    ids=["no-surface", "no-project"],
)
def test_a_decision_that_cannot_be_explained_says_why(
    admin: AdminCall, asked: decisions.GetTreatmentsRequest, code: Code
) -> None:
    with pytest.raises(ApiError) as raised:
        admin("ExplainDecision", emulator_pb2.ExplainDecisionRequest(request=asked))
    assert raised.value.code == code


def test_the_projects_are_listed_with_their_treatments(admin: AdminCall) -> None:
    listed = admin("ListProjects", emulator_pb2.ListProjectsRequest())
    assert isinstance(listed, emulator_pb2.ListProjectsResponse)
    (project,) = [p for p in listed.projects if p.project_id == "PROJECT_ID"]
    assert project.numeric_project_id == 1
    treatments = {t.treatment_id: t for t in project.treatments}
    assert treatments["CART_REMINDER"].status == treatment_pb2.TreatmentPb.LIVE
    assert [field.data_field_id for field in project.data_fields] == list(range(1, 10))
    assert {t.name for t in project.treatment_types} == {"IN_APP_CONTENT", "IN_APP_CONTENT_CARD"}


def test_recent_decisions_include_those_that_served_nothing(
    admin: AdminCall, auxia_server: LocalServer, client: Client
) -> None:
    served = _cart(client, "u12")
    nothing = client.get_treatments(
        decisions.GetTreatmentsRequest(
            project_id="PROJECT_ID",
            user_id="u12",
            surfaces=[decisions.SurfaceRequest(surface="SURFACE")],
            language_code="ja",  # TREATMENT_ID has no Japanese content
        )
    )
    listed = admin("ListRecentDecisions", emulator_pb2.ListRecentDecisionsRequest(user_id="u12"))
    assert isinstance(listed, emulator_pb2.ListRecentDecisionsResponse)
    newest, oldest = listed.decisions
    assert (newest.response, oldest.response) == (nothing, served)
    assert newest.request.language_code == "ja"
    assert not newest.response.user_treatments
    auxia_server.reset()
    again = admin("ListRecentDecisions", emulator_pb2.ListRecentDecisionsRequest())
    assert again == emulator_pb2.ListRecentDecisionsResponse()
