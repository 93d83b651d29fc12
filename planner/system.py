"""System tables any client can read with plain SQL (JDBC and BI tools cannot read Flight app_metadata):
``omnisql.query_log`` — the calling principal's recent queries with their freshness, cache use, API calls and
timings — and ``omnisql.cache`` — the scan cache's counters. Served by a connector like any other table, never
cached, outside the tenant policy (each principal sees only its own queries; the cache table holds counts)."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pyarrow as pa

from core.types import ColumnSpec, ScanRequest, ScanStats, TableSpec
from planner.access import SYSTEM_SCHEMA
from planner.cache import ScanCache
from planner.context import QueryContext

__all__ = ["SYSTEM_SCHEMA", "QueryLog", "SystemConnector"]

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
    )))
CACHE = TableSpec(
    schema_name=SYSTEM_SCHEMA, name="cache", row_estimate=1, limit_pushdown=False, cacheable=False,
    description="The scan cache: entries, bytes and hit counters (counts only).",
    columns=tuple(ColumnSpec(name, pa.int64(), description) for name, description in (
        ("entries", "Cached scans"), ("bytes", "Bytes they hold"), ("max_bytes", "The cache's byte bound"),
        ("hits", "Scans answered from the cache"), ("misses", "Scans fetched upstream"),
        ("coalesced", "Fetches shared with an identical one in flight"), ("evictions", "Entries evicted"))))


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
            "duckdb_ms": round(counters.duckdb_ms, 3)}
        with self._lock:
            self._entries.append(_Entry(ctx.principal.user, row))

    def rows_of(self, user: str) -> list[dict[str, object]]:
        with self._lock:
            mine = [e.row for e in self._entries if e.user == user]
        return mine[-self.per_user:]


class SystemConnector:
    """Implements ``core.types.Connector`` for the ``omnisql`` schema from in-process state."""

    name = SYSTEM_SCHEMA

    def __init__(self, log: QueryLog, cache: ScanCache) -> None:
        self.log = log
        self.cache = cache

    async def open(self) -> None:
        return None

    async def aclose(self) -> None:
        return None

    def tables(self) -> Sequence[TableSpec]:
        return (QUERY_LOG, CACHE)

    async def scan(self, request: ScanRequest, stats: ScanStats) -> AsyncIterator[pa.RecordBatch]:
        spec = QUERY_LOG if request.table == QUERY_LOG.name else CACHE
        if spec is QUERY_LOG:
            rows = self.log.rows_of(request.principal)
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
