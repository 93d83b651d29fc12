"""A query's answer over HTTP: the rows (JSON objects, or an Arrow IPC stream), and the metadata every answer
carries — freshness, cache use, rate-limit budget, timings, API calls, trace id — plus, per source, what the
console draws as a waterfall. Per-source figures are read from the query's own spans (``core/tracing.py``), so
the answer, the exported trace and the metrics tell one story."""

from __future__ import annotations

import base64
import datetime
import decimal
import json
import math
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
from opentelemetry.sdk.trace import ReadableSpan

from core.sqltypes import sql_type_name
from flight_server.metrics import UPSTREAM_STATUS
from planner.engine import QueryContext

__all__ = ["arrow_stream", "columns", "header_json", "json_rows", "metadata", "unique_names"]


def metadata(ctx: QueryContext, spans: Sequence[ReadableSpan], root_span_id: int | None = None) -> dict[str, Any]:
    """The answer's metadata from the context's counters and the spans under ``root_span_id`` (the query's own:
    two queries continuing one caller's trace share a trace id, not a root)."""
    c = ctx.counters
    if root_span_id is not None:
        spans = descendants(spans, root_span_id)
    origin = min((s.start_time for s in spans if s.start_time), default=0)
    scans = sorted((s for s in spans if s.name == "omnisql.scan"), key=lambda s: s.start_time or 0)
    steps = [_step(s, origin) for s in sorted(spans, key=lambda s: s.start_time or 0)
             if s.name in ("omnisql.plan", "omnisql.scan", "omnisql.duckdb")]
    return {
        "trace_id": ctx.trace_id,
        "freshness_ms": round(ctx.freshness.freshness_ms, 3),
        "from_cache": c.cache_hits > 0 or ctx.freshness.stale,
        "stale": ctx.freshness.stale,  # an older copy answered because a refresh failed (allow_stale)
        "api_calls": c.api_calls,
        "rate_limit_status": _rate_limits(spans),
        "timing": {"total_ms": round(ctx.total_ms, 3), "planning_ms": round(c.planning_ms, 3),
                   "fetch_ms": round(c.fetch_ms, 3), "security_ms": round(c.security_ms, 3),
                   "duckdb_ms": round(c.duckdb_ms, 3)},
        "sources": [_source(s) for s in scans],
        "steps": steps,
    }


def descendants(spans: Sequence[ReadableSpan], root_span_id: int) -> list[ReadableSpan]:
    parents = {s.context.span_id: s.parent.span_id if s.parent else None for s in spans if s.context}
    mine: dict[int, bool] = {root_span_id: True}

    def under(span_id: int | None) -> bool:
        chain = []
        while span_id is not None and span_id not in mine:
            chain.append(span_id)
            span_id = parents.get(span_id)
        found = span_id is not None and mine[span_id]
        mine.update(dict.fromkeys(chain, found))
        return found

    return [s for s in spans if s.context and under(s.context.span_id)]


def _step(span: ReadableSpan, origin: int) -> dict[str, Any]:
    attrs = span.attributes or {}
    name = span.name.removeprefix("omnisql.")
    if name == "scan":
        name = f"fetch {attrs.get('omnisql.table')} AS {attrs.get('omnisql.alias')}"
    start, end = span.start_time or origin, span.end_time or span.start_time or origin
    return {"name": name, "start_ms": round((start - origin) / 1e6, 3), "duration_ms": round((end - start) / 1e6, 3)}


def _source(span: ReadableSpan) -> dict[str, Any]:
    attrs = span.attributes or {}
    return {"table": attrs.get("omnisql.table"), "alias": attrs.get("omnisql.alias"),
            "strategy": attrs.get("omnisql.strategy"), "api_calls": attrs.get("omnisql.api_calls", 0),
            "cache_hits": attrs.get("omnisql.cache_hits", 0), "rows": attrs.get("omnisql.rows", 0),
            "ms": round(((span.end_time or 0) - (span.start_time or 0)) / 1e6, 3)}


def _rate_limits(spans: Sequence[ReadableSpan]) -> dict[str, dict[str, Any]]:
    """Per connector the budget its API reported last (this query's answers, else the process's last known)."""
    status: dict[str, dict[str, Any]] = {}
    with UPSTREAM_STATUS.lock:
        for connector, left in UPSTREAM_STATUS.remaining.items():
            status[connector] = {"remaining": left, "requests": 0}
    for span in sorted((s for s in spans if s.name == "omnisql.upstream"), key=lambda s: s.end_time or 0):
        attrs = span.attributes or {}
        connector = str(attrs.get("omnisql.connector"))
        entry = status.setdefault(connector, {"remaining": None, "requests": 0})
        entry["requests"] += 1
        if isinstance(attrs.get("omnisql.rate_limit.remaining"), int):
            entry["remaining"] = attrs["omnisql.rate_limit.remaining"]
    return status


def columns(schema: pa.Schema) -> list[dict[str, str]]:
    return [{"name": name, "type": sql_type_name(field.type)} for name, field in zip(unique_names(schema.names),
                                                                                        schema, strict=True)]


def unique_names(names: Sequence[str]) -> list[str]:
    """Duplicate column names (``SELECT a.id, b.id``) get ``_2``, ``_3`` suffixes, as the CLI's JSON does: a JSON
    object cannot hold one key twice."""
    used: set[str] = set()
    out = []
    for name in names:
        candidate, n = name, 1
        while candidate in used:
            n += 1
            candidate = f"{name}_{n}"
        used.add(candidate)
        out.append(candidate)
    return out


def json_rows(table: pa.Table) -> list[dict[str, Any]]:
    names = unique_names(table.schema.names)
    return [{name: _jsonable(value) for name, value in zip(names, row.values(), strict=True)}
            for row in table.rename_columns([str(i) for i in range(table.num_columns)]).to_pylist()]


def _jsonable(value: Any) -> Any:
    """Timestamps and dates as ISO 8601, decimals as strings (exact), bytes as base64, NaN/±inf as null."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)


def arrow_stream(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def header_json(value: dict[str, Any]) -> str:
    """Compact JSON for a response header (ASCII only, as HTTP headers must be)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True)
