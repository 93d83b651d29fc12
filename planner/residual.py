"""Local-only conditions as an Arrow expression a connector can apply before per-row lookups.

Only a filter that never rejects a row SQL would keep is safe, so the translation is conservative: leaves are
the shapes ``to_predicate`` already normalizes (same type coercion), plus ``LIKE`` patterns without a
backslash; an ``AND`` may drop a side it cannot translate (that only keeps more rows); ``OR`` and ``NOT`` need
exact translations of everything under them. Functions, casts and subqueries are never translated."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from connectors.filtering import predicate_expression
from core.types import TableSpec
from planner.predicates import plain, to_predicate

__all__ = ["to_residual"]

Translation = tuple[pc.Expression, bool] | None  # (expression, exact) or nothing


def to_residual(condition: exp.Expr, spec: TableSpec) -> Translation:
    node = condition.unnest()
    if isinstance(node, exp.And):
        left, right = to_residual(node.this, spec), to_residual(node.expression, spec)
        if left and right:
            return left[0] & right[0], left[1] and right[1]
        kept = left or right
        return (kept[0], False) if kept else None
    if isinstance(node, exp.Or):
        left, right = to_residual(node.this, spec), to_residual(node.expression, spec)
        if left and right and left[1] and right[1]:
            return left[0] | right[0], True
        return None
    if isinstance(node, exp.Not):
        inner = to_residual(node.this, spec)
        return (~inner[0], True) if inner and inner[1] else None
    return _leaf(node, spec)


def _leaf(node: exp.Expr, spec: TableSpec) -> Translation:
    if not all(spec.column(c.name).fetch == "list" for c in node.find_all(exp.Column)
               if c.name in {col.name for col in spec.columns}):
        return None  # lookup columns do not exist yet when the residual runs
    predicate = to_predicate(node, spec)
    if predicate is not None and predicate.op != "CONTAINS":  # no Arrow expression for it: DuckDB checks it
        return predicate_expression(predicate, spec.column(predicate.column).type), True
    if isinstance(node, exp.Like) and plain(node) and isinstance(node.this, exp.Column) \
            and isinstance(node.expression, exp.Literal) and node.expression.is_string \
            and "\\" not in node.expression.this and node.this.name in {c.name for c in spec.columns} \
            and pa.types.is_string(spec.column(node.this.name).type):
        return pc.match_like(pc.field(node.this.name), pattern=node.expression.this), True
    return None
