"""The Arrow-compute final step (planner/arrow_final.py) answers exactly as DuckDB does, and declines every
shape it does not cover so that DuckDB runs it."""

from __future__ import annotations

from typing import Any

import duckdb
import pyarrow as pa
import pytest

from planner.arrow_final import compile_arrow_final
from planner.duck import Duck

TABLE = pa.table({
    "number": pa.array([1, 2, 3, None, 5, -7, 2**40], pa.int64()),
    "small": pa.array([1, 2, None, 4, 5, 6, 7], pa.int32()),
    "title": pa.array(["a", "it's", None, "B", "b", "", "ü"], pa.string()),
    "draft": pa.array([True, False, None, True, False, True, None], pa.bool_()),
    "score": pa.array([1.0, float("nan"), None, 2.5, 0.0, -1.0, 3.0], pa.float64()),
})
VIEW = "__scan_0"
SCHEMAS = {VIEW: TABLE.schema}

COVERED = [
    f"SELECT * FROM {VIEW} AS t",
    f"SELECT number, title FROM {VIEW} AS t",
    f"SELECT t.number AS n, t.title FROM {VIEW} AS t WHERE t.number > 1",
    f"SELECT NUMBER, Title FROM {VIEW} AS t WHERE TITLE = 'it''s'",
    f'SELECT "number" FROM {VIEW} AS t WHERE "title" <> \'a\'',
    f"SELECT number FROM {VIEW} AS t WHERE number >= -7 AND number <= 3",
    f"SELECT number FROM {VIEW} AS t WHERE 2 < number",
    f"SELECT number FROM {VIEW} AS t WHERE number IN (1, 3, -7)",
    f"SELECT title FROM {VIEW} AS t WHERE title IN ('b', 'B', 'ü')",
    f"SELECT * FROM {VIEW} AS t WHERE title IS NULL",
    f"SELECT * FROM {VIEW} AS t WHERE NOT title IS NULL AND draft = TRUE",
    f"SELECT * FROM {VIEW} AS t WHERE title IS NOT NULL",
    f"SELECT * FROM {VIEW} AS t WHERE draft = FALSE",
    f"SELECT t.* FROM {VIEW} AS t WHERE small = 2 AND number = 2",
    f"SELECT number FROM {VIEW} AS t WHERE (number = 1)",
    f"SELECT number FROM {VIEW} AS t WHERE number = 1099511627776",
    f"SELECT title, title AS again FROM {VIEW} AS t WHERE title < 'b'",
]

DECLINED = [
    f"SELECT number + 1 FROM {VIEW} AS t",  # an expression
    f"SELECT number FROM {VIEW} AS t ORDER BY number",
    f"SELECT number FROM {VIEW} AS t LIMIT 2",
    f"SELECT DISTINCT title FROM {VIEW} AS t",
    f"SELECT count(*) FROM {VIEW} AS t",
    f"SELECT number FROM {VIEW} AS t WHERE score > 1",  # floats: NaN orders differently
    f"SELECT number FROM {VIEW} AS t WHERE number = '1'",  # an implicit cast
    f"SELECT number FROM {VIEW} AS t WHERE number = 1.5",
    f"SELECT number FROM {VIEW} AS t WHERE small = 99999999999",  # does not fit int32
    f"SELECT number FROM {VIEW} AS t WHERE number = 1 OR number = 2",
    f"SELECT number FROM {VIEW} AS t WHERE title LIKE 'a%'",
    f"SELECT number FROM {VIEW} AS t WHERE number IN (SELECT 1)",
    f"SELECT number FROM {VIEW} AS t WHERE number = $1",
    f"SELECT number FROM {VIEW} AS t WHERE NOT number = 1",
    f"SELECT number FROM {VIEW} AS t WHERE number = number",
    f"SELECT * EXCLUDE (title) FROM {VIEW} AS t",
    f"SELECT t.number FROM {VIEW} AS t, {VIEW} AS u",
    f"SELECT number FROM {VIEW} AS t WHERE number = NULL",
    f"WITH x AS (SELECT * FROM {VIEW}) SELECT number FROM x",
    f"SELECT number FROM {VIEW} AS t UNION ALL SELECT number FROM {VIEW} AS t",
    "SELECT 1 + 1",
    "SELECT random() AS r",
    "SELECT now()",
    "SELECT 1 WHERE false",
    "SELECT 1 LIMIT 0",
    "SELECT DATE '2020-01-01'",
    "SELECT [1, 2]",
]

CONSTANTS = [
    "SELECT 1",
    "SELECT 'a' AS x, 1.5, TRUE, NULL, -3, 3000000000, 'it''s', -1.25",
    "SELECT 1 AS a, 2 AS a",
    "SELECT 99999999999999999999 AS big",
]


def _rows(table: pa.Table) -> list[tuple[str, ...]]:
    """Rows as text, so that NaN equals NaN."""
    return [tuple(repr(v) for v in row.values()) for row in table.to_pylist()]


def _duckdb(sql: str) -> pa.Table:
    con = duckdb.connect()
    con.register(VIEW, TABLE)
    return con.sql(sql).to_arrow_table()


@pytest.mark.parametrize("sql", COVERED)
def test_covered_shapes_answer_as_duckdb(sql: str) -> None:
    expected = _duckdb(sql)
    final = compile_arrow_final(sql, SCHEMAS, expected.schema)
    assert final is not None, sql
    got = final.run(TABLE, expected.schema)
    assert got.schema == expected.schema
    assert _rows(got) == _rows(expected)


@pytest.mark.parametrize("sql", DECLINED)
def test_other_shapes_are_left_to_duckdb(sql: str) -> None:
    params: list[Any] = [1] if "$1" in sql else []
    schema = Duck().result_schema(sql, SCHEMAS, params)
    assert compile_arrow_final(sql, SCHEMAS, schema) is None


def test_a_type_that_differs_from_the_announced_schema_is_declined() -> None:
    sql = f"SELECT number FROM {VIEW} AS t"
    assert compile_arrow_final(sql, SCHEMAS, pa.schema([("number", pa.int32())])) is None
    assert compile_arrow_final(sql, SCHEMAS, pa.schema([("number", pa.int64()), ("x", pa.int64())])) is None


def test_ambiguous_column_names_are_declined() -> None:
    views = {VIEW: pa.schema([("a", pa.int64()), ("A", pa.int64())])}
    assert compile_arrow_final(f"SELECT a FROM {VIEW} AS t", views, pa.schema([("a", pa.int64())])) is None


def test_a_recheck_that_keeps_every_row_passes_the_columns_through_uncopied() -> None:
    table = pa.table({"n": pa.array(range(1000), pa.int64()), "s": pa.array(["x"] * 1000)})
    sql = f"SELECT n, s FROM {VIEW} AS t WHERE s = 'x' AND n >= 0"
    final = compile_arrow_final(sql, {VIEW: table.schema}, table.schema)
    assert final is not None
    got = final.run(table, table.schema)
    assert got.column("n").chunk(0).buffers()[1].address == table.column("n").chunk(0).buffers()[1].address
    narrowed = final.run(table.set_column(1, "s", pa.array(["x"] * 999 + [None])), table.schema)
    assert narrowed.num_rows == 999  # a NULL in the re-check drops its row


@pytest.mark.parametrize("sql", CONSTANTS)
def test_a_select_of_literals_answers_its_row_as_duckdb(sql: str) -> None:
    expected = _duckdb(sql)
    final = compile_arrow_final(sql, {}, expected.schema)
    assert final is not None, sql
    got = final.run(None, expected.schema)
    assert got.schema == expected.schema and _rows(got) == _rows(expected)
