"""``github.repositories`` through ADBC against an in-process server and the GitHub stand-in, compared with the
seed's repositories (ids as the stand-in numbers them), alone and joined with pull requests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from connectors.github.repositories import REPOSITORIES
from sandbox.seed import ORG, REPOS
from tests.answers import adbc_answer, assert_same_answer, is_ordered
from tests.oracle import connect_oracle, oracle_answer


@pytest.fixture(scope="module")
def conn(running: tuple[Any, Any]) -> Any:
    return running[1]


@pytest.fixture(scope="module")
def oracle() -> Iterator[duckdb.DuckDBPyConnection]:
    db = connect_oracle()
    rows = [{"repo": name, "repo_id": 700_000 + i, "full_name": f"{ORG}/{name}", "private": True,
             "visibility": "private", "default_branch": "main", "fork": False, "description": None,
             "html_url": f"https://github.com/{ORG}/{name}", "team_id": team} for i, (name, team) in enumerate(REPOS)]
    db.register("incoming", pa.Table.from_pylist(rows, schema=REPOSITORIES.arrow_schema))
    db.execute("CREATE TABLE github.repositories AS SELECT * FROM incoming")
    db.unregister("incoming")
    yield db
    db.close()


QUERIES = [
    "SELECT * FROM github.repositories",
    "SELECT repo, team_id FROM github.repositories WHERE team_id = 'platform'",
    "SELECT r.repo, r.team_id, count(*) AS merged FROM github.repositories r JOIN github.pull_requests p "
    "ON p.repo = r.repo WHERE p.status = 'merged' GROUP BY r.repo, r.team_id ORDER BY merged DESC, r.repo LIMIT 3",
]


@pytest.mark.parametrize("sql", QUERIES)
def test_repositories_answer_like_the_seed(sql: str, conn: Any, oracle: duckdb.DuckDBPyConnection) -> None:
    assert_same_answer(adbc_answer(conn, sql), oracle_answer(oracle, sql), is_ordered(sql), context=sql)
