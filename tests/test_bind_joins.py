"""Bind, semi and lookup joins, seen where they matter: the upstream request log, EXPLAIN through ADBC, and
answers equal to the oracle's (tests/oracle.py: the seed as DuckDB tables, no connector involved)."""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

import pytest

from connectors.jira.connector import JiraConfig, JiraConnector
from core.types import Predicate, ScanRequest
from planner.parameters import Parameters
from sandbox.jql import lucene_text, tokenize
from sandbox.seed import build_seed
from tests.conftest import SandboxLog
from tests.oracle import oracle_answer

SMALL_SIDE = "gh.repo = 'infra-tools' AND gh.status = 'open'"
BIND_SQL = ("SELECT gh.number, ji.issue_key FROM github.pull_requests gh JOIN jira.issues ji "
            f"ON gh.branch = ji.branch_name WHERE {SMALL_SIDE}")


def _rows(cursor: Any, sql: str) -> list[tuple[Any, ...]]:
    cursor.execute(sql)
    return sorted(cursor.fetchall(), key=repr)


def _reference(oracle: Any, sql: str) -> list[tuple[Any, ...]]:
    return sorted((tuple(r.values()) for r in oracle_answer(oracle, sql).to_pylist()), key=repr)


def _searches(log: SandboxLog) -> list[str]:
    return [r["body"]["jql"] for r in log.requests("jira") if r["path"].endswith("/search/jql")]


@pytest.fixture(scope="module")  # module scope: set up before (and so not logged after) sandbox_log's clear
def small_side_branches(oracle: Any) -> set[str]:
    table = oracle_answer(oracle, "SELECT DISTINCT branch FROM github.pull_requests gh WHERE " + SMALL_SIDE)
    return {b for b in table.column(0).to_pylist() if b is not None}


def test_bind_join_sends_the_small_sides_keys_in_batches(adbc_conn: Any, sandbox_log: SandboxLog,
                                                         oracle: Any, small_side_branches: set[str]
                                                         ) -> None:
    got = _rows(adbc_conn.cursor(), BIND_SQL)
    searches = _searches(sandbox_log)
    assert len(set(searches)) == math.ceil(len(small_side_branches) / 50), "one search per batch of 50 keys"
    sent = set()
    for jql in searches:
        tokens = tokenize(jql)
        assert {t.text for t in tokens if t.kind == "word"} <= {"cf[10100]", "OR"}, jql  # nothing but keys
        sent |= {lucene_text(t.text) for t in tokens if t.kind == "string"}  # JQL, then Lucene, unescaped
    assert sent == small_side_branches
    assert got == _reference(oracle, BIND_SQL)


def test_explain_shows_the_binding_and_analyze_counts_the_calls(adbc_conn: Any, sandbox_log: SandboxLog,
                                                                small_side_branches: set[str]) -> None:
    cursor = adbc_conn.cursor()
    cursor.execute("EXPLAIN " + BIND_SQL)
    plan = {r["alias"]: r for r in cursor.fetch_arrow_table().to_pylist()}
    assert sandbox_log.requests("github") == sandbox_log.requests("jira") == [], "EXPLAIN makes no API calls"
    assert plan["ji"]["strategy"] == "bind join" and plan["gh"]["strategy"] == "scan"
    assert plan["ji"]["binding"].startswith("branch_name IN (keys of [0] gh.branch) in batches of 50; more than ")
    assert plan["gh"]["pushed_exact"] == "repo = 'infra-tools'" and plan["gh"]["pushed_inexact"] == "status = 'open'"
    assert plan["ji"]["est_api_calls"] < plan["gh"]["est_api_calls"] + 6, "cheaper than listing all of Jira"
    cursor.execute("EXPLAIN ANALYZE " + BIND_SQL)
    analyzed = {r["alias"]: r for r in cursor.fetch_arrow_table().to_pylist()}
    assert analyzed["ji"]["keys"] == len(small_side_branches)
    assert analyzed["gh"]["api_calls"] == len(sandbox_log.requests("github"))
    assert analyzed["ji"]["api_calls"] == len(sandbox_log.requests("jira"))
    assert analyzed["ji"]["cache_hits"] == 0 and analyzed["ji"]["ms"] > 0


def test_left_join_never_filters_the_preserved_side(adbc_conn: Any, sandbox_log: SandboxLog,
                                                    oracle: Any) -> None:
    sql = ("SELECT ji.issue_key, gh.number FROM jira.issues ji LEFT JOIN github.pull_requests gh "
           f"ON gh.branch = ji.branch_name AND {SMALL_SIDE}")
    cursor = adbc_conn.cursor()
    cursor.execute("EXPLAIN " + sql)
    plan = {r["alias"]: r for r in cursor.fetch_arrow_table().to_pylist()}
    assert plan["ji"]["strategy"] == "scan" and plan["ji"]["binding"] is None
    assert _rows(cursor, sql) == _reference(oracle, sql)


def test_semi_join_runs_detail_lookups_only_for_rows_that_can_join(adbc_conn: Any, sandbox_log: SandboxLog,
                                                                   oracle: Any) -> None:
    sql = ("SELECT ji.assignee, sum(gh.additions) AS added FROM github.pull_requests gh JOIN jira.issues ji "
           "ON gh.branch = ji.branch_name WHERE ji.status = 'Done' GROUP BY ji.assignee")
    got = _rows(adbc_conn.cursor(), sql)
    details = [r for r in sandbox_log.requests("github") if r["path"].rsplit("/", 1)[-1].isdigit()]
    matching = oracle_answer(oracle, "SELECT count(*) FROM github.pull_requests WHERE branch IN "
                             "(SELECT branch_name FROM jira.issues WHERE status = 'Done')").column(0)[0].as_py()
    assert len(details) == matching < len(build_seed().pulls), \
        "one GET /pulls/{n} per pull request that can join, not per PR"
    assert got == _reference(oracle, sql)


def test_lookup_join_fetches_each_user_once(adbc_conn: Any, sandbox_log: SandboxLog, oracle: Any
                                            ) -> None:
    sql = ("SELECT gh.number, u.name, u.email FROM github.pull_requests gh JOIN github.users u "
           f"ON u.login = gh.author WHERE {SMALL_SIDE}")
    got = _rows(adbc_conn.cursor(), sql)
    users = [r["path"] for r in sandbox_log.requests("github") if r["path"].startswith("/users/")]
    authors = oracle_answer(oracle, f"SELECT DISTINCT author FROM github.pull_requests gh WHERE {SMALL_SIDE}")
    assert sorted(users) == sorted(f"/users/{a}" for a in authors.column(0).to_pylist())
    assert got == _reference(oracle, sql)


@pytest.mark.parametrize(("sql", "expected"), [
    ("SELECT * FROM github.users", "github.users needs a filter on login"),
    ("SELECT * FROM github.users WHERE name = 'Ana Silva'", "add e.g. WHERE login = 'octocat'"),
    ("SELECT * FROM github.pull_requests gh RIGHT JOIN github.users u ON u.login = gh.author",
     "github.users needs a filter on login"),
])
def test_missing_required_filter_is_a_clear_invalid_argument(adbc_conn: Any, sql: str, expected: str) -> None:
    import adbc_driver_flightsql.dbapi as flightsql

    cursor = adbc_conn.cursor()
    with pytest.raises(flightsql.ProgrammingError, match="INVALID_ARGUMENT") as excinfo:
        cursor.execute(sql)
    assert expected in str(excinfo.value)


def _service_with(demo: dict[str, Any], **overrides: Any) -> Any:
    from demo.tenant import UNTHROTTLED, demo_config
    from flight_server.app import start_service

    config = demo_config(demo["sandbox"], "127.0.0.1", 0, UNTHROTTLED)
    return start_service(dataclasses.replace(config, **overrides))


def _adbc(uri: str, demo: dict[str, Any]) -> Any:
    import adbc_driver_flightsql.dbapi as flightsql

    return flightsql.connect(uri, db_kwargs={
        "adbc.flight.sql.authorization_header": f"Bearer {demo['tokens']['token_admin']}"})


def test_per_row_strategy_pays_one_call_per_key(demo: dict[str, Any], sandbox_log: SandboxLog,
                                                oracle: Any, small_side_branches: set[str]) -> None:
    service = _service_with(demo, join_strategy="per_row")
    try:
        with _adbc(service.uri, demo) as conn:
            sandbox_log.clear()
            got = _rows(conn.cursor(), BIND_SQL)
    finally:
        service.stop()
    assert len(_searches(sandbox_log)) == len(small_side_branches)
    assert got == _reference(oracle, BIND_SQL)


def test_fresh_engine_counts_before_betting_on_a_bind_join(demo: dict[str, Any], sandbox_log: SandboxLog,
                                                            oracle: Any) -> None:
    """No statistics yet: one approximate-count settles the listing's size, then the bind join runs."""
    service = _service_with(demo)
    try:
        with _adbc(service.uri, demo) as conn:
            sandbox_log.clear()
            got = _rows(conn.cursor(), BIND_SQL)
    finally:
        service.stop()
    counts = [r for r in sandbox_log.requests("jira") if r["path"].endswith("/approximate-count")]
    assert [r["body"] for r in counts] == [{"jql": 'project IN ("MOB", "PLAT", "WEB")'}]
    assert _searches(sandbox_log) and all("cf[10100] ~" in jql for jql in _searches(sandbox_log))
    assert got == _reference(oracle, BIND_SQL)


PLAN_COLUMNS = ("step", "wave", "source_table", "alias", "pushed_exact", "pushed_inexact", "local", "projection",
                "lookups", "binding", "limit", "order_by", "requests", "est_api_calls", "est_pages", "est_rows",
                "est_keys")


@pytest.mark.parametrize("query", ["merged_unresolved_audit", "in_progress_join", "points_vs_loc"])
def test_explain_and_the_run_decide_alike_on_a_fresh_server(demo: dict[str, Any], query: str) -> None:
    """A fresh server has no statistics: EXPLAIN's plan is the plan the run executes (same estimates, same
    binding), and the run's strategy for a bound step follows from EXPLAIN's crossover and the actual keys."""
    from demo.tenant import SEED_QUERIES

    service = _service_with(demo)
    try:
        with _adbc(service.uri, demo) as conn:
            cursor = conn.cursor()
            cursor.execute("EXPLAIN " + SEED_QUERIES[query])
            explained = cursor.fetch_arrow_table().to_pylist()
            cursor.execute("EXPLAIN ANALYZE " + SEED_QUERIES[query])
            analyzed = cursor.fetch_arrow_table().to_pylist()
    finally:
        service.stop()
    assert [{k: r[k] for k in PLAN_COLUMNS} for r in explained] == [{k: r[k] for k in PLAN_COLUMNS} for r in analyzed]
    for before, after in zip(explained, analyzed, strict=True):
        if before["source_table"] is None:
            continue
        assert after["rows"] is not None and after["api_calls"] is not None, "the actual beside the estimate"
        match = re.search(r"more than (\d+) keys", before["binding"] or "")
        if before["strategy"] == "bind join" and match:
            expected = "bind join" if after["keys"] <= int(match.group(1)) else "semi-join"
            assert after["strategy"].startswith(expected), (after["keys"], before["binding"], after["strategy"])
        else:
            assert after["strategy"] == before["strategy"]


def test_in_subquery_binds_like_a_join(adbc_conn: Any, sandbox_log: SandboxLog, oracle: Any,
                                       small_side_branches: set[str]) -> None:
    sql = ("SELECT issue_key FROM jira.issues WHERE branch_name IN "
           f"(SELECT branch FROM github.pull_requests gh WHERE {SMALL_SIDE})")
    got = _rows(adbc_conn.cursor(), sql)
    sent = {lucene_text(t.text) for jql in _searches(sandbox_log) for t in tokenize(jql) if t.kind == "string"}
    assert sent == small_side_branches, "only the subquery's keys were asked for"
    assert got == _reference(oracle, sql)


@pytest.mark.parametrize("keys", [
    ['a" OR project = "MOB', "back\\slash", "it's", "ÄÖ ☃ 日本", "x\ny", "cf[10100] ~ z", "(EMPTY)"],
])
def test_hostile_join_keys_stay_values(keys: list[str]) -> None:
    """Keys come from another API's data: they must reach JQL as exactly that many string literals."""
    connector = JiraConnector(JiraConfig(base_url="http://127.0.0.1:9", email="e", api_token="t",
                                         project_teams={"MOB": "mobile"}), http=None)  # type: ignore[arg-type]
    jql = connector.jql_for(ScanRequest("issues", ("issue_key",), (Predicate("branch_name", "IN", tuple(keys)),)))
    tokens = tokenize(jql)
    strings = [t.text for t in tokens if t.kind == "string"]
    assert len(strings) == len(keys)
    assert {t.text for t in tokens if t.kind == "word"} == {"cf[10100]", "OR"}
    # Lucene-escaped inside the JQL string, operator words lowercased (jql.text_term; Jira's text search ignores case)
    assert [lucene_text(s).lower() for s in strings] == [k.lower() for k in keys]


@pytest.mark.parametrize(("value", "term"), [
    ("feature/login", "feature\\/login"),  # a bare / would open a Lucene regular expression
    ("x -y", "x \\-y"),  # "x but not y" would drop the very issue whose branch this is
    ("a NOT b", "a not b"), ("fix!bug*", "fix\\!bug\\*"), ('q"(x)', 'q\\"\\(x\\)'), ("plain_name.1", "plain_name.1"),
])
def test_text_values_reach_jira_as_literal_lucene_text(value: str, term: str) -> None:
    """Jira reads a ``~`` string as a Lucene query: a branch name can only narrow to the issues that contain it."""
    from connectors.jira.jql import text_term

    assert text_term(value) == term
    assert lucene_text(term).lower() == value.lower()


def test_a_locally_row_filtered_step_is_never_counted(demo: dict[str, Any]) -> None:
    """The API's count includes the rows a locally checked row filter hides, and a learned count comes back as
    EXPLAIN's est_rows: such a step is priced on its guess. Unit test of ``Engine._count_guessed_listings`` (the
    count itself is the test double); the same step without a row filter is counted."""
    from sqlglot import exp

    service = _service_with(demo)
    try:
        engine = service.engine
        ctx = engine.context()
        plan = engine.planner.plan(BIND_SQL, Parameters(), ctx)
        bound = [step for step in plan.steps if step.binding is not None and step.binding.max_keys is not None]
        assert bound, "the query binds the Jira listing"
        asked: list[str] = []

        async def count(step: Any, ctx: Any) -> int | None:
            asked.append(step.spec.qualified_name)
            return None

        engine.executor.count_listing = count  # type: ignore[method-assign]
        filtered = dataclasses.replace(bound[0], row_filter=exp.condition("length(summary) > 30"),
                                       local=("LENGTH(ji.summary) > 30",))
        engine._count_guessed_listings(dataclasses.replace(plan, steps=(filtered,)), ctx)
        assert asked == []
        engine._count_guessed_listings(dataclasses.replace(plan, steps=(bound[0],)), ctx)
        assert asked == ["jira.issues"]
    finally:
        service.stop()
