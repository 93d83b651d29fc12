"""``github.commits`` through ADBC against an in-process server and the GitHub stand-in, compared with the seed
(one merge commit per merged pull request): ``since``/``until`` and ``author`` pushed, every row re-checked."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from connectors.github.commits import COMMITS
from sandbox.github_commits import commit_sha
from sandbox.seed import ORG, build_seed, team_of_repo
from sandbox.server import Sandbox
from tests.answers import adbc_answer, assert_same_answer, is_ordered
from tests.oracle import connect_oracle, oracle_answer


@pytest.fixture(scope="module")
def oracle() -> Iterator[duckdb.DuckDBPyConnection]:
    db = connect_oracle()
    seed = build_seed()
    users = {u.login: u for u in seed.users}
    noreply = {u.login: f"{u.github_id}+{u.login}@users.noreply.github.com" for u in seed.users}
    rows = [{"sha": commit_sha(p.repo, p.number), "repo": p.repo,
             "message": f"Merge pull request #{p.number} from {ORG}/{p.head}\n\n{p.title}", "author": p.author,
             "author_name": users[p.author].name,
             "author_email": users[p.author].email or noreply[p.author],
             "committed_at": p.merged_at, "team_id": team_of_repo(p.repo)}
            for p in seed.pulls if p.merged_at is not None]
    db.register("incoming", pa.Table.from_pylist(rows, schema=COMMITS.arrow_schema))
    db.execute("CREATE TABLE github.commits AS SELECT * FROM incoming")
    db.unregister("incoming")
    yield db
    db.close()


QUERIES = [
    "SELECT * FROM github.commits",
    "SELECT sha, committed_at FROM github.commits WHERE repo = 'web-frontend' "
    "AND committed_at BETWEEN TIMESTAMP '2026-02-01' AND TIMESTAMP '2026-03-01 12:00:00.5'",
    "SELECT repo, count(*) AS n FROM github.commits WHERE team_id = 'platform' AND committed_at < '2026-04-01' "
    "GROUP BY repo",
    "SELECT c.repo, c.sha, p.number FROM github.commits c JOIN github.pull_requests p "
    "ON c.message LIKE 'Merge pull request #' || p.number || ' %' AND c.repo = p.repo "
    "WHERE c.repo = 'mobile-app' ORDER BY c.committed_at DESC, c.sha LIMIT 5",
]


@pytest.mark.parametrize("sql", QUERIES)
def test_commits_answer_like_the_seed(sql: str, running: tuple[Sandbox, Any],
                                      oracle: duckdb.DuckDBPyConnection) -> None:
    assert_same_answer(adbc_answer(running[1], sql), oracle_answer(oracle, sql), is_ordered(sql), context=sql)


def test_author_and_window_are_pushed(running: tuple[Sandbox, Any], oracle: duckdb.DuckDBPyConnection) -> None:
    sandbox, conn = running
    login = build_seed().pulls[0].author
    sql = (f"SELECT sha FROM github.commits WHERE author = '{login}' AND committed_at >= TIMESTAMP '2026-01-20' "
           "AND committed_at <= TIMESTAMP '2026-05-01 00:00:00.25'")
    sandbox.github.log.clear()
    assert_same_answer(adbc_answer(conn, sql), oracle_answer(oracle, sql), False)
    listed = [e["query"] for e in sandbox.github.log.snapshot() if e["path"].endswith("/commits")]
    assert listed and all(q["author"] == login and q["since"] == "2026-01-20T00:00:00Z"
                          and q["until"] == "2026-05-01T00:00:01Z" for q in listed)
