"""``jira.projects`` through ADBC against an in-process server and the Jira stand-in, compared with the seed;
``keys`` pushdown and ``expand=insight`` only when the count is selected; the stand-in's PageBean against the
contract's example (skipped without ../shared)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import duckdb
import httpx
import pyarrow as pa
import pytest

from connectors.jira.projects import PROJECTS as SPEC
from sandbox.jira_api import PROJECT_DETAILS
from sandbox.seed import PROJECTS, build_seed
from sandbox.server import Sandbox
from tests.answers import adbc_answer, assert_same_answer, is_ordered
from tests.conftest import SHARED
from tests.oracle import connect_oracle, oracle_answer


@pytest.fixture(scope="module")
def oracle() -> Iterator[duckdb.DuckDBPyConnection]:
    db = connect_oracle()
    issues = build_seed().issues
    rows = [{"project_key": key, "project_id": str(10000 + i), "name": name, "style": PROJECT_DETAILS[key][1],
             "simplified": PROJECT_DETAILS[key][1] == "next-gen", "category": PROJECT_DETAILS[key][0], "team": team,
             "issue_count": sum(1 for issue in issues if issue.project == key)}
            for i, (key, name, team) in enumerate(PROJECTS)]
    db.register("incoming", pa.Table.from_pylist(rows, schema=SPEC.arrow_schema))
    db.execute("CREATE TABLE jira.projects AS SELECT * FROM incoming")
    db.unregister("incoming")
    yield db
    db.close()


QUERIES = [
    "SELECT * FROM jira.projects",
    "SELECT project_key, name FROM jira.projects WHERE project_key IN ('WEB', 'PLAT', 'NOPE')",
    "SELECT project_key, category FROM jira.projects WHERE team = 'web'",
    "SELECT p.name, count(*) AS open_issues FROM jira.projects p JOIN jira.issues i ON i.project = p.project_key "
    "WHERE p.category = 'Product' AND i.status <> 'Done' GROUP BY p.name",
    "SELECT project_key, issue_count FROM jira.projects ORDER BY issue_count DESC, project_key LIMIT 2",
]


@pytest.mark.parametrize("sql", QUERIES)
def test_projects_answer_like_the_seed(sql: str, running: tuple[Sandbox, Any],
                                       oracle: duckdb.DuckDBPyConnection) -> None:
    assert_same_answer(adbc_answer(running[1], sql), oracle_answer(oracle, sql), is_ordered(sql), context=sql)


def test_keys_are_pushed_and_insight_is_asked_only_when_needed(running: tuple[Sandbox, Any]) -> None:
    sandbox, conn = running
    sandbox.jira.log.clear()
    adbc_answer(conn, "SELECT name FROM jira.projects WHERE project_key = 'WEB'")
    adbc_answer(conn, "SELECT issue_count FROM jira.projects WHERE team = 'mobile'")
    adbc_answer(conn, "SELECT name FROM jira.projects WHERE team = 'nobody'")
    sent = [e["query"] for e in sandbox.jira.log.snapshot() if e["path"] == "/rest/api/3/project/search"]
    assert [(q.get("keys"), q.get("expand")) for q in sent] == [("WEB", None), ("MOB", "insight")]


@pytest.mark.skipif(not (SHARED / "api-contracts").exists(), reason="../shared/api-contracts is not present")
def test_project_search_pages_like_the_contract(running: tuple[Sandbox, Any]) -> None:
    example = json.loads((SHARED / "api-contracts/jira/project-search.GET.200.example.json").read_text())
    info = running[0].info()["jira"]
    auth = (info["email"], info["api_token"])
    first = httpx.get(f"{info['base_url']}/rest/api/3/project/search", params={"maxResults": 2}, auth=auth).json()
    assert set(first) == set(example) and first["total"] == 3 and first["isLast"] is False
    assert set(first["values"][0]) == set(example["values"][0]) - {"insight"}
    last = httpx.get(first["nextPage"], auth=auth).json()
    assert last["isLast"] is True and [p["key"] for p in first["values"] + last["values"]] == ["MOB", "PLAT", "WEB"]


def test_bearer_auth_goes_through_the_cloud_gateway(running: tuple[Sandbox, Any]) -> None:
    """``auth: bearer``: an OAuth 2.0 access token at ``https://api.atlassian.com/ex/jira/{cloudId}`` (here the
    stand-in's gateway path), for issues and projects alike."""
    import asyncio

    from connectors.jira.connector import JiraConfig, JiraConnector
    from connectors.jira.factory import parse
    from connectors.settings import Settings
    from core.types import Predicate, ScanRequest, ScanStats
    from sandbox.jira_api import CLOUD_ID

    sandbox = running[0]
    info = sandbox.info()["jira"]
    config = parse(Settings("connectors.jira", {"auth": "bearer", "access_token_env": "TOKEN", "base_url":
                                                f"{info['base_url']}/ex/jira/{CLOUD_ID}",
                                                "project_teams": {"WEB": "web"}}, {"TOKEN": info["api_token"]}))
    assert isinstance(config, JiraConfig) and config.email == "" and "api_token" not in repr(config).split("(")[0]

    async def run() -> tuple[int, int]:
        async with httpx.AsyncClient() as http:
            connector = JiraConnector(config, http)
            issues = sum([b.num_rows async for b in connector.scan(
                ScanRequest("issues", ("issue_key",), (Predicate("team", "=", ("web",)),)), ScanStats())])
            projects = sum([b.num_rows async for b in connector.scan(ScanRequest("projects", ("name",)),
                                                                      ScanStats())])
            return issues, projects

    sandbox.jira.log.clear()
    assert asyncio.run(run()) == (333, 3)
    paths = {e["path"] for e in sandbox.jira.log.snapshot()}
    assert paths == {f"/ex/jira/{CLOUD_ID}/rest/api/3/search/jql", f"/ex/jira/{CLOUD_ID}/rest/api/3/project/search"}


def test_tenant_yaml_takes_bearer_or_basic(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from flight_server.config import ConfigError, load_config

    monkeypatch.setenv("T", "x")
    monkeypatch.setenv("JIRA_OAUTH", "token")
    path = tmp_path / "t.yaml"
    path.write_text("connectors:\n  jira:\n    auth: bearer\n    access_token_env: JIRA_OAUTH\n"
                    "    base_url: https://api.atlassian.com/ex/jira/abc\nprincipals: [{user: a, token_env: T}]\n")
    assert load_config(path).jira is not None
    path.write_text("connectors:\n  jira:\n    base_url: https://acme.atlassian.net\n"
                    "principals: [{user: a, token_env: T}]\n")
    with pytest.raises(ConfigError, match="email_env"):
        load_config(path)
