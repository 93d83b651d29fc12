"""The refusals that come from upstream and from the limits, over HTTP, against a demo of their own (the faults it
injects — a failing API, a slow one, a spent rate limit — must not leak into other tests): each with its HTTP code,
its ``code``, a message that says what to do, ``Retry-After`` where it is known, and the cancellation of a query
whose client went away."""

from __future__ import annotations

import concurrent.futures
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.errors import (
    EntitlementDenied,
    InvalidQuery,
    QueryCancelled,
    QueryTimeout,
    RateLimitExhausted,
    ResourceExhausted,
    SourceTimeout,
    StaleData,
    Unauthenticated,
    Unsupported,
    UpstreamError,
)
from flight_server.gateway.errors import error_response
from flight_server.query_scope import Busy
from tests.conftest import SandboxLog, launch_demo
from tests.test_http_api import ADMIN, assert_error

DEADLINE_S = 3


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with launch_demo(Path(tmp_path_factory.mktemp("faulty")), "--query-deadline-s", str(DEADLINE_S)) as info:
        yield info


@pytest.fixture()
def faults(faulty: dict[str, Any]) -> Iterator[SandboxLog]:
    log = SandboxLog(faulty)
    yield log
    for app in ("github", "jira"):
        log.faults(app, latency_s=0.0, fail_next=0)


def post(info: dict[str, Any], sql: str, timeout: float = 60, **metadata: Any) -> httpx.Response:
    return httpx.post(f"{info['http_url']}/v1/query", json={"sql": sql, "metadata": metadata}, headers=ADMIN,
                      timeout=timeout)


def test_a_failing_api_is_503_upstream_error(faulty: dict[str, Any], faults: SandboxLog) -> None:
    faults.faults("jira", fail_next=100, fail_status=500)
    error = assert_error(post(faulty, "SELECT issue_key FROM jira.issues WHERE project = 'WEB'"), 503,
                         "UPSTREAM_ERROR")
    assert "Jira" in error["message"] and "500" in error["message"]


def test_a_failed_refresh_is_503_stale_data_unless_allowed(faulty: dict[str, Any], faults: SandboxLog) -> None:
    sql = "SELECT issue_key FROM jira.issues WHERE project = 'PLAT'"
    warm = post(faulty, sql, max_staleness_ms=60_000)
    assert warm.status_code == 200
    time.sleep(0.05)
    faults.faults("jira", fail_next=100, fail_status=500)
    error = assert_error(post(faulty, sql, max_staleness_ms=10), 503, "STALE_DATA")
    assert "allow_stale" in error["message"]
    stale = post(faulty, sql, max_staleness_ms=10, allow_stale=True)
    assert stale.status_code == 200 and stale.json()["rows"] == warm.json()["rows"]
    assert stale.json()["freshness_ms"] >= 50 and stale.json()["from_cache"] is True
    assert stale.json()["stale"] is True and warm.json()["stale"] is False


def test_a_slow_api_is_504_after_the_deadline(faulty: dict[str, Any], faults: SandboxLog) -> None:
    faults.faults("jira", latency_s=DEADLINE_S + 2)
    started = time.monotonic()
    response = post(faulty, "SELECT issue_key FROM jira.issues WHERE project = 'MOB'")
    assert response.status_code == 504 and response.json()["error"]["code"] == "SOURCE_TIMEOUT", response.text
    assert time.monotonic() - started < DEADLINE_S + 1.5
    assert_error(response, 504, response.json()["error"]["code"])


def test_a_query_past_its_deadline_in_duckdb_is_504_query_timeout(faulty: dict[str, Any]) -> None:
    sql = ("SELECT count(*) AS n FROM jira.issues a CROSS JOIN jira.issues b CROSS JOIN jira.issues c "
           "CROSS JOIN jira.issues d WHERE a.project = 'WEB'")
    started = time.monotonic()
    error = assert_error(post(faulty, sql, max_staleness_ms=60_000), 504, "QUERY_TIMEOUT")
    assert "query_deadline_s" in error["message"] and time.monotonic() - started < DEADLINE_S + 2


def test_more_queries_than_the_cap_are_429_with_retry_after(faulty: dict[str, Any], faults: SandboxLog) -> None:
    faults.faults("jira", latency_s=1.0)
    sql = "SELECT issue_key FROM jira.issues WHERE project = 'WEB' AND status = 'Open'"
    with concurrent.futures.ThreadPoolExecutor(8) as pool:  # one principal may run 4 at once
        responses = list(pool.map(lambda _: post(faulty, sql), range(8)))
    statuses = sorted(r.status_code for r in responses)
    assert 200 in statuses and 429 in statuses, statuses
    busy = next(r for r in responses if r.status_code == 429)
    error = assert_error(busy, 429, "RESOURCE_EXHAUSTED")
    assert "max_concurrent_queries_per_principal" in error["message"]
    assert busy.headers["retry-after"] == "1" and error["retry_after_ms"] == 1000


def test_a_client_that_leaves_cancels_its_query(faulty: dict[str, Any], faults: SandboxLog) -> None:
    faults.faults("jira", latency_s=1.5)
    with pytest.raises(httpx.ReadTimeout):
        post(faulty, "SELECT issue_key FROM jira.issues WHERE project = 'MOB' AND status = 'Done'", timeout=0.5)
    time.sleep(1.0)
    faults.faults("jira", latency_s=0.0)
    log = post(faulty, "SELECT outcome FROM omnisql.query_log ORDER BY started_at DESC LIMIT 1").json()
    assert log["rows"] == [{"outcome": "CANCELLED"}]


def test_a_running_query_is_in_flight_on_metrics(faulty: dict[str, Any], faults: SandboxLog) -> None:
    faults.faults("jira", latency_s=1.5)

    def inflight() -> float:
        text = httpx.get(f"{faulty['http_url']}/metrics", timeout=10).text
        found = re.search(r"^omnisql_inflight_queries (\S+)$", text, re.MULTILINE)
        assert found, text
        return float(found.group(1))

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        running = pool.submit(post, faulty, "SELECT issue_key FROM jira.issues WHERE project = 'MOB' AND "
                                            "status = 'Open'")
        time.sleep(0.7)
        during = inflight()
        assert running.result().status_code == 200
    assert during == 1 and inflight() == 0


def test_a_spent_rate_limit_is_429_with_retry_after(faulty: dict[str, Any], faults: SandboxLog) -> None:
    """Last in this module: the 429 blocks the demo's GitHub bucket for the 30 s the API asked."""
    faults.faults("github", fail_next=1, fail_status=429, retry_after="30")
    response = post(faulty, "SELECT number FROM github.pull_requests WHERE repo = 'infra-tools'")
    error = assert_error(response, 429, "RATE_LIMIT_EXHAUSTED")
    assert 25 <= int(response.headers["retry-after"]) <= 31 and 25_000 <= error["retry_after_ms"] <= 31_000


@pytest.mark.parametrize(("error", "status"), [
    (InvalidQuery("x"), 400), (Unauthenticated("x"), 401), (EntitlementDenied("x"), 403),
    (ResourceExhausted("x"), 413), (Busy("x"), 429), (RateLimitExhausted("x", retry_after_s=2.5), 429),
    (Unsupported("x"), 501), (StaleData("x"), 503), (UpstreamError("x"), 503), (SourceTimeout("x"), 504),
    (QueryTimeout("x"), 504), (QueryCancelled("x"), 499), (RuntimeError("secret detail"), 500),
])
def test_every_error_has_its_status_and_one_body_shape(error: Exception, status: int) -> None:
    response = error_response(error, "f" * 32)
    body = json.loads(bytes(response.body))["error"]
    assert response.status_code == status and body["trace_id"] == "f" * 32
    assert body["code"] == getattr(error, "code", "INTERNAL") and "Traceback" not in body["message"]
    if status == 500:
        assert "secret detail" not in body["message"] and "incident" in body["message"]
    if isinstance(error, RateLimitExhausted):
        assert body["retry_after_ms"] == 2500 and response.headers["retry-after"] == "3"
