"""Bind joins: for ``A JOIN B ON A.x = B.y``, fetch A first and filter B by A's distinct keys.

Three ways to use the keys, priced with the same estimator as plain scans:
- ``bind``: ``y IN (batch)`` goes to B's API in batches of B's ``max_in`` (instead of scanning all of B);
- ``semi``: B is listed as usual but rows whose ``y`` is not a key are dropped before per-row lookups;
- ``per_row``: one request per key, the way Steampipe-style engines join; only for comparison.
The planner picks, per join edge, whichever saves the most API calls, and fixes a ``bind``'s crossover at plan
time: the largest key count for which it is no dearer than listing. The run compares the actual key count with
that number (``Binding.runtime_mode``) and takes ``semi`` above it, so EXPLAIN and the run decide alike.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, get_args

from sqlglot import exp

from core.types import Predicate, ScanRequest
from planner.estimates import Estimator
from planner.plan import Binding, JoinMode, ScanStep
from planner.pushdown import batch_size

__all__ = ["JOIN_STRATEGIES", "JoinEdge", "JoinStrategy", "bind_step", "bound_requests", "choose_bindings",
           "join_strategy"]

JoinStrategy = Literal["auto", "scan", "bind", "per_row"]
JOIN_STRATEGIES: tuple[JoinStrategy, ...] = get_args(JoinStrategy)


def join_strategy(name: str) -> JoinStrategy:
    """``name`` as a join strategy, or ValueError naming the choices (config and CLI values are text)."""
    for strategy in JOIN_STRATEGIES:
        if strategy == name:
            return strategy
    raise ValueError(f"join_strategy must be one of {', '.join(JOIN_STRATEGIES)}, not {name!r}")


@dataclass(frozen=True)
class JoinEdge:
    """``source.source_column = target.target_column`` where the target's rows matter only if they match."""

    source: int
    source_column: str
    target: int
    target_column: str


def bound_requests(step: ScanStep, mode: JoinMode, keys: Sequence[Any], placeholder: bool = False
                   ) -> tuple[ScanRequest, ...]:
    """The requests of ``step`` once its binding's keys are known (no keys: no requests at all).

    ``placeholder``: ``keys`` only stand for how many there will be (plan-time pricing)."""
    assert step.binding is not None
    column = step.binding.column
    if not keys:
        return ()
    if mode == "semi":
        keyed = Predicate(column, "IN", tuple(keys))
        return tuple(replace(r, prefilters=(*r.prefilters, keyed)) for r in step.requests)
    (base,) = step.requests
    others: list[Predicate] = []
    allowed: set[Any] | None = None
    for p in base.predicates:  # an existing = / IN on the join column intersects with the keys
        if p.column == column and p.op in ("=", "IN"):
            allowed = set(p.values) if allowed is None else allowed & set(p.values)
        else:
            others.append(p)
    if placeholder:
        values = list(keys)[:len(allowed)] if allowed is not None else list(keys)
    else:
        values = [k for k in keys if allowed is None or k in allowed]
    size = 1 if mode == "per_row" else step.binding.batch
    return tuple(ScanRequest(base.table, base.columns,
                             (*others, Predicate(column, "IN" if len(chunk) > 1 else "=", tuple(chunk))))
                 for chunk in (values[i:i + size] for i in range(0, len(values), size)))


def _can_bind(target: ScanStep, column: str) -> bool:
    cap = target.spec.column(column).filter
    return cap is not None and bool({"=", "IN"} & cap.ops) and len(target.requests) == 1


def _can_semi(target: ScanStep, column: str) -> bool:
    return bool(target.lookups) and target.spec.column(column).fetch == "list"


def _est_keys(source: ScanStep, column: str, estimator: Estimator) -> int:
    """Distinct keys the source will hand over: a source that is itself bound returns what its binding lets
    through (its ``est_rows``), not its unbound listing."""
    rows = source.est_rows if source.binding is not None else estimator.rows_returned(source.spec, source.requests)
    distinct = source.spec.column(column).distinct_estimate
    return max(int(min(rows, distinct) if distinct else rows), 1)


def batch_for(target: ScanStep, column: str, mode: JoinMode) -> int:
    cap = target.spec.column(column).filter
    return 1 if mode == "per_row" or cap is None else batch_size(cap)


def _binding(edge: JoinEdge, steps: Sequence[ScanStep], mode: JoinMode, n_keys: int, key_sql: str = "",
             key_params: tuple[int, ...] = (), max_keys: int | None = None) -> Binding:
    source, target = steps[edge.source], steps[edge.target]
    return Binding(mode, edge.target_column, edge.source, source.alias, edge.source_column, key_sql,
                   batch_for(target, edge.target_column, mode), n_keys, key_params, max_keys)


MAX_CROSSOVER = 1 << 16  # key counts searched for a crossover; beyond it a bind join simply stays one


def crossover(edge: JoinEdge, steps: Sequence[ScanStep], estimator: Estimator) -> int:
    """The largest key count for which binding is no dearer than listing the target (a semi-join). A bind
    join's calls grow with its keys while a listing's stay put, so: double until binding loses, then bisect."""
    def bind_wins(n: int) -> bool:
        return _priced(edge, steps, "bind", n, estimator) <= _priced(edge, steps, "semi", n, estimator)

    if not bind_wins(1):
        return 0
    low = 1
    while low < MAX_CROSSOVER and bind_wins(min(low * 2, MAX_CROSSOVER)):
        low = min(low * 2, MAX_CROSSOVER)
    if low >= MAX_CROSSOVER:
        return MAX_CROSSOVER
    high = min(low * 2, MAX_CROSSOVER)  # bind_wins(low) and not bind_wins(high)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if bind_wins(middle) else (low, middle)
    return low


def keyless(step: ScanStep, column: str) -> ScanStep:
    """``step`` without its delta key when it is bound on a column that may send it down a path that cannot return
    the key (``TableSpec.keyless_filters``: GitHub's search by author), as the planner does for such a pushed
    condition: the cache then refetches the scan in full, and the search path stays open to the bound keys."""
    spec = step.spec
    key = spec.primary_key[0] if len(spec.primary_key) == 1 else None
    if column not in spec.keyless_filters or key is None or key not in step.hidden:
        return step
    filtered = step.row_filter is not None and key in {c.name for c in step.row_filter.find_all(exp.Column)}
    if filtered or (step.visible is not None and key not in {c.name for c in step.visible.columns}):
        return step  # hidden for the policy (a row filter reads it, or it is denied), not as a delta key
    columns = tuple(c for c in step.columns if c != key)
    return replace(step, columns=columns, hidden=tuple(c for c in step.hidden if c != key),
                   requests=tuple(replace(r, columns=columns) for r in step.requests))


def _priced(edge: JoinEdge, steps: Sequence[ScanStep], mode: JoinMode, n_keys: int, estimator: Estimator) -> int:
    """Estimated calls of the target step under ``mode`` with ``n_keys`` keys (placeholder values)."""
    target = steps[edge.target] if mode != "bind" else keyless(steps[edge.target], edge.target_column)
    target = replace(target, binding=_binding(edge, steps, mode, n_keys))
    return keyed_cost(target, mode, n_keys, estimator)[1]


SEMI_PRICED_KEYS = 100_000  # a semi-join's key filter is priced with at most this many placeholder keys


def keyed_cost(step: ScanStep, mode: JoinMode, n_keys: int, estimator: Estimator) -> tuple[int, int, float]:
    """(pages, calls, rows) of ``step`` bound to ``n_keys`` keys, priced from at most two requests however many
    keys there are: an estimate can say 100 million (every GitHub user), and materializing that many placeholder
    keys or requests would stall planning and exhaust memory."""
    if mode == "semi":
        requests = bound_requests(step, mode, range(min(n_keys, SEMI_PRICED_KEYS)), placeholder=True)
        pages, calls = estimator.cost(step.spec, requests)
        return pages, calls, estimator.rows_returned(step.spec, requests)
    assert step.binding is not None
    allowed = [p for p in step.requests[0].predicates if p.column == step.binding.column and p.op in ("=", "IN")]
    if allowed:  # an existing = / IN on the join column: only its values can be keys
        n_keys = min(n_keys, min(len(set(p.values)) for p in allowed))
    size = 1 if mode == "per_row" else step.binding.batch
    full, rest = divmod(n_keys, size)
    pages, calls, rows = 0, 0, 0.0
    for count, keys in ((full, size), (1, rest)):
        if count and keys:
            requests = bound_requests(step, mode, range(keys), placeholder=True)
            one_pages, one_calls = estimator.cost(step.spec, requests)
            pages, calls = pages + count * one_pages, calls + count * one_calls
            rows += count * estimator.rows_returned(step.spec, requests)
    return pages, calls, rows


def _depends_on(bindings: dict[int, tuple[JoinEdge, JoinMode, int]], step: int, other: int) -> bool:
    """Whether ``step`` (transitively) waits for ``other``."""
    seen: set[int] = set()
    while step in bindings and step not in seen:
        seen.add(step)
        step = bindings[step][0].source
        if step == other:
            return True
    return False


def choose_bindings(steps: Sequence[ScanStep], edges: Sequence[JoinEdge], strategy: JoinStrategy,
                    estimator: Estimator, fixed: Mapping[int, tuple[JoinEdge, JoinMode, int]] | None = None
                    ) -> dict[int, tuple[JoinEdge, JoinMode, int]]:
    """target step → (edge, mode, estimated keys), at most one binding per target and no cycles; ``fixed``:
    bindings already placed (kept, and their targets not bound again)."""
    fixed = fixed or {}
    candidates: list[tuple[float, JoinEdge, JoinMode, int]] = []
    for edge in edges:
        if edge.target in fixed:
            continue
        source, target = steps[edge.source], steps[edge.target]
        if source.limit is not None or target.limit is not None or \
                source.spec.column(edge.source_column).type != target.spec.column(edge.target_column).type:
            continue
        n_keys = _est_keys(source, edge.source_column, estimator)
        if target.missing_required:  # the only way to fetch it: its required column comes from the join
            if target.missing_required == (edge.target_column,) and _can_bind(target, edge.target_column):
                candidates.append((math.inf, edge, "per_row" if strategy == "per_row" else "bind", n_keys))
            continue
        if strategy == "per_row":
            if _can_bind(target, edge.target_column):
                candidates.append((-n_keys, edge, "per_row", n_keys))  # drive from the smaller side
            continue
        if strategy not in ("auto", "bind"):
            continue
        options: list[tuple[int, JoinMode]] = []
        if _can_bind(target, edge.target_column):
            options.append((_priced(edge, steps, "bind", n_keys, estimator), "bind"))
        if _can_semi(target, edge.target_column):
            options.append((_priced(edge, steps, "semi", n_keys, estimator), "semi"))
        if not options:
            continue
        calls, mode = min(options)
        saving = target.est_calls - calls
        # A semi-join never adds API calls and may skip lookups; worth the wait when the source is cheaper
        # than the lookups it might save.
        worth_waiting = mode == "semi" and source.est_calls < estimator.lookup_calls(
            target.spec, target.columns, estimator.rows_returned(target.spec, target.requests))
        if strategy == "bind" or saving >= 1 or worth_waiting:
            candidates.append((saving, edge, mode, n_keys))
    chosen: dict[int, tuple[JoinEdge, JoinMode, int]] = dict(fixed)
    for _, edge, mode, n_keys in sorted(candidates, key=lambda c: -c[0]):
        if edge.target in chosen or _depends_on(chosen, edge.source, edge.target):
            continue
        chosen[edge.target] = (edge, mode, n_keys)
    return chosen


def bind_step(step: ScanStep, edge: JoinEdge, mode: JoinMode, n_keys: int, steps: Sequence[ScanStep],
              key_sql: str, estimator: Estimator, key_params: tuple[int, ...] = ()) -> ScanStep:
    """``step`` with its binding (and, for a bind join, its crossover) and the estimate of the bound fetch."""
    max_keys = crossover(edge, steps, estimator) if mode == "bind" and not step.missing_required else None
    binding = _binding(edge, steps, mode, n_keys, key_sql, key_params, max_keys)
    bound = replace(keyless(step, edge.target_column) if mode == "bind" else step, binding=binding)
    pages, calls, rows = keyed_cost(bound, mode, n_keys, estimator)
    return replace(bound, est_pages=pages, est_calls=calls, est_rows=round(rows))
