"""The console and the explorer in a real browser: headless Chromium, driven by Playwright.

One session: the console opens with the admin key and shows the treatments;
GetTreatments is tried through the explorer (RapiDoc) with an API key typed
into it; a DISMISSED is logged through the API; the console's feed shows it
and the treatment's verdict for that user turns from "served" to
"suppressed". Every request the pages make goes to the local server. A
screenshot of each view is kept in ``build/test-artifacts/console/``.

Chromium is Debian's (``make system-packages`` installs it); without one the
test is skipped, saying so.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any, Final

import httpx
import pytest

from auxia.decision.model import treatment_decision_service_pb2 as decisions
from auxia.decision.model import treatment_interaction_service_pb2 as interactions
from auxia_decision import ApiError
from auxia_decision._routes import routes
from auxia_decision.server import LocalServer
from auxia_decision.server._storage import filters
from tests._repo import ROOT

ARTIFACTS: Final = (
    pathlib.Path(os.environ.get("AUXIA_TEST_ARTIFACTS", ROOT / "build" / "test-artifacts"))
    / "console"
)
CHROMIUM_FLAGS: Final = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
Interaction = interactions.LogTreatmentInteractionRequest


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path is not None:
            return path
    pytest.skip(
        "no Chromium on this machine: `make system-packages` installs Debian's chromium "
        "(as root); without it the console's browser test cannot run"
    )


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with LocalServer() as started:
        yield started


@pytest.fixture(scope="module")
def browser_page(server: LocalServer) -> Iterator[tuple[Any, list[str]]]:
    """A page of headless Chromium, and the URL of every request it made."""
    chromium = _chromium()
    from playwright.sync_api import sync_playwright  # noqa: PLC0415 - only with Chromium

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    requests: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.on("request", lambda request: requests.append(request.url))
        page.set_default_timeout(15_000)
        yield page, requests
        browser.close()


def _shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _verdict(page: Any, treatment_id: str) -> str:
    """Return the verdict the console shows for a treatment."""
    row = page.locator("#verdicts tbody tr", has_text=treatment_id)
    return str(row.locator(".verdict").inner_text())


def test_a_developer_finds_why_a_user_is_not_served(
    server: LocalServer, browser_page: tuple[Any, list[str]]
) -> None:
    page, requests = browser_page
    console = f"{server.rest_url}/console/"

    # The console opens with the admin key and shows the project's treatments.
    page.goto(console)
    page.fill("#admin-key", server.admin_key)
    page.click("#key-form button")
    page.locator("#treatments tbody tr", has_text="CART_REMINDER").wait_for()
    row = page.locator("#treatments tbody tr", has_text="CART_REMINDER").inner_text()
    assert "LIVE" in row
    assert "DISMISSED of CART_REMINDER in LAST_30D EQUALS 0" in row
    _shot(page, "1-treatments")

    # GetTreatments, tried through the explorer with the API key typed in.
    page.goto(f"{console}explorer.html")
    page.locator('[data-content-id="auth"]').click()
    page.fill("#apiKey-apiKeyHeader-api-key-input", server.api_key)
    page.locator("button", has_text="SET").first.click()
    page.locator('[data-content-id="post-/v1/GetTreatments"]').click()
    body = {
        "projectId": server.project_id,
        "userId": "shopper-1",
        "surfaces": [{"surface": "CART_SCREEN"}],
    }
    page.locator("textarea.request-body-param-user-input").fill(json.dumps(body))
    page.locator("button", has_text="TRY").first.click()
    page.get_by_text("Response Status: OK:200").wait_for()
    _shot(page, "2-explorer-get-treatments")
    (decision,) = server.decisions(user_id="shopper-1")
    served = decision.served_treatments[0]
    assert served.treatment_id == "CART_REMINDER"

    # Every form proto3 JSON gives a body goes through it too: proto names, null, a count as text.
    page.locator("button", has_text="CLEAR RESPONSE").click()
    forms = {
        "project_id": server.project_id,
        "userId": "shopper-2",
        "surfaces": [{"surface": "CART_SCREEN", "maximum_treatment_count": "1e1"}],
        "languageCode": None,
    }
    page.locator("textarea.request-body-param-user-input").fill(json.dumps(forms))
    page.locator("button", has_text="TRY").first.click()
    page.get_by_text("Response Status: OK:200").wait_for()
    (other,) = server.decisions(user_id="shopper-2")
    assert [t.treatment_id for t in other.served_treatments] == ["CART_REMINDER"]

    # The console explains the decision: served.
    page.goto(console)
    page.locator("#decision-feed tbody tr", has_text="shopper-1").click()
    page.locator("#verdicts tbody tr", has_text="CART_REMINDER").wait_for()
    assert _verdict(page, "CART_REMINDER") == "served"
    _shot(page, "3-why-served")

    # The user dismisses it; the service logs that through the API.
    with server.client() as client:
        client.log_treatment_interaction(
            Interaction(
                project_id=server.project_id,
                user_id="shopper-1",
                treatment_id=served.treatment_id,
                treatment_tracking_id=served.treatment_tracking_id,
                interaction_type=Interaction.DISMISSED,
                interaction_time_micros=time.time_ns() // 1000,
                surface="CART_SCREEN",
            )
        )

        # The next page view shows nothing on the cart.
        nothing = client.get_treatments(
            decisions.GetTreatmentsRequest(
                project_id=server.project_id,
                user_id="shopper-1",
                surfaces=[decisions.SurfaceRequest(surface="CART_SCREEN")],
            )
        )
        assert not nothing.user_treatments

    # The feeds show both, and the verdict of that empty decision is "suppressed", with the rule.
    # The interactions' feed asks for one page of the newest, however big the store.
    listings: list[dict[str, Any]] = []
    page.on(
        "request",
        lambda request: (
            listings.append(json.loads(request.post_data or "{}"))
            if request.url.endswith("/emulator/v1/ListInteractions")
            else None
        ),
    )
    page.fill("#filter-user", "shopper-1")
    page.locator("#interaction-feed tbody tr", has_text="DISMISSED").wait_for()
    assert "DISMISSED" in page.locator("#interaction-feed tbody tr").first.inner_text()
    assert listings
    assert all(
        asked.get("newestFirst") is True and asked.get("pageSize") == 200 for asked in listings
    )
    page.locator("#decision-feed tbody tr", has_text="nothing").click()
    page.locator("#verdicts .verdict-suppressed").wait_for()
    assert _verdict(page, "CART_REMINDER") == "suppressed"
    why = page.locator("#verdicts tbody tr", has_text="CART_REMINDER").inner_text()
    assert "DISMISSED count of CART_REMINDER in the last 30 days" in why
    _shot(page, "4-why-suppressed")

    # Nothing left the machine, and no key travelled in a URL.
    hosts = {urllib.parse.urlsplit(url).netloc for url in requests if not url.startswith("data:")}
    assert hosts == {urllib.parse.urlsplit(server.rest_url).netloc}
    assert not [url for url in requests if server.admin_key in url or server.api_key in url]


def test_the_explorer_shows_every_request_schema(
    server: LocalServer, browser_page: tuple[Any, list[str]]
) -> None:
    page, _ = browser_page
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{server.rest_url}/console/explorer.html")
    for route in sorted(routes(), key=lambda route: route.name != "GetTreatments"):
        page.locator(f'[data-content-id="post-{route.path}"]').click()
        page.get_by_text("SCHEMA", exact=True).first.click()
        page.get_by_text("Field", exact=True).first.wait_for(state="attached")
        assert errors == [], f"{route.name}: {errors}"
        if route.name == "GetTreatments":
            # The proto names a request may use are listed beside the JSON names.
            page.get_by_text("[pattern: ^project_id$]").first.wait_for(state="attached")
            _shot(page, "6-explorer-schema")


def test_an_api_key_does_not_open_the_console(
    server: LocalServer, browser_page: tuple[Any, list[str]]
) -> None:
    page, _ = browser_page
    _fresh_console(page, server)
    page.fill("#admin-key", server.api_key)
    page.click("#key-form button")
    page.locator("#status", has_text="is not an admin key of the seed").wait_for()
    assert page.locator("#views").is_hidden()
    _shot(page, "5-api-key-refused")


@pytest.mark.parametrize(
    ("path", "inline_styles"),
    [("/console/", False), ("/console/console.js", False), ("/console/explorer.html", True)],
)
def test_the_pages_are_same_origin_only(
    server: LocalServer, path: str, inline_styles: bool
) -> None:
    answer = httpx.get(server.rest_url + path)
    assert answer.status_code == 200
    policy = answer.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "script-src 'self';" in policy
    assert "connect-src 'self'" in policy
    assert ("'unsafe-inline'" in policy) is inline_styles
    assert "unsafe-eval" not in policy
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert server.admin_key not in answer.text


def test_the_console_url_without_a_slash_redirects(server: LocalServer) -> None:
    answer = httpx.get(f"{server.rest_url}/console")
    assert (answer.status_code, answer.headers["location"]) == (308, "/console/")


def _fresh_console(page: Any, server: LocalServer) -> None:
    """Load the console with no admin key remembered from an earlier test."""
    # Cleared on a page of the console's origin that runs no script: the console
    # itself would store a remembered key again as it opens, and about:blank
    # (a fresh page) has no storage to clear.
    page.goto(f"{server.rest_url}/healthz")
    page.evaluate("sessionStorage.clear()")
    page.goto(f"{server.rest_url}/console/")


def test_the_feed_follows_short_pages_to_the_newest_and_says_what_it_left_unsearched(
    server: LocalServer, browser_page: tuple[Any, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A filter no index serves reads a stretch of the store a call (5 records here, the
    # server in this process): pages come back short, and the feed follows them, 10 at most.
    page, _ = browser_page
    server.reset()
    monkeypatch.setattr(filters, "SCAN_ROWS", 5)
    rare = {0: "shopper-old", 30: "shopper-1", 58: "shopper-1"}  # of 70, oldest first
    with server.client() as client:
        for number in range(70):
            client.log_treatment_interaction(
                Interaction(
                    project_id=server.project_id,
                    user_id=rare.get(number, "shopper-2"),
                    treatment_id="RARE_ONE" if number in rare else "CART_REMINDER",
                    treatment_tracking_id=f"tracking-{number}",
                    interaction_type=Interaction.VIEWED,
                    interaction_time_micros=time.time_ns() // 1000,
                )
            )
    _open(page, server)
    page.fill("#filter-treatment", "RARE_ONE")
    # The newest 50 are searched: two found, each on a page of its own, the oldest not.
    page.wait_for_function(
        "() => document.querySelectorAll('#interaction-feed tbody tr').length === 2"
    )
    shown = page.locator("#interaction-feed tbody tr").all_inner_texts()
    assert all("shopper-1" in row for row in shown), shown
    assert "older records not searched" in page.locator("#interactions-unread").inner_text()
    # By user, the index reads them all: nothing is left unsearched.
    page.fill("#filter-user", "shopper-old")
    page.locator("#interaction-feed tbody tr", has_text="shopper-old").wait_for()
    page.wait_for_function("() => !document.querySelector('#interactions-unread').textContent")
    page.fill("#filter-user", "")
    page.fill("#filter-treatment", "")


def _open(page: Any, server: LocalServer) -> None:
    _fresh_console(page, server)
    page.fill("#admin-key", server.admin_key)
    page.click("#key-form button")
    page.locator("#treatments tbody tr", has_text="CART_REMINDER").wait_for()


def _verdict_rows(page: Any) -> list[str]:
    return [str(text) for text in page.locator("#verdicts tbody tr").all_inner_texts()]


ARTICLE: Final = decisions.SurfaceRequest(surface="ARTICLE_PAGE", maximum_treatment_count=2)
READER: Final = [
    decisions.ContextualAttribute(key="subscriber", bool_value=False),
    decisions.ContextualAttribute(key="age", integer_value=30),
    decisions.ContextualAttribute(key="daily_article_count", integer_value=5),
]


def test_a_decision_is_explained_as_it_was_sent_and_made(
    server: LocalServer, browser_page: tuple[Any, list[str]]
) -> None:
    page, _ = browser_page
    with server.client() as client:
        answer = client.get_treatments(
            decisions.GetTreatmentsRequest(
                project_id=server.project_id,
                user_id="reader-7",
                surfaces=[ARTICLE],
                contextual_attributes=READER,
            )
        )
    served = {t.treatment_id for t in answer.user_treatments}
    assert len(served) == 2  # the surface asked for two, and got them
    _open(page, server)
    page.locator("#decision-feed tbody tr", has_text="reader-7").click()
    page.locator("#verdicts tbody tr", has_text="served").first.wait_for()
    rows = _verdict_rows(page)
    # Served first, each treatment served then shown served (not "surface full").
    assert {row.split("\t")[1] for row in rows[:2]} == served
    assert all("\tserved\t" in row for row in rows[:2])
    assert not [row for row in rows if "surface full" in row]
    note = page.locator("#why-note").inner_text()
    assert "As decided at " in note
    assert "with the request as sent (ARTICLE_PAGE (at most 2))" in note
    assert "the user's activity is read as it is now" in note
    # The form took the counts of the request.
    assert page.input_value("#why-maximum") == "2"
    _shot(page, "6-decision-as-made")

    # The form explains now, with the counts typed.
    page.fill("#why-maximum", "1")
    page.click("#why-form button")
    page.locator("#why-note", has_text="As GetTreatments would decide now").wait_for()
    rows = _verdict_rows(page)
    assert ["served" in row for row in rows].count(True) == 1
    assert [row for row in rows if "\tsurface full\t" in row]

    # An error takes the verdicts away.
    page.fill("#why-attributes", "age=old")
    page.click("#why-form button")
    page.locator("#status", has_text="age").wait_for()
    assert _verdict_rows(page) == []
    assert page.locator("#why-note").inner_text() == ""
    _shot(page, "7-error-no-stale-verdicts")


def test_a_decision_that_served_nothing_shows_the_verdicts_of_its_moment(
    server: LocalServer, browser_page: tuple[Any, list[str]]
) -> None:
    page, _ = browser_page
    with server.client() as client:
        nothing = client.get_treatments(
            decisions.GetTreatmentsRequest(
                project_id=server.project_id,
                user_id="reader-8",
                surfaces=[decisions.SurfaceRequest(surface="ARTICLE_PAGE")],
            )
        )
    assert not nothing.user_treatments
    _open(page, server)
    page.locator("#decision-feed tbody tr", has_text="reader-8").click()
    page.locator("#why-note", has_text="the verdicts recorded when it served nothing").wait_for()
    rows = _verdict_rows(page)
    assert (
        "ARTICLE_PAGE\tSIGN_IN_GATE\tsuppressed\trule failed: subscriber EQUALS false (no value)"
        in rows
    )
    assert all("\tsuppressed\t" in row for row in rows[:3])  # the candidates first


def test_the_journal_shows_every_call_and_why_it_failed(
    server: LocalServer, browser_page: tuple[Any, list[str]]
) -> None:
    page, _ = browser_page
    with server.client() as client:
        with pytest.raises(ApiError):
            client.get_treatments(
                decisions.GetTreatmentsRequest(project_id=server.project_id, user_id="reader-9")
            )
    _open(page, server)
    failed = page.locator("#journal-feed tbody tr", has_text="reader-9")
    failed.wait_for()
    text = failed.inner_text()
    assert "GetTreatments" in text
    assert "400 INVALID_ARGUMENT" in text
    assert "surfaces: required" in text
    failed.click()
    detail = page.locator("#journal-detail").inner_text()
    assert "x-api-key: <redacted>" in detail
    assert server.api_key not in detail
    assert '"userId":"reader-9"' in detail.replace(" ", "")
    # Filters: failed calls only, and the admin API's calls on request.
    page.check("#journal-failed")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#journal-feed tbody tr')]"
        ".every((row) => !row.innerText.includes('\\t200 OK\\t'))"
    )
    page.uncheck("#journal-failed")
    assert not page.locator("#journal-feed tbody tr", has_text="ListProjects").count()
    page.check("#journal-admin")
    page.locator("#journal-feed tbody tr", has_text="ListProjects").first.wait_for()
    page.select_option("#journal-method", "GetTreatments")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#journal-feed tbody tr')]"
        ".every((row) => row.innerText.includes('GetTreatments'))"
    )
    _shot(page, "8-journal")


def test_the_explorer_lists_the_methods_by_name(
    server: LocalServer, browser_page: tuple[Any, list[str]]
) -> None:
    page, _ = browser_page
    page.goto(f"{server.rest_url}/console/explorer.html")
    item = page.locator('[data-content-id="post-/v1/GetTreatments"]')
    item.wait_for()
    assert item.inner_text().strip() == "GetTreatments"


def test_the_explorer_document_is_the_shipped_one_pointed_here(server: LocalServer) -> None:
    shipped = httpx.get(f"{server.rest_url}/openapi.json").json()
    explored = httpx.get(f"{server.rest_url}/console/openapi.json").json()
    assert explored["servers"] == [{"url": "/", "description": "this local server"}]
    for path, operations in shipped["paths"].items():
        media = explored["paths"][path]["post"]["requestBody"]["content"]["application/json"]
        assert media.pop("examples")["documentation"]["value"]
        assert explored["paths"][path] == operations
    # But for the aliases of messages, lists and maps, which RapiDoc cannot render: described.
    schemas = explored["components"]["schemas"]
    get_treatment = schemas["request.io.auxia.decision.model.GetTreatmentRequest"]
    assert get_treatment["patternProperties"]["^project_id$"]["type"] == "string"
    reduced = 0
    for name, schema in shipped["components"]["schemas"].items():
        aliases = schemas[name].pop("patternProperties", {})
        for pattern, alias in schema.pop("patternProperties", {}).items():
            if aliases[pattern] != alias:
                assert aliases[pattern] == {"description": alias["description"]}
                reduced += 1
        assert schemas[name] == schema
    assert reduced


def test_faults_are_armed_listed_and_cleared_from_the_console(
    server: LocalServer, browser_page: tuple[Any, list[str]]
) -> None:
    page, _ = browser_page
    server.reset()
    _open(page, server)
    page.select_option("#fault-method", "GetTreatment")
    page.select_option("#fault-kind", "evolve")
    page.fill("#fault-count", "1")
    page.click("#fault-form button[type=submit]")
    armed = page.locator("#fault-list tbody tr", has_text="faults/1")
    armed.wait_for()
    assert "answers as a newer API could" in armed.inner_text()
    (fault,) = server.faults.list()
    assert (fault.method, fault.evolve, fault.count) == ("GetTreatment", True, 1)
    answer = httpx.post(
        f"{server.rest_url}/v1/GetTreatment",
        json={"projectId": server.project_id, "treatmentId": "CART_REMINDER"},
        headers={"x-api-key": server.api_key},
    )
    assert answer.json()["evolvedObject"]
    page.select_option("#fault-kind", "UNAVAILABLE")
    page.fill("#fault-count", "")
    page.click("#fault-form button[type=submit]")
    page.locator("#fault-list tbody tr", has_text="fails with UNAVAILABLE").wait_for()
    _shot(page, "9-faults")
    page.click("#faults-clear")
    page.wait_for_function("() => !document.querySelector('#fault-list tbody tr')")
    assert server.faults.list() == []


def test_a_slow_listing_is_asked_for_once_and_a_filter_once_typed(
    server: LocalServer, browser_page: tuple[Any, list[str]]
) -> None:
    # On a big store a listing with a rare filter reads for seconds: the console asked for
    # one each refresh (every 2 s) and each keystroke, all at once, until the server choked.
    page, _ = browser_page
    server.reset()
    _open(page, server)
    listed: list[str] = []

    def asked(request: Any) -> None:
        if request.url.endswith("/emulator/v1/ListInteractions"):
            listed.append(json.loads(request.post_data or "{}").get("treatmentId", ""))

    page.on("request", asked)
    held: list[Any] = []  # the listings asked for, none answered yet

    def hold(route: Any) -> None:
        held.append(route)

    page.route("**/emulator/v1/ListInteractions", hold)
    try:
        page.type("#filter-treatment", "T99")  # a keystroke each, each an input event
        page.wait_for_timeout(5_000)  # two refreshes' time, and more
        # The refresh under way waits for its listing; the filter asks for one after it.
        assert len(held) == 1, [route.request.post_data for route in held]
    finally:
        for route in held:
            route.continue_()
        page.unroute("**/emulator/v1/ListInteractions")
    page.wait_for_function("() => document.querySelector('#interaction-feed tbody tr') === null")
    page.wait_for_timeout(500)
    page.remove_listener("request", asked)
    page.fill("#filter-treatment", "")
    # Each listing had the filter as it was before typing or as typed, never a part of it.
    assert "T99" in listed
    assert set(listed) <= {"", "T99"}, listed
