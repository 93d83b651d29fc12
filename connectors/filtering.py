"""Evaluate normalized predicates on Arrow batches as compute expressions (Kleene logic: null is not true).

Connectors use this to drop rows the API could only narrow, rows another source's keys rule out, and rows a
planner-supplied residual condition rejects, all before paying for per-row lookups."""

from __future__ import annotations

import contextlib
import functools
import operator
from collections.abc import Iterable

import pyarrow as pa
import pyarrow.compute as pc

from core.types import Predicate

__all__ = ["filter_batch", "predicate_expression"]


def predicate_expression(predicate: Predicate, typ: pa.DataType) -> pc.Expression:
    """``predicate`` as an Arrow expression over a column of type ``typ`` (exactly SQL's semantics)."""
    column = pc.field(predicate.column)
    op, values = predicate.op, predicate.values

    def scalar(value: object) -> pa.Scalar:
        return pa.scalar(value, type=typ)

    comparisons = {"=": operator.eq, "<>": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt,
                   ">=": operator.ge}
    if op in comparisons:
        expression: pc.Expression = comparisons[op](column, scalar(values[0]))
        return expression
    if op == "IN":
        return column.isin(pa.array(values, type=typ))
    if op == "BETWEEN":
        return (column >= scalar(values[0])) & (column <= scalar(values[1]))
    if op == "LIKE_PREFIX":
        return pc.starts_with(column, pattern=values[0])
    if op == "IS_NULL":
        return column.is_null()
    raise ValueError(f"unknown operator {op}")


def filter_batch(batch: pa.RecordBatch, predicates: Iterable[Predicate],
                 residual: pc.Expression | None = None) -> pa.RecordBatch:
    """Keep rows where every predicate (on a column the batch has) and ``residual`` are true.

    ``residual`` is an optimisation only (the engine re-applies it): if it cannot be evaluated on this batch it
    is skipped, never turned into an error."""
    names = set(batch.schema.names)
    terms = [predicate_expression(p, batch.schema.field(p.column).type) for p in predicates if p.column in names]
    if terms:
        batch = batch.filter(functools.reduce(operator.and_, terms))
    if residual is not None:
        with contextlib.suppress(pa.ArrowException, TypeError, ValueError):
            batch = batch.filter(residual)
    return batch
