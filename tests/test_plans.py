"""Plan shapes, without any network: which scans bind to which, in which mode, and when the planner refuses."""

from __future__ import annotations

import pytest

from connectors.github.tables import PULL_REQUESTS, USERS
from connectors.jira.tables import ISSUES
from core.errors import InvalidQuery
from planner.catalog import Catalog
from planner.duck import Duck
from planner.estimates import Estimator
from planner.plan import FetchPlan
from planner.planner import Planner

JOIN = "SELECT gh.number, ji.issue_key FROM github.pull_requests gh JOIN jira.issues ji ON gh.branch = ji.branch_name"


def plan(sql: str, strategy: str = "auto", estimator: Estimator | None = None) -> FetchPlan:
    return Planner(Catalog([PULL_REQUESTS, USERS, ISSUES]), Duck(), join_strategy=strategy,
                   estimator=estimator).plan(sql)


def shape(p: FetchPlan) -> list[tuple[str, str, str | None]]:
    return [(s.alias, s.strategy, str(s.binding) if s.binding else None) for s in p.steps]


def test_small_side_binds_the_large_side_in_batches() -> None:
    p = plan(JOIN + " WHERE gh.repo = 'infra-tools' AND gh.status = 'open'")
    assert shape(p) == [("gh", "scan", None),
                        ("ji", "bind join", "branch_name IN (keys of [0] gh.branch) in batches of 50; more than 300 "
                                            "keys: semi-join instead (listing costs less)")]
    assert [[s.alias for s in wave] for wave in p.waves()] == [["gh"], ["ji"]]
    assert "gh.repo = 'infra-tools'" in p.steps[1].binding.key_sql  # type: ignore[union-attr]


def test_no_filters_means_parallel_scans() -> None:
    p = plan(JOIN)
    assert shape(p) == [("gh", "scan", None), ("ji", "scan", None)]
    assert len(p.waves()) == 1


def test_lookups_make_a_semi_join_worthwhile() -> None:
    p = plan("SELECT sum(gh.additions) FROM github.pull_requests gh JOIN jira.issues ji "
             "ON gh.branch = ji.branch_name WHERE ji.status = 'Done'")
    assert shape(p)[0] == ("gh", "semi-join + lookup",
                           "branch IN (keys of [1] ji.branch_name) applied to listed rows before lookups")


def test_outer_joins_never_filter_the_preserved_side() -> None:
    left = plan("SELECT 1 FROM jira.issues ji LEFT JOIN github.pull_requests gh ON gh.branch = ji.branch_name "
                "AND gh.repo = 'infra-tools' AND gh.status = 'open'")
    assert all(s.binding is None or s.alias == "gh" for s in left.steps)
    full = plan("SELECT 1 FROM github.pull_requests gh FULL JOIN jira.issues ji ON gh.branch = ji.branch_name "
                "WHERE gh.repo = 'infra-tools'")
    assert all(s.binding is None for s in full.steps)


def test_or_across_tables_and_expressions_give_no_edge() -> None:
    p = plan("SELECT 1 FROM github.pull_requests gh JOIN jira.issues ji ON gh.branch = ji.branch_name "
             "OR gh.title = ji.summary WHERE gh.repo = 'infra-tools'")
    assert all(s.binding is None for s in p.steps)
    p = plan("SELECT 1 FROM github.pull_requests gh JOIN jira.issues ji ON lower(gh.branch) = ji.branch_name "
             "WHERE gh.repo = 'infra-tools'")
    assert all(s.binding is None for s in p.steps)


def test_required_filter_comes_from_a_join_or_fails_clearly() -> None:
    p = plan("SELECT u.name FROM github.pull_requests gh JOIN github.users u ON u.login = gh.author")
    assert shape(p)[1] == ("u", "lookup join", "login IN (keys of [0] gh.author) in batches of 1")
    with pytest.raises(InvalidQuery, match=r"github.users needs a filter on login.*login = 'octocat'"):
        plan("SELECT u.name FROM github.pull_requests gh LEFT JOIN github.users u ON u.name = gh.author")
    assert shape(plan("SELECT * FROM github.users WHERE login IN ('a', 'b')")) == [("users", "scan", None)]


def test_strategies_scan_and_per_row() -> None:
    where = " WHERE gh.repo = 'infra-tools' AND gh.status = 'open'"
    assert all(s.binding is None for s in plan(JOIN + where, "scan").steps)
    assert shape(plan(JOIN + where, "per_row"))[1] == (
        "ji", "per-row", "branch_name IN (keys of [0] gh.branch) one request per key")


def test_recent_fetches_replace_the_declared_row_estimate() -> None:
    sql = "SELECT count(*) FROM jira.issues"
    assert plan(sql).steps[0].est_calls == 6  # TableSpec: 600 rows, 100 per page
    estimator = Estimator()
    estimator.statistics.record(ISSUES, (), 12_000)  # what the executor records after a full listing
    assert plan(sql, estimator=estimator).steps[0].est_calls == 120


def test_residual_translation_never_rejects_what_sql_keeps() -> None:
    import pyarrow as pa
    from sqlglot import parse_one

    from planner.residual import to_residual

    def translate(sql: str) -> tuple[str, bool] | None:
        found = to_residual(parse_one(sql, dialect="duckdb"), PULL_REQUESTS)
        return (str(found[0]), found[1]) if found else None

    assert translate("title LIKE 'a\\b%'") is None, "backslash escapes differ between DuckDB and Arrow"
    assert translate("lower(title) = 'x'") is None, "functions stay in DuckDB"
    assert translate("NOT (lower(title) = 'x' AND number = 1)") is None, "a weakened inner makes NOT unsafe"
    assert translate("lower(title) = 'x' OR number = 1") is None
    weakened = translate("lower(title) = 'x' AND number = 1")
    assert weakened is not None and weakened[1] is False and "number" in weakened[0]
    assert translate("additions > 10") is None, "lookup columns are not there yet"
    batch = pa.RecordBatch.from_pydict({"title": ["Fix a", None, "add"], "number": [1, 2, 3]})
    found = to_residual(parse_one("NOT (title LIKE 'Fix%') OR number = 2", dialect="duckdb"), PULL_REQUESTS)
    assert found is not None and batch.filter(found[0]).column("number").to_pylist() == [2, 3]


def test_in_subquery_supplies_keys_like_a_join() -> None:
    p = plan("SELECT issue_key FROM jira.issues WHERE branch_name IN (SELECT branch FROM github.pull_requests "
             "WHERE repo = 'mobile-app' AND status = 'open')")
    assert shape(p)[0] == ("issues", "bind join", "branch_name IN (keys of [1] pull_requests.branch) in batches "
                                 "of 50; more than 300 keys: semi-join instead (listing costs less)")
    assert "pull_requests.status = 'open'" in p.steps[0].binding.key_sql  # type: ignore[union-attr]
    for unsafe in ("branch_name NOT IN (SELECT branch FROM github.pull_requests WHERE repo = 'mobile-app')",
                   "branch_name IN (SELECT lower(branch) FROM github.pull_requests WHERE repo = 'mobile-app')",
                   "branch_name IN (SELECT branch FROM github.pull_requests WHERE repo = 'mobile-app' LIMIT 3)",
                   "(branch_name IN (SELECT branch FROM github.pull_requests WHERE repo = 'x') OR project = 'WEB')"):
        assert all(s.binding is None for s in plan(f"SELECT issue_key FROM jira.issues WHERE {unsafe}").steps), unsafe


def test_typed_time_literals_are_pushed_as_utc_instants() -> None:
    """TIMESTAMP (naive: UTC, the session zone), TIMESTAMPTZ (its offset names the instant) and DATE literals go
    to the API; JQL gets a window widened by the largest zone offset, since Jira reads dates in the API user's
    own zone (the rows are re-checked, so a wider window only costs rows, never answers)."""
    from connectors.jira.jql import build_jql

    p = plan("SELECT issue_key FROM jira.issues WHERE updated_at >= TIMESTAMP '2026-06-07 23:30:00' "
             "AND created_at < TIMESTAMPTZ '2026-06-15 08:00:00+05:30' AND created_at >= DATE '2026-05-10'")
    pushed = [c.predicate for c in p.steps[0].pushed]
    assert {str(c) for c in pushed} == {"updated_at >= TIMESTAMP '2026-06-07 23:30:00'",
                                        "created_at < TIMESTAMP '2026-06-15 02:30:00'",
                                        "created_at >= TIMESTAMP '2026-05-10 00:00:00'"}
    assert not p.steps[0].local
    jql = build_jql(pushed, {"updated_at": ("updated", "date"), "created_at": ("created", "date")}, {}, "")
    assert 'updated >= "2026-06-07 09:30"' in jql and 'created <= "2026-06-15 16:30"' in jql
    assert 'created >= "2026-05-09 10:00"' in jql


@pytest.mark.timeout(60)
def test_a_huge_key_estimate_is_priced_without_materializing_keys() -> None:
    """github.users is estimated at 100 million rows before its binding narrows it: pricing a join from it must
    not build that many placeholder keys (it stalled planning and ate memory: a one-query denial of service)."""
    for sql in ("SELECT ji.issue_key FROM github.pull_requests gh JOIN github.users u ON u.login = gh.author "
                "JOIN jira.issues ji ON ji.issue_key = u.name",
                "SELECT ji.issue_key FROM github.pull_requests gh JOIN github.users u ON u.login = gh.author "
                "JOIN jira.issues ji ON ji.assignee = u.name"):
        p = plan(sql)
        assert [s.alias for s in p.steps] == ["gh", "u", "ji"]
        assert p.steps[1].binding is not None and p.steps[1].binding.source == 0
