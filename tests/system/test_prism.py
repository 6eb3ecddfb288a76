"""A validator that is not ours: Prism, as a validating proxy in front of the real server.

A team that validates requests at its gateway with our OpenAPI document must
not turn away what the API accepts. Prism (``@stoplight/prism-cli``, pinned in
``ts/prism/package-lock.json``) runs in proxy mode in front of a real server:
it validates each request with the document, forwards it, and names what it
found wrong in the ``sl-violations`` header. Every variant of every request
type (``tests/_request_forms.py``: names, nulls, every number, enum and
timestamp form, unknown fields, wrong types) goes through it; Prism's verdict
must be the server's validation's, but on the checks JSON Schema cannot
express (``docs/rules.md``), where the server refuses what Prism takes; and
the server answers 400 to every body its validation refuses.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from typing import Any, Final

import httpx
import pytest

from auxia_decision._routes import routes
from auxia_decision.server import LocalServer
from tests._fixtures import REQUESTS
from tests._node import install_prism
from tests._repo import ROOT
from tests._verdicts import Verdict, disagreement, request_variants, server_verdict

OPENAPI: Final = ROOT / "generated" / "auxia" / "decision" / "model" / "openapi.json"
PATHS: Final = {route.name: route.path for route in routes()}
START_SECONDS: Final = 60


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _listen_on(port: int) -> list[str]:
    return ["--host", "127.0.0.1", "--port", str(port)]


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with LocalServer() as started:
        yield started


@pytest.fixture(scope="module")
def prism(server: LocalServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of Prism proxying the server with the API's document."""
    command = install_prism()
    port = _free_port()
    log = tmp_path_factory.mktemp("prism") / "prism.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [*command, "proxy", str(OPENAPI), server.rest_url, *_listen_on(port)],
            stdout=output,
            stderr=subprocess.STDOUT,
            env={**os.environ, "NODE_NO_WARNINGS": "1", "SCARF_ANALYTICS": "false"},
        )
    try:
        deadline = time.monotonic() + START_SECONDS
        while "Prism is listening" not in log.read_text():
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"Prism did not start in {START_SECONDS} s:\n{log.read_text()}")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=20)


def prism_verdict(answer: httpx.Response) -> Verdict:
    """Return whether Prism took the request body it forwarded, and why not."""
    violations: list[dict[str, Any]] = json.loads(answer.headers.get("sl-violations", "[]"))
    errors = [
        violation
        for violation in violations
        if violation["location"][:2] == ["request", "body"] and violation["severity"] == "Error"
    ]
    why = "; ".join(
        f"{'/'.join(map(str, error['location'][2:]))}: {error['message']}" for error in errors
    )
    return not errors, why


@pytest.mark.parametrize("method", sorted(REQUESTS))
def test_prism_gives_the_server_s_verdict_on_every_form(
    prism: str, server: LocalServer, method: str
) -> None:
    request_type = REQUESTS[method].message_type
    found = request_variants(method)
    problems = []
    headers = {"x-api-key": server.api_key, "content-type": "application/json"}
    with (
        httpx.Client(base_url=prism, headers=headers, timeout=30) as through_prism,
        httpx.Client(base_url=server.rest_url, headers=headers, timeout=30) as direct,
    ):
        for variant in found:
            body = json.dumps(variant.body)
            ours = server_verdict(variant.body, request_type)
            answer = through_prism.post(PATHS[method], content=body)
            if problem := disagreement(variant, ours, prism_verdict(answer), "Prism"):
                problems.append(problem)
            # The verdict of this process is the served one (straight to the server:
            # Prism forwards the body as JavaScript parsed it, 1e400 as null).
            served = direct.post(PATHS[method], content=body)
            if not ours[0] and served.status_code != httpx.codes.BAD_REQUEST:
                problems.append(
                    f"{variant.label}: the validation refuses it ({ours[1]}), but the server "
                    f"answered {served.status_code} {served.text[:200]}"
                )
    assert not problems, f"{len(problems)} of {len(found)} variants:\n" + "\n".join(problems)
