"""Typed Python helpers over the emulator admin API of a running server (over gRPC)."""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterator
from typing import Final, TypeVar

import grpc
from google.protobuf import duration_pb2, timestamp_pb2
from google.protobuf.message import Message

from auxia.decision.emulator.v1 import emulator_pb2, emulator_pb2_grpc
from auxia.decision.model import treatment_decision_service_pb2 as decision_service
from auxia.decision.model import treatment_interaction_service_pb2 as interactions
from auxia_decision._errors import ApiError, Code
from auxia_decision._sendable import check_key
from auxia_decision.server._transport.bindings import ADMIN_KEY_HEADER

M = TypeVar("M", bound=Message)
_Paged = (
    emulator_pb2.ListInteractionsRequest
    | emulator_pb2.ListDecisionsRequest
    | emulator_pb2.ListJournalRequest
)
P = TypeVar(
    "P",
    emulator_pb2.ListInteractionsResponse,
    emulator_pb2.ListDecisionsResponse,
    emulator_pb2.ListJournalResponse,
)
_EPOCH: Final = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
InteractionType = interactions.LogTreatmentInteractionRequest.InteractionType


def _timestamp(moment: datetime.datetime) -> timestamp_pb2.Timestamp:
    if moment.tzinfo is None:
        msg = f"{moment.isoformat()} has no time zone: pass an aware datetime (tz=datetime.UTC)"
        raise ValueError(msg)
    timestamp = timestamp_pb2.Timestamp()
    timestamp.FromMicroseconds((moment - _EPOCH) // datetime.timedelta(microseconds=1))
    return timestamp


def _duration(span: datetime.timedelta | float) -> duration_pb2.Duration | None:
    """Return a span as a Duration, or None for no time at all (left unset)."""
    if not span:
        return None
    duration = duration_pb2.Duration()
    if isinstance(span, datetime.timedelta):
        duration.FromTimedelta(span)
    else:
        duration.FromNanoseconds(round(span * 1e9))
    return duration


def _set_window(
    request: _Paged,
    start_time: datetime.datetime | None,
    end_time: datetime.datetime | None,
) -> None:
    if start_time is not None:
        request.start_time.CopyFrom(_timestamp(start_time))
    if end_time is not None:
        request.end_time.CopyFrom(_timestamp(end_time))


def _datetime(timestamp: timestamp_pb2.Timestamp) -> datetime.datetime:
    return _EPOCH + datetime.timedelta(microseconds=timestamp.ToMicroseconds())


class EmulatorAdmin:
    """The emulator admin API of a running server, as typed Python calls.

    Every call raises ApiError when the server refuses it. ``clock`` and
    ``faults`` group the calls on the clock and on faults.

    Args:
        grpc_target: the server's gRPC address (``127.0.0.1:50051``).
        admin_key: an admin key of the server's seed (``adminKeys``).
        timeout: seconds each call may take.

    """

    def __init__(self, grpc_target: str, admin_key: str, *, timeout: float = 30.0) -> None:
        check_key(admin_key, "admin_key")
        self._channel = grpc.insecure_channel(grpc_target)
        self.stub = emulator_pb2_grpc.EmulatorServiceStub(self._channel)
        """The generated stub, for calls ``call`` makes with the admin key."""
        self._metadata = ((ADMIN_KEY_HEADER, admin_key),)
        self._timeout = timeout
        self.clock = ClockControl(self)
        """The server's clock: read, freeze, advance, back to real time."""
        self.faults = FaultControl(self)
        """Faults on the Auxia API's calls: arm, list, clear."""

    def call(self, method: Callable[..., M], request: Message) -> M:
        """Call one admin RPC with the admin key; raise ApiError when it fails."""
        try:
            return method(request, metadata=self._metadata, timeout=self._timeout)
        except grpc.RpcError as error:
            raise ApiError.from_grpc_error(error) from None

    def reset(self, project_id: str = "") -> None:
        """Put the server back as its seed made it (only ``project_id`` when given).

        A whole-server reset also clears the faults and sets the clock back as
        the server started.
        """
        self.call(self.stub.Reset, emulator_pb2.ResetRequest(project_id=project_id))

    def interactions(
        self,
        *,
        project_id: str = "",
        user_id: str = "",
        treatment_tracking_id: str = "",
        treatment_id: str = "",
        interaction_type: InteractionType.ValueType | str | None = None,
        start_time: datetime.datetime | None = None,
        end_time: datetime.datetime | None = None,
        newest_first: bool = False,
    ) -> list[interactions.LogTreatmentInteractionRequest]:
        """Return the logged interactions that match every filter given, oldest or newest first."""
        request = emulator_pb2.ListInteractionsRequest(
            project_id=project_id,
            user_id=user_id,
            treatment_tracking_id=treatment_tracking_id,
            treatment_id=treatment_id,
            newest_first=newest_first,
        )
        if interaction_type is not None:
            request.interaction_type = (
                InteractionType.Value(interaction_type)
                if isinstance(interaction_type, str)
                else interaction_type
            )
        _set_window(request, start_time, end_time)
        return [logged.interaction for logged in self._interaction_pages(request)]

    def _interaction_pages(
        self, request: emulator_pb2.ListInteractionsRequest
    ) -> Iterator[emulator_pb2.LoggedInteraction]:
        for page in self._pages(self.stub.ListInteractions, request):
            yield from page.interactions

    def _pages(self, method: Callable[..., P], request: _Paged) -> Iterator[P]:
        """Yield every page of a listing, from its first (the request's page token is set)."""
        while True:
            page = self.call(method, request)
            yield page
            if not page.next_page_token:
                return
            request.page_token = page.next_page_token

    def decisions(
        self,
        *,
        project_id: str = "",
        user_id: str = "",
        treatment_tracking_id: str = "",
        treatment_id: str = "",
        surface: str = "",
        start_time: datetime.datetime | None = None,
        end_time: datetime.datetime | None = None,
        newest_first: bool = False,
    ) -> list[emulator_pb2.ServedDecision]:
        """Return the decisions of GetTreatments that served treatments and match every filter.

        Oldest first, or newest first.
        """
        request = emulator_pb2.ListDecisionsRequest(
            project_id=project_id,
            user_id=user_id,
            treatment_tracking_id=treatment_tracking_id,
            treatment_id=treatment_id,
            surface=surface,
            newest_first=newest_first,
        )
        _set_window(request, start_time, end_time)
        return [
            decision
            for page in self._pages(self.stub.ListDecisions, request)
            for decision in page.decisions
        ]

    def explain(self, request: decision_service.GetTreatmentsRequest) -> list[emulator_pb2.Verdict]:
        """Return what GetTreatments would give each treatment for a request now, and why.

        Nothing is served or stored.
        """
        explained = self.call(
            self.stub.ExplainDecision, emulator_pb2.ExplainDecisionRequest(request=request)
        )
        return list(explained.verdicts)

    def journal(
        self,
        *,
        method: str = "",
        code: Code | None = None,
        failed_only: bool = False,
        http_status: int = 0,
        project_id: str = "",
        user_id: str = "",
        api_calls_only: bool = False,
        start_time: datetime.datetime | None = None,
        end_time: datetime.datetime | None = None,
    ) -> list[emulator_pb2.JournalEntry]:
        """Return the calls the server answered that match every filter given, oldest first.

        ``method`` is an RPC's short or full name; ``code`` how the calls ended
        (``Code.OK``: those that succeeded). Raises ApiError (FAILED_PRECONDITION)
        when the server keeps no journal.
        """
        request = emulator_pb2.ListJournalRequest(
            method=method,
            failed_only=failed_only,
            http_status=http_status,
            project_id=project_id,
            user_id=user_id,
            api_calls_only=api_calls_only,
            page_size=1000,
        )
        if code is not None:
            request.code = int(code)  # type: ignore[assignment]
        _set_window(request, start_time, end_time)
        return [
            entry for page in self._pages(self.stub.ListJournal, request) for entry in page.entries
        ]

    def projects(self) -> list[emulator_pb2.ProjectView]:
        """Return the projects with their treatment types, data fields and treatments."""
        return list(self.call(self.stub.ListProjects, emulator_pb2.ListProjectsRequest()).projects)

    def close(self) -> None:
        """Close the gRPC channel."""
        self._channel.close()


class ClockControl:
    """The server's clock, through the emulator admin API.

    Args:
        admin: the admin API of the server.

    """

    def __init__(self, admin: EmulatorAdmin) -> None:
        self._admin = admin

    def _set(self, request: emulator_pb2.SetClockRequest) -> datetime.datetime:
        return _datetime(self._admin.call(self._admin.stub.SetClock, request).clock.now)

    def now(self) -> datetime.datetime:
        """Return the server's current time (UTC)."""
        clock = self._admin.call(self._admin.stub.GetClock, emulator_pb2.GetClockRequest())
        return _datetime(clock.clock.now)

    def freeze(self, at: datetime.datetime) -> datetime.datetime:
        """Stop the clock at a time (an aware datetime); return it."""
        return self._set(emulator_pb2.SetClockRequest(freeze_time=_timestamp(at)))

    def advance(self, by: datetime.timedelta | float) -> datetime.datetime:
        """Move the clock forward (a timedelta, or seconds); return the new time."""
        return self._set(
            emulator_pb2.SetClockRequest(advance=_duration(by) or duration_pb2.Duration())
        )

    def use_real_time(self) -> datetime.datetime:
        """Give the clock back to the system's time, unshifted; return the time."""
        return self._set(emulator_pb2.SetClockRequest(real_time=True))


class FaultControl:
    """Faults on the calls of the Auxia API, through the emulator admin API.

    ``method`` is an RPC's short name (``LogTreatmentInteraction``) or ``*``
    for every method. Faults apply on REST and gRPC alike, to calls that are
    authenticated, authorized and valid; a whole-server reset clears them.

    Args:
        admin: the admin API of the server.

    """

    def __init__(self, admin: EmulatorAdmin) -> None:
        self._admin = admin

    def arm(self, fault: emulator_pb2.Fault) -> emulator_pb2.Fault:
        """Arm a fault as the admin API defines it; return it with its name."""
        return self._admin.call(
            self._admin.stub.CreateFault,
            emulator_pb2.CreateFaultRequest(fault=fault),
        )

    def fail_next(
        self,
        method: str,
        code: Code = Code.UNAVAILABLE,
        *,
        count: int = 1,
        http_status: int = 0,
        message: str = "",
        delay: datetime.timedelta | float = 0,
    ) -> emulator_pb2.Fault:
        """Fail the next ``count`` calls of ``method`` with ``code`` (after ``delay``)."""
        return self.arm(
            emulator_pb2.Fault(
                method=method,
                count=count,
                code=int(code),  # type: ignore[arg-type]
                http_status=http_status,
                message=message,
                delay=_duration(delay),
            )
        )

    def fail_fraction(
        self,
        method: str,
        fraction: float,
        code: Code = Code.UNAVAILABLE,
        *,
        random_seed: int = 0,
        http_status: int = 0,
        message: str = "",
    ) -> emulator_pb2.Fault:
        """Fail each call of ``method`` with probability ``fraction``, reproducibly by seed."""
        return self.arm(
            emulator_pb2.Fault(
                method=method,
                fraction=fraction,
                random_seed=random_seed,
                code=int(code),  # type: ignore[arg-type]
                http_status=http_status,
                message=message,
            )
        )

    def delay_next(
        self, method: str, delay: datetime.timedelta | float, *, count: int = 1
    ) -> emulator_pb2.Fault:
        """Delay the next ``count`` calls of ``method`` (a timedelta, or seconds); they then run."""
        return self.arm(emulator_pb2.Fault(method=method, count=count, delay=_duration(delay)))

    def evolve(self, method: str = "*", *, count: int | None = None) -> emulator_pb2.Fault:
        """Answer calls of ``method`` (REST) as a newer version of the API could.

        The answers of the next ``count`` calls (None: of every call, until
        cleared) carry what the schema lacks: ``evolvedField`` in every JSON
        object of a message, ``EVOLVED_VALUE`` in every enum field, and an
        ``evolvedObject`` at the top (docs/emulator.md has the rules).
        """
        fault = emulator_pb2.Fault(method=method, evolve=True)
        if count is None:
            fault.fraction = 1.0
        else:
            fault.count = count
        return self.arm(fault)

    def list(self) -> list[emulator_pb2.Fault]:
        """Return the armed faults, in the order they apply."""
        response = self._admin.call(
            self._admin.stub.ListFaults,
            emulator_pb2.ListFaultsRequest(),
        )
        return list(response.faults)

    def clear(self) -> int:
        """Disarm every fault; return how many there were."""
        response = self._admin.call(
            self._admin.stub.ClearFaults,
            emulator_pb2.ClearFaultsRequest(),
        )
        return response.cleared_count
