"""The seed's four queries, through ADBC, equal the oracle's answer (tests/oracle.py: the seed as DuckDB tables,
built without any connector), order included: each ends its ORDER BY with a unique tie-breaker. Full scans with
pushdown off return exactly the seed, every page of it."""

from __future__ import annotations

from typing import Any

import pytest

from demo.tenant import SEED_QUERIES
from sandbox.seed import build_seed
from tests.answers import assert_same_answer
from tests.oracle import oracle_answer


@pytest.mark.parametrize("name", sorted(SEED_QUERIES))
def test_seed_query_equals_full_data_answer(name: str, adbc_conn: Any, oracle: Any) -> None:
    cursor = adbc_conn.cursor()
    cursor.execute(SEED_QUERIES[name])
    got = cursor.fetch_arrow_table()
    assert got.num_rows > 0, "a seed query over the demo org must return rows"
    assert_same_answer(got, oracle_answer(oracle, SEED_QUERIES[name]), ordered=True)


def test_full_scans_return_the_whole_seed(reference_engine: Any) -> None:
    seed = build_seed()
    prs = reference_engine.query("SELECT pr_id, status, merged_at FROM github.pull_requests").table
    issues = reference_engine.query("SELECT issue_key, story_points FROM jira.issues").table
    assert prs.num_rows == len(seed.pulls) == 1100  # 3 pages of 100 in each of 4 repositories
    assert issues.num_rows == len(seed.issues) == 1000  # 10 pages of 100
    merged = sum(1 for p in seed.pulls if p.merged_at)
    assert prs.to_pydict()["status"].count("merged") == merged
    assert sorted(prs.to_pydict()["pr_id"]) == sorted(p.id for p in seed.pulls)


def test_seed_join_matches_on_shared_branches(reference_engine: Any) -> None:
    seed = build_seed()
    branches = {i.branch for i in seed.issues if i.branch}
    expected = sum(1 for p in seed.pulls if p.head in branches)
    table = reference_engine.query("SELECT count(*) AS n FROM github.pull_requests gh JOIN jira.issues ji "
                                   "ON gh.branch = ji.branch_name").table
    assert table.to_pylist() == [{"n": expected}]
    assert expected > 500
