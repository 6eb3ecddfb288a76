"""The rules of treatments: what InsertTreatment and UpdateTreatment accept and do.

Statuses are derived when read, from the publish state, the launch window
and the clock; the rest checks requests against the project's treatment
types, languages and data fields, and builds the treatments they describe.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import uuid
from collections.abc import Iterable
from typing import Final

from google.protobuf.message import Message

from auxia.decision.model import treatment_management_service_pb2 as management
from auxia.decision.model import treatment_pb2
from auxia_decision._errors import ApiError, Code, FieldViolation, invalid_field
from auxia_decision.server._storage.seam import (
    ExternalIdTakenError,
    ProjectRecord,
    Repository,
    StoredTreatment,
)

_TreatmentStatus = treatment_pb2.TreatmentPb.Status
_VersionStatus = treatment_pb2.TreatmentVersionPb.Status


def insert_treatment(
    repository: Repository,
    project: ProjectRecord,
    request: management.InsertTreatmentRequest,
    now: int,
) -> StoredTreatment:
    """Create the treatment an InsertTreatment request describes, at ``now`` (microseconds).

    A used ``externalTreatmentId`` is ALREADY_EXISTS; every other bad value is
    INVALID_ARGUMENT naming its field.
    """
    treatment_type = _require_type(repository, project, request.treatment_type_name)
    if request.HasField("external_treatment_id") and request.external_treatment_id:
        existing = repository.find_treatment(
            project.project_id, external_treatment_id=request.external_treatment_id
        )
        if existing is not None:
            raise ApiError(
                Code.ALREADY_EXISTS,
                f'a treatment with externalTreatmentId "{request.external_treatment_id}"'
                f' already exists: "{existing.treatment.treatment_id}"',
            )
    stored = new_treatment(repository, project, request, treatment_type, now)
    repository.put_treatment(stored)
    return stored


def update_treatment(
    repository: Repository,
    project: ProjectRecord,
    request: management.UpdateTreatmentRequest,
    now: int,
) -> StoredTreatment:
    """Apply an UpdateTreatment request at ``now`` (microseconds); return the treatment.

    An unknown treatment is NOT_FOUND; every bad value is INVALID_ARGUMENT
    naming its field.
    """
    stored = _find_for_update(repository, project, request)
    _apply_update(repository, project, stored, request, now)
    try:
        repository.put_treatment(stored)
    except ExternalIdTakenError:
        raise invalid_field(
            "externalTreatmentId",
            f'another treatment already has externalTreatmentId "{request.external_treatment_id}"',
        ) from None
    return stored


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


def _require_type(
    repository: Repository, project: ProjectRecord, name: str
) -> treatment_pb2.TreatmentTypePb:
    treatment_type = repository.treatment_type(project.project_id, name)
    if treatment_type is None:
        raise invalid_field("treatmentTypeName", f'the project has no treatment type "{name}"')
    return treatment_type


def _check_content(
    content: treatment_pb2.ContentPb,
    treatment_type: treatment_pb2.TreatmentTypePb,
    project: ProjectRecord,
) -> list[FieldViolation]:
    """Check content against its treatment type and the project's languages."""
    specific = _FieldKind("language-specific", treatment_type, specific=True)
    agnostic = _FieldKind("language-agnostic", treatment_type, specific=False)
    violations: list[FieldViolation] = []
    languages: set[str] = set()
    for index, by_language in enumerate(content.content_by_language):
        path = f"content.contentByLanguage[{index}]"
        code = by_language.language_code.language_code
        problem = _language_problem(code, languages, project)
        if problem is not None:
            violations.append(
                FieldViolation(field=f"{path}.languageCode.languageCode", description=problem)
            )
        languages.add(code)
        violations += specific.check(by_language.content_fields, f"{path}.contentFields", agnostic)
    violations += agnostic.check(
        content.language_agnostic_content_fields, "content.languageAgnosticContentFields", specific
    )
    return violations


def _language_problem(code: str, seen: set[str], project: ProjectRecord) -> str | None:
    """Return what is wrong with a language of the content (unsupported, twice), or None."""
    if code not in project.supported_language_codes:
        supported = ", ".join(sorted(project.supported_language_codes))
        return f'"{code}" is not a supported language code ({supported})'
    if code in seen:
        return f'"{code}" appears twice'
    return None


class _FieldKind:
    """The content fields of one kind a treatment type allows (language-specific or -agnostic)."""

    def __init__(
        self, kind: str, treatment_type: treatment_pb2.TreatmentTypePb, *, specific: bool
    ) -> None:
        self.kind = kind
        self.type_name = treatment_type.name
        declared = (
            treatment_type.language_specific_content_field_types
            if specific
            else treatment_type.language_agnostic_content_field_types
        )
        self.allowed = {field.field_name: field for field in declared}

    def check(
        self,
        fields: Iterable[treatment_pb2.ContentPb.TreatmentContentFieldPb],
        path: str,
        other: _FieldKind,
    ) -> list[FieldViolation]:
        """Check fields given as this kind: known, once each, within their length limit."""
        violations: list[FieldViolation] = []
        seen: set[str] = set()
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
            declared = self.allowed.get(name)
            if declared is None:
                hint = f"; it is a {other.kind} field of the type" if name in other.allowed else ""
                names = ", ".join(sorted(self.allowed)) or "none"
                description = (
                    f'"{name}" is not a {self.kind} content field of treatment type '
                    f'"{self.type_name}" (allowed: {names}){hint}'
                )
                violations.append(
                    FieldViolation(field=f"{field_path}.fieldName", description=description)
                )
            elif len(field.string_value) > declared.value_length_limit:
                description = (
                    f"{len(field.string_value)} characters is longer than the limit "
                    f"of {declared.value_length_limit} for {name}"
                )
                violations.append(
                    FieldViolation(field=f"{field_path}.stringValue", description=description)
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
    repository: Repository,
    project: ProjectRecord,
    rules: treatment_pb2.EligibilityRulesListPb,
) -> list[FieldViolation]:
    violations: list[FieldViolation] = []
    for index, rule in enumerate(rules.rules):
        path = f"eligibilityRules.rules[{index}]"
        field_type = repository.data_field_type(project.project_id, rule.data_field_id)
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
    repository: Repository, project: ProjectRecord, name: str
) -> treatment_pb2.MutualExclusionGroupPb:
    group_id = repository.mutual_exclusion_group(project.project_id, name)
    return treatment_pb2.MutualExclusionGroupPb(
        project_id=project.numeric_project_id, mutual_exclusion_group_id=group_id, name=name
    )


def _touch(treatment: treatment_pb2.TreatmentPb, last_modified_by: str, now: int) -> None:
    treatment.last_modified_by = last_modified_by
    treatment.last_modified_timestamp.FromMicroseconds(now)
    treatment.modification_source = treatment_pb2.TreatmentPb.API


def new_treatment(
    repository: Repository,
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
    violations += _check_rules(repository, project, request.eligibility_rules)
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
            _group(repository, project, request.mutual_exclusion_group)
        )
    _touch(treatment, request.last_modified_by, now)
    return StoredTreatment(treatment, [request.should_publish])


def _find_for_update(
    repository: Repository,
    project: ProjectRecord,
    request: management.UpdateTreatmentRequest,
) -> StoredTreatment:
    if request.treatment_id:
        stored = repository.find_treatment(project.project_id, treatment_id=request.treatment_id)
        missing = f'no treatment "{request.treatment_id}" in project "{project.project_id}"'
    else:
        stored = repository.find_treatment(
            project.project_id, external_treatment_id=request.external_treatment_id
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
    repository: Repository,
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
    treatment_type = _require_type(repository, project, treatment.treatment_type.name)
    violations: list[FieldViolation] = []
    if request.HasField("content"):
        violations += _check_content(request.content, treatment_type, project)
    if request.HasField("removed_surfaces"):
        violations += _check_removed_surfaces(request.removed_surfaces, treatment_type)
    if request.HasField("eligibility_rules"):
        violations += _check_rules(repository, project, request.eligibility_rules)
    if violations:
        raise ApiError.invalid_argument(violations)
    _update_treatment_fields(repository, project, treatment, request)
    _update_versions(stored, request)
    _touch(treatment, request.last_modified_by, now)


def _update_treatment_fields(
    repository: Repository,
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
                _group(repository, project, request.mutual_exclusion_group)
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


# GetTreatment and GetAllTreatments.


def get_treatment(
    repository: Repository, project: ProjectRecord, treatment_id: str
) -> StoredTreatment:
    """Return a treatment of the project; NOT_FOUND when it has none of that identifier."""
    stored = repository.find_treatment(project.project_id, treatment_id=treatment_id)
    if stored is None:
        raise ApiError(
            Code.NOT_FOUND, f'no treatment "{treatment_id}" in project "{project.project_id}"'
        )
    return stored


DEFAULT_PAGE_SIZE: Final = 50
MAX_PAGE_SIZE: Final = 1000


def get_all_treatments(
    repository: Repository, project: ProjectRecord, request: management.GetAllTreatmentsRequest
) -> tuple[list[StoredTreatment], str]:
    """Return one page of the project's treatments that match the filters, and the next token.

    Treatments are ordered by identifier; the token names the last one of the
    page and the filters it was made for, so that a token is refused with
    other filters or another project.
    """
    size = min(request.page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    filters = _filters_digest(project.project_id, request)
    after = _page_start(request.page_token, filters)
    types = {t.name: t for t in repository.treatment_types(project.project_id)}
    matching = [
        stored
        for stored in repository.treatments(project.project_id)
        if stored.treatment.treatment_id > after and _matches(stored, request, types)
    ]
    page = matching[:size]
    token = _page_token(page[-1].treatment.treatment_id, filters) if len(matching) > size else ""
    return page, token


def _matches(
    stored: StoredTreatment,
    request: management.GetAllTreatmentsRequest,
    types: dict[str, treatment_pb2.TreatmentTypePb],
) -> bool:
    treatment = stored.treatment
    wanted_type = request.treatment_filter.treatment_type_name
    if wanted_type and treatment.treatment_type.name != wanted_type:
        return False
    surfaces = set(request.treatment_version_filter.surface.surface_names)
    tags = set(request.treatment_version_filter.tag.tags)
    if not surfaces and not tags:
        return True
    treatment_type = types.get(treatment.treatment_type.name, treatment.treatment_type)
    offered = {surface.name for surface in treatment_type.surfaces}
    for version in treatment.versions:
        version_surfaces = offered - {s.name for s in version.removed_surfaces.surfaces}
        if surfaces and not surfaces & version_surfaces:
            continue
        if tags and not tags & {tag.name for tag in version.tags}:
            continue
        return True
    return False


def _filters_digest(project_id: str, request: management.GetAllTreatmentsRequest) -> str:
    filters = management.GetAllTreatmentsRequest(
        project_id=project_id,
        treatment_filter=request.treatment_filter,
        treatment_version_filter=request.treatment_version_filter,
    )
    return hashlib.sha256(filters.SerializeToString(deterministic=True)).hexdigest()[:16]


def _page_token(last_treatment_id: str, filters: str) -> str:
    text = json.dumps({"after": last_treatment_id, "filters": filters}, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _page_start(token: str, filters: str) -> str:
    """Return the treatment identifier a page token continues after ("" for the first page)."""
    if not token:
        return ""
    try:
        padded = token + "=" * (-len(token) % 4)
        document = json.loads(base64.urlsafe_b64decode(padded.encode()))
        after, made_for = document["after"], document["filters"]
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise invalid_field("pageToken", "not a token this method returned") from None
    if made_for != filters or not isinstance(after, str):
        raise invalid_field(
            "pageToken", "the token was returned for another project or other filters"
        )
    return after
