"""Differential correctness against an independent oracle.

Every query (hand-written SQL features plus a seeded generator of filters and joins, see
``differential_queries``) runs twice with pushdown and bind joins on: in-process through the engine, and through
the real ADBC Flight SQL driver against the demo server. Both answers must equal DuckDB's answer over
``tests.oracle``: the sandbox's seed turned into tables directly, without any connector. So a bug in paging
(the seed is big enough that every listing pages), in decoding JSON into Arrow, in pushdown, in binding or in
the Flight transport shows up as a difference; the engine is never its own reference.

Answers are compared with ``tests.answers``: same names and Arrow types, same rows; in order only when the query
ends with ORDER BY ... LIMIT (whose tie-breakers make the order unique).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import duckdb
import pytest

from tests.answers import assert_same_answer, is_ordered
from tests.differential_queries import HAND_WRITTEN, generated_queries
from tests.oracle import oracle_answer

GENERATED = generated_queries(240)
QUERIES = [pytest.param(sql, id=f"hand-{i:02d}") for i, sql in enumerate(HAND_WRITTEN)] + \
          [pytest.param(sql, id=f"gen-{i:03d}") for i, sql in enumerate(GENERATED)]
USED_STRATEGIES: set[str] = set()


@pytest.fixture(scope="module")
def pushdown_engine(demo: dict[str, Any]) -> Iterator[Any]:
    """An in-process engine (pushdown and bind joins on) over the demo's sandbox."""
    from demo.tenant import demo_config
    from flight_server.app import start_service

    service = start_service(demo_config(demo["sandbox"], "127.0.0.1", 0))
    yield service.engine
    service.stop()


@pytest.fixture(scope="module")
def flight(demo: dict[str, Any]) -> Iterator[Any]:
    """One ADBC connection for the module (the demo server, as admin: no row filters or masks)."""
    import adbc_driver_flightsql.dbapi as flightsql

    conn = flightsql.connect(demo["flight_uri"], db_kwargs={
        "adbc.flight.sql.authorization_header": f"Bearer {demo['tokens']['token_admin']}"})
    yield conn
    conn.close()


@pytest.mark.parametrize("sql", QUERIES)
def test_in_process_equals_oracle(sql: str, oracle: duckdb.DuckDBPyConnection, pushdown_engine: Any) -> None:
    expected = oracle_answer(oracle, sql)
    result = pushdown_engine.query(sql)
    USED_STRATEGIES.update(s.strategy for s in result.steps)
    assert_same_answer(result.table, expected, is_ordered(sql), context=pushdown_engine.plan(sql).describe())


@pytest.mark.parametrize("sql", QUERIES)
def test_adbc_equals_oracle(sql: str, oracle: duckdb.DuckDBPyConnection, flight: Any) -> None:
    expected = oracle_answer(oracle, sql)
    with flight.cursor() as cursor:
        cursor.execute(sql)
        got = cursor.fetch_arrow_table()
    assert_same_answer(got, expected, is_ordered(sql), context=sql)


def test_the_suite_exercised_every_strategy() -> None:
    """Guard against a suite that passes because nothing was pushed or bound (runs after the queries)."""
    if not USED_STRATEGIES:
        pytest.skip("run together with test_in_process_equals_oracle")
    assert {"scan", "bind join", "semi-join", "lookup join"} <= USED_STRATEGIES, USED_STRATEGIES
