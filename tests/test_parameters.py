"""Parameters bind exactly as DuckDB binds them, through the real ADBC driver (prepare → DoPut → DoGet).

Each answer is compared with the same query written with literals, so a parameter that binds to the wrong
slot, the wrong type or not at all cannot pass. The generated differential version of this lives in
tests/test_parameters_differential.py."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest


def run(conn: Any, sql: str, params: Any = None) -> pa.Table:
    with conn.cursor() as cur:
        if params is None:
            cur.execute(sql)
        else:
            cur.execute(sql, params)
        return cur.fetch_arrow_table()


def rows(table: pa.Table) -> list[tuple[Any, ...]]:
    return sorted(tuple(r.values()) for r in table.to_pylist())


CASES = [
    # (parameterized SQL, values, the same query with literals)
    ("SELECT issue_key FROM jira.issues WHERE story_points > ? ORDER BY issue_key LIMIT ?", (3, 10),
     "SELECT issue_key FROM jira.issues WHERE story_points > 3 ORDER BY issue_key LIMIT 10"),
    ("SELECT issue_key FROM jira.issues WHERE status = ? ORDER BY issue_key LIMIT ?", ("Done", 2),
     "SELECT issue_key FROM jira.issues WHERE status = 'Done' ORDER BY issue_key LIMIT 2"),
    ("SELECT count(*) AS n FROM jira.issues WHERE status = $2 AND team = $1", ("web", "Done"),
     "SELECT count(*) AS n FROM jira.issues WHERE status = 'Done' AND team = 'web'"),
    ("SELECT count(*) AS n FROM jira.issues WHERE project = $1 OR team = lower($1)", ("WEB",),
     "SELECT count(*) AS n FROM jira.issues WHERE project = 'WEB' OR team = lower('WEB')"),
    ("SELECT number FROM github.pull_requests WHERE repo = ? ORDER BY number LIMIT ? OFFSET ?",
     ("infra-tools", 3, 2),
     "SELECT number FROM github.pull_requests WHERE repo = 'infra-tools' ORDER BY number LIMIT 3 OFFSET 2"),
    ("SELECT login, name FROM github.users WHERE login = ?", ("ana-silva",),
     "SELECT login, name FROM github.users WHERE login = 'ana-silva'"),
    ("SELECT login FROM github.users WHERE login IN (?, ?)", ("ana-silva", "ben-okafor"),
     "SELECT login FROM github.users WHERE login IN ('ana-silva', 'ben-okafor')"),
    ("WITH t AS (SELECT issue_key, story_points FROM jira.issues WHERE project = ?) "
     "SELECT count(*) AS n FROM t WHERE story_points >= ?", ("MOB", 5),
     "WITH t AS (SELECT issue_key, story_points FROM jira.issues WHERE project = 'MOB') "
     "SELECT count(*) AS n FROM t WHERE story_points >= 5"),
    ("SELECT count(*) AS n FROM jira.issues WHERE branch_name IN "
     "(SELECT branch FROM github.pull_requests WHERE repo = ? AND status = ?)", ("mobile-app", "open"),
     "SELECT count(*) AS n FROM jira.issues WHERE branch_name IN "
     "(SELECT branch FROM github.pull_requests WHERE repo = 'mobile-app' AND status = 'open')"),
    ("SELECT gh.number, ji.issue_key FROM github.pull_requests gh JOIN jira.issues ji "
     "ON gh.branch = ji.branch_name WHERE ji.issue_key IN (?, ?, ?) AND gh.additions > ?",
     ("WEB-12", "MOB-30", "PLAT-7", 5),
     "SELECT gh.number, ji.issue_key FROM github.pull_requests gh JOIN jira.issues ji "
     "ON gh.branch = ji.branch_name WHERE ji.issue_key IN ('WEB-12', 'MOB-30', 'PLAT-7') AND gh.additions > 5"),
]


@pytest.mark.parametrize(("sql", "params", "literal"), CASES, ids=[f"case-{i}" for i in range(len(CASES))])
def test_parameters_answer_like_literals(adbc_conn: Any, sql: str, params: tuple[Any, ...], literal: str) -> None:
    expected = run(adbc_conn, literal)
    got = run(adbc_conn, sql, params)
    assert got.schema.names == expected.schema.names
    assert rows(got) == rows(expected)
    assert got.num_rows > 0 or "LIMIT" not in sql  # the cases are chosen to return something


def test_numbered_parameters_bind_by_number_and_keep_their_types(adbc_conn: Any) -> None:
    got = run(adbc_conn, "SELECT $2 AS b, $1 AS a, $1 + 1 AS a1", (7, 2.5))
    assert got.to_pylist() == [{"b": 2.5, "a": 7, "a1": 8}]
    assert got.schema.field("a").type == pa.int64()  # an int64 stays int64
    assert got.schema.field("b").type == pa.float64()  # a double is not turned into a decimal


def test_wrong_number_of_values_is_a_clear_error(adbc_conn: Any) -> None:
    with pytest.raises(Exception, match="parameter"):
        run(adbc_conn, "SELECT issue_key FROM jira.issues WHERE status = ? AND team = ?", ("Done",))


def test_several_parameter_rows_run_once_per_row(adbc_conn: Any) -> None:
    """A batch of bound rows is one execution per row, answers concatenated (ADBC binds a table)."""
    batch = pa.table({"p": pa.array(["MOB-1", "WEB-2", "PLAT-3"])})
    with adbc_conn.cursor() as cur:
        cur.adbc_prepare("SELECT issue_key FROM jira.issues WHERE issue_key = ?")
        cur.execute("SELECT issue_key FROM jira.issues WHERE issue_key = ?", batch)
        got = cur.fetch_arrow_table()
    assert sorted(got.column("issue_key").to_pylist()) == ["MOB-1", "PLAT-3", "WEB-2"]


def test_schema_qualified_column_references(adbc_conn: Any) -> None:
    """SQLAlchemy Core writes ``jira.issues.team`` for a schema-qualified table; DuckDB accepts it, so do we."""
    expected = rows(run(adbc_conn, "SELECT team, status FROM jira.issues WHERE project = 'WEB'"))
    for sql in ("SELECT jira.issues.team, jira.issues.status FROM jira.issues WHERE jira.issues.project = 'WEB'",
                'SELECT "jira"."issues"."team", omnisql.jira.issues.status FROM omnisql.jira.issues '
                "WHERE issues.project = 'WEB'"):
        assert rows(run(adbc_conn, sql)) == expected
    joined = run(adbc_conn, "SELECT github.pull_requests.number, jira.issues.issue_key FROM github.pull_requests "
                            "JOIN jira.issues ON github.pull_requests.branch = jira.issues.branch_name "
                            "WHERE jira.issues.issue_key = 'WEB-12'")
    literal = run(adbc_conn, "SELECT gh.number, ji.issue_key FROM github.pull_requests gh JOIN jira.issues ji "
                             "ON gh.branch = ji.branch_name WHERE ji.issue_key = 'WEB-12'")
    assert rows(joined) == rows(literal)


@pytest.mark.parametrize("text", ["hello world", "what is this", "jira.issues"])
def test_text_that_is_not_sql_is_a_syntax_error(adbc_conn: Any, text: str) -> None:
    with pytest.raises(Exception, match="syntax error"):
        run(adbc_conn, text)


def test_result_timestamps_are_utc_like_the_catalog(adbc_conn: Any) -> None:
    got = run(adbc_conn, "SELECT created_at, created_at + INTERVAL 1 DAY AS next_day FROM jira.issues LIMIT 1")
    assert [f.type for f in got.schema] == [pa.timestamp("us", tz="UTC")] * 2
    assert adbc_conn.adbc_get_table_schema("issues", db_schema_filter="jira").field("created_at").type \
        == pa.timestamp("us", tz="UTC")
