"""System tables any client can read with plain SQL (JDBC and BI tools cannot read Flight app_metadata):
``omnisql.query_log`` — the calling principal's recent queries with their freshness, cache use, API calls and
timings —, ``omnisql.sources`` — each connector's API budget, requests and last error — and ``omnisql.cache`` —
the scan cache's counters. Served by a connector like any other table, never cached, outside the tenant policy
(each principal sees only its own queries and the connectors it may read; the cache table holds counts)."""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import pyarrow as pa

from connectors.ratelimit import RateLimiter
from core.errors import OmniSQLError
from core.types import ColumnSpec, ScanRequest, ScanStats, TableSpec
from planner.access import SYSTEM_SCHEMA
from planner.cache import ScanCache
from planner.catalog import Catalog
from planner.context import QueryContext

__all__ = ["SYSTEM_SCHEMA", "QueryLog", "SourceHealth", "SourceMonitor", "SystemConnector"]

_TS = pa.timestamp("us", tz="UTC")

QUERY_LOG = TableSpec(
    schema_name=SYSTEM_SCHEMA, name="query_log", row_estimate=100, limit_pushdown=False, cacheable=False,
    description="Your recent queries (newest last): what each cost and how fresh its data was.",
    columns=tuple(ColumnSpec(name, typ, description) for name, typ, description in (
        ("trace_id", pa.string(), "The query's trace id (also the x-omnisql-trace-id response header)"),
        ("started_at", _TS, "When the query started (UTC)"),
        ("user", pa.string(), "The principal"),
        ("sql_fingerprint", pa.string(), "SHA-256 of the statement with its literals replaced by ?"),
        ("outcome", pa.string(), "ok, or the error code"),
        ("error_code", pa.string(), "The error code, null when the query succeeded"),
        ("rows", pa.int64(), "Rows returned"),
        ("api_calls", pa.int64(), "Upstream API calls made"),
        ("from_cache", pa.bool_(), "Whether any scan was answered from the cache"),
        ("freshness_ms", pa.float64(), "Age of the oldest data used, in milliseconds"),
        ("total_ms", pa.float64(), "Wall time of the whole query"),
        ("planning_ms", pa.float64(), "Planning"),
        ("fetch_ms", pa.float64(), "Fetching from the APIs"),
        ("duckdb_ms", pa.float64(), "DuckDB"),
        ("rate_limit_status", pa.string(), "JSON: per connector read, its API budget after the query (remaining, "
                                           "capacity, refill_per_s, reset_s, blocked_for_s)"),
        ("sources", pa.string(), "JSON: per table read, its API calls, cache hits and how each scan was had "
                                 "(hit, delta, full)"),
    )))
CACHE = TableSpec(
    schema_name=SYSTEM_SCHEMA, name="cache", row_estimate=1, limit_pushdown=False, cacheable=False,
    description="The scan cache: entries, bytes and hit counters (counts only).",
    columns=tuple(ColumnSpec(name, pa.int64(), description) for name, description in (
        ("entries", "Cached scans"), ("bytes", "Bytes they hold"), ("max_bytes", "The cache's byte bound"),
        ("hits", "Scans answered from the cache"), ("misses", "Scans fetched upstream"),
        ("coalesced", "Fetches shared with an identical one in flight"), ("evictions", "Entries evicted"))))


SOURCES = TableSpec(
    schema_name=SYSTEM_SCHEMA, name="sources", row_estimate=10, limit_pushdown=False, cacheable=False,
    description="Each connector you may read: its API budget now, the requests made and the last error.",
    columns=tuple(ColumnSpec(name, typ, description) for name, typ, description in (
        ("connector", pa.string(), "The connector (its SQL schema)"),
        ("budget_remaining", pa.int64(), "Requests the rate-limit bucket lets out at once now (null: not governed)"),
        ("budget_capacity", pa.int64(), "The bucket's burst"),
        ("budget_refill_per_s", pa.float64(), "Tokens added per second"),
        ("budget_reset_s", pa.float64(), "Seconds until the bucket is full again"),
        ("blocked_for_s", pa.float64(), "Seconds the API asked us to stay away (Retry-After, remaining 0)"),
        ("requests", pa.int64(), "API requests made since the server started (all principals)"),
        ("errors", pa.int64(), "Scans that failed"),
        ("last_error", pa.string(), "The last failure's error code (never its message: it may quote a value)"),
        ("last_error_at", _TS, "When it happened (UTC)"),
        ("last_success_at", _TS, "When a scan last succeeded (UTC)"),
    )))


@dataclass(frozen=True)
class SourceHealth:
    requests: int = 0
    errors: int = 0
    last_error: str | None = None
    last_error_at: datetime | None = None
    last_success_at: datetime | None = None


class SourceMonitor:
    """Per connector: requests made and the last outcome, recorded by the executor after every scan step."""

    def __init__(self) -> None:
        self._health: dict[str, SourceHealth] = {}
        self._lock = threading.Lock()

    def record(self, connector: str, requests: int, error: BaseException | None) -> None:
        now = datetime.now(UTC)
        with self._lock:
            old = self._health.get(connector, SourceHealth())
            if error is None:
                self._health[connector] = replace(old, requests=old.requests + requests, last_success_at=now)
            elif not isinstance(error, OmniSQLError) or error.code not in ("CANCELLED", "QUERY_TIMEOUT"):
                code = error.code if isinstance(error, OmniSQLError) else "INTERNAL"
                self._health[connector] = replace(old, requests=old.requests + requests, errors=old.errors + 1,
                                                  last_error=code, last_error_at=now)

    def health(self, connector: str) -> SourceHealth:
        with self._lock:
            return self._health.get(connector, SourceHealth())


@dataclass(frozen=True)
class _Entry:
    user: str
    row: dict[str, object]


class QueryLog:
    """The last ``per_user`` queries of each principal (bounded in total too), written when a query ends."""

    def __init__(self, per_user: int = 200, total: int = 20_000) -> None:
        self.per_user = per_user
        self._entries: deque[_Entry] = deque(maxlen=total)
        self._lock = threading.Lock()

    def record(self, ctx: QueryContext, fingerprint: str, outcome: str, rows: int | None) -> None:
        counters = ctx.counters
        row: dict[str, object] = {
            "trace_id": ctx.trace_id, "started_at": datetime.now(UTC) - timedelta(milliseconds=ctx.total_ms),
            "user": ctx.principal.user,
            "sql_fingerprint": fingerprint, "outcome": outcome, "error_code": None if outcome == "ok" else outcome,
            "rows": rows, "api_calls": counters.api_calls, "from_cache": counters.cache_hits > 0,
            "freshness_ms": round(ctx.freshness.freshness_ms, 3), "total_ms": round(ctx.total_ms, 3),
            "planning_ms": round(counters.planning_ms, 3), "fetch_ms": round(counters.fetch_ms, 3),
            "duckdb_ms": round(counters.duckdb_ms, 3),
            "rate_limit_status": json.dumps(ctx.rate_limits, separators=(",", ":")),
            "sources": json.dumps(ctx.sources, separators=(",", ":"))}
        with self._lock:
            self._entries.append(_Entry(ctx.principal.user, row))

    def rows_of(self, user: str) -> list[dict[str, object]]:
        with self._lock:
            mine = [e.row for e in self._entries if e.user == user]
        return mine[-self.per_user:]


class SystemConnector:
    """Implements ``core.types.Connector`` for the ``omnisql`` schema from in-process state."""

    name = SYSTEM_SCHEMA

    def __init__(self, log: QueryLog, cache: ScanCache, monitor: SourceMonitor | None = None,
                 throttle: RateLimiter | None = None, catalog_for_scope: Callable[[str], Catalog] | None = None
                 ) -> None:
        self.log = log
        self.cache = cache
        self.monitor = monitor or SourceMonitor()
        self.throttle = throttle
        self.catalog_for_scope = catalog_for_scope

    async def open(self) -> None:
        return None

    async def aclose(self) -> None:
        return None

    def tables(self) -> Sequence[TableSpec]:
        return (QUERY_LOG, SOURCES, CACHE)

    async def scan(self, request: ScanRequest, stats: ScanStats) -> AsyncIterator[pa.RecordBatch]:
        spec = {QUERY_LOG.name: QUERY_LOG, SOURCES.name: SOURCES, CACHE.name: CACHE}[request.table]
        if spec is QUERY_LOG:
            rows = self.log.rows_of(request.principal)
        elif spec is SOURCES:
            rows = await self._sources(request)
        else:
            s = self.cache.stats
            rows = [{"entries": len(self.cache.entries), "bytes": self.cache.nbytes, "max_bytes": self.cache.max_bytes,
                     "hits": s.hits, "misses": s.misses, "coalesced": s.coalesced, "evictions": s.evictions}]
        full = pa.Table.from_pylist(rows, schema=spec.arrow_schema)
        stats.rows += full.num_rows
        stats.listed += full.num_rows
        out = spec.schema_for(request.columns)
        batches = full.select(out.names).to_batches()
        for batch in batches or [pa.RecordBatch.from_pylist([], schema=out)]:
            yield batch

    async def _sources(self, request: ScanRequest) -> list[dict[str, object]]:
        """One row per connector the asking scope may read (its budget under the asking tenant's credential)."""
        catalog = self.catalog_for_scope(request.scope) if self.catalog_for_scope else None
        names = sorted({s.schema_name for s in catalog.tables.values()}) if catalog is not None else []
        tenant = request.credential.rpartition("/")[0]
        rows: list[dict[str, object]] = []
        for name in names:
            health = self.monitor.health(name)
            row: dict[str, object] = {"connector": name, "requests": health.requests, "errors": health.errors,
                                      "last_error": health.last_error, "last_error_at": health.last_error_at,
                                      "last_success_at": health.last_success_at}
            if self.throttle is not None:
                budget = await self.throttle.status(f"{tenant}/{name}")
                row.update(budget_remaining=budget.remaining, budget_capacity=budget.capacity,
                           budget_refill_per_s=budget.refill_per_s, budget_reset_s=round(budget.reset_s, 3),
                           blocked_for_s=round(budget.blocked_for_s, 3))
            rows.append(row)
        return rows
