"""Conditional requests against a sandbox of this module's own (its data changes): the GitHub connector sends
``If-None-Match``, a 304 is answered from the stored body with exactly the rows a 200 gives, costs no token of
the credential's bucket nor of the stand-in's budget, and EXPLAIN ANALYZE counts it in ``not_modified``."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import httpx
import pyarrow as pa
import pytest

from connectors.conditional import EtagCache
from connectors.github.connector import GitHubConfig, GitHubConnector
from connectors.http import new_http_client
from connectors.ratelimit import RateLimit, RateLimiter, RateLimits
from core.types import ScanRequest, ScanStats

COLUMNS = ("pr_id", "number", "repo", "title", "status", "labels", "updated_at", "merged_at")



def _scan(box: Any, table: str = "pull_requests", columns: tuple[str, ...] = COLUMNS, etags: int = 8 << 20,
          passes: int = 2, gate: RateLimiter | None = None) -> list[tuple[pa.Table, ScanStats]]:
    """``passes`` scans of the same request by one connector (one ETag store), each with its own stats."""
    info = box.info()["github"]

    async def run() -> list[tuple[pa.Table, ScanStats]]:
        async with new_http_client() as http:
            config = GitHubConfig(base_url=info["base_url"], token=info["token"], org=info["org"],
                                  etag_cache_bytes=etags)
            connector = GitHubConnector(config, http)
            out = []
            for _ in range(passes):
                stats = ScanStats(gate=gate.gate("t/github") if gate else None)
                request = ScanRequest(table=table, columns=columns, predicates=())
                batches = [b async for b in connector.scan(request, stats)]
                out.append((pa.Table.from_batches(batches).sort_by(columns[0]), stats))
            return out

    return asyncio.run(run())


def _used(box: Any) -> int:
    info = box.info()["github"]
    body = httpx.get(f"{info['base_url']}/rate_limit", headers={"Authorization": f"Bearer {info['token']}",
                                                                 "User-Agent": "t"}).json()
    return int(body["resources"]["core"]["used"])


def test_a_repeat_is_answered_304_with_the_same_rows_and_no_budget(sandbox: Any) -> None:
    before = _used(sandbox)
    (first, s1), (second, s2) = _scan(sandbox)
    after = _used(sandbox)
    assert s1.not_modified == 0 and s1.api_calls >= 2
    assert s2.api_calls == s1.api_calls and s2.not_modified == s2.api_calls  # every page unchanged
    assert second.equals(first) and second.num_rows > 100  # several pages per repository
    assert after - before == s1.api_calls  # the stand-in did not count the 304s, as GitHub does not


def test_a_change_is_seen_and_equals_a_scan_without_etags(sandbox: Any) -> None:
    (cached, _), = _scan(sandbox, passes=1)
    victim = cached.column("pr_id")[0].as_py()
    httpx.post(f"{sandbox.github_url}/_sandbox/mutate",
               json={"update": [{"id": victim, "title": "Renamed after the ETag was stored"}]}).raise_for_status()
    runs = _scan(sandbox, passes=2)
    (truth, plain), = _scan(sandbox, etags=0, passes=1)
    assert plain.not_modified == 0
    for table, _ in runs:
        assert table.equals(truth)
    assert "Renamed after the ETag was stored" in runs[0][0].column("title").to_pylist()
    assert 0 < runs[1][1].not_modified == runs[1][1].api_calls


def test_a_304_gives_its_rate_limit_token_back(sandbox: Any) -> None:
    limiter = RateLimiter(RateLimits(connectors={"github": RateLimit(burst=1000, refill_per_s=0.001)}))
    (_, s1), (_, s2) = _scan(sandbox, gate=limiter)
    status = asyncio.run(limiter.status("t/github"))
    assert s2.not_modified == s2.api_calls > 0
    assert status.remaining == 1000 - s1.api_calls  # the second pass, all 304, spent nothing


def test_issues_and_users_revalidate_too(sandbox: Any) -> None:
    (first, _), (second, stats) = _scan(sandbox, table="issues", columns=("issue_id", "title", "assignee", "state"))
    assert second.equals(first) and stats.not_modified == stats.api_calls > 0


def test_the_etag_store_is_bounded_lru_and_scoped() -> None:
    cache = EtagCache("scope-a", max_bytes=4000)
    headers = httpx.Headers({"link": "<x>; rel=next", "x-ratelimit-remaining": "7", "content-length": "3"})
    for i in range(10):
        cache.put(f"https://h/p{i}", f'"{i}"', headers, b"x" * 500)
    assert cache.size <= 4000 and cache.get("https://h/p0") is None and cache.get("https://h/p9") is not None
    kept = cache.get("https://h/p9")
    assert kept is not None and dict(kept.headers) == {"link": "<x>; rel=next"}  # no stale rate-limit headers
    cache.put("https://h/big", '"b"', headers, b"x" * 3000)  # over a quarter of the store: not kept
    assert cache.get("https://h/big") is None
    other = EtagCache("scope-b")
    assert other.get("https://h/p9") is None  # another credential's store never answers


def test_the_stand_in_answers_304_as_the_contract_says(sandbox: Any) -> None:
    info = sandbox.info()["github"]
    headers = {"Authorization": f"Bearer {info['token']}", "User-Agent": "t"}
    url = f"{info['base_url']}/repos/{info['org']}/web-frontend/pulls?per_page=5"
    first = httpx.get(url, headers=headers)
    etag = first.headers["etag"]
    assert etag.startswith('W/"') and first.headers["cache-control"] == "private, max-age=60, s-maxage=60"
    again = httpx.get(url, headers={**headers, "If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    assert again.headers["x-ratelimit-remaining"] == first.headers["x-ratelimit-remaining"]
    assert httpx.get(url, headers={**headers, "If-None-Match": '"other"'}).status_code == 200
    newer = httpx.get(url, headers={**headers, "If-None-Match": etag, "X-GitHub-Api-Version": "2026-03-10"})
    assert newer.status_code == 200 and newer.headers["etag"] != etag  # another version is another body


def test_explain_analyze_counts_not_modified(sandbox: Any) -> None:
    import adbc_driver_flightsql.dbapi as flightsql

    from demo.tenant import UNTHROTTLED, demo_config, demo_tokens
    from flight_server.app import start_service

    config = demo_config(sandbox.info(), "127.0.0.1", 0, UNTHROTTLED)
    service = start_service(dataclasses.replace(config))
    sql = "EXPLAIN ANALYZE SELECT issue_id, title FROM github.issues WHERE repo = 'web-frontend'"
    try:
        with flightsql.connect(service.uri, db_kwargs={
                "adbc.flight.sql.authorization_header": f"Bearer {demo_tokens()['token_admin']}"}) as conn:
            steps = []
            for _ in range(2):
                cursor = conn.cursor()
                cursor.execute(sql)
                steps.append(cursor.fetch_arrow_table().to_pylist()[0])
                cursor.close()
    finally:
        service.stop()
    assert steps[0]["not_modified"] == 0 and steps[0]["fetch"] == "full"
    assert steps[1]["not_modified"] == steps[1]["api_calls"] > 0 and steps[1]["rows"] == steps[0]["rows"]


def test_a_broken_body_is_never_replayed(sandbox: Any) -> None:
    """A body cut short keeps its ETag on the way (the fault layer): it fails once, and is not what a 304 reuses."""
    from core.errors import UpstreamError

    info = sandbox.info()["github"]

    async def run() -> tuple[int, int]:
        async with new_http_client() as http:
            connector = GitHubConnector(GitHubConfig(base_url=info["base_url"], token=info["token"],
                                                     org=info["org"]), http)
            request = ScanRequest(table="repositories", columns=("repo",))
            httpx.post(f"{sandbox.github_url}/_sandbox/faults", json={"truncate_next": 1}).raise_for_status()
            with pytest.raises(UpstreamError):
                [b async for b in connector.scan(request, ScanStats())]
            first, second = ScanStats(), ScanStats()
            rows = sum(b.num_rows for b in [b async for b in connector.scan(request, first)])
            again = sum(b.num_rows for b in [b async for b in connector.scan(request, second)])
            assert rows == again > 0
            return first.not_modified, second.not_modified

    try:
        assert asyncio.run(run()) == (0, 1)
    finally:
        httpx.post(f"{sandbox.github_url}/_sandbox/faults", json={}).raise_for_status()
