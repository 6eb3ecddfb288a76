"""The peer of GetTreatments: the same decision code, behind FastAPI and pydantic.

The request and the response are pydantic models (camelCase or snake_case
names, unknown fields rejected, one value per attribute, counts not
negative), the API key is checked against the seed's keys, and the decision
is the reference server's own (``decide`` over the compiled catalog and the
users' activity, the same store: served treatments committed before the
answer). It runs on the same HTTP server and event loop as the reference
server.

Run: ``python -m bench.peers.fastapi_decisions --port 0 --db FILE --seed FILE``.
"""

from __future__ import annotations

import asyncio
import pathlib
import sys
import time
from collections.abc import Sequence
from typing import Annotated, Self

from fastapi import FastAPI, Header, HTTPException
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from auxia_decision import ApiError
from auxia_decision.server._domain.catalog import Catalog, compile_catalog
from auxia_decision.server._domain.decisions import (
    DecisionRequest,
    decide,
    response_id,
    tracking_id,
)
from auxia_decision.server._domain.seed import apply_seed, load_seed
from auxia_decision.server._storage.seam import ServedTreatment
from auxia_decision.server._storage.sqlite_store import SqliteStore
from bench.peers._serving import parse_address, serve_rest


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class ContextualAttribute(_Model):
    """A key and exactly one value."""

    key: str = Field(min_length=1)
    string_value: str | None = None
    bool_value: bool | None = None
    integer_value: int | None = Field(default=None, ge=-(2**63), lt=2**63)

    @model_validator(mode="after")
    def _one_value(self) -> Self:
        given = [self.string_value, self.bool_value, self.integer_value]
        if sum(value is not None for value in given) != 1:
            msg = "set exactly one of stringValue, boolValue, integerValue"
            raise ValueError(msg)
        return self


class SurfaceRequest(_Model):
    """One surface and how many treatments it takes."""

    surface: str = Field(min_length=1)
    maximum_treatment_count: int = Field(default=0, ge=0, lt=2**63)
    minimum_treatment_count: int = Field(default=0, ge=0, lt=2**63)


class GetTreatmentsRequest(_Model):
    """The request body."""

    project_id: str = Field(min_length=1)
    user_id: str = Field(min_length=1)
    contextual_attributes: list[ContextualAttribute] = []
    surfaces: list[SurfaceRequest] = Field(min_length=1)
    language_code: str = ""


class UserTreatment(_Model):
    """A treatment chosen for the user."""

    treatment_id: str
    treatment_tracking_id: str
    rank: str
    content_language_code: str
    treatment_content: str
    treatment_type: str
    surface: str


class GetTreatmentsResponse(_Model):
    """The response body."""

    response_id: str
    user_treatments: list[UserTreatment] | None = None


def _asked(request: GetTreatmentsRequest) -> DecisionRequest:
    """Return what the decision code reads of the request: its surfaces' and attributes' fields."""
    return DecisionRequest(
        request.user_id,
        request.language_code,
        [surface.model_dump() for surface in request.surfaces],
        [attribute.model_dump() for attribute in request.contextual_attributes],
    )


def create_app(
    store: SqliteStore, catalogs: dict[str, Catalog], projects_by_key: dict[str, str]
) -> FastAPI:
    """Return the FastAPI app deciding over ``catalogs`` and recording into ``store``."""
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @app.post("/v1/GetTreatments", response_model_exclude_none=True)
    async def get_treatments(
        request: GetTreatmentsRequest,
        x_api_key: Annotated[str | None, Header()] = None,
    ) -> GetTreatmentsResponse:
        project_id = projects_by_key.get(x_api_key or "")
        if project_id is None:
            raise HTTPException(status_code=401, detail="the API key is not valid")
        if request.project_id != project_id:
            raise HTTPException(status_code=403, detail="the key is of another project")
        now = time.time_ns() // 1000
        activity = store.cached_activity(project_id, request.user_id) or await store.activity(
            project_id, request.user_id
        )
        try:
            decision = decide(catalogs[project_id], _asked(request), activity, now)
        except ApiError as error:
            raise HTTPException(status_code=400, detail=error.message) from None
        answer_id = response_id()
        chosen = [
            UserTreatment(
                treatment_id=choice.treatment.treatment_id,
                treatment_tracking_id=tracking_id(choice.treatment.treatment_id, answer_id),
                rank=str(choice.rank),
                content_language_code=decision.language,
                treatment_content=choice.content,
                treatment_type=choice.treatment.type_name,
                surface=choice.surface,
            )
            for choice in decision.choices
        ]
        if chosen:
            served = [
                ServedTreatment(answer_id, t.treatment_id, t.surface, t.treatment_tracking_id, now)
                for t in chosen
            ]
            await store.record_served(project_id, request.user_id, served, None)
        return GetTreatmentsResponse(response_id=answer_id, user_treatments=chosen or None)

    return app


async def _catalogs(store: SqliteStore, project_ids: list[str]) -> dict[str, Catalog]:
    found = {}
    for project_id in project_ids:
        found[project_id] = await store.run(
            lambda repository, project_id=project_id: compile_catalog(  # type: ignore[misc]
                project_id,
                repository.treatment_types(project_id),
                repository.user_attribute_types(project_id),
                repository.data_fields(project_id),
                repository.treatments(project_id),
            )
        )
    return found


def main(argv: Sequence[str] | None = None) -> int:
    """Serve the peer until SIGTERM, then close its store."""
    arguments = list(argv if argv is not None else sys.argv[1:])
    seed_path = None
    if "--seed" in arguments:
        position = arguments.index("--seed")
        seed_path = pathlib.Path(arguments[position + 1])
        del arguments[position : position + 2]
    args = parse_address(__doc__ or "", arguments)
    seed = load_seed(seed_path)
    projects_by_key = {
        key: project.project_id for project in seed.projects for key in project.api_keys
    }
    store = SqliteStore(args.db)
    try:
        store.run_sync(lambda repository: apply_seed(repository, seed, time.time_ns() // 1000))
        project_ids = [project.project_id for project in seed.projects]
        catalogs = asyncio.run(_catalogs(store, project_ids))
        serve_rest(create_app(store, catalogs, projects_by_key), args, store)
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
