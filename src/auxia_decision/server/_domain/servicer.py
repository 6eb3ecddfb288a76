"""The reference implementation of the Auxia API, independent of transport and storage.

``ApiServicer`` authenticates, authorizes, validates and runs each RPC; the
rules of each live in the modules beside it. What the emulator adds plugs in
through two small interfaces defined here: ``CallFaults`` (faults armed on the
calls) and a ``DecisionListener`` (told of each GetTreatments answered).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any, Final, Protocol, TypeVar, cast

from google.protobuf.message import Message

from auxia.decision.model import treatment_decision_service_pb2 as decisions
from auxia.decision.model import treatment_interaction_service_pb2 as interactions
from auxia.decision.model import treatment_management_service_pb2 as management
from auxia.decision.model import treatment_pb2
from auxia_decision._codec import RestCodec
from auxia_decision._errors import ApiError, Code
from auxia_decision._futures import forward
from auxia_decision._routes import route_for
from auxia_decision._validation import check_request, clear_output_only
from auxia_decision._validation_quick import fields_check
from auxia_decision.server._domain import data_fields as _data_fields
from auxia_decision.server._domain import treatments as _treatments
from auxia_decision.server._domain.auth import KeyRing
from auxia_decision.server._domain.catalog import Catalog, compile_catalog
from auxia_decision.server._domain.clock import Clock, system_clock
from auxia_decision.server._domain.decisions import (
    DecisionRequest,
    Fields,
    Verdict,
    decide,
    response_fields,
    response_id,
    tracking_id,
)
from auxia_decision.server._storage.seam import (
    ProjectRecord,
    Repository,
    ServedTreatment,
    StaleKnowledgeError,
    Store,
    StoredTreatment,
    UserActivity,
)

M = TypeVar("M", bound=Message)
T = TypeVar("T")
MessageForm = Message | Fields | bytes | str
"""A message in the form it was given: itself, its constructor's arguments, or its JSON text."""
AnsweredDecision = tuple[int, str, MessageForm, MessageForm]
"""A GetTreatments call answered: when (µs since the epoch), project, request, response.

The request and the response as they were served: messages, or (over REST)
the request's JSON text and the response's constructor arguments;
``as_message`` builds the messages."""
DecisionListener = Callable[[AnsweredDecision], Awaitable[None] | None]
"""Told of every GetTreatments call answered, as it is answered; what it returns, if not
None, is waited for before the answer leaves (a listener that stores the decision)."""


class Fault(Protocol):
    """A fault that applies to one call: it delays it, then fails it or lets it run."""

    @property
    def delay_seconds(self) -> float:
        """How long the call waits first (0: not at all)."""
        ...

    def error(self) -> ApiError | None:
        """Return the error the call fails with, or None when it runs."""
        ...

    def answer(self, response: Message) -> Message | bytes:
        """Return what a call that ran answers: its response, or the JSON text to send instead."""
        ...


class CallFaults(Protocol):
    """The faults armed on the API's calls (the emulator's; none in production use)."""

    @property
    def armed(self) -> bool:
        """Whether any fault is armed; when false, ``select`` is never called."""
        ...

    def select(self, method: str) -> Fault | None:
        """Return the fault that applies to a call of ``method`` now, if any."""
        ...

    async def select_shared(self, method: str) -> Fault | None:
        """Return the fault that applies to a call now, counted by every replica (shared stores)."""
        ...


class _NoFaults:
    armed: Final = False

    def select(self, method: str) -> Fault | None:
        del method
        return None

    async def select_shared(self, method: str) -> Fault | None:
        del method
        return None


NO_FAULTS: Final[CallFaults] = _NoFaults()
"""No fault is ever armed."""

_JSON: Final = RestCodec()


def as_message(message_type: type[M], value: MessageForm) -> M:
    """Return a message given as itself, as its constructor's arguments or as its JSON text."""
    if isinstance(value, message_type):
        return value
    if isinstance(value, bytes | str):
        return _JSON.decode_request(value, message_type)
    return message_type(**cast(Fields, value))


class ApiServicer:
    """Serves every RPC of the Auxia API from a store.

    A caller is admitted by its API key (``admit``, once the keys are loaded;
    ``authenticate`` loads them if needed), then ``invoke_for`` authorizes,
    validates and runs an RPC, raising ApiError for every failure; ``invoke``
    does both. It never knows which transport called it, and reaches the
    store only through the named operations of ``Store`` and ``Repository``.

    Args:
        store: where treatments, data fields and interactions are kept.
        clock: the current time in microseconds since the Unix epoch.
        faults: faults armed on the calls (the emulator's); by default none.
        on_decision: told of every GetTreatments call answered (the emulator
            keeps the recent ones for its console); by default nobody.

    """

    def __init__(
        self,
        store: Store,
        clock: Clock = system_clock,
        *,
        faults: CallFaults = NO_FAULTS,
        on_decision: DecisionListener | None = None,
    ) -> None:
        self.store = store
        self._shared = store.shared
        self.clock = clock
        self.faults = faults
        self._on_decision = on_decision
        self._keys: KeyRing | None = None
        # Readings of the keys for a key not among those loaded (shared stores):
        # how many started, and the number and failure (None: none) of the last ended.
        self._key_readings = 0
        self._key_reading_ended: tuple[int, ApiError | None] = (0, None)
        self._key_lock = asyncio.Lock()
        self._handlers: Mapping[str, Callable[[ProjectRecord, Message], Awaitable[Message]]] = {
            "InsertTreatment": self._insert_treatment,
            "UpdateTreatment": self._update_treatment,
            "GetDataFields": self._get_data_fields,
            "GetTreatment": self._get_treatment,
            "GetAllTreatments": self._get_all_treatments,
            "LogTreatmentInteraction": self._log_treatment_interaction,
            "GetTreatments": self._get_treatments,
        }
        # The RPCs that can run from their request's constructor arguments (invoke_fields).
        self._fields_handlers: Mapping[
            str,
            Callable[[ProjectRecord, Fields, bytes | str | None], Awaitable[Message | Fields]],
        ] = {"GetTreatments": self._get_treatments_from_fields}
        # The compiled catalog of each project, with the store's version it was read at,
        # and the compile under way of each, which every call that needs it waits for.
        self._catalogs: dict[str, tuple[int, Catalog]] = {}
        self._compiling: dict[str, tuple[int, asyncio.Future[Catalog]]] = {}
        # The catalog of the decision whose listener is being told of it (verdicts_then).
        self._deciding_with: Catalog | None = None

    @property
    def methods(self) -> frozenset[str]:
        """Return the names of the RPCs this servicer implements."""
        return frozenset(self._handlers)

    async def load_keys(self) -> None:
        """(Re)load the API keys from the store; call after the store's keys change."""
        self._keys = KeyRing(await self.store.read(lambda found: found.projects_by_key_digest()))

    async def authenticate(self, api_key: str | None) -> ProjectRecord:
        """Return the project of an API key; raise UNAUTHENTICATED for a missing or unknown key."""
        if self._keys is None and api_key:
            await self.load_keys()
        found = self.admit(api_key)
        if isinstance(found, Coroutine):
            return await found
        return found

    def admit(
        self, api_key: str | None, admin_key: str | None = None
    ) -> ProjectRecord | Coroutine[Any, Any, ProjectRecord]:
        """Return the project of an API key from the keys loaded (see ``authenticate``).

        Raises UNAUTHENTICATED for a missing or unknown key; on a shared store,
        a key not among those loaded gives a coroutine of its project that
        looks for it again in the store's keys (another replica's start may
        have added it), as the transports' ``Admit`` may.
        ``admin_key`` is not one of the API's credentials: it is ignored.
        """
        del admin_key
        keys = self._keys
        if keys is None:
            if not api_key:
                return KeyRing({}).project_of(api_key)  # UNAUTHENTICATED: no key
            msg = "the API keys are not loaded: await load_keys() or authenticate() first"
            raise RuntimeError(msg)
        if not self._shared or not api_key:
            return keys.project_of(api_key)
        try:
            return keys.project_of(api_key)
        except ApiError:
            return self._project_read_again(api_key)

    async def _project_read_again(self, api_key: str) -> ProjectRecord:
        """Return the project of a key not loaded, from the store's keys read after this call.

        Raises UNAUTHENTICATED when the store has no such key either, and the
        store's error when it cannot be read. Calls that wait while a reading
        runs share the next one, its failure too, so refused keys cost the
        store one reading at a time, even while it is down.
        """
        asked = self._key_readings
        async with self._key_lock:
            number, failure = self._key_reading_ended
            if number <= asked:  # no reading started since this call asked
                self._key_readings += 1
                number = self._key_readings
                try:
                    await self.load_keys()
                except ApiError as error:
                    failure = error
                else:
                    failure = None
                self._key_reading_ended = (number, failure)
        if failure is not None:
            raise failure.with_traceback(None)
        assert self._keys is not None
        return self._keys.project_of(api_key)

    async def invoke(self, method: str, request: Message, api_key: str | None) -> Message:
        """Run an RPC by short name for the holder of ``api_key``.

        An answer a fault gave as JSON text is read back as a client of this
        schema reads it.
        """
        if method not in self._handlers:
            raise ApiError(Code.UNIMPLEMENTED, f"the method {method} is not implemented")
        answer = await self.invoke_for(await self.authenticate(api_key), method, request)
        if isinstance(answer, bytes):
            return _JSON.decode_response(answer, route_for(method).response_type)
        return answer

    def invoke_for(
        self, project: ProjectRecord, method: str, request: Message
    ) -> Awaitable[Message | bytes]:
        """Run an RPC by short name for a caller already authenticated as ``project``.

        The request is authorized and validated before this returns (raising
        ApiError), and its OUTPUT_ONLY fields are cleared (AIP-203: the server
        ignores them); awaiting the result runs the RPC, unless an armed fault
        fails or delays it; an armed fault may also answer JSON text (bytes)
        in place of the response (see ``Fault.answer``).
        """
        handler = self._handlers.get(method)
        if handler is None:
            raise ApiError(Code.UNIMPLEMENTED, f"the method {method} is not implemented")
        _authorize(project, getattr(request, "project_id", ""))
        if check_request(request).warnings:
            clear_output_only(request)
        if self._shared:
            if isinstance(request, interactions.LogTreatmentInteractionRequest):
                logged = self._log_unless_stale(project, request, handler)
                if logged is not None:
                    return logged
            user_id = (
                request.user_id if isinstance(request, decisions.GetTreatmentsRequest) else None
            )
            return self._after_sync(project, method, request, handler, user_id)
        faults = self.faults
        if faults.armed:
            fault = faults.select(method)
            if fault is not None:
                return self._faulted(fault, project, method, request)
        return handler(project, request)

    def takes_fields(self, method: str) -> bool:
        """Whether an RPC runs from its request's constructor arguments (see ``invoke_fields``)."""
        return method in self._fields_handlers

    def invoke_fields(
        self,
        project: ProjectRecord,
        method: str,
        request_type: type[Message],
        fields: Fields,
        source: bytes | str | None = None,
    ) -> Awaitable[Message | Fields | bytes]:
        """Run an RPC as ``invoke_for`` does, its request given as its constructor's arguments.

        ``fields`` are what the REST codec's fields decoding returns (every
        value checked), from the JSON text ``source`` if given. An RPC that
        ``takes_fields`` reads them as plain values when they are certainly
        valid and no armed fault selects the call, and answers its response's
        constructor arguments; otherwise the request message is built from
        them and run as ``invoke_for`` runs it. An RPC that keeps its requests
        (GetTreatments, for the console) keeps the text rather than the
        fields: dicts held long cost the garbage collector more than bytes.
        """
        handler = self._fields_handlers.get(method)
        if handler is None or not fields_check(request_type)(fields):
            return self.invoke_for(project, method, request_type(**fields))
        _authorize(project, fields.get("project_id"))
        if self._shared:
            return self._fields_after_sync(
                project, method, request_type, fields, source, handler=handler
            )
        faults = self.faults
        if faults.armed:
            fault = faults.select(method)
            if fault is not None:
                return self._faulted(fault, project, method, request_type(**fields))
        return handler(project, fields, source)

    def _faulted(
        self, fault: Fault, project: ProjectRecord, method: str, request: Message
    ) -> Awaitable[Message | bytes]:
        """Run a call a fault selected: fail it (now, or once delayed), or answer as it says."""
        error = fault.error()
        if error is not None and not fault.delay_seconds:
            raise error
        handler = self._handlers[method]
        return _delayed(fault, lambda: handler(project, request))

    def _log_unless_stale(
        self,
        project: ProjectRecord,
        request: interactions.LogTreatmentInteractionRequest,
        handler: Callable[[ProjectRecord, Message], Awaitable[Message]],
    ) -> Awaitable[Message | bytes] | None:
        """Log an interaction on a shared store without waiting for a sync, when that is safe.

        LogTreatmentInteraction reads nothing of the store: a sync could only
        show it a fault armed through another replica. The row is written
        only if the shared state is still what this process knows (no fault
        armed here either), the very check a sync would make; if it changed,
        the call is run again the usual way, after a sync. None: the usual way.
        """
        if self.faults.armed:
            return None
        written = self.store.log_interaction_if_current(
            request, interactions.LogTreatmentInteractionResponse()
        )
        if written is None:
            return None
        answer: asyncio.Future[Message | bytes] = asyncio.get_running_loop().create_future()

        def settled(written: asyncio.Future[interactions.LogTreatmentInteractionResponse]) -> None:
            if answer.done():  # the caller is gone
                return
            if written.cancelled():
                answer.cancel()
            elif isinstance(error := written.exception(), StaleKnowledgeError):
                method = "LogTreatmentInteraction"
                forward(
                    asyncio.ensure_future(
                        self._after_sync(project, method, request, handler, None)
                    ),
                    answer,
                )
            elif error is not None:
                answer.set_exception(error)
            else:
                answer.set_result(written.result())

        asyncio.ensure_future(written).add_done_callback(settled)
        return answer

    async def _after_sync(
        self,
        project: ProjectRecord,
        method: str,
        request: Message,
        handler: Callable[[ProjectRecord, Message], Awaitable[Message]],
        user_id: str | None,
    ) -> Message | bytes:
        """Run a call on a shared store: once synced, the faults every replica counts apply."""
        await self.store.synchronize(project.project_id, user_id)
        faults = self.faults
        if faults.armed:
            fault = await faults.select_shared(method)
            if fault is not None:
                return await _delayed(fault, lambda: handler(project, request))
        return await handler(project, request)

    async def _fields_after_sync(
        self,
        project: ProjectRecord,
        method: str,
        request_type: type[Message],
        fields: Fields,
        source: bytes | str | None,
        *,
        handler: Callable[[ProjectRecord, Fields, bytes | str | None], Awaitable[Message | Fields]],
    ) -> Message | Fields | bytes:
        """Run a call from plain values on a shared store, once synced.

        A fault armed (here or through another replica: the sync shows it)
        that selects the call sends it the way of the message.
        """
        await self.store.synchronize(project.project_id, fields.get("user_id", ""))
        faults = self.faults
        if faults.armed:
            fault = await faults.select_shared(method)
            if fault is not None:
                return await self._faulted(fault, project, method, request_type(**fields))
        return await handler(project, fields, source)

    async def _insert_treatment(
        self, project: ProjectRecord, request: Message
    ) -> management.InsertTreatmentResponse:
        assert isinstance(request, management.InsertTreatmentRequest)
        treatment = await self._write_treatment(_treatments.insert_treatment, project, request)
        return management.InsertTreatmentResponse(treatment=treatment)

    async def _update_treatment(
        self, project: ProjectRecord, request: Message
    ) -> management.UpdateTreatmentResponse:
        assert isinstance(request, management.UpdateTreatmentRequest)
        treatment = await self._write_treatment(_treatments.update_treatment, project, request)
        return management.UpdateTreatmentResponse(treatment=treatment)

    async def _write_treatment(
        self,
        write: Callable[[Repository, ProjectRecord, M, int], StoredTreatment],
        project: ProjectRecord,
        request: M,
    ) -> treatment_pb2.TreatmentPb:
        """Run a rule that writes a treatment now; return it with its statuses at that time."""
        now = self.clock()
        stored = await self.store.run(lambda repository: write(repository, project, request, now))
        return _treatments.with_statuses(stored, now)

    async def _get_data_fields(
        self, project: ProjectRecord, request: Message
    ) -> management.GetDataFieldsByParamsResponse:
        assert isinstance(request, management.GetDataFieldsByParamsRequest)
        return await self.store.run(
            lambda repository: _data_fields.get_data_fields(repository, project, request)
        )

    def _log_treatment_interaction(
        self, project: ProjectRecord, request: Message
    ) -> Awaitable[interactions.LogTreatmentInteractionResponse]:
        # A plain function returning the store's awaitable: the high-volume RPC
        # adds no coroutine of its own between its caller and the commit.
        assert isinstance(request, interactions.LogTreatmentInteractionRequest)
        del project
        return self.store.log_interaction(request, interactions.LogTreatmentInteractionResponse())

    # GetTreatment and GetAllTreatments.

    async def _get_treatment(
        self, project: ProjectRecord, request: Message
    ) -> management.GetTreatmentResponse:
        assert isinstance(request, management.GetTreatmentRequest)
        now = self.clock()
        stored = await self.store.read(
            lambda repository: _treatments.get_treatment(repository, project, request.treatment_id)
        )
        return management.GetTreatmentResponse(treatment=_treatments.with_statuses(stored, now))

    async def _get_all_treatments(
        self, project: ProjectRecord, request: Message
    ) -> management.GetAllTreatmentsResponse:
        assert isinstance(request, management.GetAllTreatmentsRequest)
        now = self.clock()
        page, token = await self.store.read(
            lambda repository: _treatments.get_all_treatments(repository, project, request)
        )
        return management.GetAllTreatmentsResponse(
            treatments=[_treatments.with_statuses(stored, now) for stored in page],
            next_page_token=token,
        )

    # GetTreatments.

    def _get_treatments(
        self, project: ProjectRecord, request: Message
    ) -> Awaitable[decisions.GetTreatmentsResponse]:
        # Like LogTreatmentInteraction, a plain function: with the project's
        # catalog at hand, the decision is made now and only the store is waited for.
        assert isinstance(request, decisions.GetTreatmentsRequest)
        asked = DecisionRequest.from_message(request)
        return cast(
            "Awaitable[decisions.GetTreatmentsResponse]", self._decide(project, asked, request)
        )

    def _get_treatments_from_fields(
        self, project: ProjectRecord, fields: Fields, source: bytes | str | None
    ) -> Awaitable[Message | Fields]:
        kept = fields if source is None else source
        return self._decide(project, DecisionRequest.from_fields(fields), kept)

    def _decide(
        self, project: ProjectRecord, asked: DecisionRequest, request: MessageForm
    ) -> Awaitable[Message | Fields]:
        """Decide; answer as the request was given: a message, or constructor arguments.

        With the project's catalog and the user's activity at hand, the
        decision is made now and only the store is waited for.
        """
        project_id = project.project_id
        cached = self._catalogs.get(project_id)
        if cached is not None and cached[0] == self.store.version(project_id):
            activity = self.store.cached_activity(project_id, asked.user_id)
            if activity is not None:
                return self._answer_decision(cached[1], project, asked, request, activity)
        return self._decide_after_reading(project, asked, request)

    async def _decide_after_reading(
        self, project: ProjectRecord, asked: DecisionRequest, request: MessageForm
    ) -> Message | Fields:
        """Decide once the project's catalog and the user's activity are read."""
        catalog = await self.catalog(project.project_id)
        activity = await self.store.activity(project.project_id, asked.user_id)
        return await self._answer_decision(catalog, project, asked, request, activity)

    async def catalog(self, project_id: str) -> Catalog:
        """Return the project's compiled catalog, read again when the project has changed.

        The calls that need a project's catalog of one version while it is
        being compiled wait for that compile (one a version, not one a call:
        after a change, every call in flight needs it at once).
        """
        version = self.store.version(project_id)
        cached = self._catalogs.get(project_id)
        if cached is not None and cached[0] == version:
            return cached[1]
        compiling = self._compiling.get(project_id)
        if compiling is None or compiling[0] != version:
            task = asyncio.ensure_future(self._compile(project_id, version))
            compiling = self._compiling[project_id] = (version, task)
            task.add_done_callback(lambda _: self._compiled(project_id, task))
        # Shielded: a caller that gives up leaves the compile to the others.
        return await asyncio.shield(compiling[1])

    async def _compile(self, project_id: str, version: int) -> Catalog:
        """Compile a project's catalog as of (at least) ``version``.

        It is kept unless the project changed meanwhile (then a later call
        compiles it again).
        """
        try:
            catalog = await self.store.read(
                lambda repository: compile_catalog(
                    project_id,
                    repository.treatment_types(project_id),
                    repository.user_attribute_types(project_id),
                    repository.data_fields(project_id),
                    repository.treatments(project_id),
                )
            )
        finally:
            self._compiled(project_id, asyncio.current_task())
        self.store.fold_kinds(project_id, catalog.kinds_read)  # before any decision reads with it
        if self.store.version(project_id) == version:  # else one of a later version is kept
            self._catalogs[project_id] = (version, catalog)
        return catalog

    def _compiled(self, project_id: str, task: asyncio.Future[Catalog] | None) -> None:
        """Let later calls start a compile of their own once ``task`` ends, however it ends.

        Done as the compile ends (its callers waiting on it), and again once
        the task is done (a task cancelled before it started ends no other
        way), when its failure is retrieved: it is its callers' to hear.
        """
        compiling = self._compiling.get(project_id)
        if compiling is not None and compiling[1] is task:
            del self._compiling[project_id]
        if task is not None and task.done() and not task.cancelled():
            task.exception()

    def verdicts_then(self, answered: AnsweredDecision) -> list[Verdict] | None:
        """Return the verdicts of a GetTreatments call just answered, as ExplainDecision gives them.

        Made with the user's activity as it is now, the clock's time of the
        call and, called as the call is answered (a ``DecisionListener``
        does), the catalog it was decided with: the verdicts of that moment.
        Called later, the project's catalog as it is now; None when it changed
        since, or the user's activity is no longer at hand.
        """
        now, project_id, request, _ = answered
        catalog = self._deciding_with
        if catalog is None:
            cached = self._catalogs.get(project_id)
            if cached is None or cached[0] != self.store.version(project_id):
                return None
            catalog = cached[1]
        asked = DecisionRequest.from_message(as_message(decisions.GetTreatmentsRequest, request))
        activity = self.store.cached_activity(project_id, asked.user_id)
        if activity is None:
            return None
        return decide(catalog, asked, activity, now, explain=True).verdicts

    def _answer_decision(
        self,
        catalog: Catalog,
        project: ProjectRecord,
        asked: DecisionRequest,
        request: MessageForm,
        activity: UserActivity,
    ) -> Awaitable[Message | Fields]:
        """Decide, and answer once what is served is stored (it counts as SENT).

        The answer is a message for a request message, else constructor arguments.
        """
        now = self.clock()
        user_id = asked.user_id
        decision = decide(catalog, asked, activity, now)
        answer_id = response_id()
        trackings = [tracking_id(c.treatment.treatment_id, answer_id) for c in decision.choices]
        fields = response_fields(decision, answer_id, trackings)
        answer: Message | Fields = fields
        if isinstance(request, Message):
            answer = decisions.GetTreatmentsResponse(**fields)
        on_decision = self._on_decision
        kept = None
        if on_decision is not None:
            self._deciding_with = catalog  # what verdicts_then explains it with
            try:
                kept = on_decision((now, project.project_id, request, answer))
            finally:
                self._deciding_with = None
        if not trackings:
            return _resolved(answer) if kept is None else _after(kept, _resolved(answer))
        served = [
            ServedTreatment(answer_id, choice.treatment.treatment_id, choice.surface, tracking, now)
            for choice, tracking in zip(decision.choices, trackings, strict=True)
        ]
        stored = self.store.record_served(project.project_id, user_id, served, answer)
        return stored if kept is None else _after(kept, stored)


def _authorize(project: ProjectRecord, requested: str | None) -> None:
    """Refuse a request naming another project than its API key's (PERMISSION_DENIED)."""
    if requested and requested != project.project_id:
        raise ApiError(
            Code.PERMISSION_DENIED,
            f'the API key does not belong to project "{requested}"',
        )


async def _resolved(value: T) -> T:
    return value


async def _after(first: Awaitable[None], then: Awaitable[T]) -> T:
    """Wait for ``first``, then return what ``then`` gives (both may be under way already)."""
    try:
        await first
    finally:
        result = await then
    return result


async def _delayed(fault: Fault, run: Callable[[], Awaitable[Message]]) -> Message | bytes:
    """Wait for a fault's delay; then fail with its error, or run the call and answer as it says."""
    if fault.delay_seconds:
        await asyncio.sleep(fault.delay_seconds)
    error = fault.error()
    if error is not None:
        raise error
    return fault.answer(await run())
