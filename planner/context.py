"""One ``QueryContext`` per request: who asks, under which options and limits, how to stop it, and the counters
every stage fills. The Flight service (and later the HTTP gateway) creates it; planning, execution and the
connectors' requests carry it; the answer, EXPLAIN ANALYZE and the log line read the same counters."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from core.errors import ResourceExhausted
from core.sizes import format_size
from core.types import CallBudget
from planner.cache import Freshness
from planner.control import QueryControl
from security.principals import Principal

__all__ = ["FetchAllowance", "QueryContext", "QueryCounters", "QueryLimits", "QueryOptions"]


@dataclass(frozen=True)
class QueryLimits:
    """What one query may use. ``None``: not limited (beyond the process-wide settings)."""

    deadline_s: float = 60.0
    memory_bytes: int | None = None  # DuckDB's memory for all queries together (default: a quarter of RAM)
    result_bytes: int | None = None  # the largest result one query may return (default 512 MiB)
    api_calls: int | None = 5000  # estimated API calls one query may make (GitHub's hourly budget)
    fetch_bytes: int | None = None  # the Arrow bytes one query's scans may bring into the process


@dataclass
class FetchAllowance:
    """The Arrow bytes one query's scans may bring into the process (``max_fetch_bytes_per_query``), counted as
    batches arrive, so a query that would list more is stopped while it fetches, not after it holds it all. Rows
    served from the scan cache are shared, not fetched, and do not count. Scans run on one event loop thread."""

    limit: int
    used: int = 0

    def take(self, size: int) -> None:
        self.used += size
        if self.used > self.limit:
            raise ResourceExhausted(
                f"the query fetched more than {format_size(self.limit)} of rows from its sources "
                "(max_fetch_bytes_per_query) and was stopped; filter on columns the API can filter (EXPLAIN shows "
                "what is pushed), select fewer columns, or ask the operator to raise the limit")


@dataclass(frozen=True)
class QueryOptions:
    """Per-query choices of the caller (headers, session options, tenant defaults)."""

    max_staleness_ms: int | None = None
    allow_stale: bool = False
    default_schema: str | None = None  # unqualified table names resolve here first (session option ``schema``)


@dataclass
class QueryCounters:
    """Filled by every stage; milliseconds are wall time of that stage, summed over executions."""

    planning_ms: float = 0.0
    fetch_ms: float = 0.0
    security_ms: float = 0.0
    duckdb_ms: float = 0.0
    api_calls: int = 0
    est_api_calls: int = 0  # the plan's estimate (EXPLAIN's est_api_calls, summed)
    cache_hits: int = 0
    executions: int = 0
    rows: int = 0


@dataclass
class QueryContext:
    principal: Principal
    limits: QueryLimits = field(default_factory=QueryLimits)
    options: QueryOptions = field(default_factory=QueryOptions)
    trace_id: str = field(default_factory=lambda: secrets.token_hex(8))
    control: QueryControl = field(init=False)
    budget: CallBudget | None = field(init=False)  # API calls left (max_api_calls_per_query), shared by all scans
    fetched: FetchAllowance | None = field(init=False)  # bytes its scans may still bring in (fetch_bytes)
    freshness: Freshness = field(init=False)  # what the query accepts (max_staleness_ms) and what it got
    counters: QueryCounters = field(default_factory=QueryCounters)
    started: float = field(default_factory=time.perf_counter)
    security_scope: str = ""  # set by the engine from the policy (see ``scope``)
    trusted: bool = False  # the operator's own in-process use (tests, benchmarks): the policy does not apply
    tables: list[str] = field(default_factory=list)  # read by the query (audit log)
    decisions: list[str] = field(default_factory=list)  # policy decisions applied (audit log)
    # Per connector the query reads: its API budget (``BudgetStatus.as_dict``), after planning and again after
    # the run; answers, the query log and the HTTP API report it.
    rate_limits: dict[str, dict[str, float | int]] = field(default_factory=dict)
    # Per table read: API calls, requests answered from the cache, and how the rest were had (hit/delta/full).
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.control = QueryControl(self.limits.deadline_s)
        self.freshness = Freshness(self.options.max_staleness_ms or 0, self.options.allow_stale)
        self.budget = CallBudget(self.limits.api_calls) if self.limits.api_calls is not None else None
        self.fetched = FetchAllowance(self.limits.fetch_bytes) if self.limits.fetch_bytes is not None else None

    @property
    def tenant(self) -> str:
        return self.principal.tenant

    @property
    def scope(self) -> str:
        """The security scope whose rows this query may see: everything a cache, a learned statistic or a
        request keys on, so rows never cross principals whose policies differ (``Policy.scope``)."""
        return self.security_scope or self.principal.tenant

    @property
    def total_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000

    def summary(self) -> str:
        """The log line's fields: counters only, never a row value or a filter value."""
        c = self.counters
        return (f"trace_id={self.trace_id} user={self.principal.user} executions={c.executions} "
                f"api_calls={c.api_calls} cache_hits={c.cache_hits} freshness_ms={self.freshness.freshness_ms:.0f} "
                f"planning_ms={c.planning_ms:.1f} fetch_ms={c.fetch_ms:.1f} "
                f"duckdb_ms={c.duckdb_ms:.1f} total_ms={self.total_ms:.1f} rows={c.rows}")
