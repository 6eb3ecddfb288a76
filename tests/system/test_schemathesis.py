"""Schemathesis drives the live server from its own OpenAPI description.

Every operation gets generated requests (valid and invalid): the server must
never answer 5xx, and every answer must conform to the description (status
code, content type, body schema). The budget is small in ``make test``;
``make fuzz`` raises it with ``AUXIA_FUZZ_EXAMPLES``.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from auxia_decision._routes import routes
from tests._served import Served

MAX_EXAMPLES = int(os.environ.get("AUXIA_FUZZ_EXAMPLES", "15"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# Every route the descriptors' google.api.http rules give.
OPERATIONS = sorted(f"{route.http_method} {route.path}" for route in routes())


@pytest.fixture(scope="module")
def api_schema(server: Served) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{server.rest_url}/openapi.json")


def test_the_description_has_every_operation(api_schema: schemathesis.BaseSchema) -> None:
    labels = []
    for result in api_schema.get_all_operations():
        assert isinstance(result, Ok), result
        labels.append(result.ok().label)
    labels.sort()
    assert labels == OPERATIONS


@pytest.mark.parametrize("label", OPERATIONS)
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_operation_conforms_and_never_fails_with_5xx(
    api_schema: schemathesis.BaseSchema, server: Served, label: str, mode: GenerationMode
) -> None:
    operation = api_schema.find_operation_by_label(label)
    assert operation is not None

    @settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case: schemathesis.Case[Any]) -> None:
        if isinstance(case.body, dict) and mode is GenerationMode.POSITIVE:
            # Generated bodies name random projects (403); send them to ours
            # so that validation and the RPCs themselves are exercised too.
            case.body["projectId"] = "PROJECT_ID"
        case.call_and_validate(
            base_url=server.rest_url,
            headers={"x-api-key": "TEST_API_KEY"},
            checks=CHECKS,
        )

    check()
