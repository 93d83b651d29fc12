"""Golden fixtures for each rewrite pass, and for predicate normalization (pure functions)."""

from __future__ import annotations

from datetime import datetime

import pytest
import sqlglot

from connectors.github.tables import PULL_REQUESTS
from connectors.jira.tables import ISSUES
from core.types import ColumnSpec, FilterCap, Predicate, TableSpec
from planner.passes import PASSES, rewrite
from planner.passes.flip_comparisons import flip_comparisons
from planner.passes.or_to_in import or_to_in
from planner.predicates import to_predicate
from planner.pushdown import decide, require_filters


def _sql(e: sqlglot.exp.Expr) -> str:
    return e.sql("duckdb")


@pytest.mark.parametrize(("before", "after"), [
    ("5 < x", "x > 5"), ("'a' = t.s", "t.s = 'a'"), ("x >= 1", "x >= 1"), ("3 <= 4", "3 <= 4"),
])
def test_flip_comparisons(before: str, after: str) -> None:
    assert _sql(flip_comparisons(sqlglot.parse_one(before))) == after


@pytest.mark.parametrize(("before", "after"), [
    ("s = 'a' OR s = 'b'", "s IN ('a', 'b')"),
    ("(s = 'a' OR s = 'b') OR s IN ('c')", "s IN ('a', 'b', 'c')"),
    ("s = 'a' OR t = 'b'", "s = 'a' OR t = 'b'"),
    ("s = 'a' OR s > 'b'", "s = 'a' OR s > 'b'"),
])
def test_or_to_in(before: str, after: str) -> None:
    assert _sql(or_to_in(sqlglot.parse_one(before))) == after


def test_pass_order_is_listed() -> None:
    assert [name for name, _ in PASSES] == ["or_to_in", "flip_comparisons"]


@pytest.mark.parametrize(("condition", "expected"), [
    ("status = 'merged'", Predicate("status", "=", ("merged",))),
    ("'web' = team_id", Predicate("team_id", "=", ("web",))),
    ("repo = 'a' OR repo = 'b'", Predicate("repo", "IN", ("a", "b"))),
    ("merged_at >= '2026-02-01'", Predicate("merged_at", ">=", (datetime(2026, 2, 1),))),
    ("number = 7.0", Predicate("number", "=", (7,))),
    ("number = 7.5", None),
    ("status = 5", None),
    ("lower(status) = 'open'", None),
    ("title LIKE 'Fix%'", Predicate("title", "LIKE_PREFIX", ("Fix",))),
    ("title LIKE 'F_x%'", None),
    ("merged_at IS NULL", Predicate("merged_at", "IS_NULL")),
    # SYMMETRIC orders its bounds (pushing 'BETWEEN 9 AND 3' as written answered nothing)
    ("number BETWEEN SYMMETRIC 9 AND 3", Predicate("number", "BETWEEN", (3, 9))),
    ("number BETWEEN SYMMETRIC 3 AND 9", Predicate("number", "BETWEEN", (3, 9))),
    ("number BETWEEN 9 AND 3", Predicate("number", "BETWEEN", (9, 3))),
    # a modifier flag makes it another condition: NOT LIKE is not LIKE, 'x' IN labels is not an IN list
    ("merged_at >= DATE '2026-02-01'", Predicate("merged_at", ">=", (datetime(2026, 2, 1),))),
    ("merged_at >= DATE '2026-02-01 05:00'", None),  # midnight in DuckDB: never pushed as 05:00
    ("title NOT LIKE 'Fix%'", None), ("title NOT ILIKE 'fix%'", None), ("'bug' IN labels", None),
])
def test_to_predicate(condition: str, expected: Predicate | None) -> None:
    assert to_predicate(rewrite(sqlglot.parse_one(condition, dialect="duckdb")), PULL_REQUESTS) == expected


def test_pushdown_verdicts() -> None:
    verdict = decide(ISSUES, [Predicate("story_points", ">=", (5.0,)), Predicate("status", "=", ("Done",)),
                              Predicate("summary", "=", ("x",))])
    assert [(c.predicate.column, c.exact) for c in verdict.pushed] == [("story_points", True), ("status", False)]
    assert [p.column for p, _ in verdict.unsupported] == ["summary"]


def test_required_filter_names_table_column_and_fix() -> None:
    import pyarrow as pa

    from core.errors import InvalidQuery

    spec = TableSpec("demo", "events", (ColumnSpec("day", pa.string(), filter=FilterCap(
        frozenset({"="}), required=True, example="day = '2026-01-01'")),))
    verdict = decide(spec, [])
    assert verdict.missing_required == ("day",)
    with pytest.raises(InvalidQuery, match=r"demo.events needs a filter on day.*day = '2026-01-01'"):
        require_filters(spec, verdict.missing_required)


def test_fetch_options_are_kept_or_refused() -> None:
    """sqlglot writes FETCH FIRST n PERCENT / WITH TIES for DuckDB as LIMIT n: n rows, ties left out."""
    from core.errors import InvalidQuery
    from planner.parse import parse_query

    tree = parse_query("SELECT a FROM t ORDER BY a FETCH FIRST 10 PERCENT ROWS ONLY")
    assert tree.sql(dialect="duckdb") == "SELECT a FROM t ORDER BY a LIMIT 10 PERCENT"
    assert parse_query("SELECT a FROM t ORDER BY a OFFSET 2 ROWS FETCH NEXT 3 ROWS ONLY").sql(dialect="duckdb") \
        == "SELECT a FROM t ORDER BY a LIMIT 3 OFFSET 2"
    with pytest.raises(InvalidQuery, match="QUALIFY rank"):
        parse_query("SELECT * FROM (SELECT a FROM t ORDER BY a FETCH FIRST 3 ROWS WITH TIES) s")
