"""Per-condition pushdown verdicts against a table's declared capabilities (DataFusion-style):
unsupported (stays local), inexact (API narrows, engine re-checks) or exact (API enforces)."""

from __future__ import annotations

from collections.abc import Sequence

from core.errors import InvalidQuery
from core.types import FilterCap, Predicate, ScanRequest, TableSpec
from planner.plan import PushedCondition

__all__ = ["Pushdown", "batch_size", "decide", "require_filters", "split_requests"]


class Pushdown:
    """The verdicts for one scan: which predicates go to the API, and why the others stay local."""

    def __init__(self) -> None:
        self.pushed: list[PushedCondition] = []
        self.unsupported: list[tuple[Predicate, str]] = []
        self.batched: Predicate | None = None
        self.missing_required: tuple[str, ...] = ()  # a join binding may still supply them


def require_filters(spec: TableSpec, missing: Sequence[str], why_not_joined: str = "") -> None:
    """The clear error for a table the API cannot list without a filter the query does not give (and, when the
    query has a join that would give it, why that join cannot)."""
    if missing:
        cap = spec.column(missing[0]).filter
        example = cap.example if cap and cap.example else f"{missing[0]} = ..."
        reason = f"; {why_not_joined}" if why_not_joined else ""
        raise InvalidQuery(f"{spec.qualified_name} needs a filter on {missing[0]}: the API cannot list it without "
                           f"one{reason}; add e.g. WHERE {example}")


def batch_size(cap: FilterCap) -> int:
    """Values per request: the API's IN-list cap, or 1 when it only takes ``=``."""
    return cap.max_in if "IN" in cap.ops else 1


def _op_supported(p: Predicate, ops: frozenset[str]) -> bool:
    if p.op == "IN":
        return "IN" in ops or "=" in ops  # an "="-only API takes an IN list one value per request
    return p.op in ops


def decide(spec: TableSpec, predicates: Sequence[Predicate]) -> Pushdown:
    verdict = Pushdown()
    for p in predicates:
        cap = spec.column(p.column).filter
        if cap is None:
            verdict.unsupported.append((p, f"the API cannot filter {p.column}"))
            continue
        if not _op_supported(p, cap.ops):
            verdict.unsupported.append((p, f"the API cannot apply {p.op} to {p.column}"))
            continue
        if p.op == "IN" and len(p.values) > batch_size(cap):
            if verdict.batched is not None:
                verdict.unsupported.append((p, "only one IN list per scan is split into batches"))
                continue
            verdict.batched = p
        verdict.pushed.append(PushedCondition(p, cap.exact))
    verdict.missing_required = tuple(
        col.name for col in spec.columns
        if col.filter and col.filter.required and not any(c.predicate.column == col.name for c in verdict.pushed))
    return verdict


def split_requests(spec: TableSpec, columns: tuple[str, ...], verdict: Pushdown, limit: int | None,
                   max_batch: int | None = None, order: tuple[tuple[str, bool], ...] = ()
                   ) -> tuple[ScanRequest, ...]:
    """One request, or one per batch of the IN list that exceeds the API's ``max_in`` (or ``max_batch``).
    With a limit (and an order), each request returns its own top N: their union holds the query's top N."""
    pushed = tuple(c.predicate for c in verdict.pushed)
    if verdict.batched is None:
        return (ScanRequest(spec.name, columns, pushed, limit, order_by=order),)
    cap = spec.column(verdict.batched.column).filter
    assert cap is not None
    size = min(batch_size(cap), max_batch or batch_size(cap))
    others = tuple(p for p in pushed if p is not verdict.batched)
    values = verdict.batched.values
    return tuple(ScanRequest(spec.name, columns,
                             (*others, Predicate(verdict.batched.column, "IN" if size > 1 else "=",
                                                 values[i:i + size])), limit, order_by=order)
                 for i in range(0, len(values), size))
