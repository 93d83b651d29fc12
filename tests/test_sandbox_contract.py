"""The sandbox behaves like the contracts in ../shared/api-contracts (skipped when ../shared is absent)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from sandbox.jql import JqlError, compile_jql, default_fields
from sandbox.seed import build_seed
from tests.conftest import SHARED

CONTRACTS = SHARED / "api-contracts"
needs_shared = pytest.mark.skipif(not CONTRACTS.exists(), reason="../shared/api-contracts is not present")


@needs_shared
def test_jql_errors_match_jira_examples() -> None:
    examples = json.loads((CONTRACTS / "jira" / "jql-parse-errors.example.json").read_text())
    fields = default_fields("customfield_10016", "customfield_10100")
    for example in examples[1:]:  # the first one uses a field we do not model
        with pytest.raises(JqlError) as excinfo:
            compile_jql(example["query"], fields)
        assert str(excinfo.value) == example["errors"][0]


@needs_shared
def test_legacy_search_answers_410_with_the_recorded_body(demo: dict[str, Any]) -> None:
    jira = demo["sandbox"]["jira"]
    response = httpx.get(f"{jira['base_url']}/rest/api/3/search", params={"jql": "project = MOB"},
                         auth=(jira["email"], jira["api_token"]))
    assert response.status_code == 410
    assert response.json() == json.loads((CONTRACTS / "jira" / "error-410-legacy-search-removed.json").read_text())


def test_github_paging_auth_and_rate_headers(demo: dict[str, Any]) -> None:
    gh = demo["sandbox"]["github"]
    headers = {"Authorization": f"Bearer {gh['token']}", "User-Agent": "omnisql-tests"}
    first = httpx.get(f"{gh['base_url']}/repos/{gh['org']}/web-frontend/pulls",
                      params={"state": "all", "per_page": 500}, headers=headers)
    assert first.status_code == 200 and len(first.json()) == 100  # per_page capped at 100; 275 PRs in repo
    assert set(first.links) == {"next", "last"} and "per_page=100" in first.links["last"]["url"]
    pages = [first.json()]
    while "next" in first.links:  # page 2 and 3, at the URLs the link header gives (prev/first from page 2 on)
        first = httpx.get(first.links["next"]["url"], headers=headers)
        pages.append(first.json())
    assert [len(p) for p in pages] == [100, 100, 75] and set(first.links) == {"prev", "first"}
    numbers = [pr["number"] for page in pages for pr in page]
    assert numbers == list(range(275, 0, -1)), "newest first, each pull request exactly once"
    small = httpx.get(f"{gh['base_url']}/repos/{gh['org']}/web-frontend/pulls",
                      params={"state": "all", "per_page": 40}, headers=headers)
    assert set(small.links) == {"next", "last"} and "/repositories/" in small.links["next"]["url"]
    assert int(small.headers["x-ratelimit-remaining"]) < int(small.headers["x-ratelimit-limit"])
    assert httpx.get(f"{gh['base_url']}/orgs/{gh['org']}/repos", headers={"User-Agent": "x"}).status_code == 401
    bad = httpx.get(f"{gh['base_url']}/repos/{gh['org']}/web-frontend/pulls", params={"state": "bogus"},
                    headers=headers)
    assert bad.status_code == 422 and bad.json()["message"] == "Validation Failed"


def test_jira_search_pages_by_token_without_total(demo: dict[str, Any]) -> None:
    jira = demo["sandbox"]["jira"]
    url, auth = f"{jira['base_url']}/rest/api/3/search/jql", (jira["email"], jira["api_token"])
    web = sum(1 for i in build_seed().issues if i.project == "WEB")
    request = {"jql": "project = WEB", "maxResults": 150, "fields": ["summary"]}
    pages = [httpx.post(url, json=request, auth=auth).json()]
    while not pages[-1]["isLast"]:  # 100 issues a page at most once fields are asked for
        assert "total" not in pages[-1] and pages[-1]["nextPageToken"]
        pages.append(httpx.post(url, json={**request, "nextPageToken": pages[-1]["nextPageToken"]},
                                auth=auth).json())
    assert [len(p["issues"]) for p in pages] == [100, 100, 100, web - 300] and "nextPageToken" not in pages[-1]
    assert len({i["key"] for p in pages for i in p["issues"]}) == web == 333, "each issue exactly once"
    default = httpx.get(url, params={"jql": "project = WEB", "maxResults": 1}, auth=auth).json()
    assert set(default["issues"][0]["fields"]) == set(), "fields defaults to id only"
    bad = httpx.get(url, params={"jql": "summary = x"}, auth=auth)
    assert bad.status_code == 400 and bad.json()["errorMessages"]


def test_jira_approximate_count_matches_search(demo: dict[str, Any]) -> None:
    jira = demo["sandbox"]["jira"]
    base, auth = f"{jira['base_url']}/rest/api/3/search", (jira["email"], jira["api_token"])
    example = json.loads((SHARED / "api-contracts/jira/approximate-count.POST.200.example.json").read_text()) \
        if SHARED.exists() else {"count": 0}
    counted = httpx.post(f"{base}/approximate-count", json={"jql": "project = WEB"}, auth=auth).json()
    assert set(counted) == set(example) and counted["count"] == sum(1 for i in build_seed().issues
                                                                    if i.project == "WEB") == 333
    numbers = httpx.post(f"{base}/approximate-count", json={"jql": "cf[10016] IN (13, 8.0)"}, auth=auth).json()
    listed = httpx.post(f"{base}/jql", json={"jql": "cf[10016] IN (13, 8.0)", "maxResults": 5000}, auth=auth).json()
    assert numbers["count"] == len(listed["issues"]) > 0, "numbers compare as numbers: 13 = 13.0"
    unbounded = httpx.post(f"{base}/approximate-count", json={"jql": ""}, auth=auth)
    assert unbounded.status_code == 400 and "Unbounded" in unbounded.json()["errorMessages"][0]
