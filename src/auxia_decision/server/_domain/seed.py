"""The seed: the world the reference server starts with (``io.auxia.decision.server.Seed``)."""

from __future__ import annotations

import importlib.resources
import pathlib
import re
from typing import Final

from auxia.decision.server import seed_pb2
from auxia_decision._codec import RestCodec
from auxia_decision._errors import ApiError, FieldViolation, violation
from auxia_decision._validation import check_request
from auxia_decision.server._domain.auth import as_digest, seed_key_digest
from auxia_decision.server._domain.data_fields import DATA_FIELD_TYPES, data_field_type_of
from auxia_decision.server._domain.treatments import new_treatment
from auxia_decision.server._storage.seam import ProjectRecord, Repository


def default_seed_text() -> str:
    """Return the default seed: the world of the API documentation's samples."""
    return (
        importlib.resources.files(__package__ or __name__).joinpath("default_seed.json").read_text()
    )


def load_seed(path: pathlib.Path | None = None) -> seed_pb2.Seed:
    """Read and check a seed file (proto JSON), or the default seed when ``path`` is None."""
    text = path.read_text() if path is not None else default_seed_text()
    try:
        given = RestCodec().decode_request(text, seed_pb2.Seed)
    except ApiError as error:
        # A document that does not decode is also checked for required fields,
        # before what the seed leaves implied (a project's id) is filled in.
        said = [v for v in error.field_violations if not _implied(v.field, v.description)]
        if not said or len(said) == len(error.field_violations):
            raise
        raise ApiError.invalid_argument(said) from None
    return checked_seed(given)


# The project id a treatment type or a treatment's insert may leave to its project.
_IMPLIED_PROJECT_ID: Final = re.compile(
    r"projects\[\d+\]\.(?:treatmentTypes\[\d+\]|treatments\[\d+\]\.insert)\.projectId"
)


def _implied(field: str, description: str) -> bool:
    """Return whether a violation is a project id the seed may leave implied, said missing."""
    return description == "required" and _IMPLIED_PROJECT_ID.fullmatch(field) is not None


def checked_seed(given: seed_pb2.Seed) -> seed_pb2.Seed:
    """Return a checked copy of a seed, with what it leaves implied filled in.

    Raises ApiError (INVALID_ARGUMENT) naming each bad field by its JSON path.
    """
    seed = seed_pb2.Seed()
    seed.CopyFrom(given)
    for project in seed.projects:
        # What belongs to a project names it; the seed may leave that implied.
        for treatment_type in project.treatment_types:
            treatment_type.project_id = treatment_type.project_id or project.project_id
        for seeded in project.treatments:
            seeded.insert.project_id = seeded.insert.project_id or project.project_id
    check_request(seed)
    _check_unique(seed)
    return seed


def digested(seed: seed_pb2.Seed) -> seed_pb2.Seed:
    """Return a copy of a seed whose API and admin keys are written as their digests.

    What a store shared by several processes keeps of the seed: it works as
    the seed does (``apply_seed``, the admin keys' check) and holds no key.
    """
    copy = seed_pb2.Seed()
    copy.CopyFrom(seed)
    copy.admin_keys[:] = [as_digest(key) for key in seed.admin_keys]
    for project in copy.projects:
        project.api_keys[:] = [as_digest(key) for key in project.api_keys]
    return copy


def project_seed(seed: seed_pb2.Seed, project_id: str) -> seed_pb2.Seed | None:
    """Return the part of a seed that makes one project, or None when it has no such project."""
    for project in seed.projects:
        if project.project_id == project_id:
            return seed_pb2.Seed(projects=[project], admin_keys=seed.admin_keys)
    return None


def _check_unique(seed: seed_pb2.Seed) -> None:
    """Refuse a seed that gives two projects one identifier, numeric identifier or API key.

    The error names where each clash is; never a key itself.
    """
    violations: list[FieldViolation] = []
    ids: dict[str, int] = {}
    numeric_ids: dict[int, int] = {}
    keys: dict[str, int] = {}
    for index, project in enumerate(seed.projects):
        path = f"projects[{index}]"
        if project.project_id in ids:
            violations.append(
                violation(f"{path}.projectId", f"projects[{ids[project.project_id]}] has it too")
            )
        ids.setdefault(project.project_id, index)
        if project.numeric_project_id in numeric_ids:
            other = numeric_ids[project.numeric_project_id]
            violations.append(
                violation(f"{path}.numericProjectId", f"projects[{other}] has it too")
            )
        numeric_ids.setdefault(project.numeric_project_id, index)
        for key_index, key in enumerate(project.api_keys):
            owner = keys.setdefault(key, index)
            if owner != index:
                violations.append(
                    violation(
                        f"{path}.apiKeys[{key_index}]",
                        f'the key is also a key of project "{seed.projects[owner].project_id}" '
                        f"(projects[{owner}]): a key belongs to one project",
                    )
                )
    for key_index, key in enumerate(seed.admin_keys):
        if key in keys:
            violations.append(
                violation(
                    f"adminKeys[{key_index}]",
                    f'the key is also an API key of project "{seed.projects[keys[key]].project_id}"'
                    f" (projects[{keys[key]}]): admin keys and API keys must differ",
                )
            )
        elif not key.strip():
            violations.append(violation(f"adminKeys[{key_index}]", "must not be empty"))
    if violations:
        raise ApiError.invalid_argument(violations)


def apply_seed(repository: Repository, seed: seed_pb2.Seed, now: int) -> None:
    """Write a seed to the store: configuration is replaced, data is added once.

    Projects, keys, treatment types and user-attribute types are written at
    every start; seeded data fields are resolved (which changes nothing when
    they exist) and seeded treatments are created only when their identifier is
    not taken, so data written through the API survives a restart.
    """
    for index, project in enumerate(seed.projects):
        path = f"projects[{index}]"
        record = ProjectRecord(
            project.project_id,
            project.numeric_project_id,
            frozenset(project.supported_language_codes),
        )
        repository.put_project(record, [seed_key_digest(key) for key in project.api_keys])
        for treatment_type in project.treatment_types:
            repository.put_treatment_type(treatment_type)
        for attribute in project.user_attribute_types:
            if attribute.data_field_type not in DATA_FIELD_TYPES:
                msg = (
                    f"{path}: user attribute {attribute.property_name} has type "
                    f"{attribute.data_field_type}, not one of {sorted(DATA_FIELD_TYPES)}"
                )
                raise ValueError(msg)
            repository.put_user_attribute_type(
                project.project_id, attribute.property_name, attribute.data_field_type
            )
        for number, params in enumerate(project.data_fields):
            field_type = data_field_type_of(
                repository, project.project_id, params, f"{path}.dataFields[{number}]"
            )
            repository.resolve_data_field(project.project_id, params, field_type)
        for number, seeded in enumerate(project.treatments):
            if repository.find_treatment(project.project_id, treatment_id=seeded.treatment_id):
                continue
            insert = seeded.insert
            where = f"{path}.treatments[{number}].insert"
            seeded_type = repository.treatment_type(project.project_id, insert.treatment_type_name)
            if seeded_type is None:
                msg = f"{where}.treatmentTypeName: no treatment type {insert.treatment_type_name}"
                raise ValueError(msg)
            try:
                stored = new_treatment(
                    repository, record, insert, seeded_type, now, treatment_id=seeded.treatment_id
                )
            except ApiError as error:
                if not error.field_violations:
                    raise
                raise ApiError.invalid_argument(
                    [
                        violation(f"{where}.{v.field}" if v.field else where, v.description)
                        for v in error.field_violations
                    ]
                ) from None
            repository.put_treatment(stored)
