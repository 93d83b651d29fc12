"""Prometheus metrics, served at ``GET /metrics`` by the HTTP gateway.

Query and upstream metrics are read from finished spans (``MetricsFromSpans``: one hook in the code, the span,
feeds traces and metrics alike); cache and concurrency figures are read from the engine and the admission at
scrape time. Every label value is from a closed set — a transport, an outcome code, a connector's kind, an HTTP
status — never SQL, a user name or a value, so the series count stays bounded whatever clients send."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from prometheus_client import (
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from flight_server.admission import Admission
from planner.cache import ScanCache

__all__ = ["CONTENT_TYPE", "MetricsFromSpans", "ServiceCollector", "UpstreamStatus", "exposition"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PROCESS = CollectorRegistry()  # one per process, like the tracer provider
ProcessCollector(registry=PROCESS)  # process_cpu_seconds_total, process_resident_memory_bytes, open fds, ...
PlatformCollector(registry=PROCESS)  # python_info
GCCollector(registry=PROCESS)
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

QUERIES = Counter("omnisql_queries", "Queries answered, by outcome (ok or the error code) and transport",
                  ["status", "transport"], registry=PROCESS)
QUERY_LATENCY = Histogram("omnisql_query_latency_seconds", "Wall time of a query (planning, fetching, DuckDB)",
                          ["transport"], buckets=_LATENCY_BUCKETS, registry=PROCESS)
UPSTREAM = Counter("omnisql_upstream_requests", "Requests sent to the apps' APIs, by connector and HTTP status "
                   "(or 'error' when no answer came)", ["connector", "status"], registry=PROCESS)
UPSTREAM_LATENCY = Histogram("omnisql_upstream_latency_seconds", "Wall time of one upstream request",
                             ["connector"], buckets=_LATENCY_BUCKETS, registry=PROCESS)
_KNOWN_OUTCOMES = {"ok", "INVALID_QUERY", "UNAUTHENTICATED", "ENTITLEMENT_DENIED", "RATE_LIMIT_EXHAUSTED",
                   "RESOURCE_EXHAUSTED", "SOURCE_TIMEOUT", "QUERY_TIMEOUT", "STALE_DATA", "CANCELLED",
                   "UPSTREAM_ERROR", "UNIMPLEMENTED", "INTERNAL", "SESSION_NOT_FOUND"}


class UpstreamStatus:
    """Each connector's last upstream answer and remaining budget (``/readyz``, ``omnisql_rate_limit_remaining``)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.last: dict[str, dict[str, object]] = {}
        self.remaining: dict[str, int] = {}

    def record(self, connector: str, status: str, remaining: int | None) -> None:
        with self.lock:
            self.last[connector] = {"status": status, "ok": status.isdigit() and int(status) < 400,
                                    "at": round(time.time(), 3)}
            if remaining is not None:
                self.remaining[connector] = remaining


UPSTREAM_STATUS = UpstreamStatus()


def _label(value: object, known: set[str] | None = None, fallback: str = "other") -> str:
    text = str(value)
    if known is not None:
        return text if text in known else fallback
    return text if text.replace("_", "").replace("-", "").isalnum() and len(text) <= 40 else fallback


_MEASURED = frozenset({"omnisql.query", "omnisql.upstream"})


class MetricsFromSpans(SpanProcessor):
    """Turns finished ``omnisql.query`` and ``omnisql.upstream`` spans into counters and histograms."""

    def on_end(self, span: ReadableSpan) -> None:
        if span.name not in _MEASURED:  # most spans (plan, scan, duckdb, security) are not metrics
            return
        attrs = span.attributes or {}
        seconds = ((span.end_time or 0) - (span.start_time or 0)) / 1e9
        if span.name == "omnisql.query":
            outcome = _label(attrs.get("omnisql.outcome", "ok"), _KNOWN_OUTCOMES)
            if attrs.get("omnisql.stage") == "plan" and outcome == "ok":
                return  # planned (GetFlightInfo, prepare): counted once it runs, in its DoGet
            transport = _label(attrs.get("omnisql.transport", "other"), {"flight", "http"})
            QUERIES.labels(outcome, transport).inc()
            QUERY_LATENCY.labels(transport).observe(seconds)
        elif span.name == "omnisql.upstream":
            connector = _label(attrs.get("omnisql.connector", "other"))
            status = attrs.get("http.response.status_code")
            status_label = str(status) if isinstance(status, int) and 100 <= status < 600 else "error"
            remaining = attrs.get("omnisql.rate_limit.remaining")
            UPSTREAM.labels(connector, status_label).inc()
            UPSTREAM_LATENCY.labels(connector).observe(seconds)
            UPSTREAM_STATUS.record(connector, status_label, remaining if isinstance(remaining, int) else None)


class ServiceCollector(Collector):
    """What one running service holds, read at scrape time: the scan cache and the queries in flight."""

    def __init__(self, cache: ScanCache, admission: Admission) -> None:
        self.cache = cache
        self.admission = admission

    def collect(self) -> Iterable[Metric]:
        stats = self.cache.stats
        yield CounterMetricFamily("omnisql_cache_hits", "Scans answered from the cache", value=stats.hits)
        yield CounterMetricFamily("omnisql_cache_misses", "Scans the cache could not answer", value=stats.misses)
        yield CounterMetricFamily("omnisql_cache_evictions", "Cache entries dropped for space", value=stats.evictions)
        yield GaugeMetricFamily("omnisql_cache_bytes", "Bytes held by this process's scan cache",
                                value=self.cache.nbytes)
        yield GaugeMetricFamily("omnisql_cache_entries", "Entries in this process's scan cache",
                                value=len(self.cache.entries))
        yield GaugeMetricFamily("omnisql_inflight_queries", "Queries being planned or run now (Flight and HTTP)",
                                value=self.admission.total)
        remaining = GaugeMetricFamily("omnisql_rate_limit_remaining", "Requests the API said are left "
                                      "(x-ratelimit-remaining of its last answer), per connector",
                                      labels=["connector"])
        with UPSTREAM_STATUS.lock:
            for connector, left in sorted(UPSTREAM_STATUS.remaining.items()):
                remaining.add_metric([connector], left)
        yield remaining


def exposition(service: CollectorRegistry) -> bytes:
    """The text format for one scrape: the process's counters, then the service's figures."""
    return generate_latest(PROCESS) + generate_latest(service)
