"""The real GitHub and Jira connectors, over a real httpx client, against an upstream that misbehaves on
purpose (tests/hostile/server.py). Each misbehaviour ends in a classified error with a message that says
what happened, never a hang, a crash, a truncated or duplicated answer, or our credentials sent elsewhere."""

from __future__ import annotations

import asyncio
import base64
import logging
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pyarrow as pa
import pytest

from connectors.github.connector import GitHubConfig, GitHubConnector
from connectors.github.tables import PULL_REQUESTS, USERS
from connectors.http import HttpLimits, new_http_client
from connectors.jira.connector import JiraConfig, JiraConnector
from connectors.jira.tables import ISSUES
from core.errors import OmniSQLError
from core.types import Predicate, ScanRequest, ScanStats
from tests.hostile.server import HostileUpstream, running

TOKEN = "ghp_hostileTestToken0123456789abcdef"
EMAIL = "bot@acme.example"
JIRA_TOKEN = "ATATT3xHostileJiraToken0123456789"
BASIC = base64.b64encode(f"{EMAIL}:{JIRA_TOKEN}".encode()).decode()
PULLS = ScanRequest("pull_requests", ("pr_id", "number", "title"))
SEARCH = ScanRequest("issues", ("issue_key", "summary"))


@pytest.fixture(scope="module")
def upstream() -> Iterator[HostileUpstream]:
    with running() as up:
        yield up


@pytest.fixture()
def up(upstream: HostileUpstream) -> Iterator[HostileUpstream]:
    upstream.reset()
    yield upstream
    # Whatever happened, credentials went to the configured origin only.
    assert upstream.at("foreign") == [], "a request reached the foreign origin"
    home_host = upstream.home.removeprefix("http://")
    assert {h.host for h in upstream.hits} <= {home_host}, "a request went out under another host name"


def github(up: HostileUpstream, scenario: str, **overrides: Any) -> GitHubConfig:
    return GitHubConfig(base_url=f"{up.home}/{scenario}", token=TOKEN, org="acme", **overrides)


def jira(up: HostileUpstream, scenario: str, **overrides: Any) -> JiraConfig:
    return JiraConfig(base_url=f"{up.home}/{scenario}", email=EMAIL, api_token=JIRA_TOKEN,
                      project_teams={"WEB": "web"}, **overrides)


def scan(config: GitHubConfig | JiraConfig, request: ScanRequest) -> tuple[pa.Table, ScanStats]:
    async def go() -> tuple[pa.Table, ScanStats]:
        async with new_http_client() as http:
            connector = GitHubConnector(config, http) if isinstance(config, GitHubConfig) \
                else JiraConnector(config, http)
            stats = ScanStats()
            batches = [b async for b in connector.scan(request, stats)]
            spec = ISSUES if isinstance(config, JiraConfig) else USERS if request.table == "users" else PULL_REQUESTS
            return pa.Table.from_batches(batches, schema=spec.schema_for(request.columns)), stats

    return asyncio.run(go())


def count(config: JiraConfig) -> int | None:
    async def go() -> int | None:
        async with new_http_client() as http:
            return await JiraConnector(config, http).count(SEARCH, ScanStats())

    return asyncio.run(go())


def failure(config: GitHubConfig | JiraConfig, request: ScanRequest) -> OmniSQLError:
    with pytest.raises(OmniSQLError) as raised:
        scan(config, request)
    return raised.value


def assert_clean(message: str) -> None:
    """No credentials, no control characters, bounded."""
    for secret in (TOKEN, JIRA_TOKEN, BASIC):
        assert secret not in message
    assert message.isprintable() and len(message) < 600


KiB = 1024
GITHUB_CASES = [
    # scenario, config overrides, code, message pattern
    ("self_link", {}, "UPSTREAM_ERROR", r"GitHub paging of /repos/\{owner\}/\{repo\}/pulls repeated a page"),
    ("link_cycle", {}, "UPSTREAM_ERROR", r"repeated a page it already sent \(page 4"),
    ("endless", {"max_pages": 3}, "UPSTREAM_ERROR", r"listing /repos/\{owner\}/\{repo\}/pulls did not end within 3 "
                                                     "pages; the answer would be incomplete"),
    ("foreign_link", {}, "UPSTREAM_ERROR", r"sent a next-page link for .* to another origin \(http://127\.0\.0\.1:"),
    ("other_host_link", {}, "UPSTREAM_ERROR", r"sent a next-page link for .* to another origin \(http://localhost:"),
    ("foreign_redirect", {}, "UPSTREAM_ERROR", r"sent a redirect for /repos/\{owner\}/\{repo\}/pulls to another "
                                               "origin"),
    ("redirect_loop", {}, "UPSTREAM_ERROR", r"redirected /repos/\{owner\}/\{repo\}/pulls in a loop"),
    ("endless_body", {"limits": HttpLimits(max_body_bytes=256 * KiB)}, "UPSTREAM_ERROR",
     r"sent more than 262144 bytes for /repos/\{owner\}/\{repo\}/pulls; refused"),
    ("huge_declared", {"limits": HttpLimits(max_body_bytes=1024 * KiB)}, "UPSTREAM_ERROR",
     r"sent more than 1048576 bytes"),
    ("slow_body", {"limits": HttpLimits(response_timeout_s=1.0)}, "SOURCE_TIMEOUT",
     r"GitHub did not answer GET /repos/\{owner\}/\{repo\}/pulls in time"),
    ("wrong_shape", {}, "UPSTREAM_ERROR", r"returned a JSON object where the body should be an array for "
                                          r"/repos/\{owner\}/\{repo\}/pulls"),
    ("bad_records", {}, "UPSTREAM_ERROR", r"returned records that do not match its API contract"),
    ("not_json", {}, "UPSTREAM_ERROR", r"returned a body that is not JSON for /repos/\{owner\}/\{repo\}/pulls"),
    ("gzip_garbage", {}, "UPSTREAM_ERROR", r"sent a body for /repos/\{owner\}/\{repo\}/pulls that cannot be decoded "
                                           r"\(content-encoding gzip\)"),
    ("echo_error", {}, "UPSTREAM_ERROR", r"answered HTTP 422 to GET /repos/\{owner\}/\{repo\}/pulls: you sent "
                                         r"Bearer \[redacted\] for \[redacted\]"),
    ("html_error", {}, "UPSTREAM_ERROR", r"answered HTTP 404 to GET .*: a non-JSON body of \d+ bytes; check names"),
    ("rate_limited", {}, "RATE_LIMIT_EXHAUSTED", r"GitHub rate limit is exhausted; it refills in \d+ s"),
]


@pytest.mark.parametrize(("scenario", "overrides", "code", "pattern"), GITHUB_CASES,
                         ids=[case[0] for case in GITHUB_CASES])
def test_github_misbehaviour_is_a_classified_error(up: HostileUpstream, scenario: str, overrides: dict[str, Any],
                                                   code: str, pattern: str) -> None:
    started = time.monotonic()
    error = failure(github(up, scenario, **overrides), PULLS)
    assert error.code == code
    assert time.monotonic() - started < 10, "misbehaviour must not stall a scan"
    message = str(error)
    assert re.search(pattern, message), message
    assert_clean(message)


JIRA_CASES = [
    ("jira_repeat_token", {}, "UPSTREAM_ERROR", r"Jira paging of /rest/api/3/search/jql repeated a page"),
    ("jira_no_token", {}, "UPSTREAM_ERROR", r"paging of /rest/api/3/search/jql is broken \(isLast is false but "
                                            r"there is no nextPageToken\)"),
    ("jira_endless", {"max_pages": 3}, "UPSTREAM_ERROR", r"did not end within 3 pages"),
    ("jira_wrong_shape", {}, "UPSTREAM_ERROR", r"returned a JSON string where 'issues' should be an array"),
    ("jira_foreign_redirect", {}, "UPSTREAM_ERROR", r"sent a redirect for /rest/api/3/search/jql to another origin"),
    ("jira_post_302", {}, "UPSTREAM_ERROR", r"redirected POST /rest/api/3/search/jql with HTTP 302, which would drop "
                                            "the request body"),
]


@pytest.mark.parametrize(("scenario", "overrides", "code", "pattern"), JIRA_CASES, ids=[c[0] for c in JIRA_CASES])
def test_jira_misbehaviour_is_a_classified_error(up: HostileUpstream, scenario: str, overrides: dict[str, Any],
                                                 code: str, pattern: str) -> None:
    error = failure(jira(up, scenario, **overrides), SEARCH)
    assert error.code == code
    assert re.search(pattern, str(error)), str(error)
    assert_clean(str(error))


def test_the_recorder_would_see_a_leak(up: HostileUpstream) -> None:
    """The foreign listener answers anyone: the fixture's 'nothing reached it' check is a real check."""
    httpx.get(f"{up.foreign}/probe/x", headers={"Authorization": "Bearer probe"})
    assert [h.authorization for h in up.at("foreign")] == ["Bearer probe"]
    up.hits.clear()


def test_credentials_go_to_the_home_origin_only(up: HostileUpstream) -> None:
    failure(github(up, "foreign_link"), PULLS)
    failure(jira(up, "jira_foreign_redirect"), SEARCH)
    assert {h.authorization for h in up.hits} == {f"Bearer {TOKEN}", f"Basic {BASIC}"}


def test_paging_counts_every_page_and_row_exactly(up: HostileUpstream) -> None:
    table, stats = scan(github(up, "paged"), PULLS)
    assert table.column("number").to_pylist() == [1, 2, 3]
    assert (stats.api_calls, stats.pages, stats.listed, stats.rows) == (3, 3, 3, 3)  # org repos + 2 pull pages
    table, stats = scan(jira(up, "jira_ok"), SEARCH)
    assert table.column("issue_key").to_pylist() == ["WEB-1", "WEB-2", "WEB-3"]
    assert (stats.api_calls, stats.pages, stats.listed, stats.rows) == (2, 2, 3, 3)


def test_same_origin_redirects_are_followed(up: HostileUpstream) -> None:
    table, stats = scan(github(up, "same_origin_redirect"), PULLS)
    assert table.num_rows == 1
    assert stats.api_calls == 3  # org repos, the 301, its target
    assert all(h.authorization == f"Bearer {TOKEN}" for h in up.hits)


def test_server_errors_then_success_is_an_answer(up: HostileUpstream) -> None:
    table, stats = scan(github(up, "flaky"), PULLS)
    assert table.num_rows == 2 and stats.api_calls == 4  # org repos, 500, 500, 200


def test_a_short_rate_limit_is_waited_out(up: HostileUpstream) -> None:
    table, stats = scan(jira(up, "jira_429_then_ok"), SEARCH)
    assert table.num_rows == 1 and stats.api_calls == 2


def test_echoed_credentials_and_request_are_not_relayed(up: HostileUpstream) -> None:
    message = str(failure(github(up, "echo_error"), PULLS))
    assert "127.0.0.1" not in message and "per_page" not in message and "\x1b" not in message
    assert message.count("x") < 250  # the 10,000-character message was cut


@pytest.mark.parametrize("scenario", ["jira_count_500", "jira_count_garbage", "jira_count_rate_limited",
                                      "jira_count_foreign"])
def test_a_failing_approximate_count_is_no_count(up: HostileUpstream, scenario: str,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="omnisql.connectors"):
        assert count(jira(up, scenario)) is None
    assert any("approximate count failed" in r.getMessage() or "without a count" in r.getMessage()
               for r in caplog.records)


def test_a_working_approximate_count(up: HostileUpstream) -> None:
    assert count(jira(up, "jira_ok")) == 3


def test_logs_name_routes_not_filter_values(up: HostileUpstream, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="omnisql.connectors"):
        scan(jira(up, "jira_ok"), ScanRequest("issues", ("issue_key",), (Predicate("status", "=", ("Sekrit",)),)))
        scan(github(up, "ok"), ScanRequest("users", ("login",), (Predicate("login", "=", ("sekrit-login",)),)))
    lines = [r.getMessage() for r in caplog.records]
    assert any("/rest/api/3/search/jql" in line for line in lines)
    assert any("/users/{username}" in line for line in lines)
    assert not any("Sekrit" in line or "sekrit" in line or TOKEN in line for line in lines)
