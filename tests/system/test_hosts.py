"""The Host check (no DNS rebinding) and CORS, against ``auxia-decision serve`` processes.

A page whose domain name was rebound to 127.0.0.1 sends its own name in
``Host``: such a request gets 403 on every path, the console's included;
``--allowed-host`` admits a name. No answer has CORS headers unless
``--cors-origin`` names the origin.
"""

from __future__ import annotations

import pathlib
import subprocess
from collections.abc import Iterator

import httpx
import pytest

from tests._repo import VENV_BIN
from tests._served import Served, served

BODY = b'{"projectId": "PROJECT_ID", "userId": "u", "surfaces": [{"surface": "CART_SCREEN"}]}'
HEADERS = {"content-type": "application/json", "x-api-key": "TEST_API_KEY"}


@pytest.fixture(scope="module")
def opened(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A server that answers devbox and *.test.example, with CORS for one origin."""
    db = tmp_path_factory.mktemp("hosts") / "server.db"
    flags = ("--allowed-host", "devbox", "--allowed-host", ".test.example")
    with served(db, *flags, "--cors-origin", "http://localhost:3000") as running:
        yield running


def _post(
    http: httpx.Client, server: Served, host: str, path: str = "/v1/GetTreatments", **headers: str
) -> httpx.Response:
    return http.post(
        server.rest_url + path, content=BODY, headers={**HEADERS, "host": host, **headers}
    )


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "localhost", "LOCALHOST.", "app.localhost", "[::1]", "10.1.2.3", "127.0.0.1:9"],
)
def test_loopback_names_and_addresses_are_answered(
    http: httpx.Client, server: Served, host: str
) -> None:
    assert _post(http, server, host).status_code == 200


@pytest.mark.parametrize(
    ("path", "method"),
    [("/v1/GetTreatments", "POST"), ("/console/", "GET"), ("/emulator/v1/GetClock", "POST")],
)
def test_a_rebound_name_gets_403_saying_which_flag_admits_it(
    server: Served, path: str, method: str
) -> None:
    answer = httpx.request(
        method,
        server.rest_url + path,
        content=b"{}",
        headers={"host": "evil.example:8080", "x-admin-key": "EMULATOR_ADMIN_KEY"},
    )
    assert answer.status_code == 403
    assert answer.headers["content-type"] == "application/json"
    status = answer.json()
    assert status["code"] == 7  # PERMISSION_DENIED, a google.rpc.Status
    assert 'the Host "evil.example:8080" is not a name of this server' in status["message"]
    assert "--allowed-host evil.example" in status["message"]


@pytest.mark.parametrize("host", ["devbox", "devbox:80", "test.example", "a.b.test.example"])
def test_allowed_hosts_are_answered(http: httpx.Client, opened: Served, host: str) -> None:
    assert _post(http, opened, host).status_code == 200


@pytest.mark.parametrize("host", ["devbox.evil", "nottest.example", "evil.example"])
def test_other_hosts_are_still_refused(http: httpx.Client, opened: Served, host: str) -> None:
    assert _post(http, opened, host).status_code == 403


def test_no_cors_headers_by_default(http: httpx.Client, server: Served) -> None:
    answer = _post(http, server, "localhost", origin="http://localhost:3000")
    assert not [name for name in answer.headers if name.startswith("access-control")]
    preflight = httpx.options(
        server.rest_url + "/v1/GetTreatments",
        headers={"origin": "http://localhost:3000", "access-control-request-method": "POST"},
    )
    assert preflight.status_code == 405
    assert "access-control-allow-origin" not in preflight.headers


def test_cors_for_the_origins_given(http: httpx.Client, opened: Served) -> None:
    answer = _post(http, opened, "localhost", origin="http://localhost:3000")
    assert answer.headers["access-control-allow-origin"] == "http://localhost:3000"
    assert answer.headers["vary"] == "origin"
    refused = _post(
        http, opened, "localhost", origin="http://localhost:3000", **{"x-api-key": "NO"}
    )
    assert refused.status_code == 401
    assert refused.headers["access-control-allow-origin"] == "http://localhost:3000"
    other = _post(http, opened, "localhost", origin="http://elsewhere.example")
    assert "access-control-allow-origin" not in other.headers
    preflight = httpx.options(
        opened.rest_url + "/v1/GetTreatments",
        headers={"origin": "http://localhost:3000", "access-control-request-method": "POST"},
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "http://localhost:3000"
    assert "x-api-key" in preflight.headers["access-control-allow-headers"]


@pytest.mark.parametrize("origin", ["localhost:3000", "http://localhost:3000/", "ftp://x"])
def test_a_cors_origin_that_is_not_one_is_a_usage_error(
    tmp_path: pathlib.Path, origin: str
) -> None:
    result = subprocess.run(
        [str(VENV_BIN / "auxia-decision"), "serve", "--cors-origin", origin, "--db", ":memory:"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "--cors-origin: not an origin such as http://localhost:3000" in result.stderr
