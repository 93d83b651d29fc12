"""Comparing a query's answer with the oracle's, as strictly as SQL allows and no stricter.

* Names and Arrow types must be equal, column by column (a ``tz=Etc/UTC`` where ``tz=UTC`` is documented is a
  different type: clients see it).
* Rows are compared as a multiset, unless the outermost query has ``ORDER BY ... LIMIT``: our queries then end
  their ORDER BY with a unique tie-breaker, so the order is part of the answer and must match too.
* ``LIMIT`` without an ``ORDER BY`` leaves *which* rows come back open: then the count must equal the oracle's
  (``min(n, rows)``, which is deterministic) and every row must come from the unlimited answer (as a multiset).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import sqlglot

__all__ = ["adbc_answer", "assert_same_answer", "assert_subset_answer", "describe_mismatch", "is_ordered",
           "schema_of"]


def adbc_answer(conn: Any, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
    """``sql`` (with ``params`` bound, if any) through an ADBC DB-API connection, as an Arrow table."""
    with conn.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetch_arrow_table()


def is_ordered(sql: str) -> bool:
    """True when the outermost query has both ORDER BY and LIMIT: the order of the rows is then the answer."""
    tree = sqlglot.parse_one(sql, dialect="duckdb")
    return bool(tree.args.get("order")) and tree.args.get("limit") is not None


def schema_of(table: pa.Table) -> list[tuple[str, pa.DataType]]:
    return [(f.name, f.type) for f in table.schema]


def _value(v: Any) -> Any:
    if isinstance(v, float) and math.isfinite(v):
        return round(v, 6)  # summation order must not matter
    if isinstance(v, datetime) and v.tzinfo is not None:
        return v.astimezone(UTC).isoformat()  # the instant; the zone's *name* is checked with the type
    if isinstance(v, list):
        return [_value(x) for x in v]
    if isinstance(v, dict):
        return {k: _value(x) for k, x in v.items()}
    return v


def rows(table: pa.Table) -> list[str]:
    """Rows as comparable text, in table order."""
    return [repr(tuple(_value(v) for v in row.values())) for row in table.to_pylist()]


def describe_mismatch(got: pa.Table, expected: pa.Table, ordered: bool) -> str:
    """What differs, briefly: schemas, counts and a few rows on each side only."""
    lines = []
    if schema_of(got) != schema_of(expected):
        lines.append(f"schema: got {schema_of(got)}, oracle {schema_of(expected)}")
    g, e = rows(got), rows(expected)
    if ordered and sorted(g) == sorted(e) and g != e:
        first = next(i for i, (a, b) in enumerate(zip(g, e, strict=True)) if a != b)
        lines.append(f"same rows, different order from row {first}: got {g[first]}, oracle {e[first]}")
    elif Counter(g) != Counter(e):
        only_got, only_expected = Counter(g) - Counter(e), Counter(e) - Counter(g)
        lines.append(f"rows: got {len(g)}, oracle {len(e)}; only in got ({sum(only_got.values())}): "
                     f"{list(only_got)[:3]}; only in oracle ({sum(only_expected.values())}): {list(only_expected)[:3]}")
    return "\n".join(lines)


def assert_same_answer(got: pa.Table, expected: pa.Table, ordered: bool, context: str = "") -> None:
    """Same names, types and rows (in order when ``ordered``)."""
    g, e = rows(got), rows(expected)
    same_rows = g == e if ordered else Counter(g) == Counter(e)
    if schema_of(got) != schema_of(expected) or not same_rows:
        raise AssertionError(describe_mismatch(got, expected, ordered) + (f"\n{context}" if context else ""))


def assert_subset_answer(got: pa.Table, limited: pa.Table, unlimited: pa.Table, context: str = "") -> None:
    """A LIMIT without a unique order: the oracle's count for the limited query (``limited``) and only rows of
    the unlimited answer, each at most as often as it occurs there."""
    problems = []
    if schema_of(got) != schema_of(limited):
        problems.append(f"schema: got {schema_of(got)}, oracle {schema_of(limited)}")
    if got.num_rows != limited.num_rows:
        problems.append(f"count: got {got.num_rows} rows, oracle {limited.num_rows} (of {unlimited.num_rows})")
    extra = Counter(rows(got)) - Counter(rows(unlimited))
    if extra:
        problems.append(f"rows that are not in the answer ({sum(extra.values())}): {list(extra)[:3]}")
    if problems:
        raise AssertionError("\n".join(problems) + (f"\n{context}" if context else ""))
