"""``github.pull_requests`` through ``GET /search/issues`` when a query names an author or a ``merged_at >=`` bound:
the same rows as the listing for fewer calls, the listing again past 1,000 results, past 30 searches a minute or
when search is refused, hostile logins never reaching ``q``, and EXPLAIN naming the path. Sandboxes of this
module's own (searches spend the stand-in's 30/min; one has 3,000 pull requests, so a search can pass the cap)."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime
from typing import Any

import httpx
import pyarrow as pa

from connectors.github.connector import GitHubConfig, GitHubConnector
from connectors.github.search import SearchWindow, search_queries
from connectors.http import new_http_client
from connectors.ratelimit import RateLimit, RateLimiter, RateLimits
from core.types import Predicate, ScanRequest, ScanStats

COLUMNS = ("number", "repo", "title", "author", "status", "team_id", "labels", "merged_at")
REPO_TEAMS = {"mobile-app": "mobile", "web-frontend": "web", "platform-api": "platform", "infra-tools": "platform"}



def _author(box: Any) -> str:
    return str(box.github.seed.pulls[0].author)


def _scan(box: Any, predicates: tuple[Predicate, ...], window: SearchWindow | None = None,
          gate: RateLimiter | None = None) -> tuple[pa.Table, ScanStats]:
    info = box.info()["github"]

    async def run() -> tuple[pa.Table, ScanStats]:
        async with new_http_client() as http:
            connector = GitHubConnector(GitHubConfig(base_url=info["base_url"], token=info["token"], org=info["org"],
                                                     repo_teams=REPO_TEAMS, etag_cache_bytes=0), http)
            if window is not None:
                connector.searches = window
            stats = ScanStats(gate=gate.gate("t/github") if gate else None)
            batches = [b async for b in connector.scan(ScanRequest("pull_requests", COLUMNS, predicates), stats)]
            table = pa.Table.from_batches(batches, schema=batches[0].schema) if batches else None
            assert table is not None
            return table.sort_by([("repo", "ascending"), ("number", "ascending")]), stats

    return asyncio.run(run())


def _cases(box: Any) -> list[tuple[Predicate, ...]]:
    who = _author(box)
    since = datetime(2026, 1, 15, 12, 30, 45, 500_000, tzinfo=UTC)
    return [(Predicate("author", "=", (who,)),),
            (Predicate("author", "=", (who,)), Predicate("status", "=", ("merged",))),
            (Predicate("author", "=", (who,)), Predicate("status", "=", ("closed",)), Predicate("repo", "IN",
                                                                                             ("web-frontend",))),
            (Predicate("author", "=", (who.upper(),)),),  # GitHub matches any case; SQL does not: no rows
            (Predicate("merged_at", ">", (since,)), Predicate("team_id", "=", ("platform",))),
            (Predicate("merged_at", ">=", (since,)), Predicate("author", "=", (who,)),
             Predicate("status", "IN", ("merged", "open")))]


def test_search_gives_the_listings_rows_for_fewer_calls(sandbox: Any) -> None:
    for predicates in _cases(sandbox):
        searched, s1 = _scan(sandbox, predicates)
        listed, s2 = _scan(sandbox, predicates, window=SearchWindow(per_minute=0))
        assert s1.access.startswith("GET /search/issues q=is:pr org:"), s1.access
        assert s2.access == "listing (30 searches/min spent)"
        assert searched.equals(listed), predicates
        narrow = any(p.column == "author" for p in predicates)  # a broad merged_at bound costs about the same
        assert s1.api_calls < s2.api_calls if narrow else s1.api_calls <= s2.api_calls


def test_past_1000_results_the_scan_lists() -> None:
    from sandbox.server import start_sandbox

    big = start_sandbox(pulls=3000)
    try:
        predicates = (Predicate("merged_at", ">=", (datetime(2000, 1, 1, tzinfo=UTC),)),)
        table, stats = _scan(big, predicates)
        listed, _ = _scan(big, predicates, window=SearchWindow(per_minute=0))
    finally:
        big.stop()
    assert stats.access.startswith("listing (search found ") and "over 1000" in stats.access
    assert table.num_rows > 1000 and table.equals(listed)


def test_thirty_searches_a_minute(sandbox: Any) -> None:
    now = [0.0]
    window = SearchWindow(per_minute=30, clock=lambda: now[0])
    assert window.take(29) and window.take() and not window.take()
    now[0] = 60.0
    assert window.take(30) and not window.take()
    small = SearchWindow(per_minute=1)
    predicates = (Predicate("author", "=", (_author(sandbox),)),)
    first, s1 = _scan(sandbox, predicates, window=small)
    second, s2 = _scan(sandbox, predicates, window=small)
    assert s1.access.startswith("GET /search/issues") and s2.access.startswith("listing") and first.equals(second)


def test_hostile_logins_never_reach_the_search(sandbox: Any) -> None:
    for value in ("x author:ana", "ana repo:other/x", "a\nb", "ana' OR '1", "-" * 5):
        request = ScanRequest("pull_requests", COLUMNS, (Predicate("author", "=", (value,)),))
        assert search_queries("acme-corp", request) is None
    assert search_queries("acme corp", ScanRequest("pull_requests", COLUMNS, (Predicate("author", "=", ("ana",)),))) \
        is None
    with_branch = ScanRequest("pull_requests", (*COLUMNS, "branch"), (Predicate("author", "=", ("ana",)),))
    assert search_queries("acme-corp", with_branch) is None  # search items have no head branch


def test_search_headers_leave_the_core_bucket_alone(sandbox: Any) -> None:
    limiter = RateLimiter(RateLimits(connectors={"github": RateLimit(burst=1000, refill_per_s=0.001)}))
    _, stats = _scan(sandbox, (Predicate("author", "=", (_author(sandbox),)),), gate=limiter)
    assert stats.access.startswith("GET /search") and stats.rate_limit_limit is None  # search's 30 is not core's
    assert asyncio.run(limiter.status("t/github")).remaining == 1000 - stats.api_calls


def test_explain_shows_the_access_path(sandbox: Any) -> None:
    import adbc_driver_flightsql.dbapi as flightsql

    from demo.tenant import UNTHROTTLED, demo_config, demo_tokens
    from flight_server.app import start_service

    service = start_service(dataclasses.replace(demo_config(sandbox.info(), "127.0.0.1", 0, UNTHROTTLED)))
    sql = ("SELECT number, title FROM github.pull_requests WHERE merged_at >= TIMESTAMP '2026-02-20 10:00:00' "
           "AND status = 'merged'")
    q = "is:pr org:acme-corp merged:>=2026-02-20T10:00:00+00:00 is:merged"
    try:
        with flightsql.connect(service.uri, db_kwargs={
                "adbc.flight.sql.authorization_header": f"Bearer {demo_tokens()['token_admin']}"}) as conn:
            def first(query: str) -> dict[str, Any]:
                with conn.cursor() as cursor:
                    cursor.execute(query)
                    return dict(cursor.fetch_arrow_table().to_pylist()[0])

            planned = first(f"EXPLAIN {sql}")
            ran = first(f"EXPLAIN ANALYZE {sql}")
            with conn.cursor() as cursor:
                cursor.execute(f"SELECT count(*) FROM ({sql})")
                count = cursor.fetchone()
    finally:
        service.stop()
    assert planned["upstream"].startswith(f"GET /search/issues q={q}"), planned["upstream"]
    assert "pr_id" not in planned["projection"]  # no delta key: search cannot return it
    assert ran["upstream"] == f"GET /search/issues q={q}"
    assert ran["api_calls"] == ran["pages"] <= 1 + ran["rows"] // 100  # one call per 100 matches, no org listing
    assert count is not None and ran["rows"] == count[0] > 0


def test_the_stand_in_keeps_thirty_searches_a_minute(sandbox: Any) -> None:
    info = sandbox.info()["github"]
    headers = {"Authorization": f"Bearer {info['token']}", "User-Agent": "t"}
    url = f"{info['base_url']}/search/issues"
    answers = [httpx.get(url, params={"q": "is:pr author:nobody"}, headers=headers) for _ in range(31)]
    assert answers[-1].status_code == 403 and answers[-1].headers["x-ratelimit-resource"] == "search"
    assert all(a.headers["x-ratelimit-limit"] == "30" for a in answers)
    assert httpx.get(url, params={"q": "is:pr free text"}, headers=headers).status_code in (403, 422)
    refused, stats = _scan(sandbox, (Predicate("author", "=", (_author(sandbox),)),))
    assert stats.access == "listing (the search failed: RateLimitExhausted)" and refused.num_rows > 0
