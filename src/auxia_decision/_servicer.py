"""The reference implementation of the API, independent of the transport that calls it."""

from __future__ import annotations

import hmac
import re
import sqlite3
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Final

from google.protobuf.message import Message

from auxia.decision.model import data_field_pb2, treatment_pb2
from auxia.decision.model import treatment_interaction_service_pb2 as interactions
from auxia.decision.model import treatment_management_service_pb2 as management
from auxia_decision import _store
from auxia_decision._codec import json_path
from auxia_decision._errors import ApiError, Code, FieldViolation
from auxia_decision._store import ProjectRecord, StoredTreatment, TreatmentStore, key_digest
from auxia_decision._validation import check_request

Clock = Callable[[], int]
"""Returns the current time in microseconds since the Unix epoch."""

_WINDOW: Final = re.compile(r"LAST_([1-9][0-9]{0,2})D")
_MAX_WINDOW_DAYS: Final = 365
_DataFieldParams = data_field_pb2.DataFieldParams
_TreatmentStatus = treatment_pb2.TreatmentPb.Status
_VersionStatus = treatment_pb2.TreatmentVersionPb.Status

# The type of a metric, by the aggregation that computes it.
_TYPE_BY_AGGREGATION: Final = {
    "daily_count_aggregation": "INTEGER",
    "first_timestamp_aggregation": "TIMESTAMP_SECONDS",
    "latest_timestamp_aggregation": "TIMESTAMP_SECONDS",
    "days_since_first_timestamp_aggregation": "INTEGER",
    "days_since_last_timestamp_aggregation": "INTEGER",
}
DATA_FIELD_TYPES: Final = frozenset({"INTEGER", "DOUBLE", "BOOLEAN", "STRING", "TIMESTAMP_SECONDS"})


def system_clock() -> int:
    """Return the current time in microseconds since the Unix epoch."""
    return time.time_ns() // 1000


def _invalid(path: str, description: str) -> ApiError:
    return ApiError.invalid_argument([FieldViolation(field=path, description=description)])


def _rhs_fits(data_field_type: str, value: str) -> bool:
    """Whether an eligibility rule's right-hand side parses as the data field's type."""
    try:
        if data_field_type in ("INTEGER", "TIMESTAMP_SECONDS"):
            int(value, 10)
        elif data_field_type == "DOUBLE":
            float(value)
        elif data_field_type == "BOOLEAN":
            return value in ("true", "false")
    except ValueError:
        return False
    return True


def version_status(
    published: bool, version: treatment_pb2.TreatmentVersionPb, now: int
) -> _VersionStatus.ValueType:
    """Derive a version's status from its publish state, launch window and the clock."""
    if not published:
        return treatment_pb2.TreatmentVersionPb.DRAFT
    if version.HasField("start_timestamp") and version.start_timestamp.ToMicroseconds() > now:
        return treatment_pb2.TreatmentVersionPb.SCHEDULED
    if version.HasField("end_timestamp") and version.end_timestamp.ToMicroseconds() <= now:
        return treatment_pb2.TreatmentVersionPb.ARCHIVED
    return treatment_pb2.TreatmentVersionPb.LIVE


def with_statuses(stored: StoredTreatment, now: int) -> treatment_pb2.TreatmentPb:
    """Return the treatment with its version and treatment statuses derived at ``now``.

    A treatment is LIVE when any version is live; otherwise it has the status
    of its latest version (DRAFT, SCHEDULED or ARCHIVED).
    """
    treatment = treatment_pb2.TreatmentPb()
    treatment.CopyFrom(stored.treatment)
    statuses = [
        version_status(published, version, now)
        for published, version in zip(stored.published_versions, treatment.versions, strict=True)
    ]
    for version, status in zip(treatment.versions, statuses, strict=True):
        version.status = status
    if treatment_pb2.TreatmentVersionPb.LIVE in statuses:
        treatment.status = treatment_pb2.TreatmentPb.LIVE
    elif statuses:
        treatment.status = _TreatmentStatus.Value(_VersionStatus.Name(statuses[-1]))
    return treatment


class DecisionServicer:
    """Serves every RPC of the API from a TreatmentStore.

    Transports call ``invoke`` with the decoded request and the caller's API
    key; it authenticates, authorizes, validates and runs the RPC, and raises
    ApiError for every failure. It never knows which transport called it.
    """

    def __init__(self, store: TreatmentStore, clock: Clock = system_clock) -> None:
        self.store = store
        self.clock = clock
        self._projects: dict[bytes, ProjectRecord] | None = None
        self._handlers: Mapping[str, Callable[[ProjectRecord, Message], Awaitable[Message]]] = {
            "InsertTreatment": self._insert_treatment,
            "UpdateTreatment": self._update_treatment,
            "GetDataFields": self._get_data_fields,
            "LogTreatmentInteraction": self._log_treatment_interaction,
        }

    @property
    def methods(self) -> frozenset[str]:
        """Return the names of the RPCs this servicer implements."""
        return frozenset(self._handlers)

    async def load_keys(self) -> None:
        """(Re)load the API keys from the store; call after the store's keys change."""
        self._projects = await self.store.run(_store.projects_by_key_digest)

    @property
    def keys_loaded(self) -> bool:
        """Whether the API keys are loaded, so that ``project_of`` can answer."""
        return self._projects is not None

    async def authenticate(self, api_key: str | None) -> ProjectRecord:
        """Return the project of an API key; raise UNAUTHENTICATED for a missing or unknown key."""
        if self._projects is None and api_key:
            await self.load_keys()
        return self.project_of(api_key)

    def project_of(self, api_key: str | None) -> ProjectRecord:
        """Return the project of an API key from the keys loaded (see ``authenticate``)."""
        if not api_key:
            raise ApiError(
                Code.UNAUTHENTICATED,
                "missing API key: send it in the x-api-key header",
            )
        if self._projects is None:
            msg = "the API keys are not loaded: await load_keys() or authenticate() first"
            raise RuntimeError(msg)
        digest = key_digest(api_key)
        # Keys are held only as digests, and every one is compared in
        # constant time, so timing tells nothing about the keys.
        found: ProjectRecord | None = None
        for known, project in self._projects.items():
            if hmac.compare_digest(known, digest):
                found = project
        if found is None:
            raise ApiError(Code.UNAUTHENTICATED, "the API key is not valid")
        return found

    async def invoke(self, method: str, request: Message, api_key: str | None) -> Message:
        """Run an RPC by short name for the holder of ``api_key``."""
        if method not in self._handlers:
            raise ApiError(Code.UNIMPLEMENTED, f"the method {method} is not implemented")
        return await self.invoke_for(await self.authenticate(api_key), method, request)

    def invoke_for(
        self, project: ProjectRecord, method: str, request: Message
    ) -> Awaitable[Message]:
        """Run an RPC by short name for a caller already authenticated as ``project``.

        The request is authorized and validated before this returns (raising
        ApiError); awaiting the result runs the RPC.
        """
        handler = self._handlers.get(method)
        if handler is None:
            raise ApiError(Code.UNIMPLEMENTED, f"the method {method} is not implemented")
        requested = getattr(request, "project_id", "")
        if requested and requested != project.project_id:
            raise ApiError(
                Code.PERMISSION_DENIED,
                f'the API key does not belong to project "{requested}"',
            )
        check_request(request)
        return handler(project, request)

    # InsertTreatment and UpdateTreatment.

    async def _insert_treatment(
        self, project: ProjectRecord, request: Message
    ) -> management.InsertTreatmentResponse:
        assert isinstance(request, management.InsertTreatmentRequest)
        now = self.clock()

        def operation(connection: sqlite3.Connection) -> StoredTreatment:
            treatment_type = _require_type(connection, project, request.treatment_type_name)
            if request.HasField("external_treatment_id") and request.external_treatment_id:
                existing = _store.find_treatment(
                    connection,
                    project.project_id,
                    external_treatment_id=request.external_treatment_id,
                )
                if existing is not None:
                    raise ApiError(
                        Code.ALREADY_EXISTS,
                        f'a treatment with externalTreatmentId "{request.external_treatment_id}"'
                        f' already exists: "{existing.treatment.treatment_id}"',
                    )
            stored = new_treatment(connection, project, request, treatment_type, now)
            _store.put_treatment(connection, stored)
            return stored

        stored = await self.store.run(operation)
        return management.InsertTreatmentResponse(treatment=with_statuses(stored, now))

    async def _update_treatment(
        self, project: ProjectRecord, request: Message
    ) -> management.UpdateTreatmentResponse:
        assert isinstance(request, management.UpdateTreatmentRequest)
        now = self.clock()

        def operation(connection: sqlite3.Connection) -> StoredTreatment:
            stored = _find_for_update(connection, project, request)
            _apply_update(connection, project, stored, request, now)
            try:
                _store.put_treatment(connection, stored)
            except sqlite3.IntegrityError:
                raise _invalid(
                    "externalTreatmentId",
                    f"another treatment already has externalTreatmentId "
                    f'"{request.external_treatment_id}"',
                ) from None
            return stored

        stored = await self.store.run(operation)
        return management.UpdateTreatmentResponse(treatment=with_statuses(stored, now))

    # GetDataFields.

    async def _get_data_fields(
        self, project: ProjectRecord, request: Message
    ) -> management.GetDataFieldsByParamsResponse:
        assert isinstance(request, management.GetDataFieldsByParamsRequest)

        def operation(connection: sqlite3.Connection) -> management.GetDataFieldsByParamsResponse:
            response = management.GetDataFieldsByParamsResponse()
            for index, params in enumerate(request.data_field_params):
                path = f"dataFieldParams[{index}]"
                field_type = data_field_type_of(connection, project.project_id, params, path)
                data_field_id = _store.resolve_data_field(
                    connection, project.project_id, params, field_type
                )
                response.data_fields.add(
                    data_field_id=data_field_id,
                    data_field_params=params,
                    data_field_type=field_type,
                )
            return response

        return await self.store.run(operation)

    # LogTreatmentInteraction.

    def _log_treatment_interaction(
        self, project: ProjectRecord, request: Message
    ) -> Awaitable[interactions.LogTreatmentInteractionResponse]:
        # A plain function returning the store's future: the high-volume RPC
        # adds no coroutine of its own between its caller and the commit.
        assert isinstance(request, interactions.LogTreatmentInteractionRequest)
        del project
        return self.store.log_interaction(request, interactions.LogTreatmentInteractionResponse())


def data_field_type_of(
    connection: sqlite3.Connection, project_id: str, params: _DataFieldParams, path: str
) -> str:
    """Return the type of the data field that parameters define, checking them."""
    kind = params.WhichOneof("params")
    if kind == "user_attribute_data_field_params":
        name = params.user_attribute_data_field_params.property_name
        found = _store.user_attribute_type(connection, project_id, name)
        if found is None:
            raise _invalid(
                f"{path}.userAttributeDataFieldParams.propertyName",
                f'the project has no user attribute "{name}"',
            )
        return found
    metric = (
        params.treatment_data_field_params
        if kind == "treatment_data_field_params"
        else params.event_data_field_params
    )
    metric_path = json_path(
        path,
        "treatmentDataFieldParams"
        if kind == "treatment_data_field_params"
        else "eventDataFieldParams",
    )
    aggregation = metric.WhichOneof("aggregation")
    assert aggregation is not None  # oneof_required, checked by validation
    if aggregation == "daily_count_aggregation":
        window = metric.daily_count_aggregation.window_name
        match = _WINDOW.fullmatch(window)
        if match is None or int(match.group(1)) > _MAX_WINDOW_DAYS:
            raise _invalid(
                f"{metric_path}.dailyCountAggregation.windowName",
                f'"{window}" is not a window LAST_<N>D with N from 1 to {_MAX_WINDOW_DAYS}',
            )
    return _TYPE_BY_AGGREGATION[aggregation]


def _require_type(
    connection: sqlite3.Connection, project: ProjectRecord, name: str
) -> treatment_pb2.TreatmentTypePb:
    treatment_type = _store.get_treatment_type(connection, project.project_id, name)
    if treatment_type is None:
        raise _invalid("treatmentTypeName", f'the project has no treatment type "{name}"')
    return treatment_type


def _check_content(
    content: treatment_pb2.ContentPb,
    treatment_type: treatment_pb2.TreatmentTypePb,
    project: ProjectRecord,
) -> list[FieldViolation]:
    """Check content against its treatment type and the project's languages."""
    violations: list[FieldViolation] = []
    specific = {f.field_name: f for f in treatment_type.language_specific_content_field_types}
    agnostic = {f.field_name: f for f in treatment_type.language_agnostic_content_field_types}

    def check_fields(
        fields: list[treatment_pb2.ContentPb.TreatmentContentFieldPb],
        allowed: dict[str, treatment_pb2.TreatmentContentFieldTypePb],
        other: dict[str, treatment_pb2.TreatmentContentFieldTypePb],
        path: str,
        kind: str,
    ) -> None:
        seen: set[str] = set()
        other_kind = "language-agnostic" if kind == "language-specific" else "language-specific"
        for index, field in enumerate(fields):
            field_path = f"{path}[{index}]"
            name = field.field_name
            if name in seen:
                violations.append(
                    FieldViolation(
                        field=f"{field_path}.fieldName", description=f'"{name}" is set twice'
                    )
                )
            seen.add(name)
            if name not in allowed:
                hint = f"; it is a {other_kind} field of the type" if name in other else ""
                names = ", ".join(sorted(allowed)) or "none"
                violations.append(
                    FieldViolation(
                        field=f"{field_path}.fieldName",
                        description=(
                            f'"{name}" is not a {kind} content field of treatment type '
                            f'"{treatment_type.name}" (allowed: {names}){hint}'
                        ),
                    )
                )
                continue
            limit = allowed[name].value_length_limit
            if len(field.string_value) > limit:
                violations.append(
                    FieldViolation(
                        field=f"{field_path}.stringValue",
                        description=(
                            f"{len(field.string_value)} characters is longer than the limit "
                            f"of {limit} for {name}"
                        ),
                    )
                )

    languages: set[str] = set()
    for index, by_language in enumerate(content.content_by_language):
        path = f"content.contentByLanguage[{index}]"
        code = by_language.language_code.language_code
        if code not in project.supported_language_codes:
            supported = ", ".join(sorted(project.supported_language_codes))
            violations.append(
                FieldViolation(
                    field=f"{path}.languageCode.languageCode",
                    description=f'"{code}" is not a supported language code ({supported})',
                )
            )
        elif code in languages:
            violations.append(
                FieldViolation(
                    field=f"{path}.languageCode.languageCode",
                    description=f'"{code}" appears twice',
                )
            )
        languages.add(code)
        check_fields(
            list(by_language.content_fields),
            specific,
            agnostic,
            f"{path}.contentFields",
            "language-specific",
        )
    check_fields(
        list(content.language_agnostic_content_fields),
        agnostic,
        specific,
        "content.languageAgnosticContentFields",
        "language-agnostic",
    )
    return violations


def _check_removed_surfaces(
    removed: treatment_pb2.RemovedSurfacesListPb, treatment_type: treatment_pb2.TreatmentTypePb
) -> list[FieldViolation]:
    surfaces = {surface.name for surface in treatment_type.surfaces}
    return [
        FieldViolation(
            field=f"removedSurfaces.surfaces[{index}].name",
            description=(
                f'"{surface.name}" is not a surface of treatment type "{treatment_type.name}" '
                f"(surfaces: {', '.join(sorted(surfaces)) or 'none'})"
            ),
        )
        for index, surface in enumerate(removed.surfaces)
        if surface.name not in surfaces
    ]


def _check_rules(
    connection: sqlite3.Connection,
    project: ProjectRecord,
    rules: treatment_pb2.EligibilityRulesListPb,
) -> list[FieldViolation]:
    violations: list[FieldViolation] = []
    for index, rule in enumerate(rules.rules):
        path = f"eligibilityRules.rules[{index}]"
        field_type = _store.data_field_type(connection, project.project_id, rule.data_field_id)
        if field_type is None:
            violations.append(
                FieldViolation(
                    field=f"{path}.dataFieldId",
                    description=(
                        f"the project has no data field {rule.data_field_id}: "
                        "resolve it with GetDataFields first"
                    ),
                )
            )
        elif not _rhs_fits(field_type, rule.rhs_value):
            violations.append(
                FieldViolation(
                    field=f"{path}.rhsValue",
                    description=(
                        f'"{rule.rhs_value}" is not a value of data field {rule.data_field_id}, '
                        f"whose type is {field_type}"
                    ),
                )
            )
    return violations


def _group(
    connection: sqlite3.Connection, project: ProjectRecord, name: str
) -> treatment_pb2.MutualExclusionGroupPb:
    group_id = _store.mutual_exclusion_group(connection, project.project_id, name)
    return treatment_pb2.MutualExclusionGroupPb(
        project_id=project.numeric_project_id, mutual_exclusion_group_id=group_id, name=name
    )


def _touch(treatment: treatment_pb2.TreatmentPb, last_modified_by: str, now: int) -> None:
    treatment.last_modified_by = last_modified_by
    treatment.last_modified_timestamp.FromMicroseconds(now)
    treatment.modification_source = treatment_pb2.TreatmentPb.API


def new_treatment(
    connection: sqlite3.Connection,
    project: ProjectRecord,
    request: management.InsertTreatmentRequest,
    treatment_type: treatment_pb2.TreatmentTypePb,
    now: int,
    *,
    treatment_id: str | None = None,
) -> StoredTreatment:
    """Check an InsertTreatment request and return the treatment it creates."""
    violations = _check_content(request.content, treatment_type, project)
    violations += _check_removed_surfaces(request.removed_surfaces, treatment_type)
    violations += _check_rules(connection, project, request.eligibility_rules)
    if violations:
        raise ApiError.invalid_argument(violations)
    treatment = treatment_pb2.TreatmentPb(
        project_id=project.project_id,
        treatment_id=treatment_id or uuid.uuid4().hex,
        treatment_type=treatment_type,
        name=request.name,
        description=request.description,
        external_treatment_id=request.external_treatment_id,
    )
    version = treatment.versions.add(tags=request.tags)
    version.start_timestamp.CopyFrom(request.start_timestamp)
    if request.HasField("end_timestamp"):
        version.end_timestamp.CopyFrom(request.end_timestamp)
    version.content.CopyFrom(request.content)
    for name in ("eligibility_rules", "removed_surfaces", "target_action"):
        if _has(request, name):
            getattr(version, name).CopyFrom(getattr(request, name))
    if request.mutual_exclusion_group:
        treatment.mutual_exclusion_group.CopyFrom(
            _group(connection, project, request.mutual_exclusion_group)
        )
    _touch(treatment, request.last_modified_by, now)
    return StoredTreatment(treatment, [request.should_publish])


def _find_for_update(
    connection: sqlite3.Connection,
    project: ProjectRecord,
    request: management.UpdateTreatmentRequest,
) -> StoredTreatment:
    if request.treatment_id:
        stored = _store.find_treatment(
            connection, project.project_id, treatment_id=request.treatment_id
        )
        missing = f'no treatment "{request.treatment_id}" in project "{project.project_id}"'
    else:
        stored = _store.find_treatment(
            connection, project.project_id, external_treatment_id=request.external_treatment_id
        )
        missing = (
            f'no treatment with externalTreatmentId "{request.external_treatment_id}" '
            f'in project "{project.project_id}"'
        )
    if stored is None:
        raise ApiError(Code.NOT_FOUND, missing)
    return stored


_VERSION_FIELDS: Final = (
    "start_timestamp",
    "end_timestamp",
    "content",
    "eligibility_rules",
    "removed_surfaces",
    "target_action",
)


def _apply_update(
    connection: sqlite3.Connection,
    project: ProjectRecord,
    stored: StoredTreatment,
    request: management.UpdateTreatmentRequest,
    now: int,
) -> None:
    """Apply an UpdateTreatment request to a stored treatment.

    Treatment-level fields (name, description, external id, group) change in
    place. Version-level fields change the latest version while it is
    unpublished; once it is published, they go into a new version copied from
    it. ``tags`` is always applied: a repeated field has no presence, so an
    omitted list and an empty list both clear the tags (README, Spec notes).
    ``should_publish`` publishes the latest version.
    """
    treatment = stored.treatment
    treatment_type = _require_type(connection, project, treatment.treatment_type.name)
    violations: list[FieldViolation] = []
    if request.HasField("content"):
        violations += _check_content(request.content, treatment_type, project)
    if request.HasField("removed_surfaces"):
        violations += _check_removed_surfaces(request.removed_surfaces, treatment_type)
    if request.HasField("eligibility_rules"):
        violations += _check_rules(connection, project, request.eligibility_rules)
    if violations:
        raise ApiError.invalid_argument(violations)
    _update_treatment_fields(connection, project, treatment, request)
    _update_versions(stored, request)
    _touch(treatment, request.last_modified_by, now)


def _update_treatment_fields(
    connection: sqlite3.Connection,
    project: ProjectRecord,
    treatment: treatment_pb2.TreatmentPb,
    request: management.UpdateTreatmentRequest,
) -> None:
    if request.HasField("name"):
        treatment.name = request.name
    if request.HasField("description"):
        treatment.description = request.description
    if request.treatment_id and request.HasField("external_treatment_id"):
        treatment.external_treatment_id = request.external_treatment_id
    if request.HasField("mutual_exclusion_group"):
        if request.mutual_exclusion_group:
            treatment.mutual_exclusion_group.CopyFrom(
                _group(connection, project, request.mutual_exclusion_group)
            )
        else:
            treatment.ClearField("mutual_exclusion_group")


def _update_versions(stored: StoredTreatment, request: management.UpdateTreatmentRequest) -> None:
    treatment = stored.treatment
    latest_published = stored.published_versions[-1]
    if latest_published:
        version = treatment.versions.add()
        version.CopyFrom(treatment.versions[-2])
        stored.published_versions.append(False)
    else:
        version = treatment.versions[-1]
    del version.tags[:]
    version.tags.extend(request.tags)
    for name in _VERSION_FIELDS:
        if _has(request, name):
            getattr(version, name).CopyFrom(getattr(request, name))
    if request.should_publish:
        stored.published_versions[-1] = True
    elif latest_published and not _changes_version(request, treatment.versions[-2]):
        # Nothing of the live version changed: keep serving it, no new draft.
        del treatment.versions[-1]
        stored.published_versions.pop()


def _has(message: Message, field_name: str) -> bool:
    return message.HasField(field_name)


def _changes_version(
    request: management.UpdateTreatmentRequest, version: treatment_pb2.TreatmentVersionPb
) -> bool:
    if list(request.tags) != list(version.tags):
        return True
    return any(
        _has(request, name) and getattr(request, name) != getattr(version, name)
        for name in _VERSION_FIELDS
    )
