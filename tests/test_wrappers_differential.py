"""Every differential query Q again, wrapped the way BI tools wrap SQL, through ADBC, against the oracle.

Tools preview a query as ``SELECT * FROM (Q) AS s LIMIT n`` and filter it as ``SELECT * FROM (Q) s WHERE ...
LIMIT n``. A planner that pushes that outer LIMIT down to a scan past a condition the scan cannot see (Q's own
WHERE, a join, a GROUP BY, the wrapper's WHERE) returns too few rows, or rows that are not in the answer at all.
Without an ORDER BY the answer to a LIMIT is not unique, so the check is what SQL does promise: exactly
``min(n, rows)`` rows (the oracle's count of the limited query) and each of them from the oracle's unlimited
answer, no more often than there. ``n`` and the wrapper's condition are chosen per query by a seeded generator
from the oracle's answer, so they select something (or deliberately everything, or nothing).
"""

from __future__ import annotations

import random
import re
from datetime import datetime
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from tests.answers import adbc_answer, assert_subset_answer
from tests.differential_queries import DYNAMIC_COLUMNS, differential_queries
from tests.oracle import oracle_answer

QUERIES = [pytest.param(query_id, sql, id=query_id) for query_id, sql in differential_queries()]
DYNAMIC = [pytest.param(f"columns-{i:02d}", sql, id=f"columns-{i:02d}") for i, sql in enumerate(DYNAMIC_COLUMNS)]
_SIMPLE = re.compile(r"[a-z_][a-z0-9_]*")


def limit_for(rng: random.Random, rows: int) -> int:
    """A LIMIT that is small, about half, or more than everything."""
    return rng.choice([1, 3, 10, max(1, rows // 2), rows + 5])


def _literal(value: Any) -> str:
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, datetime):
        return f"TIMESTAMP '{value:%Y-%m-%d %H:%M:%S}'"  # TIMESTAMPTZ columns compare in the session zone (UTC)
    return repr(value)


def condition_for(rng: random.Random, answer: pa.Table) -> str | None:
    """A condition on one of the answer's columns, built from one of its values; None when no column can take
    one (names that need quoting or repeat, or types without a simple literal)."""
    names = answer.column_names
    usable = [f for f in answer.schema if _SIMPLE.fullmatch(f.name) and names.count(f.name) == 1
              and (pa.types.is_string(f.type) or pa.types.is_integer(f.type) or pa.types.is_floating(f.type)
                   or pa.types.is_timestamp(f.type))]
    if not usable:
        return None
    field = rng.choice(usable)
    column = f"s.{field.name}"
    values = answer.column(field.name).to_pylist()
    value = rng.choice(values) if values else None
    if value is None:
        return f"{column} {rng.choice(['IS NULL', 'IS NOT NULL'])}"
    if isinstance(value, str):
        return rng.choice([f"{column} = {_literal(value)}", f"{column} <> {_literal(value)}",
                           f"{column} LIKE {_literal(value[:3] + '%')}"])
    return f"{column} {rng.choice(['>=', '<', '<>'])} {_literal(value)}"


@pytest.mark.parametrize(("query_id", "sql"), QUERIES + DYNAMIC)
def test_limit_wrapper(query_id: str, sql: str, oracle: duckdb.DuckDBPyConnection, adbc_session: Any) -> None:
    rng = random.Random(f"limit {query_id}")
    unlimited = oracle_answer(oracle, f"SELECT * FROM ({sql}) AS s")
    wrapped = f"SELECT * FROM ({sql}) AS s LIMIT {limit_for(rng, unlimited.num_rows)}"
    assert_subset_answer(adbc_answer(adbc_session, wrapped), oracle_answer(oracle, wrapped), unlimited, context=wrapped)


@pytest.mark.parametrize(("query_id", "sql"), QUERIES)
def test_where_limit_wrapper(query_id: str, sql: str, oracle: duckdb.DuckDBPyConnection, adbc_session: Any
                             ) -> None:
    rng = random.Random(f"where {query_id}")
    condition = condition_for(rng, oracle_answer(oracle, sql))  # Q's own output names, as a user sees them
    if condition is None:
        pytest.skip("no output column takes a plain condition")
    filtered = f"SELECT * FROM ({sql}) s WHERE {condition}"
    unlimited = oracle_answer(oracle, filtered)
    wrapped = f"{filtered} LIMIT {limit_for(rng, unlimited.num_rows)}"
    assert_subset_answer(adbc_answer(adbc_session, wrapped), oracle_answer(oracle, wrapped), unlimited, context=wrapped)
