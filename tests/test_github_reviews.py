"""``github.reviews`` through ADBC: required ``repo`` and ``number`` (refused without them), one call per pull
request, a lookup join from ``github.pull_requests`` (EXPLAIN shows it), answers compared with the seed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from connectors.github.reviews import REVIEWS
from sandbox.github_reviews import reviews_of
from sandbox.seed import build_seed, team_of_repo
from sandbox.server import Sandbox
from tests.answers import adbc_answer, assert_same_answer, is_ordered
from tests.oracle import connect_oracle, oracle_answer


@pytest.fixture(scope="module")
def oracle() -> Iterator[duckdb.DuckDBPyConnection]:
    db = connect_oracle()
    seed = build_seed()
    rows = [{"review_id": r["id"], "repo": p.repo, "number": p.number, "reviewer": r["reviewer"], "state": r["state"],
             "body": r["body"], "submitted_at": r["submitted_at"], "team_id": team_of_repo(p.repo)}
            for p in seed.pulls for r in reviews_of(seed, p)]
    db.register("incoming", pa.Table.from_pylist(rows, schema=REVIEWS.arrow_schema))
    db.execute("CREATE TABLE github.reviews AS SELECT * FROM incoming")
    db.unregister("incoming")
    yield db
    db.close()


JOIN = ("SELECT p.number, p.title, r.reviewer, r.state FROM github.pull_requests p JOIN github.reviews r "
        "ON r.number = p.number AND r.repo = p.repo WHERE p.repo = 'web-frontend' AND r.repo = 'web-frontend' "
        "AND p.created_at >= TIMESTAMP '2026-09-01'")
QUERIES = [
    "SELECT * FROM github.reviews WHERE repo = 'web-frontend' AND number IN (1, 2, 3, 4, 5)",
    "SELECT number, count(*) AS n FROM github.reviews WHERE repo IN ('mobile-app', 'infra-tools') AND number = 7 "
    "AND state <> 'COMMENTED' GROUP BY number",
    JOIN,
]


@pytest.mark.parametrize("sql", QUERIES)
def test_reviews_answer_like_the_seed(sql: str, running: tuple[Sandbox, Any],
                                      oracle: duckdb.DuckDBPyConnection) -> None:
    assert_same_answer(adbc_answer(running[1], sql), oracle_answer(oracle, sql), is_ordered(sql), context=sql)


def test_repo_and_number_are_required(running: tuple[Sandbox, Any]) -> None:
    with pytest.raises(Exception, match="number"):
        adbc_answer(running[1], "SELECT * FROM github.reviews WHERE repo = 'web-frontend'")


def test_a_join_supplies_the_numbers_one_call_each(running: tuple[Sandbox, Any]) -> None:
    sandbox, conn = running
    plan = {s["source_table"]: s for s in adbc_answer(conn, f"EXPLAIN {JOIN}").to_pylist()}
    assert plan["github.reviews"]["strategy"] == "lookup join"
    sandbox.github.log.clear()
    numbers = set(adbc_answer(conn, "SELECT number FROM github.pull_requests WHERE repo = 'web-frontend' "
                                    "AND created_at >= TIMESTAMP '2026-09-01'").column(0).to_pylist())
    assert numbers
    sandbox.github.log.clear()
    adbc_answer(conn, JOIN)
    calls = [e["path"] for e in sandbox.github.log.snapshot() if e["path"].endswith("/reviews")]
    assert sorted(int(p.split("/")[-2]) for p in calls) == sorted(numbers)
