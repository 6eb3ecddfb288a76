"""The seam between the server's rules and its storage: records and named operations.

The servicer and the rules of the API (treatments, data fields, the seed,
the decision) read and write through a :class:`Repository`, the operations
one transaction may run, and a :class:`Store`, which runs a unit of work in a
transaction, appends logged interactions and served treatments, and answers
what a user did (:class:`UserActivity`). This module is all the domain knows
of storage: no SQL. The SQLite store (``sqlite_store``, ``sqlite_repository``)
is one implementation, and another could stand behind the same protocols.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final, Generic, Protocol, TypeVar

from auxia.decision.model import (
    data_field_pb2,
    treatment_interaction_service_pb2,
    treatment_pb2,
)

# A user's events, as the domain and the stores read them: defined in a module of the
# standard library alone, for the reader process, and re-exported here (PEP 484's form).
from auxia_decision.server._storage.daily import MICROS_PER_DAY as MICROS_PER_DAY  # noqa: PLC0414
from auxia_decision.server._storage.daily import DailyRow as DailyRow  # noqa: PLC0414
from auxia_decision.server._storage.daily import Event as Event  # noqa: PLC0414

T = TypeVar("T")
R = TypeVar("R")


class UserActivity(Protocol):
    """What a user did with treatments, as eligibility rules ask about it.

    Days are UTC days (``time // MICROS_PER_DAY``); ``None`` for a treatment
    or a surface means any.
    """

    def count(
        self,
        kind: int,
        *,
        treatment_id: str | None = None,
        surface: str | None = None,
        distinct: bool = False,
        first_day: int,
        last_day: int,
    ) -> int:
        """Return how many events (or distinct treatments) fall on the days given, both included."""
        ...

    def count_of(self, kind: int, treatment_id: str, first_day: int, last_day: int) -> int:
        """Return how many events of a kind with one treatment fall on the days given."""
        ...

    def first(
        self, kind: int, *, treatment_id: str | None = None, surface: str | None = None
    ) -> int | None:
        """Return the time (µs) of the first such event, or None when there is none."""
        ...

    def latest(
        self, kind: int, *, treatment_id: str | None = None, surface: str | None = None
    ) -> int | None:
        """Return the time (µs) of the latest such event, or None when there is none."""
        ...


@dataclass(frozen=True)
class ProjectRecord:
    """A project as the store holds it."""

    project_id: str
    numeric_project_id: int
    supported_language_codes: frozenset[str]


@dataclass
class StoredTreatment:
    """A treatment and which of its versions are published (status is derived on read)."""

    treatment: treatment_pb2.TreatmentPb
    published_versions: list[bool]


SENT: Final = int(data_field_pb2.DataFieldParams.TreatmentDataFieldParams.SENT)
"""The kind of event of a treatment served by GetTreatments."""


def interaction_event(
    request: treatment_interaction_service_pb2.LogTreatmentInteractionRequest,
) -> Event:
    """Return the event a logged interaction is, as rules count it.

    Its kind is the ``TreatmentInteractionType`` of the same name: the
    interaction types are numbered as they are, one after SENT.
    """
    return (
        request.interaction_type + 1,
        request.treatment_id,
        request.surface,
        request.interaction_time_micros,
    )


class LoggedRow(Protocol):
    """What the store keeps of a logged interaction (a ``LogTreatmentInteractionRequest`` is one).

    Its bytes, and the fields rules and listings read; one that names a user
    adds to that user's activity.
    """

    @property
    def project_id(self) -> str:
        """The project the interaction is of."""
        ...

    @property
    def user_id(self) -> str:
        """The user, or empty."""
        ...

    @property
    def interaction_type(self) -> int:
        """The ``InteractionType`` number."""
        ...

    @property
    def treatment_id(self) -> str:
        """The treatment, or empty."""
        ...

    @property
    def surface(self) -> str:
        """The surface, or empty."""
        ...

    @property
    def interaction_time_micros(self) -> int:
        """When it happened, in µs since the Unix epoch."""
        ...

    @property
    def treatment_tracking_id(self) -> str:
        """The tracking id of the treatment served."""
        ...

    def SerializeToString(self) -> bytes:  # noqa: N802 - the protobuf method's name
        """Return the bytes the row keeps."""
        ...


@dataclass(frozen=True, slots=True)
class ServedTreatment:
    """A treatment GetTreatments returned to a user."""

    response_id: str
    treatment_id: str
    surface: str
    tracking_id: str
    time_micros: int


@dataclass(frozen=True, slots=True)
class ServedRow:
    """A served treatment as the store keeps it, numbered in the order it was stored."""

    sequence: int
    project_id: str
    user_id: str
    served: ServedTreatment


@dataclass(frozen=True, slots=True)
class InteractionFilter:
    """Which logged interactions a listing wants: each field given narrows it (empty: any)."""

    user_id: str = ""
    tracking_id: str = ""
    treatment_id: str = ""
    interaction_type: int = 0
    start_micros: int | None = None
    """Inclusive; None: unbounded."""
    end_micros: int | None = None
    """Exclusive; None: unbounded."""


@dataclass(frozen=True, slots=True)
class Migration:
    """A database brought to today's schema at start."""

    from_version: int
    to_version: int
    rows: int
    """How many records (interactions and served treatments) the database holds."""
    seconds: float


@dataclass(frozen=True, slots=True)
class ServedFilter:
    """Which served rows a listing wants: each field given narrows it (empty: any)."""

    user_id: str = ""
    response_id: str = ""
    """A tracking id names its response (``<treatment>_<response>``): listings ask by response."""
    treatment_id: str = ""
    surface: str = ""
    start_micros: int | None = None
    """Inclusive; None: unbounded."""
    end_micros: int | None = None
    """Exclusive; None: unbounded."""


class Listing(Generic[T]):
    """A listing's records, read as they are taken, and where the read stopped short."""

    __slots__ = ("_stopped", "rows")

    def __init__(self, rows: Iterator[T], stopped: list[int] | None = None) -> None:
        """Make a listing.

        Args:
            rows: the records, in the listing's order.
            stopped: set by ``rows`` before it ends: ``[sequence]`` when a
                bounded read stopped at that sequence number with records
                left beyond it. A list, so that ``rows`` need not hold the
                listing (a cycle would outlive the read's connection).

        """
        self.rows = rows
        self._stopped = stopped if stopped is not None else []

    @property
    def resume_after(self) -> int:
        """Once ``rows`` is spent: where the next page starts, 0 when every record was read.

        The next page goes on after it (newest first, before it).
        """
        return self._stopped[0] if self._stopped else 0

    def __iter__(self) -> Iterator[T]:
        """Return the records."""
        return self.rows


class StaleKnowledgeError(Exception):
    """What a process knew of the shared state was out of date: nothing was written."""


class ExternalIdTakenError(Exception):
    """Another treatment of the project already has this external treatment id."""


class Repository(Protocol):
    """The named operations that one transaction of a store may run.

    Each is called inside the transaction of a unit of work (``Store.run``):
    what it writes is committed with the rest of that work, or not at all.
    """

    def projects_by_key_digest(self) -> dict[bytes, ProjectRecord]:
        """Return every API key digest (SHA-256) with the project it belongs to."""
        ...

    def put_project(self, project: ProjectRecord, key_digests: Sequence[bytes]) -> None:
        """Create or replace a project and add API keys, given by digest, to it."""
        ...

    def put_treatment_type(self, treatment_type: treatment_pb2.TreatmentTypePb) -> None:
        """Create or replace a treatment type (of ``treatment_type.project_id``)."""
        ...

    def treatment_type(self, project_id: str, name: str) -> treatment_pb2.TreatmentTypePb | None:
        """Return a treatment type of a project by name, or None."""
        ...

    def put_user_attribute_type(
        self, project_id: str, property_name: str, data_field_type: str
    ) -> None:
        """Declare the type of a user attribute of a project."""
        ...

    def user_attribute_type(self, project_id: str, property_name: str) -> str | None:
        """Return the declared type of a user attribute, or None."""
        ...

    def resolve_data_field(
        self, project_id: str, params: data_field_pb2.DataFieldParams, data_field_type: str
    ) -> int:
        """Return the identifier of a data field, creating it the first time it is seen.

        The same parameters get the same identifier, whatever the order of
        their map entries; identifiers count up from 1 in each project.
        """
        ...

    def data_field_type(self, project_id: str, data_field_id: int) -> str | None:
        """Return the type of a data field by identifier, or None when it does not exist."""
        ...

    def mutual_exclusion_group(self, project_id: str, name: str) -> int:
        """Return the identifier of the project's group of that name, creating it if needed."""
        ...

    def find_treatment(
        self, project_id: str, *, treatment_id: str = "", external_treatment_id: str = ""
    ) -> StoredTreatment | None:
        """Return a treatment by identifier, else by external identifier, or None."""
        ...

    def put_treatment(self, stored: StoredTreatment) -> None:
        """Create or replace a treatment.

        Raises ExternalIdTakenError when another treatment of the project has
        its external treatment id.
        """
        ...

    def interactions(
        self, project_id: str
    ) -> list[treatment_interaction_service_pb2.LogTreatmentInteractionRequest]:
        """Return the project's logged interactions, oldest first."""
        ...

    def logged_interactions(
        self,
        project_id: str,
        after: int,
        matching: InteractionFilter,
        *,
        newest_first: bool = False,
    ) -> Listing[tuple[int, treatment_interaction_service_pb2.LogTreatmentInteractionRequest]]:
        """Return (sequence, request) for the matching interactions stored after ``after``.

        Oldest first (newest first: those stored before ``after``, any when
        0), read by index as they are taken; an empty ``project_id`` lists
        every project's. A read in sequence order may stop short
        (``Listing.resume_after``; ``filters.SCAN_ROWS``).
        """
        ...

    def served_rows(
        self, project_id: str, after: int, matching: ServedFilter, *, newest_first: bool = False
    ) -> Listing[ServedRow]:
        """Return the matching served treatments stored after sequence ``after``, oldest first.

        Newest first: those stored before ``after`` (any when 0). Read as they
        are taken, by index when the filters allow (``filters``); an empty
        ``project_id`` lists every project's. A read in sequence order may
        stop short, as ``logged_interactions``'s.
        """
        ...

    def decisions_rows(self, project_id: str, response_ids: Sequence[str]) -> list[ServedRow]:
        """Return the served rows of some of a project's responses (decisions), in no order."""
        ...

    def delete_project(self, project_id: str) -> None:
        """Delete a project and everything of it: keys, configuration, treatments, records."""
        ...

    def delete_everything(self) -> None:
        """Delete every project and everything of them; numbering starts again."""
        ...

    def project_ids(self) -> list[str]:
        """Return the identifiers of every project, sorted."""
        ...

    def projects(self) -> list[ProjectRecord]:
        """Return every project, by identifier."""
        ...

    def treatment_types(self, project_id: str) -> list[treatment_pb2.TreatmentTypePb]:
        """Return the project's treatment types, by name."""
        ...

    def user_attribute_types(self, project_id: str) -> dict[str, str]:
        """Return the declared type of each of the project's user attributes."""
        ...

    def data_fields(self, project_id: str) -> dict[int, tuple[data_field_pb2.DataFieldParams, str]]:
        """Return the project's data fields: parameters and type, by identifier."""
        ...

    def treatments(self, project_id: str) -> list[StoredTreatment]:
        """Return the project's treatments, by treatment identifier."""
        ...

    def user_activity(
        self, project_id: str, user_id: str
    ) -> tuple[list[DailyRow], tuple[int, int]]:
        """Return a user's events counted by kind, treatment, surface and day, read by index.

        Also returns the highest interaction row id and served row id stored
        when it was read, which the rows include (0 for none).
        """
        ...


class Store(Protocol):
    """Runs units of work in transactions and appends logged interactions.

    A store that other server processes share (``shared``: PostgreSQL) is
    written by them too: each call first waits for ``synchronize``, which
    brings what this process knows of the store (configuration versions,
    users' activity, the emulator's shared state) up to what was committed
    before the call arrived.
    """

    @property
    def shared(self) -> bool:
        """Whether other processes write to the store: calls ``synchronize`` first."""
        ...

    def synchronize(self, project_id: str, user_id: str | None = None) -> Awaitable[object]:
        """Return an awaitable that ends once the store has caught up with every commit so far.

        With a user, their activity is caught up too (``cached_activity`` has
        it then). Only a ``shared`` store needs it.
        """
        ...

    async def run(self, work: Callable[[Repository], T]) -> T:
        """Run ``work`` in a transaction; return its result once committed.

        If ``work`` raises, nothing it wrote is kept and the error is raised.
        """
        ...

    async def read(self, work: Callable[[Repository], T]) -> T:
        """Run ``work``, which only reads, without holding up other processes' units of work.

        It sees one moment of the store across its statements (a store shared
        by processes reads a snapshot and takes no lock for it).
        """
        ...

    async def replace(self, project_id: str | None, work: Callable[[Repository], T]) -> T:
        """Run ``work``, which replaces a project's data (None: everyone's).

        It runs after what was appended before is committed; what users did
        is read again for that project once ``work`` is committed.
        """
        ...

    def log_interaction(
        self,
        request: treatment_interaction_service_pb2.LogTreatmentInteractionRequest,
        result: R,
    ) -> Awaitable[R]:
        """Record one interaction; the awaitable gives ``result`` once it is committed."""
        ...

    def log_interaction_if_current(
        self,
        request: treatment_interaction_service_pb2.LogTreatmentInteractionRequest,
        result: R,
    ) -> Awaitable[R] | None:
        """Record one interaction without a sync, if nothing shared changed since the last one.

        A ``shared`` store writes it only if no process has changed the
        shared state (faults, clock) or reset the store since this process
        last synced; else the awaitable fails with ``StaleKnowledgeError``
        and nothing is written. None: not possible now (or not shared).
        """
        ...

    def record_served(
        self, project_id: str, user_id: str, served: Sequence[ServedTreatment], result: R
    ) -> Awaitable[R]:
        """Record the treatments served to a user; the awaitable gives ``result`` once committed."""
        ...

    def cached_activity(self, project_id: str, user_id: str) -> UserActivity | None:
        """Return what a user did, as far as committed, if the store has it at hand."""
        ...

    def activity(self, project_id: str, user_id: str) -> Awaitable[UserActivity]:
        """Return what a user did (interactions, treatments served), as far as committed."""
        ...

    def fold_kinds(self, project_id: str, kinds: frozenset[int]) -> None:
        """Say that a project's compiled catalog counts these interaction kinds (SENT included).

        What the store gives of the project's users when asked after the call
        (``activity``, ``cached_activity``) is exact for them and for those of
        every call before for the project; other kinds may be behind (an
        ``activity`` asked for before the call may be behind in these too).
        Until a project's first call, every kind of it is exact.
        """
        ...

    def version(self, project_id: str) -> int:
        """Return a number that changes whenever the project's configuration or treatments do."""
        ...


async def replaced_to_its_end(project_id: str | None, replacing: asyncio.Future[T]) -> T:
    """Return what a replacement returns; a caller that stops waiting does not stop it.

    If the caller stops waiting (cancelled) and the replacement then fails,
    the failure is logged: no one else hears of it.
    """
    try:
        return await asyncio.shield(replacing)
    except asyncio.CancelledError:
        replacing.add_done_callback(functools.partial(_log_abandoned_failure, project_id))
        raise


def _log_abandoned_failure(project_id: str | None, replacing: asyncio.Future[Any]) -> None:
    """Log how a replacement its caller stopped waiting for failed, if it did."""
    if not replacing.cancelled() and (failure := replacing.exception()) is not None:
        logging.getLogger("auxia_decision.store").error(
            "a Reset of %s whose caller stopped waiting failed (%s): reset it again",
            "every project" if project_id is None else f'project "{project_id}"',
            failure,
        )
