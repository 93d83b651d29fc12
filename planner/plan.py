"""The planner's verdicts as frozen, printable values: what each scan asks of its API, and the final SQL."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import pyarrow as pa
from sqlglot import exp

from core.types import Predicate, ScanRequest, TableSpec
from planner.arrow_final import ArrowFinal
from planner.parameters import Parameters
from security.masks import Mask

__all__ = ["Binding", "FetchPlan", "JoinMode", "PushedCondition", "STRATEGIES", "ScanStep", "strategy_label",
           "view_name"]

# How a step uses another step's join keys: sent to the API in batches, one request per key (the Steampipe
# shape, kept for comparison), or only as a filter on listed rows before per-row lookups.
JoinMode = Literal["bind", "semi", "per_row"]
STRATEGIES: dict[JoinMode, str] = {"bind": "bind join", "per_row": "per-row", "semi": "semi-join"}


def view_name(index: int) -> str:
    """The DuckDB view a scan step's rows are registered under (the final SQL and join-key SQL use it)."""
    return f"__scan_{index}"


def strategy_label(mode: JoinMode, batch: int) -> str:
    """A bind join whose API takes one key per request is a lookup join (e.g. ``GET /users/{login}``)."""
    return "lookup join" if mode == "bind" and batch == 1 else STRATEGIES[mode]


@dataclass(frozen=True)
class PushedCondition:
    predicate: Predicate
    exact: bool

    def __str__(self) -> str:
        return f"{self.predicate} [{'exact' if self.exact else 'inexact'}]"


@dataclass(frozen=True)
class Binding:
    """This step waits for step ``source`` and filters ``column IN`` the source's distinct join keys.

    ``key_sql`` selects those keys from the source's rows with every condition the query puts on the source,
    so only keys that can still join are sent. ``batch`` is how many keys go in one API request."""

    mode: JoinMode
    column: str
    source: int
    source_alias: str
    source_column: str
    key_sql: str
    batch: int
    est_keys: int
    key_params: tuple[int, ...] = ()  # the query parameters key_sql binds, as $1..$k in this order
    # A bind join's crossover, decided at plan time: with more keys than this, listing the target (a semi-join)
    # costs fewer calls, and the run takes the semi-join. The run compares the actual key count with this
    # number and nothing else, so EXPLAIN states the whole decision. None: no alternative (per-row, required).
    max_keys: int | None = None

    def runtime_mode(self, keys: int) -> JoinMode:
        """The mode the run takes once it knows how many keys the source produced."""
        if self.mode == "bind" and self.max_keys is not None and keys > self.max_keys:
            return "semi"
        return self.mode

    def __str__(self) -> str:
        how = {"bind": f"in batches of {self.batch}", "per_row": "one request per key",
               "semi": "applied to listed rows before lookups"}[self.mode]
        if self.mode == "bind" and self.max_keys is not None:
            how += f"; more than {self.max_keys} keys: semi-join instead (listing costs less)"
        return f"{self.column} IN (keys of [{self.source}] {self.source_alias}.{self.source_column}) {how}"


@dataclass(frozen=True)
class ScanStep:
    """One table reference of the query, fetched as one or more API requests (IN lists split in batches)."""

    index: int
    alias: str
    spec: TableSpec
    columns: tuple[str, ...]
    pushed: tuple[PushedCondition, ...]
    local: tuple[str, ...]
    requests: tuple[ScanRequest, ...]
    limit: int | None = None
    est_pages: int = 1
    est_calls: int = 1
    est_rows: int = 0  # rows the step is expected to hand to DuckDB (EXPLAIN ANALYZE shows it beside rows)
    binding: Binding | None = None
    missing_required: tuple[str, ...] = ()  # required filters only a binding can supply
    prelookup: tuple[str, ...] = ()  # conditions the connector applies (as Arrow) before per-row lookups
    # The policy for the asking principal: the table as it sees it, the row filter re-checked on every fetched
    # row, masks applied before DuckDB, columns fetched only for the filter and dropped after it.
    visible: TableSpec | None = None
    row_filter: exp.Expr | None = None
    masks: Mapping[str, Mask] = field(default_factory=dict)
    hidden: tuple[str, ...] = ()

    @property
    def order_by(self) -> str | None:
        """The ORDER BY that goes down with the limit (top-N), if any."""
        order = self.requests[0].order_by if self.requests else ()
        return ", ".join(f"{c} {'DESC' if d else 'ASC'}" for c, d in order) or None

    @property
    def lookups(self) -> tuple[str, ...]:
        """Projected columns that cost a per-row (or per-user) API call."""
        return tuple(c for c in self.columns if self.spec.column(c).fetch != "list")

    @property
    def strategy(self) -> str:
        base = strategy_label(self.binding.mode, self.binding.batch) if self.binding else "scan"
        return f"{base} + lookup" if self.lookups else base

    @property
    def view_name(self) -> str:
        return view_name(self.index)

    @functools.cached_property  # a step never changes once planned (and plans are cached): read per query
    def schema(self) -> pa.Schema:
        """The rows as DuckDB sees them (after the policy)."""
        return (self.visible or self.spec).schema_for(c for c in self.columns if c not in self.hidden)

    @functools.cached_property
    def fetch_schema(self) -> pa.Schema:
        """The rows as the connector returns them (raw)."""
        return self.spec.schema_for(self.columns)

    @property
    def secured(self) -> bool:
        return self.row_filter is not None or bool(self.masks) or bool(self.hidden)

    def describe(self) -> str:
        pushed = "; ".join(map(str, self.pushed)) or "-"
        local = "; ".join(self.local) or "-"
        return (f"[{self.index}] {self.strategy} {self.spec.qualified_name} AS {self.alias} "
                f"columns=({', '.join(self.columns)}) pushed=({pushed}) local=({local}) limit={self.limit} "
                f"order_by={self.order_by} "
                f"requests={len(self.requests)} est_calls={self.est_calls}"
                + (f" binding=({self.binding})" if self.binding else ""))


@dataclass(frozen=True)
class FetchPlan:
    steps: tuple[ScanStep, ...]
    final_sql: str
    schema: pa.Schema
    explain: str | None = None  # "EXPLAIN" or "EXPLAIN ANALYZE" when the query asked for its plan
    notes: tuple[str, ...] = field(default_factory=tuple)
    params: Parameters = field(default_factory=Parameters)  # bound by DuckDB in final_sql and key queries
    decisions: tuple[str, ...] = ()  # the policy decisions applied, as short strings (names only, no values)
    arrow_final: ArrowFinal | None = None  # the final SQL as Arrow compute, when it is that simple (arrow_final.py)

    def waves(self) -> list[list[ScanStep]]:
        """Steps grouped by dependency depth: a wave starts when every step it binds from has finished."""
        depth: dict[int, int] = {}

        def level(step: ScanStep) -> int:
            if step.index not in depth:
                depth[step.index] = 0 if step.binding is None else level(self.steps[step.binding.source]) + 1
            return depth[step.index]

        waves: list[list[ScanStep]] = []
        for step in self.steps:
            n = level(step)
            waves.extend([] for _ in range(n + 1 - len(waves)))
            waves[n].append(step)
        return waves

    def describe(self) -> str:
        return "\n".join([*(s.describe() for s in self.steps), f"final: {self.final_sql}"])
