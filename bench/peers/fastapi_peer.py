"""The peer: LogTreatmentInteraction written the way most Python teams would, in FastAPI.

A pydantic model with the request's validation (camelCase or snake_case
names, unknown fields rejected, required fields non-empty, the enum by name,
int64 as a number or a string, in range), the API key checked against the
default seed's keys and project, and the row written to the same store as the
reference server (``SqliteStore``: SQLite, WAL, synchronous=FULL, group
commit) and committed before the answer. It runs on the same HTTP server and
event loop as the reference server.

Run: ``python -m bench.peers.fastapi_peer --port 0 --db FILE``.
"""

from __future__ import annotations

import enum
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Final

from fastapi import FastAPI, Header, HTTPException
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from auxia_decision.server._domain.seed import load_seed
from auxia_decision.server._storage.sqlite_store import SqliteStore
from bench.peers._serving import parse_address, serve_rest

_INT64 = 2**63


class InteractionType(enum.StrEnum):
    """The kinds of interaction a request may log."""

    VIEWED = "VIEWED"
    CLICKED = "CLICKED"
    SNOOZED = "SNOOZED"
    DISMISSED = "DISMISSED"
    CTA_COMPLETED = "CTA_COMPLETED"
    SWIPE = "SWIPE"


class LogTreatmentInteractionRequest(BaseModel):
    """The request body, with the same rules as the proto's field behaviors."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    project_id: str = Field(min_length=1)
    user_id: str = ""
    treatment_tracking_id: str = Field(min_length=1)
    treatment_id: str = ""
    surface: str = ""
    interaction_type: InteractionType
    interaction_time_micros: int = Field(ge=-_INT64, lt=_INT64)
    action_name: str = ""

    @field_validator("interaction_time_micros")
    @classmethod
    def _required(cls, value: int) -> int:
        if value == 0:
            msg = "required"
            raise ValueError(msg)
        return value


# The interaction types by name, numbered as the proto numbers them.
_TYPE_NUMBERS: Final = {kind.value: number for number, kind in enumerate(InteractionType, 1)}


@dataclass(frozen=True, slots=True)
class _JsonRow:
    """A logged interaction kept as its JSON (a ``LoggedRow`` of the store)."""

    request: LogTreatmentInteractionRequest
    body: bytes

    @property
    def project_id(self) -> str:
        return self.request.project_id

    @property
    def user_id(self) -> str:
        return self.request.user_id

    @property
    def interaction_type(self) -> int:
        return _TYPE_NUMBERS[self.request.interaction_type]

    @property
    def treatment_id(self) -> str:
        return self.request.treatment_id

    @property
    def surface(self) -> str:
        return self.request.surface

    @property
    def interaction_time_micros(self) -> int:
        return self.request.interaction_time_micros

    @property
    def treatment_tracking_id(self) -> str:
        return self.request.treatment_tracking_id

    def SerializeToString(self) -> bytes:  # noqa: N802 - the store's name for a row's bytes
        return self.body


def create_app(store: SqliteStore, projects_by_key: dict[str, str]) -> FastAPI:
    """Return the FastAPI app writing to ``store``."""
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @app.post("/v1/LogTreatmentInteraction")
    async def log_treatment_interaction(
        request: LogTreatmentInteractionRequest,
        x_api_key: Annotated[str | None, Header()] = None,
    ) -> dict[str, str]:
        project_id = projects_by_key.get(x_api_key or "")
        if project_id is None:
            raise HTTPException(status_code=401, detail="the API key is not valid")
        if request.project_id != project_id:
            raise HTTPException(status_code=403, detail="the key is of another project")
        body = request.model_dump_json(by_alias=True).encode()
        await store.log_interaction(_JsonRow(request, body), None)
        return {}

    return app


def main(argv: Sequence[str] | None = None) -> int:
    """Serve the peer until SIGTERM, then close its store."""
    args = parse_address(__doc__ or "", argv)
    seed = load_seed()
    projects_by_key = {
        key: project.project_id for project in seed.projects for key in project.api_keys
    }
    store = SqliteStore(args.db)
    try:
        serve_rest(create_app(store, projects_by_key), args, store)
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
