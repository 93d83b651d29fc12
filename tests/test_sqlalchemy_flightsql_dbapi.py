"""SQLAlchemy Core through flightsql-dbapi's dialect (``datafusion://host:port?insecure=true&token=...``), in its own
venv because flightsql-dbapi 0.2.2 pins sqlalchemy<2.0. Both of its modes: as installed it inlines bound values as
literals; with ``feature-sqlalchemy-prepared-statements=on`` it sends ``?`` and binds them in a prepared statement.
Every answer is compared with the same query in literal SQL through the plain ADBC connection."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from sandbox.seed import build_seed

MODES = ("literal", "prepared")
EXPECTED_SQL = {
    "where_order_by_limit": "SELECT issue_key, team, status FROM jira.issues WHERE team = 'web' "
                            "AND status = 'In Progress' ORDER BY issue_key DESC LIMIT 5",
    "count_where": "SELECT count(*) FROM jira.issues WHERE project = 'MOB'",
    "join": "SELECT gh.repo, gh.number, ji.issue_key FROM github.pull_requests gh JOIN jira.issues ji "
            "ON gh.branch = ji.branch_name WHERE ji.status = 'In Progress' AND gh.status = 'merged' ORDER BY 1, 2, 3",
    "group_by": "SELECT status, count(*) AS n FROM github.pull_requests GROUP BY status ORDER BY status",
    "reflected_table_query": "SELECT issue_key FROM jira.issues WHERE project = 'PLAT' ORDER BY issue_key LIMIT 3",
}


@pytest.fixture(scope="module")
def results(demo: dict[str, Any], flightsql_dbapi_python: Path) -> dict[str, Any]:
    script = Path(__file__).with_name("flightsql_dbapi_sqlalchemy_client.py")
    done = subprocess.run([str(flightsql_dbapi_python), str(script), demo["flight_uri"], demo["tokens"]["token_admin"]],
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def literal_rows(adbc_conn: Any, sql: str) -> list[list[Any]]:
    cursor = adbc_conn.cursor()
    cursor.execute(sql)
    rows = [list(row) for row in cursor.fetchall()]
    cursor.close()
    return rows


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", sorted(EXPECTED_SQL))
def test_core_query_answers_like_literal_sql(results: dict[str, Any], adbc_conn: Any, mode: str, case: str) -> None:
    got = results[mode][case]
    assert "error" not in got, f"{got['sql']!r} failed: {got['error']}"
    expected = literal_rows(adbc_conn, EXPECTED_SQL[case])
    assert got["rows"] == expected
    assert expected, "every case is chosen to return rows over the seed"


@pytest.mark.parametrize("mode", MODES)
def test_counts_match_the_seed(results: dict[str, Any], mode: str) -> None:
    seed = build_seed()
    count = results[mode]["count_where"]
    assert "error" not in count, count["error"]
    assert count["rows"] == [[sum(1 for i in seed.issues if i.project == "MOB")]]
    group_by = results[mode]["group_by"]
    assert "error" not in group_by, group_by["error"]
    assert dict(map(tuple, group_by["rows"])) == {
        "closed": sum(1 for p in seed.pulls if p.state == "closed" and not p.merged_at),
        "merged": sum(1 for p in seed.pulls if p.merged_at),
        "open": sum(1 for p in seed.pulls if p.state == "open")}


@pytest.mark.parametrize("mode", MODES)
def test_metadata_reflect_gives_typed_columns(results: dict[str, Any], mode: str) -> None:
    reflected = results[mode]["reflect"]
    assert "error" not in reflected, reflected["error"]
    assert "jira.issues" in reflected["tables"] and all(t.startswith("jira.") for t in reflected["tables"])
    types = reflected["types"]
    assert list(types)[:3] == ["issue_key", "summary", "status"]
    assert {name: types[name] for name in ("issue_key", "story_points", "created_at")} == {
        "issue_key": "TEXT", "story_points": "FLOAT", "created_at": "TIMESTAMP"}
    assert "NullType" not in types.values()
