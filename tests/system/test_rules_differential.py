"""One rule set, two languages: the server's verdict and Ajv's on the same request bodies.

The rules are written once, in the protos (field behaviors, ``oneof_required``,
``field_rules``, ``message_rules``). The server reads them from the
descriptors (``RestCodec`` then ``check_request``: what the gateway runs before
an RPC); the OpenAPI document carries them as JSON Schema, which Ajv checks
in Node.js (``ts/validate.mjs``), as a JSON client in any language would. On
every documented sample (as written: the docs use the proto field names),
every fixture, the variants of a valid body of every request type in every
form proto3 JSON gives it (``tests/_request_forms.py``: names, nulls, each
integer, enum, double and timestamp form, unknown fields, wrong types) and
hypothesis-drawn messages of every request type, respelled, the two must
agree, body by body; but where a variant holds what JSON Schema cannot check
(``docs/rules.md`` lists it), where the server refuses and Ajv cannot.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Final

import pytest
from google.protobuf.message import Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auxia_decision import RestCodec
from auxia_decision._routes import routes
from tests._fixtures import PARSEABLE, REQUESTS, Sample
from tests._node import TS, LineScript, install_ts
from tests._repo import ROOT
from tests._request_forms import respelled
from tests._rule_draws import near_the_rules
from tests._strategies import messages
from tests._verdicts import descriptor, disagreement, request_variants, server_verdict

OPENAPI: Final = ROOT / "generated" / "auxia" / "decision" / "model" / "openapi.json"
REQUEST_TYPES: Final = {route.name: route.request_type for route in routes()}
_CODEC = RestCodec()


@pytest.fixture(scope="module")
def ajv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LineScript]:
    node = install_ts()
    stderr = tmp_path_factory.mktemp("ajv") / "validate.stderr"
    script = LineScript([node, str(TS / "validate.mjs"), str(OPENAPI)], stderr)
    yield script
    script.close()


def ajv_verdict(ajv: LineScript, body: Any, request_type: type[Message]) -> tuple[bool, str]:
    """Return whether Ajv takes a body by the document's request schema, and why not."""
    answer = ajv.ask({"schema": f"request.{request_type.DESCRIPTOR.full_name}", "body": body})
    assert "error" not in answer, answer
    return bool(answer["valid"]), "; ".join(answer.get("errors", []))


def _agree(ajv: LineScript, body: Any, request_type: type[Message]) -> bool:
    ours, why = server_verdict(body, request_type)
    theirs, their_why = ajv_verdict(ajv, body, request_type)
    assert ours == theirs, (
        f"server {'accepts' if ours else 'refuses'} ({why}), Ajv "
        f"{'accepts' if theirs else 'refuses'} ({their_why}): {json.dumps(body)[:500]}"
    )
    return ours


@pytest.mark.parametrize("sample", [s for s in PARSEABLE if s.is_request], ids=lambda s: s.name)
def test_every_documented_sample_and_fixture_is_taken_by_both(
    ajv: LineScript, sample: Sample
) -> None:
    # As written: the docs' samples give the proto field names, which the document takes too.
    assert _agree(ajv, json.loads(sample.text()), sample.message_type)


def _empty_like(value: Any) -> Any:
    """Return the JSON value of the same kind that proto3 reads as the default."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return 0
    return type(value)()


def _broken(body: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Yield a body with each of its top-level members left out, then emptied."""
    for key, value in body.items():
        yield {k: v for k, v in body.items() if k != key}
        yield {**body, key: _empty_like(value)}


@pytest.mark.parametrize("sample", [s for s in PARSEABLE if s.is_request], ids=lambda s: s.name)
def test_samples_with_a_member_missing_or_emptied_get_one_verdict(
    ajv: LineScript, sample: Sample
) -> None:
    body = json.loads(sample.text())
    verdicts = [_agree(ajv, broken, sample.message_type) for broken in _broken(body)]
    assert False in verdicts  # some of them break a rule


@pytest.mark.parametrize("method", sorted(REQUESTS))
def test_every_form_of_every_request_gets_one_verdict(ajv: LineScript, method: str) -> None:
    request_type = REQUESTS[method].message_type
    found = request_variants(method)
    problems = []
    accepted = 0
    for variant in found:
        ours = server_verdict(variant.body, request_type)
        theirs = ajv_verdict(ajv, variant.body, request_type)
        accepted += ours[0]
        if problem := disagreement(variant, ours, theirs, "Ajv"):
            problems.append(problem)
    assert not problems, f"{len(problems)} of {len(found)} variants:\n" + "\n".join(problems)
    # Both kinds are there: the forms taken, and those refused.
    assert 0 < accepted < len(found)


@pytest.mark.parametrize("method", sorted(REQUEST_TYPES))
def test_drawn_requests_get_one_verdict(ajv: LineScript, method: str) -> None:
    request_type = REQUEST_TYPES[method]
    verdicts: list[bool] = []

    @settings(
        max_examples=150,
        deadline=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(
        message=messages(request_type),
        project=st.sampled_from(["", "PROJECT_ID"]),
        data=st.data(),
    )
    def check(message: Message, project: str, data: st.DataObject) -> None:
        near_the_rules(message, data)
        body = json.loads(_CODEC.encode(message))
        if project:
            body["projectId"] = project
        # Respelled: either name, any exact form of each integer and enum, nulls.
        body = respelled(
            body, descriptor(request_type), lambda forms: data.draw(st.sampled_from(forms))
        )
        verdicts.append(_agree(ajv, body, request_type))

    check()
    assert False in verdicts  # the draws are not all valid (or all refused)
