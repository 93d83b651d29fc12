"""The final SQL of the simplest plans run as Arrow compute instead of DuckDB.

Most single-source queries end in ``SELECT cols FROM view WHERE col = 'x' AND ...``: the scan already fetched
(or had cached) the rows, and DuckDB only re-checks the pushed conditions and picks columns. DuckDB's fixed cost
for that — binding the SQL, scanning the registered Arrow table, exporting Arrow again — is about a millisecond
per query and a full copy of the result; Arrow compute filters in microseconds and passes the columns through
without a copy. So a plan whose final SQL is *only* that shape carries an ``ArrowFinal``:

- one view, no join, grouping, ordering, limit, DISTINCT, window, subquery or parameter;
- output columns that are plain view columns (``*``, ``t.*``, ``col``, ``t.col``, ``col AS name``) whose type
  is exactly the type DuckDB announces for the result (so the answer is byte-for-byte the same);
- a WHERE that is an AND of ``col <op> literal`` (``=, <>, <, <=, >, >=``), ``col IN (literals)``,
  ``col IS [NOT] NULL``, over integer, string and boolean columns with literals of the same kind (no implicit
  cast whose rules could differ from DuckDB's; floats stay with DuckDB because of its NaN ordering).

A table-free ``SELECT`` of literals only (``SELECT 1``: what connection pools and drivers send to check a
connection) is answered by its one row, built once when the plan is made.

Anything else compiles to None and runs in DuckDB. SQL's three-valued logic holds: a condition that is NULL for
a row drops the row, as WHERE does. The differential suite compares both paths with DuckDB over the full data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import sqlglot
from sqlglot import expressions as exp

from planner.predicates import plain

__all__ = ["ArrowFinal", "Condition", "compile_arrow_final"]

_COMPARISONS: dict[type[exp.Expr], str] = {exp.EQ: "equal", exp.NEQ: "not_equal", exp.LT: "less",
                                           exp.LTE: "less_equal", exp.GT: "greater", exp.GTE: "greater_equal"}
_FLIPPED = {"equal": "equal", "not_equal": "not_equal", "less": "greater", "less_equal": "greater_equal",
            "greater": "less", "greater_equal": "less_equal"}
_SELECT_PARTS = frozenset({"expressions", "from_", "where"})


@dataclass(frozen=True)
class Condition:
    """One conjunct: ``column <function> values`` (``function`` a pyarrow.compute comparison, ``is_in``,
    ``is_null`` or ``is_valid``)."""

    column: str
    function: str
    values: tuple[Any, ...] = ()

    def mask(self, table: pa.Table) -> pa.ChunkedArray:
        column = table.column(self.column)
        if self.function in ("is_null", "is_valid"):
            return pc.call_function(self.function, [column])
        if self.function == "is_in":
            # is_in never yields NULL; SQL's IN is NULL (so drops the row) for a NULL value: same outcome in WHERE
            return pc.is_in(column, value_set=pa.array(self.values, column.type))
        return pc.call_function(self.function, [column, pa.scalar(self.values[0], column.type)])


@dataclass(frozen=True)
class ArrowFinal:
    """``SELECT columns FROM view WHERE conditions`` over the view's table, in the announced result schema; or,
    with ``constant``, a table-free query's one row."""

    view: str
    columns: tuple[str, ...]  # view columns, in output order
    conditions: tuple[Condition, ...]
    constant: pa.Table | None = None

    def run(self, table: pa.Table | None, schema: pa.Schema) -> pa.Table:
        if self.constant is not None:
            return self.constant
        assert table is not None
        if self.conditions:
            mask = self.conditions[0].mask(table)
            for condition in self.conditions[1:]:
                mask = pc.and_kleene(mask, condition.mask(table))
            if pc.all(mask, skip_nulls=False).as_py() is not True:  # the usual re-check of an exact pushdown
                table = table.filter(mask)  # keeps every row: no copy. A NULL drops the row, as WHERE does
        return pa.Table.from_arrays([table.column(name) for name in self.columns], schema=schema)


def compile_arrow_final(final_sql: str, views: Mapping[str, pa.Schema], result: pa.Schema) -> ArrowFinal | None:
    """The ``ArrowFinal`` for ``final_sql`` over ``views`` when it has the simple shape (module docstring), else
    None."""
    try:
        tree = sqlglot.parse_one(final_sql, dialect="duckdb")
    except sqlglot.errors.ParseError:
        return None
    if not isinstance(tree, exp.Select) or {k for k, v in tree.args.items() if v} - _SELECT_PARTS:
        return None
    if not tree.args.get("from_") and not tree.args.get("where"):
        return _constant(tree.expressions, result)
    source = tree.args["from_"].this if tree.args.get("from_") else None
    if not isinstance(source, exp.Table) or source.args.get("db") or source.name not in views:
        return None
    view = views[source.name]
    names = {source.alias_or_name.lower(), source.name.lower()}
    columns = _columns(tree.expressions, view, names)
    if columns is None or len(columns) != len(result):
        return None
    if any(view.field(c).type != f.type for c, f in zip(columns, result, strict=True)):
        return None
    where = tree.args.get("where")
    conditions = _conditions(where.this, view, names) if where is not None else []
    if conditions is None:
        return None
    return ArrowFinal(source.name, tuple(columns), tuple(conditions))


def _field(view: pa.Schema, column: exp.Column, tables: set[str]) -> str | None:
    """The view column ``column`` names (DuckDB resolves identifiers case-insensitively), or None."""
    if column.table and column.table.lower() not in tables or column.args.get("db"):
        return None
    wanted = column.name.lower()
    matches = [f.name for f in view if f.name.lower() == wanted]
    return matches[0] if len(matches) == 1 else None


def _columns(expressions: list[exp.Expr], view: pa.Schema, tables: set[str]) -> list[str] | None:
    if len({f.name.lower() for f in view}) != len(view):  # ambiguous names: leave to DuckDB
        return None
    out: list[str] = []
    for e in expressions:
        target = e.this if isinstance(e, exp.Alias) else e
        if isinstance(target, exp.Star) or (isinstance(target, exp.Column) and isinstance(target.this, exp.Star)):
            star = target if isinstance(target, exp.Star) else target.this
            if isinstance(e, exp.Alias) or (isinstance(target, exp.Column) and target.table.lower() not in tables) \
                    or any(star.args.values()):  # EXCLUDE, REPLACE, RENAME, ILIKE: DuckDB's to apply
                return None
            out.extend(view.names)
        elif isinstance(target, exp.Column):
            name = _field(view, target, tables)
            if name is None:
                return None
            out.append(name)
        else:
            return None
    return out


def _conditions(where: exp.Expr, view: pa.Schema, tables: set[str]) -> list[Condition] | None:
    conjuncts = list(where.flatten()) if isinstance(where, exp.And) else [where]
    out: list[Condition] = []
    for conjunct in conjuncts:
        condition = _condition(conjunct.unnest(), view, tables)
        if condition is None:
            return None
        out.append(condition)
    return out


def _condition(node: exp.Expr, view: pa.Schema, tables: set[str]) -> Condition | None:
    if not isinstance(node, exp.Not) and not plain(node):  # NOT LIKE, 1 IN labels, ...: DuckDB's to check
        return None
    if isinstance(node, exp.Is) and isinstance(node.this, exp.Column) and isinstance(node.expression, exp.Null):
        name = _field(view, node.this, tables)
        return Condition(name, "is_null") if name else None
    if isinstance(node, exp.Not) and isinstance(node.this, exp.Is):
        inner = _condition(node.this, view, tables)
        return Condition(inner.column, "is_valid") if inner else None
    if isinstance(node, exp.In) and isinstance(node.this, exp.Column) and node.expressions \
            and not node.args.get("query") and not node.args.get("unnest") and not node.args.get("is_global"):
        name = _field(view, node.this, tables)
        if name is None:
            return None
        values = [_literal(v, view.field(name).type) for v in node.expressions]
        if any(v is _NO for v in values):
            return None
        return Condition(name, "is_in", tuple(values))
    function = _COMPARISONS.get(type(node))
    if function is None:
        return None
    left, right = node.this, node.expression
    if isinstance(right, exp.Column) and not isinstance(left, exp.Column):
        left, right, function = right, left, _FLIPPED[function]
    if not isinstance(left, exp.Column):
        return None
    name = _field(view, left, tables)
    if name is None:
        return None
    value = _literal(right, view.field(name).type)
    return None if value is _NO or value is None else Condition(name, function, (value,))


_NO = object()  # not a literal this path may compare


def _literal(node: exp.Expr, type_: pa.DataType) -> Any:
    """The Python value of ``node`` when it is a literal of the column's own kind, else ``_NO``."""
    negative = isinstance(node, exp.Neg)
    if negative:
        node = node.this
    if pa.types.is_integer(type_) and isinstance(node, exp.Literal) and not node.is_string and node.is_int:
        value = -int(node.this) if negative else int(node.this)
        return value if _fits(value, type_) else _NO
    if negative:
        return _NO
    if (pa.types.is_string(type_) or pa.types.is_large_string(type_)) and isinstance(node, exp.Literal) \
            and node.is_string:
        return node.this
    if pa.types.is_boolean(type_) and isinstance(node, exp.Boolean):
        return bool(node.this)
    return _NO


def _fits(value: int, type_: pa.DataType) -> bool:
    """Whether ``value`` is representable in ``type_`` (else DuckDB widens the comparison; so do we: not here)."""
    try:
        pa.scalar(value, type_)
    except (pa.ArrowInvalid, OverflowError):
        return False
    return True


def _constant(expressions: list[exp.Expr], result: pa.Schema) -> ArrowFinal | None:
    """``SELECT <literals>``'s one row in DuckDB's announced types, or None if a value is not a plain literal."""
    if len(expressions) != len(result):
        return None
    arrays = []
    for e, f in zip(expressions, result, strict=True):
        node = e.this if isinstance(e, exp.Alias) else e
        value = _constant_value(node, f.type)
        if value is _NO:
            return None
        try:
            arrays.append(pa.array([value], f.type))
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError):
            return None
    return ArrowFinal("", (), (), constant=pa.Table.from_arrays(arrays, schema=result))


def _constant_value(node: exp.Expr, type_: pa.DataType) -> Any:
    if isinstance(node, exp.Null):
        return None
    if pa.types.is_decimal(type_) and isinstance(node, exp.Literal | exp.Neg):
        literal = node.this if isinstance(node, exp.Neg) else node
        if not isinstance(literal, exp.Literal) or literal.is_string:
            return _NO
        try:
            value = Decimal(literal.this)
        except ArithmeticError:
            return _NO
        return -value if isinstance(node, exp.Neg) else value
    return _literal(node, type_)
