"""The web console at ``/`` in a real headless Chromium (Debian's ``chromium``, driven by playwright) against the
demo: it loads with the demo's token picker and the seed's four queries as templates, a template runs and shows
the same rows as the HTTP API, the metadata panel and the timing waterfall, EXPLAIN as a readable plan, the QA
principal's masked values, and a 401 for a bad token. A screenshot is left in ``build/test-artifacts/``. The page
logs no error (a Content-Security-Policy violation would be one). Skipped only where no Chromium is installed
(CI installs it: .ci/run)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from demo.tenant import SEED_QUERIES
from tests.conftest import ROOT

CHROMIUM = os.environ.get("OMNISQL_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
HEADLESS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ARTIFACTS = ROOT / "build" / "test-artifacts"

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (apt-get install chromium)")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=HEADLESS)
        yield chromium
        chromium.close()


@pytest.fixture()
def page(browser: Any, demo: dict[str, Any]) -> Iterator[Any]:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{demo['http_url']}/")
    page.wait_for_selector("#templates button")
    yield page
    # the 401 of the bad-token test is logged by Chromium as a failed resource load; nothing else may be
    assert [e for e in errors if "401" not in e] == []
    page.close()


def test_a_template_runs_and_shows_rows_metadata_and_waterfall(page: Any, demo: dict[str, Any]) -> None:
    assert page.title() == "OmniSQL console"
    assert page.locator("#templates button").count() == len(SEED_QUERIES)
    assert page.locator("#token-picker").input_value() == "omni-demo-admin-token"
    page.click("button[data-template=in_progress_join]")
    page.wait_for_selector("#table tbody tr")
    expected = httpx.post(f"{demo['http_url']}/v1/query", json={"sql": SEED_QUERIES["in_progress_join"]},
                          headers={"X-User-Token": "omni-demo-admin-token"}, timeout=60).json()
    assert page.locator("#table tbody tr").count() == expected["row_count"] > 0
    headers = page.locator("#table thead th").evaluate_all("cells => cells.map(c => c.firstChild.textContent)")
    assert headers == [c["name"] for c in expected["columns"]]
    first = page.locator("#table tbody tr").first.locator("td").all_inner_texts()
    assert first == [str(v) for v in expected["rows"][0].values()]
    assert f"{expected['row_count']} rows" in page.inner_text("#status")
    meta = page.inner_text("#meta")
    assert "API calls" in meta and "freshness" in meta and "github budget left" in meta and "trace id" in meta
    assert page.locator("#sources .source").count() == 2
    steps = page.locator("#waterfall .bar-row").evaluate_all("rows => rows.map(r => r.dataset.step)")
    assert steps[0] == "plan" and steps[-1] == "duckdb" and sum(s.startswith("fetch ") for s in steps) == 2
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "console.png"), full_page=True)
    assert (ARTIFACTS / "console.png").stat().st_size > 10_000


def test_a_bad_token_shows_401(page: Any) -> None:
    page.select_option("#token-picker", label="(invalid token)")
    page.click("#run")
    page.wait_for_selector("#error:not([hidden])")
    text = page.inner_text("#error")
    assert "401 UNAUTHENTICATED" in text and "not valid" in text
    assert page.locator("#table tbody tr").count() == 0 and page.is_hidden("#meta")
    page.screenshot(path=str(ARTIFACTS / "console-401.png"))


def test_explain_is_a_readable_plan(page: Any) -> None:
    page.fill("#sql", "SELECT number, title FROM github.pull_requests WHERE repo = 'web-frontend' LIMIT 5")
    page.click("#explain")
    page.wait_for_selector("#plan:not([hidden]) .step")
    plan = page.inner_text("#plan")
    assert "github.pull_requests AS pull_requests" in plan and "pushed_exact" in plan and "DuckDB" in plan


def test_the_qa_principal_sees_masked_values(page: Any) -> None:
    page.select_option("#token-picker", label="qa")
    page.fill("#sql", "SELECT DISTINCT author FROM github.pull_requests")
    page.click("#run")
    page.wait_for_selector("#table tbody tr")
    assert page.locator("#table tbody td").all_inner_texts() == ["[HIDDEN]"]


@pytest.fixture(scope="module")
def tenant_service(demo: dict[str, Any]) -> Iterator[Any]:
    """A server as ``serve --config`` runs it: no demo tokens for the console, no templates."""
    from demo.tenant import UNTHROTTLED, demo_config
    from flight_server.app import start_service
    from flight_server.gateway.state import HttpSettings

    running = start_service(demo_config(demo["sandbox"], "127.0.0.1", 0, UNTHROTTLED), HttpSettings(port=0))
    yield running
    running.stop()


def test_outside_the_demo_the_token_is_typed(browser: Any, tenant_service: Any) -> None:
    page = browser.new_page()
    page.goto(f"{tenant_service.http_url}/")
    page.wait_for_selector("#token:not([hidden])")
    assert page.is_hidden("#token-picker") and page.locator("#templates button").count() == 0
    page.fill("#token", "omni-demo-web-dev-token")
    page.fill("#sql", "SELECT DISTINCT team FROM jira.issues")
    page.keyboard.press("Control+Enter")  # runs from the editor too
    page.wait_for_selector("#table tbody tr")
    assert page.locator("#table tbody td").all_inner_texts() == ["web"]
    page.close()
