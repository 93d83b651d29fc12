"""Differential correctness: every query's answer equals DuckDB's over the sandbox's full data, with
pushdown (and bind joins) on, and with pushdown off. Hundreds of queries: hand-written SQL features plus a
seeded generator of filters and joins (see ``differential_queries``)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from sandbox.seed import build_seed
from tests.differential_queries import HAND_WRITTEN, generated_queries

GENERATED = generated_queries(240)
QUERIES = [pytest.param(sql, id=f"hand-{i:02d}") for i, sql in enumerate(HAND_WRITTEN)] + \
          [pytest.param(sql, id=f"gen-{i:03d}") for i, sql in enumerate(GENERATED)]
USED_STRATEGIES: set[str] = set()


@pytest.fixture(scope="session")
def truth(reference_engine: Any) -> Iterator[duckdb.DuckDBPyConnection]:
    """The whole sandbox as plain DuckDB tables (in memory), fetched once with pushdown off."""
    db = duckdb.connect(":memory:")
    db.execute("SET TimeZone = 'UTC'")
    for schema, table in (("github", "pull_requests"), ("jira", "issues")):
        data = reference_engine.query(f"SELECT * FROM {schema}.{table}").table
        db.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        db.register("incoming", data)
        db.execute(f"CREATE TABLE {schema}.{table} AS SELECT * FROM incoming")
        db.unregister("incoming")
    logins = ", ".join(f"'{u.login}'" for u in build_seed().users)  # users exist only by login
    db.register("incoming", reference_engine.query(f"SELECT * FROM github.users WHERE login IN ({logins})").table)
    db.execute("CREATE TABLE github.users AS SELECT * FROM incoming")
    db.unregister("incoming")
    yield db
    db.close()


@pytest.fixture(scope="session")
def pushdown_engine(demo: dict[str, Any]) -> Iterator[Any]:
    from clients.demo import demo_config
    from flight_server.app import start_service

    service = start_service(demo_config(demo["sandbox"], "127.0.0.1", 0))
    yield service.engine
    service.stop()


def _normalized(table: pa.Table) -> list[str]:
    """Rows as sortable text; floats rounded so summation order cannot matter."""
    def value(v: Any) -> Any:
        return round(v, 6) if isinstance(v, float) and math.isfinite(v) else v
    return sorted(repr(tuple(value(v) for v in row.values())) for row in table.to_pylist())


@pytest.mark.parametrize("sql", QUERIES)
def test_same_answer_as_duckdb_over_full_data(sql: str, truth: duckdb.DuckDBPyConnection, pushdown_engine: Any,
                                              reference_engine: Any) -> None:
    expected = truth.cursor().sql(sql).to_arrow_table()
    with_pushdown = pushdown_engine.query(sql)
    USED_STRATEGIES.update(s.strategy for s in with_pushdown.steps)
    assert [(f.name, f.type) for f in with_pushdown.table.schema] == [(f.name, f.type) for f in expected.schema]
    assert _normalized(with_pushdown.table) == _normalized(expected), pushdown_engine.plan(sql).describe()
    without = reference_engine.query(sql).table
    assert _normalized(without) == _normalized(expected)


def test_the_suite_exercised_every_strategy() -> None:
    """Guard against a suite that passes because nothing was pushed or bound (runs after the queries)."""
    if not USED_STRATEGIES:
        pytest.skip("run together with test_same_answer_as_duckdb_over_full_data")
    assert {"scan", "bind join", "semi-join", "lookup join"} <= USED_STRATEGIES, USED_STRATEGIES
