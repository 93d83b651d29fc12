"""API-call estimates: how many rows a scan returns and what fetching them costs.

Row counts come from recent fetches when the same table was fetched with the same pushed conditions (or
fully), else from the TableSpec's ``row_estimate`` and crude per-operator selectivities. Estimates only choose
between plans; answers never depend on them."""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence

from core.types import Predicate, ScanRequest, TableSpec

__all__ = ["Estimator", "Statistics", "USER_LOOKUP_CAP"]

SELECTIVITY = {"=": 0.1, "<>": 0.9, "<": 0.3, "<=": 0.3, ">": 0.3, ">=": 0.3, "BETWEEN": 0.2,
               "LIKE_PREFIX": 0.2, "IS_NULL": 0.1, "CONTAINS": 0.2}
USER_LOOKUP_CAP = 25  # distinct users a lookup column touches at most, when nothing better is known


def _signature(scope: str, spec: TableSpec, predicates: Iterable[Predicate]) -> tuple[str, str, frozenset[str]]:
    return scope, spec.qualified_name, frozenset(str(p) for p in predicates)


class _Store:
    """The statistics all scoped views share; ``version`` moves when a recorded size is new or changed by more
    than a tenth (cached plans priced on the old sizes are then planned again)."""

    def __init__(self) -> None:
        self.rows: OrderedDict[tuple[str, str, frozenset[str]], int] = OrderedDict()
        self.lock = threading.Lock()
        self.version = 0


class Statistics:
    """Rows listed by recent fetches, keyed by security scope, table and pushed conditions (bounded LRU,
    thread-safe). The scope keeps what one team's queries teach the planner (table sizes are data too) from
    shaping another team's estimates; ``scoped`` gives the view one query uses."""

    def __init__(self, max_entries: int = 4096, scope: str = "", shared: _Store | None = None) -> None:
        self._store = shared or _Store()
        self.max_entries = max_entries
        self.scope = scope

    @property
    def version(self) -> int:
        return self._store.version

    def scoped(self, scope: str) -> Statistics:
        return Statistics(self.max_entries, scope, self._store)

    def record(self, spec: TableSpec, predicates: Sequence[Predicate], rows: int) -> None:
        key = _signature(self.scope, spec, predicates)
        store = self._store
        with store.lock:
            old = store.rows.get(key)
            if old is None or abs(rows - old) > max(old / 10, 1):
                store.version += 1
            store.rows[key] = rows
            store.rows.move_to_end(key)
            while len(store.rows) > self.max_entries:
                store.rows.popitem(last=False)

    def rows(self, spec: TableSpec, predicates: Sequence[Predicate]) -> int | None:
        with self._store.lock:
            return self._store.rows.get(_signature(self.scope, spec, predicates))


class Estimator:
    def __init__(self, statistics: Statistics | None = None) -> None:
        self.statistics = statistics or Statistics()

    def scoped(self, scope: str) -> Estimator:
        """The estimator one query of this security scope uses (statistics of its own scope only)."""
        return Estimator(self.statistics.scoped(scope))

    def table_rows(self, spec: TableSpec) -> float:
        seen = self.statistics.rows(spec, ())
        return float(spec.row_estimate if seen is None else seen)

    def rows_per_value(self, spec: TableSpec, column: str) -> float:
        """Rows one value of ``column`` matches. A declared distinct count is taken to grow with the table
        (near-unique keys stay near-unique); otherwise ``=`` keeps a fixed fraction of the table."""
        distinct = spec.column(column).distinct_estimate
        if distinct:
            return max(spec.row_estimate / distinct, 1.0)
        return max(self.table_rows(spec) * SELECTIVITY["="], 1.0)

    def rows(self, spec: TableSpec, predicates: Sequence[Predicate]) -> float:
        seen = self.statistics.rows(spec, predicates)
        if seen is not None:
            return float(seen)
        total = self.table_rows(spec)
        rows = total
        for p in predicates:
            if p.op in ("=", "IN"):
                rows = min(rows, self.rows_per_value(spec, p.column) * len(p.values))
            else:
                rows *= SELECTIVITY.get(p.op, 0.5)
        return min(rows, total)

    def lookup_calls(self, spec: TableSpec, columns: Iterable[str], rows: float) -> float:
        """Per-row lookups (``fetch="detail"``: one per row; ``"user"``: one per distinct user)."""
        groups = {spec.column(c).fetch for c in columns}
        return (rows if "detail" in groups else 0.0) + (min(rows, USER_LOOKUP_CAP) if "user" in groups else 0.0)

    def request_cost(self, spec: TableSpec, request: ScanRequest) -> tuple[int, float, float]:
        """(pages, calls, rows returned) of one request, per-row lookups included."""
        listed = self.rows(spec, request.predicates)
        if request.limit is not None:
            listed = min(listed, float(request.limit))
        pages = max(math.ceil(listed / spec.page_size), 1)
        returned = listed
        for p in request.prefilters:
            returned = min(returned, self.rows_per_value(spec, p.column) * len(p.values))
        lookups = self.lookup_calls(spec, request.columns, returned)
        searched = 0  # first pages of searches that found too much (the listing then answers)
        if spec.search is not None and spec.search.applies(request):
            searches = spec.search.fanout(request)
            if listed / searches <= spec.search.cap:  # one call per page of each search, no per-partition listing
                pages = searches * max(math.ceil(listed / searches / spec.search.page_size), 1)
                return pages, pages + lookups, returned
            searched = searches
        partitions = spec.partitions
        for p in request.predicates:
            if p.column == spec.partition_column and p.op in ("=", "IN"):
                partitions = min(partitions, len(p.values))
        calls = searched + spec.request_overhead + max(pages, partitions) + lookups
        return pages, calls, returned

    def rows_returned(self, spec: TableSpec, requests: Sequence[ScanRequest]) -> float:
        """Rows a whole scan step is expected to hand back."""
        return sum(self.request_cost(spec, r)[2] for r in requests)

    def cost(self, spec: TableSpec, requests: Sequence[ScanRequest]) -> tuple[int, int]:
        """(pages, calls) of a whole scan step."""
        pages, calls = 0, 0.0
        for request in requests:
            p, c, _ = self.request_cost(spec, request)
            pages, calls = pages + p, calls + c
        return pages, math.ceil(calls)
