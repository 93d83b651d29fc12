"""Query parameters, bound exactly as DuckDB binds them.

Positional ``?`` are numbered in text order (``$1``, ``$2``, ...) before parsing, so every parameter is a
numbered one wherever it stands (WHERE, LIMIT, a CTE, the SELECT list) and ``$n`` may come in any order or
repeat. The final SQL keeps the parameters and DuckDB binds the values itself, each with its Arrow type
(int64 stays BIGINT, a double is not turned into a decimal). The planner sees the values as literals only to
decide pushdown: a bound parameter filters like the literal it stands for.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import duckdb
import pyarrow as pa
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import TokenError
from sqlglot.tokens import TokenType

from core.errors import InvalidQuery
from planner.catalog import Catalog

__all__ = ["Parameters", "as_literal", "bind_literals", "check_count", "number_placeholders", "parameter_indexes",
           "parameter_rows", "parameter_schema", "renumber", "to_parameters"]

_DUCKDB = Dialect.get_or_raise("duckdb")


class Parameters(tuple[pa.Scalar, ...]):
    """One set of bound values, in parameter order (``$1`` is ``[0]``), each an Arrow scalar keeping its type.

    ``unbound``: typed NULLs standing for values a prepared statement does not have yet. DuckDB binds the NULLs
    (for the result schema); the planner sees a value of each type, so ``login = ?`` still counts as the
    filter the table requires."""

    unbound = False

    @classmethod
    def placeholders(cls, schema: pa.Schema) -> Parameters:
        params = cls(pa.scalar(None, f.type) for f in schema)
        params.unbound = True
        return params

    def duckdb_values(self) -> list[duckdb.Value]:
        values = []
        for number, scalar in enumerate(self, start=1):
            try:
                values.append(duckdb.Value(scalar.as_py(), _duckdb_type(scalar.type)))
            except (duckdb.Error, pa.ArrowException, TypeError, ValueError, OverflowError) as exc:
                raise InvalidQuery(f"parameter ${number} of type {scalar.type} cannot be bound ({str(exc)[:80]}); "
                                   "send it as a string, number, boolean, date or timestamp") from exc
        return values

    def subset(self, indexes: Sequence[int]) -> list[duckdb.Value]:
        """The DuckDB values of ``$n`` for n in ``indexes`` (1-based), in that order."""
        values = self.duckdb_values()
        return [values[i - 1] for i in indexes]


def to_parameters(values: Iterable[Any] | pa.Table | None) -> Parameters:
    """Arrow scalars from a one-row Arrow table (what Flight clients send) or Python values (typed as Arrow
    infers them: int → int64, float → double, str → string)."""
    if values is None:
        return Parameters()
    if isinstance(values, pa.Table | pa.RecordBatch):
        if values.num_rows != 1:
            raise InvalidQuery(f"one row of parameters binds one execution, got {values.num_rows}")
        return Parameters(_unwrap(col[0]) for col in values.columns)
    return Parameters(_unwrap(v) if isinstance(v, pa.Scalar) else _scalar(v) for v in values)


def parameter_rows(table: pa.Table | None) -> list[Parameters]:
    """One set of values per row of a bound batch (Flight SQL: each row is one execution of the query)."""
    if table is None or table.num_columns == 0:
        return []
    return [to_parameters(table.slice(i, 1)) for i in range(table.num_rows)]


def _unwrap(scalar: pa.Scalar) -> pa.Scalar:
    """flightsql-dbapi sends each value as a dense union; the value is the member that is set."""
    if pa.types.is_union(scalar.type):
        value = scalar.value
        return value if value is not None else pa.scalar(None, pa.null())
    return scalar


def _scalar(value: Any) -> pa.Scalar:
    if value is None:
        return pa.scalar(None, pa.null())
    if isinstance(value, datetime) and value.tzinfo is not None:
        return pa.scalar(value, pa.timestamp("us", tz="UTC"))
    return pa.scalar(value)


@functools.lru_cache(maxsize=256)
def _duckdb_type(arrow_type: pa.DataType) -> Any:
    """The DuckDB type DuckDB itself gives an Arrow column of this type (cached: one probe per type)."""
    if pa.types.is_null(arrow_type):
        return duckdb.sqltype("NULL")
    empty = pa.table({"x": pa.array([], arrow_type)})
    with duckdb.connect(":memory:") as probe:
        return probe.from_arrow(empty).types[0]


def number_placeholders(sql: str) -> str:
    """``?`` → ``$n`` in text order (string literals, comments and quoted names are left alone).

    Mixing ``?`` with ``$n`` is refused, as DuckDB refuses it."""
    try:
        tokens = _DUCKDB.tokenize(sql)
    except TokenError:
        return sql  # the parser reports the syntax error with its position
    positional = [t for t in tokens if t.token_type == TokenType.PLACEHOLDER and t.text == "?"]
    if not positional:
        return sql
    if any(t.token_type == TokenType.PARAMETER for t in tokens):
        raise InvalidQuery("the query mixes positional (?) and numbered ($1) parameters; use one style")
    parts, last = [], 0
    for n, token in enumerate(positional, start=1):
        parts += [sql[last:token.start], f"${n}"]
        last = token.end + 1
    return "".join(parts) + sql[last:]


def parameter_indexes(tree: exp.Expr) -> list[int]:
    """The distinct parameter numbers the tree uses, ascending."""
    found = set()
    for node in tree.find_all(exp.Placeholder, exp.Parameter):
        number = _number(node)
        if number is None:
            raise InvalidQuery(f"unsupported parameter {node.sql('duckdb')}: use ? or $1, $2, ...")
        found.add(number)
    return sorted(found)


def _number(node: exp.Expr) -> int | None:
    inner = node.this
    text = inner.name if isinstance(inner, exp.Expr) else (str(inner) if inner is not None else "")
    return int(text) if text.isdigit() and int(text) > 0 else None


def check_count(tree: exp.Expr, params: Parameters) -> None:
    """DuckDB's rule: exactly as many values as the highest parameter number, each number used."""
    used = parameter_indexes(tree)
    expected = max(used, default=0)
    if len(params) != expected:
        raise InvalidQuery(f"the query has {expected} parameter(s) but {len(params)} value(s) were bound")
    missing = sorted(set(range(1, expected + 1)) - set(used))
    if missing:
        raise InvalidQuery(f"parameter(s) {', '.join(f'${n}' for n in missing)} are never used in the query; "
                           "number parameters from $1 without gaps")


def as_literal(scalar: pa.Scalar, unbound: bool = False) -> exp.Expr:
    """A SQL literal that filters like the bound value (for pushdown analysis only); ``unbound``: any value of
    the scalar's type."""
    if unbound:
        return _any_value(scalar.type)
    value = scalar.as_py()
    if value is None:
        return exp.Null()
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, int | float | Decimal):
        return exp.Literal.number(value)
    if isinstance(value, datetime):
        kind = "TIMESTAMPTZ" if value.tzinfo else "TIMESTAMP"
        return exp.cast(exp.Literal.string(value.isoformat(sep=" ")), kind)
    if isinstance(value, date):
        return exp.cast(exp.Literal.string(value.isoformat()), "DATE")
    if isinstance(value, str):
        return exp.Literal.string(value)
    return exp.Anonymous(this="unbound_parameter")  # lists, structs, blobs: never pushed


def _any_value(typ: pa.DataType) -> exp.Expr:
    if pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_decimal(typ):
        return exp.Literal.number(0)
    if pa.types.is_timestamp(typ):
        return exp.cast(exp.Literal.string("2000-01-01 00:00:00"), "TIMESTAMP")
    if pa.types.is_boolean(typ):
        return exp.Boolean(this=True)
    return exp.Literal.string("")


def bind_literals(node: exp.Expr, params: Parameters) -> exp.Expr:
    """A copy of ``node`` with each parameter replaced by its value as a literal."""
    if not params or not node.find(exp.Placeholder, exp.Parameter):
        return node

    def replace(n: exp.Expr) -> exp.Expr:
        if isinstance(n, exp.Placeholder | exp.Parameter):
            number = _number(n)
            if number is not None and number <= len(params):
                return as_literal(params[number - 1], params.unbound)
        return n

    return node.copy().transform(replace)


def renumber(node: exp.Expr) -> tuple[exp.Expr, tuple[int, ...]]:
    """A copy of ``node`` whose parameters are renumbered ``$1..$k``, and the original numbers in new order
    (a piece of the query run on its own, e.g. a bind join's key query, binds only what it uses)."""
    mapping: dict[int, int] = {}

    def replace(n: exp.Expr) -> exp.Expr:
        if isinstance(n, exp.Placeholder | exp.Parameter):
            number = _number(n)
            if number is not None:
                new = mapping.setdefault(number, len(mapping) + 1)
                return exp.Placeholder(this=str(new))
        return n

    copy = node.copy().transform(replace)
    return copy, tuple(mapping)


def parameter_schema(tree: exp.Expr, catalog: Catalog) -> pa.Schema:
    """One field per parameter number (``$1`` first), typed from the column it is first compared with (int64 in
    LIMIT/OFFSET, utf8 when unknown), for JDBC and clients that type their values from it."""
    columns = {c.name: c.type for spec in catalog.tables.values() for c in spec.columns}
    types: dict[int, pa.DataType | None] = {}
    for slot in tree.find_all(exp.Placeholder, exp.Parameter):
        number = int(slot.name) if slot.name.isdigit() else 0
        parent = slot.parent
        if isinstance(parent, exp.Limit | exp.Offset):
            typ: pa.DataType | None = pa.int64()
        elif isinstance(parent, exp.In):
            typ = columns.get(parent.this.name) if isinstance(parent.this, exp.Column) else None
        elif isinstance(parent, exp.Binary):
            other = parent.left if parent.right is slot else parent.right
            typ = columns.get(other.name) if isinstance(other, exp.Column) else None
        else:
            typ = None
        if types.get(number) is None:
            types[number] = typ
    count = max(parameter_indexes(tree), default=0)
    return pa.schema([pa.field(f"parameter_{n}", types.get(n) or pa.string()) for n in range(1, count + 1)])
