"""``github.issues`` through ADBC against an in-process server and the GitHub stand-in, compared with the seed's
issues: pull requests (which GitHub lists as issues too) left out, ``state`` and ``since`` pushed, repositories
chosen by ``repo``/``team_id``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from connectors.github.issues import ISSUES
from sandbox.github_issues_seed import build_github_issues
from sandbox.seed import build_seed, team_of_repo
from sandbox.server import Sandbox
from tests.answers import adbc_answer, assert_same_answer, is_ordered
from tests.oracle import connect_oracle, oracle_answer


@pytest.fixture(scope="module")
def oracle() -> Iterator[duckdb.DuckDBPyConnection]:
    db = connect_oracle()
    rows = [{"issue_id": i.id, "repo": i.repo, "number": i.number, "title": i.title, "state": i.state,
             "author": i.author, "assignee": i.assignee, "labels": list(i.labels), "comments": i.comments,
             "team_id": team_of_repo(i.repo), "created_at": i.created, "updated_at": i.updated, "closed_at": i.closed}
            for i in build_github_issues(build_seed())]
    db.register("incoming", pa.Table.from_pylist(rows, schema=ISSUES.arrow_schema))
    db.execute("CREATE TABLE github.issues AS SELECT * FROM incoming")
    db.unregister("incoming")
    yield db
    db.close()


QUERIES = [
    "SELECT * FROM github.issues",
    "SELECT repo, number, title FROM github.issues WHERE state = 'open' AND repo = 'web-frontend'",
    "SELECT number, labels FROM github.issues WHERE team_id = 'platform' AND list_contains(labels, 'bug')",
    "SELECT repo, number, updated_at FROM github.issues WHERE updated_at >= TIMESTAMP '2026-03-01 10:30:15.5'",
    "SELECT state, count(*) AS n, sum(comments) AS talk FROM github.issues WHERE state = 'stale' GROUP BY state",
    "SELECT i.repo, i.number, u.name FROM github.issues i JOIN github.users u ON u.login = i.assignee "
    "WHERE i.repo = 'mobile-app' AND i.state = 'closed' ORDER BY i.number LIMIT 5",
]


@pytest.mark.parametrize("sql", QUERIES)
def test_issues_answer_like_the_seed(sql: str, running: tuple[Sandbox, Any],
                                     oracle: duckdb.DuckDBPyConnection) -> None:
    assert_same_answer(adbc_answer(running[1], sql), oracle_answer(oracle, sql), is_ordered(sql), context=sql)


def test_state_and_since_are_pushed_and_pull_requests_left_out(running: tuple[Sandbox, Any]) -> None:
    sandbox, conn = running
    sandbox.github.log.clear()
    got = adbc_answer(conn, "SELECT number FROM github.issues WHERE repo = 'infra-tools' AND state = 'closed' "
                            "AND updated_at > TIMESTAMP '2026-02-01'")
    listed = [e["query"] for e in sandbox.github.log.snapshot() if e["path"].endswith("/issues")]
    assert listed[0]["state"] == "closed" and listed[0]["since"] == "2026-02-01T00:00:00Z"
    assert all(n > 1000 for n in got.column("number").to_pylist())  # pull requests are numbered 1-275
    assert sandbox.github.log.snapshot()[-1]["path"].startswith("/repositories/")  # paged by the Link header
