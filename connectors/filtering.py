"""Evaluate normalized predicates on Arrow batches with compute kernels.

Connectors use this to drop rows the API could only narrow (before paying for per-row detail calls); the
planner's differential tests use it to check a connector never returns fewer rows than SQL would keep."""

from __future__ import annotations

from collections.abc import Iterable

import pyarrow as pa
import pyarrow.compute as pc

from connectors.types import Predicate

__all__ = ["predicate_mask", "filter_batch"]


def predicate_mask(batch: pa.RecordBatch | pa.Table, predicate: Predicate) -> pa.Array:
    column = batch.column(predicate.column)
    typ = column.type

    def scalar(value: object) -> pa.Scalar:
        return pa.scalar(value, type=typ)

    op, values = predicate.op, predicate.values
    if op == "=":
        return pc.equal(column, scalar(values[0]))
    if op == "<>":
        return pc.not_equal(column, scalar(values[0]))
    if op == "IN":
        return pc.is_in(column, value_set=pa.array(values, type=typ))
    if op == "<":
        return pc.less(column, scalar(values[0]))
    if op == "<=":
        return pc.less_equal(column, scalar(values[0]))
    if op == ">":
        return pc.greater(column, scalar(values[0]))
    if op == ">=":
        return pc.greater_equal(column, scalar(values[0]))
    if op == "BETWEEN":
        return pc.and_(pc.greater_equal(column, scalar(values[0])), pc.less_equal(column, scalar(values[1])))
    if op == "LIKE_PREFIX":
        return pc.starts_with(column, pattern=values[0])
    if op == "IS_NULL":
        return pc.is_null(column)
    raise ValueError(f"unknown operator {op}")


def filter_batch(batch: pa.RecordBatch, predicates: Iterable[Predicate]) -> pa.RecordBatch:
    """Keep rows where every predicate is true (SQL semantics: null is not true)."""
    mask = None
    for predicate in predicates:
        if predicate.column not in batch.schema.names:
            continue
        m = predicate_mask(batch, predicate)
        mask = m if mask is None else pc.and_kleene(mask, m)
    return batch if mask is None else batch.filter(mask, null_selection_behavior="drop")
