"""The emulator admin API (``io.auxia.decision.emulator.v1.EmulatorService``), for any transport."""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any

from google.protobuf.message import Message

from auxia.decision.emulator.v1 import emulator_pb2
from auxia.decision.model import data_field_pb2, treatment_pb2
from auxia.decision.server import seed_pb2
from auxia_decision._errors import ApiError, Code, invalid_field
from auxia_decision._routes import services
from auxia_decision._validation import check_request, clear_output_only
from auxia_decision.server._domain.auth import key_digest, seed_key_digest
from auxia_decision.server._domain.clock import ControlledClock
from auxia_decision.server._domain.decisions import DecisionRequest, Verdict, decide
from auxia_decision.server._domain.seed import apply_seed, digested, project_seed
from auxia_decision.server._domain.servicer import ApiServicer
from auxia_decision.server._domain.treatments import with_statuses
from auxia_decision.server._emulator.faults import FaultPlan
from auxia_decision.server._emulator.inspection import list_decisions, list_interactions
from auxia_decision.server._emulator.journal import Journal
from auxia_decision.server._emulator.journal_listing import JournalView
from auxia_decision.server._emulator.recent_decisions import RecentDecisions, served_nothing
from auxia_decision.server._emulator.shared_state import (
    CLOCK,
    RESETS,
    SEED,
    WHOLE_RESETS,
    SharedState,
    count_of,
    decode_clock,
    encode_clock,
)
from auxia_decision.server._storage.seam import ProjectRecord, Repository, Store, StoredTreatment
from auxia_decision.server._transport.bindings import ADMIN_KEY_HEADER

SERVICE = emulator_pb2.DESCRIPTOR.services_by_name["EmulatorService"]
"""The descriptor of the admin API's service."""

_Outcome = emulator_pb2.Verdict.Outcome
_OUTCOMES = {
    "served": _Outcome.SERVED,
    "not live": _Outcome.NOT_LIVE,
    "not on this surface": _Outcome.NOT_ON_SURFACE,
    "no content": _Outcome.NO_CONTENT,
    "suppressed": _Outcome.SUPPRESSED,
    "chosen for another surface": _Outcome.CHOSEN_FOR_ANOTHER_SURFACE,
    "exclusion group": _Outcome.EXCLUDED_BY_GROUP,
    "surface full": _Outcome.SURFACE_FULL,
    "below the minimum": _Outcome.BELOW_MINIMUM,
}

_ProjectContents = tuple[
    ProjectRecord,
    list[treatment_pb2.TreatmentTypePb],
    dict[int, tuple[data_field_pb2.DataFieldParams, str]],
    list[StoredTreatment],
]


def verdict_message(verdict: Verdict) -> emulator_pb2.Verdict:
    """Return a verdict of a decision as the admin API shows it."""
    return emulator_pb2.Verdict(
        surface=verdict.surface,
        treatment_id=verdict.treatment_id,
        outcome=_OUTCOMES[verdict.outcome],
        detail=verdict.detail,
    )


def _projects(repository: Repository) -> list[_ProjectContents]:
    """Return every project with its treatment types, data fields and treatments."""
    return [
        (
            project,
            repository.treatment_types(project.project_id),
            repository.data_fields(project.project_id),
            repository.treatments(project.project_id),
        )
        for project in repository.projects()
    ]


class EmulatorServicer:
    """Serves the emulator admin API: inspection, reset, clock and faults.

    Transports call ``admit`` with the keys of a call (an admin key, or an API
    key offered by mistake), then ``invoke``. Every failure is an ApiError.

    Args:
        api: the servicer of the Auxia API, whose keys and catalogs this reads.
        store: the store both servicers use.
        seed: the checked seed the server started from, what a reset restores.
        clock: the server's clock, the one ``api`` reads.
        faults: the faults armed on ``api``'s calls.
        recent: the GetTreatments calls ``api`` answered last.
        shared: where the server processes that share ``store`` keep the
            clock, the faults and the seed (``share`` takes them in); None:
            this process alone has them.
        journal: the calls both transports answered; None: the server keeps none.

    """

    def __init__(
        self,
        api: ApiServicer,
        store: Store,
        seed: seed_pb2.Seed,
        clock: ControlledClock,
        *,
        faults: FaultPlan,
        recent: RecentDecisions,
        shared: SharedState | None = None,
        journal: Journal | None = None,
    ) -> None:
        self._api = api
        self._shared = shared
        self._resets = 0
        self._whole_resets = 0
        self._reloads: set[asyncio.Future[None]] = set()
        self._store = store
        self._seed = seed
        self._shared_seed = digested(seed).SerializeToString()
        """The seed as processes sharing the store keep it: its keys as digests."""
        self._clock = clock
        self._faults = faults
        self._recent = recent
        self._journal = journal
        keys = [key for project in seed.projects for key in project.api_keys]
        self._journal_view = JournalView(
            [*services(), SERVICE], SERVICE.full_name, [*keys, *seed.admin_keys], self._near_miss
        )
        self._admin_digests = tuple(seed_key_digest(key) for key in seed.admin_keys)
        self._full_names = {
            method.full_name: method.name for service in services() for method in service.methods
        }
        self._handlers: Mapping[str, Callable[[Message], Awaitable[Message]]] = {
            "ListInteractions": self._list_interactions,
            "ListDecisions": self._list_decisions,
            "ListRecentDecisions": self._list_recent_decisions,
            "ExplainDecision": self._explain_decision,
            "ListProjects": self._list_projects,
            "Reset": self._reset,
            "GetClock": self._get_clock,
            "SetClock": self._set_clock,
            "CreateFault": self._create_fault,
            "ListFaults": self._list_faults,
            "ClearFaults": self._clear_faults,
            "ListJournal": self._list_journal,
        }

    async def share(self) -> None:
        """Join the processes that share the store: publish the seed, take in the shared state.

        The seed (and its admin keys) of the last process started is every
        process's; the clock is set from this process's start only when the
        store has none yet, so that a process (re)started later does not
        move the clock of those running.
        """
        shared = self._shared
        if shared is None:
            return
        seed = self._shared_seed  # no key in clear in the store
        await shared.change_state(SEED, lambda _: (seed, None))
        start = encode_clock(*self._clock.start_state())
        await shared.change_state(CLOCK, lambda found: (found or start, None))
        self._faults.share(shared)
        self._follow(shared.state())
        shared.watch_state(self._follow)

    def _follow(self, state: dict[str, bytes]) -> None:
        """Take in the shared state: the clock, the seed and its admin keys, a whole reset."""
        clock = state.get(CLOCK)
        if clock is not None and decode_clock(clock) != self._clock.state():
            self._clock.set_state(*decode_clock(clock))
            if self._journal is not None:
                self._journal.clock_changed()
        seed = state.get(SEED)
        if seed is not None and seed != self._shared_seed:
            self._seed = seed_pb2.Seed.FromString(seed)
            self._shared_seed = seed
            self._admin_digests = tuple(seed_key_digest(key) for key in self._seed.admin_keys)
        whole_resets = count_of(state.get(WHOLE_RESETS))
        if whole_resets != self._whole_resets:
            # Another process reset the whole server: the journal starts again.
            self._whole_resets = whole_resets
            if self._journal is not None:
                self._journal.clear()
        resets = count_of(state.get(RESETS))
        if resets != self._resets:
            # Another process reset the server or a project: the API keys were written again.
            self._resets = resets
            task = asyncio.ensure_future(self._api.load_keys())
            self._reloads.add(task)
            task.add_done_callback(self._reloads.discard)

    def admit(self, api_key: str | None, admin_key: str | None) -> Coroutine[Any, Any, None] | None:
        """Raise UNAUTHENTICATED unless ``admin_key`` is an admin key of the seed.

        Keys are compared by digest, in constant time; no key is ever named in
        an error. An API key is never accepted: the error says so. On a shared
        store this returns a coroutine that checks the key after a sync: against
        the seed of the last replica started, as of a sync after the call
        arrived.
        """
        if not admin_key:
            if api_key is not None:
                msg = (
                    "the emulator admin API does not accept API keys: send an admin key "
                    f"of the seed in the {ADMIN_KEY_HEADER} header"
                )
            else:
                msg = f"the emulator admin API needs an admin key of the seed in {ADMIN_KEY_HEADER}"
            raise ApiError(Code.UNAUTHENTICATED, msg)
        shared = self._shared
        if shared is not None:
            key = admin_key

            async def confirmed() -> None:
                await shared.synchronize("")
                self._check_admin_key(key)

            return confirmed()
        self._check_admin_key(admin_key)
        return None

    def _check_admin_key(self, admin_key: str) -> None:
        """Raise UNAUTHENTICATED unless ``admin_key`` is an admin key of the seed known now."""
        if not self._admin_digests:
            raise ApiError(
                Code.PERMISSION_DENIED,
                "the seed has no adminKeys, so the emulator admin API is off",
            )
        digest = key_digest(admin_key)
        matched = False
        for known in self._admin_digests:
            matched |= hmac.compare_digest(digest, known)
        if not matched:
            raise ApiError(
                Code.UNAUTHENTICATED, f"the {ADMIN_KEY_HEADER} is not an admin key of the seed"
            )

    async def invoke(self, caller: None, method: str, request: Message) -> Message:
        """Run an admin RPC by short name for an admitted caller (``admit``'s None)."""
        del caller
        handler = self._handlers.get(method)
        if handler is None:
            raise ApiError(Code.UNIMPLEMENTED, f"the method {method} is not implemented")
        if check_request(request).warnings:
            clear_output_only(request)
        if self._shared is not None:
            await self._shared.synchronize("")
        return await handler(request)

    # Inspection.

    async def _list_interactions(self, request: Message) -> Message:
        assert isinstance(request, emulator_pb2.ListInteractionsRequest)
        return await self._store.read(lambda repository: list_interactions(repository, request))

    async def _list_decisions(self, request: Message) -> Message:
        assert isinstance(request, emulator_pb2.ListDecisionsRequest)
        return await self._store.read(lambda repository: list_decisions(repository, request))

    async def _list_recent_decisions(self, request: Message) -> Message:
        assert isinstance(request, emulator_pb2.ListRecentDecisionsRequest)
        found = emulator_pb2.ListRecentDecisionsResponse()
        for time_micros, _, served, answer in await self._recent.listed(
            request.project_id, request.user_id
        ):
            recent = found.decisions.add(request=served, response=answer)
            recent.decide_time.FromMicroseconds(time_micros)
            response_id = served_nothing(answer)
            if response_id:
                recent.verdicts.extend(self._near_miss(response_id))
        return found

    def _near_miss(self, response_id: str) -> list[emulator_pb2.Verdict]:
        """Return the verdicts of the moment of a GetTreatments that served nothing, if kept."""
        return [verdict_message(verdict) for verdict in self._recent.near_miss(response_id) or ()]

    async def _explain_decision(self, request: Message) -> Message:
        assert isinstance(request, emulator_pb2.ExplainDecisionRequest)
        asked = request.request
        project_id = asked.project_id
        known = await self._store.read(lambda repository: repository.project_ids())
        if project_id not in known:
            raise ApiError(Code.NOT_FOUND, f'request.projectId: there is no project "{project_id}"')
        catalog = await self._api.catalog(project_id)
        activity = await self._store.activity(project_id, asked.user_id)
        now = (
            request.decide_time.ToMicroseconds()
            if request.HasField("decide_time")
            else self._clock.now()
        )
        decision = decide(catalog, DecisionRequest.from_message(asked), activity, now, explain=True)
        explained = emulator_pb2.ExplainDecisionResponse(
            verdicts=[verdict_message(verdict) for verdict in decision.verdicts or ()]
        )
        explained.decide_time.FromMicroseconds(now)
        return explained

    async def _list_projects(self, request: Message) -> Message:
        assert isinstance(request, emulator_pb2.ListProjectsRequest)
        now = self._clock.now()
        found = await self._store.read(_projects)
        return emulator_pb2.ListProjectsResponse(
            projects=[
                emulator_pb2.ProjectView(
                    project_id=project.project_id,
                    numeric_project_id=project.numeric_project_id,
                    supported_language_codes=sorted(project.supported_language_codes),
                    treatment_types=types,
                    data_fields=[
                        data_field_pb2.ResolvedDataFieldPb(
                            data_field_id=number, data_field_params=params, data_field_type=kind
                        )
                        for number, (params, kind) in sorted(fields.items())
                    ],
                    treatments=[with_statuses(stored, now) for stored in treatments],
                )
                for project, types, fields, treatments in found
            ]
        )

    # Reset.

    async def _reset(self, request: Message) -> Message:
        assert isinstance(request, emulator_pb2.ResetRequest)
        project_id = request.project_id
        shared = self._shared
        if project_id:
            seed = project_seed(self._seed, project_id)
            if seed is None:
                raise ApiError(Code.NOT_FOUND, f'projectId: the seed has no project "{project_id}"')
            self._recent.forget(project_id)
        elif shared is not None:
            # The clock first: the seed is written as of its start. The faults and the
            # journal once the data is replaced, which may fail (UNAVAILABLE: try again).
            seed = self._seed
            start = encode_clock(*self._clock.start_state())
            await shared.change_state(CLOCK, lambda _: (start, None))
        else:
            seed = self._seed
            self._faults.reset()
            self._clock.restore()
            self._recent.forget()
            if self._journal is not None:
                self._journal.clear()  # which notes the clock as restored
        now = self._clock.now()

        def replace(repository: Repository) -> None:
            if project_id:
                repository.delete_project(project_id)
            else:
                repository.delete_everything()
            apply_seed(repository, seed, now)

        await self._store.replace(project_id or None, replace)
        if shared is not None and not project_id:
            await self._faults.clear_shared(reset=True)
            if self._journal is not None:
                self._journal.clear()  # which notes the clock as restored
        if shared is not None:
            # The counts are taken in as they are written, before this process's own
            # ``_follow`` hears of them: a reset of its own is not another's.

            def whole_reset(found: bytes | None) -> tuple[bytes, None]:
                value, self._whole_resets = _counted(found)
                return value, None

            def reset(found: bytes | None) -> tuple[bytes, None]:
                value, self._resets = _counted(found)
                return value, None

            if not project_id:
                await shared.change_state(WHOLE_RESETS, whole_reset)
            await shared.change_state(RESETS, reset)
        await self._api.load_keys()
        return emulator_pb2.ResetResponse(clock=self._clock_message())

    # The clock.

    def _clock_message(self) -> emulator_pb2.Clock:
        clock = emulator_pb2.Clock(frozen=self._clock.frozen)
        clock.now.FromMicroseconds(self._clock.now())
        return clock

    async def _get_clock(self, request: Message) -> Message:
        assert isinstance(request, emulator_pb2.GetClockRequest)
        return emulator_pb2.GetClockResponse(clock=self._clock_message())

    async def _set_clock(self, request: Message) -> Message:
        assert isinstance(request, emulator_pb2.SetClockRequest)
        change = request.WhichOneof("change")
        if change == "advance" and request.advance.ToMicroseconds() <= 0:
            raise invalid_field("advance", "must be a positive duration")
        if change not in ("freeze_time", "advance") and not request.real_time:
            raise invalid_field("realTime", "must be true when it is the change given")
        shared = self._shared
        if shared is None:
            _set_clock(self._clock, request)
        else:

            def changed(found: bytes | None) -> tuple[bytes, None]:
                clock = ControlledClock()
                clock.set_state(*(self._clock.state() if found is None else decode_clock(found)))
                _set_clock(clock, request)
                return encode_clock(*clock.state()), None

            await shared.change_state(CLOCK, changed)
        if self._journal is not None:
            self._journal.clock_changed()
        return emulator_pb2.SetClockResponse(clock=self._clock_message())

    # Faults.

    async def _create_fault(self, request: Message) -> Message:
        assert isinstance(request, emulator_pb2.CreateFaultRequest)
        if self._faults.shared:
            return await self._faults.arm_shared(request.fault, self._full_names)
        return self._faults.arm(request.fault, self._full_names).as_message()

    async def _list_faults(self, request: Message) -> Message:
        assert isinstance(request, emulator_pb2.ListFaultsRequest)
        return emulator_pb2.ListFaultsResponse(
            faults=[fault.as_message() for fault in await self._faults.current_faults()]
        )

    async def _clear_faults(self, request: Message) -> Message:
        assert isinstance(request, emulator_pb2.ClearFaultsRequest)
        if self._faults.shared:
            return emulator_pb2.ClearFaultsResponse(cleared_count=await self._faults.clear_shared())
        return emulator_pb2.ClearFaultsResponse(cleared_count=self._faults.clear())

    # The request journal.

    async def _list_journal(self, request: Message) -> Message:
        assert isinstance(request, emulator_pb2.ListJournalRequest)
        if self._journal is None:
            raise ApiError(
                Code.FAILED_PRECONDITION,
                "the server keeps no journal: it was started with --journal-size 0",
            )
        return self._journal_view.page(self._journal, request)


def _counted(found: bytes | None) -> tuple[bytes, int]:
    """Count one more in a counting entry: its new value, and the count."""
    count = count_of(found) + 1
    return str(count).encode(), count


def _set_clock(clock: ControlledClock, request: emulator_pb2.SetClockRequest) -> None:
    """Change a clock as a (checked) SetClock request says."""
    change = request.WhichOneof("change")
    if change == "freeze_time":
        clock.freeze(request.freeze_time.ToMicroseconds())
    elif change == "advance":
        clock.advance(request.advance.ToMicroseconds())
    else:
        clock.use_real_time()
