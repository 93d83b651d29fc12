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

__all__ = ["contains_mask", "filter_batch", "predicate_expression"]


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
    raise ValueError(f"no Arrow expression for operator {op}")  # CONTAINS: contains_mask


def contains_mask(values: pa.Array, value: object) -> pa.Array:
    """``list_contains(values, value)`` as DuckDB answers it: null for a null list, else whether an element
    equals ``value`` (Arrow has no list-contains kernel: the flattened elements are matched back to their rows)."""
    elements = pc.list_flatten(values)
    parents = pc.list_parent_indices(values)
    hits = pc.filter(parents, pc.fill_null(pc.equal(elements, pa.scalar(value, type=elements.type)), False))
    rows = pc.subtract(pc.cumulative_sum(pa.repeat(pa.scalar(1, pa.int64()), len(values))), 1)
    found = pc.is_in(rows, value_set=pc.cast(hits, pa.int64()))
    return pc.if_else(values.is_null(), pa.scalar(None, pa.bool_()), found)


def filter_batch(batch: pa.RecordBatch, predicates: Iterable[Predicate],
                 residual: pc.Expression | None = None) -> pa.RecordBatch:
    """Keep rows where every predicate (on a column the batch has) and ``residual`` are true.

    ``residual`` is an optimisation only (the engine re-applies it): if it cannot be evaluated on this batch it
    is skipped, never turned into an error."""
    names = set(batch.schema.names)
    present = [p for p in predicates if p.column in names]
    terms = [predicate_expression(p, batch.schema.field(p.column).type) for p in present if p.op != "CONTAINS"]
    if terms:
        batch = batch.filter(functools.reduce(operator.and_, terms))
    for p in present:
        if p.op == "CONTAINS":
            batch = batch.filter(contains_mask(batch.column(p.column), p.values[0]))
    if residual is not None:
        with contextlib.suppress(pa.ArrowException, TypeError, ValueError):
            batch = batch.filter(residual)
    return batch
