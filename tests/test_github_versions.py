"""Both GitHub REST versions: the stand-in answers in the shape ``X-GitHub-Api-Version`` asks for (2026-03-10
drops ``assignee``, ``merge_commit_sha``, ``has_downloads``, ``rate``), and the connector configured for either
version gives the same rows, through the real connector and through ADBC against the demo's sandbox."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import httpx
import pyarrow as pa
import pytest

from connectors.github.connector import API_VERSIONS, GitHubConfig, GitHubConnector
from connectors.http import new_http_client
from core.types import Predicate, ScanRequest, ScanStats
from tests.answers import adbc_answer

SCANS = {
    "pull_requests": ScanRequest("pull_requests", ("pr_id", "number", "repo", "title", "status", "branch", "labels",
                                                   "merged_at")),
    "issues": ScanRequest("issues", ("issue_id", "repo", "title", "state", "author", "assignee", "labels")),
    "repositories": ScanRequest("repositories", ("repo", "repo_id", "full_name", "private", "default_branch")),
    "commits": ScanRequest("commits", ("sha", "repo", "author", "committed_at"),
                           (Predicate("repo", "=", ("web-frontend",)),)),
    "reviews": ScanRequest("reviews", ("review_id", "reviewer", "state"),
                           (Predicate("repo", "=", ("web-frontend",)), Predicate("number", "IN", (1, 2, 3)))),
}


def _scan_all(info: dict[str, Any], version: str) -> dict[str, pa.Table]:
    async def run() -> dict[str, pa.Table]:
        async with new_http_client() as http:
            connector = GitHubConnector(GitHubConfig(base_url=info["base_url"], token=info["token"], org=info["org"],
                                                     api_version=version), http)
            out = {}
            for name, request in SCANS.items():
                batches = [b async for b in connector.scan(request, ScanStats())]
                out[name] = pa.Table.from_batches(batches).sort_by(request.columns[0])
            return out

    return asyncio.run(run())


@pytest.fixture(scope="module")
def by_version(demo: dict[str, Any]) -> dict[str, dict[str, pa.Table]]:
    return {version: _scan_all(demo["sandbox"]["github"], version) for version in API_VERSIONS}


@pytest.mark.parametrize("table", sorted(SCANS))
def test_either_version_gives_the_same_rows(table: str, by_version: dict[str, dict[str, pa.Table]]) -> None:
    old, new = (by_version[v][table] for v in API_VERSIONS)
    assert old.num_rows > 0 and new.equals(old)


def test_assignees_come_through_without_the_singular_field(by_version: dict[str, dict[str, pa.Table]]) -> None:
    issues = by_version["2026-03-10"]["issues"]
    assert issues.column("assignee").null_count < issues.num_rows  # read from ``assignees``


def test_the_stand_in_answers_in_the_version_asked(demo: dict[str, Any]) -> None:
    gh = demo["sandbox"]["github"]
    base, org = gh["base_url"], gh["org"]

    def get(path: str, version: str) -> Any:
        reply = httpx.get(f"{base}{path}", headers={"Authorization": f"Bearer {gh['token']}", "User-Agent": "t",
                                                    "X-GitHub-Api-Version": version})
        assert reply.status_code == 200
        return reply.json()

    for version in API_VERSIONS:
        legacy = version == "2022-11-28"
        pull = get(f"/repos/{org}/web-frontend/pulls?per_page=1&state=all", version)[0]
        issue = get(f"/repos/{org}/web-frontend/issues?per_page=1&state=all", version)[0]
        repo = get(f"/orgs/{org}/repos?per_page=1", version)[0]
        rate = get("/rate_limit", version)
        assert ("merge_commit_sha" in pull) == ("assignee" in pull) == legacy
        assert ("assignee" in issue) == legacy and "assignees" in issue
        assert ("has_downloads" in repo) == legacy and ("rate" in rate) == legacy and "core" in rate["resources"]
    refused = httpx.get(f"{base}/rate_limit", headers={"Authorization": f"Bearer {gh['token']}", "User-Agent": "t",
                                                       "X-GitHub-Api-Version": "2030-01-01"})
    assert refused.status_code == 400


def test_adbc_answers_alike_with_the_newer_version(demo: dict[str, Any], adbc_conn: Any) -> None:
    import adbc_driver_flightsql.dbapi as flightsql

    from demo.tenant import UNTHROTTLED, demo_config
    from flight_server.app import start_service

    config = demo_config(demo["sandbox"], "127.0.0.1", 0, UNTHROTTLED)
    assert config.github is not None
    config = dataclasses.replace(config, github=dataclasses.replace(config.github, api_version="2026-03-10"))
    service = start_service(config)
    sql = ("SELECT issue_id, assignee, state FROM github.issues WHERE repo IN ('web-frontend', 'platform-api') "
           "ORDER BY issue_id")
    try:
        with flightsql.connect(service.uri, db_kwargs={
                "adbc.flight.sql.authorization_header": f"Bearer {demo['tokens']['token_admin']}"}) as conn:
            newer = adbc_answer(conn, sql)
    finally:
        service.stop()
    older = adbc_answer(adbc_conn, sql)
    assert newer.num_rows > 0 and newer.equals(older)


def test_the_tenant_setting_takes_either_version_and_names_a_wrong_one() -> None:
    from connectors.github.factory import parse
    from connectors.settings import SettingError, Settings

    def settings(**values: Any) -> Settings:
        return Settings("connectors.github", {"org": "o", "token_env": "T", **values}, environ={"T": "secret"})

    assert parse(settings()).api_version == "2022-11-28"
    assert parse(settings(api_version="2026-03-10")).api_version == "2026-03-10"
    assert parse(settings(etag_cache_bytes=0)).etag_cache_bytes == 0
    with pytest.raises(SettingError, match="connectors.github.api_version must be one of 2022-11-28, 2026-03-10"):
        parse(settings(api_version="2030-01-01"))
