"""The process's OpenTelemetry SDK: one tracer provider that records every query's spans (the HTTP answer's
per-source metadata and the Prometheus upstream metrics are read from them, so it is always on), and exports them
only when asked: ``--trace-exporter none`` (default), ``console`` (JSON lines on stderr) or ``otlp`` (OTLP/HTTP to
``$OTEL_EXPORTER_OTLP_ENDPOINT``, default ``http://localhost:4318``; needs ``pip install 'omnisql[otlp]'``).

The provider is per process (OpenTelemetry's model), so several services started in one process (tests) share it;
processors can be added and removed at run time (an in-memory exporter in a test)."""

from __future__ import annotations

import logging
import sys
import threading
from collections import defaultdict
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON

from core import tracing
from flight_server.metrics import MetricsFromSpans
from flight_server.progress import RUNNING

__all__ = ["EXPORTERS", "TracingError", "add_processor", "collected", "remove_processor", "setup_tracing"]

log = logging.getLogger("omnisql.tracing")
EXPORTERS = ("none", "console", "otlp")
MAX_SPANS_PER_QUERY = 10_000  # a query with thousands of lookups keeps only this many for its answer


class TracingError(Exception):
    """An exporter that cannot be set up (an unknown name, the OTLP package missing)."""


class _Dispatch(SpanProcessor):
    """Processors that come and go while the provider lives (the SDK's own list only grows). Every span of every
    query passes through here, so the lists are tuples replaced on change (no copy per span), and ``on_start``
    goes only to the processors that define one."""

    def __init__(self) -> None:
        self.processors: tuple[SpanProcessor, ...] = ()
        self.starters: tuple[SpanProcessor, ...] = ()
        self.lock = threading.Lock()

    def add(self, processor: SpanProcessor) -> None:
        with self.lock:
            self._set((*self.processors, processor))

    def remove(self, processor: SpanProcessor) -> None:
        with self.lock:
            self._set(tuple(p for p in self.processors if p is not processor))

    def _set(self, processors: tuple[SpanProcessor, ...]) -> None:
        self.processors = processors
        self.starters = tuple(p for p in processors if type(p).on_start is not SpanProcessor.on_start)

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        for processor in self.starters:
            processor.on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        for processor in self.processors:
            try:
                processor.on_end(span)
            except Exception:  # an exporter's failure never fails a query
                log.warning("span processor %s failed", type(processor).__name__, exc_info=True)

    def shutdown(self) -> None:
        for processor in self.processors:
            processor.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return all(p.force_flush(timeout_millis) for p in self.processors)


class _Collector(SpanProcessor):
    """Finished spans of the traces someone is watching (a query answering with its own per-source metadata)."""

    def __init__(self) -> None:
        self.watched: dict[str, int] = defaultdict(int)
        self.spans: dict[str, list[ReadableSpan]] = defaultdict(list)
        self.lock = threading.Lock()

    def on_end(self, span: ReadableSpan) -> None:
        if not self.watched or span.context is None:  # nobody watching: nothing to format or lock
            return
        trace_id = format(span.context.trace_id, "032x")
        with self.lock:
            if trace_id in self.watched and len(self.spans[trace_id]) < MAX_SPANS_PER_QUERY:
                self.spans[trace_id].append(span)

    @contextmanager
    def watch(self, trace_id: str) -> Iterator[list[ReadableSpan]]:
        """The spans of ``trace_id`` that end inside the block (the list fills as they end)."""
        with self.lock:
            self.watched[trace_id] += 1
            spans = self.spans[trace_id]
        try:
            yield spans
        finally:
            with self.lock:
                self.watched[trace_id] -= 1
                if not self.watched[trace_id]:
                    del self.watched[trace_id]
                    self.spans.pop(trace_id, None)


_lock = threading.Lock()
_dispatch = _Dispatch()
_collector = _Collector()
_exporters: dict[str, SpanProcessor] = {}
_provider: TracerProvider | None = None


def setup_tracing(exporter: str = "none") -> None:
    """Record spans in this process (idempotent) and export them with ``exporter`` (added once per kind)."""
    global _provider
    if exporter not in EXPORTERS:
        raise TracingError(f"unknown trace exporter {exporter!r}; use one of {', '.join(EXPORTERS)}")
    with _lock:
        if _provider is None:
            _provider = TracerProvider(sampler=ALWAYS_ON, resource=Resource.create({"service.name": "omnisql"}))
            _provider.add_span_processor(_dispatch)
            add_processor(_collector)
            add_processor(MetricsFromSpans())
            add_processor(RUNNING)  # each running query's API calls so far (flight_server/progress.py)
            tracing.install(_provider.get_tracer("omnisql"))
        if exporter != "none" and exporter not in _exporters:
            _exporters[exporter] = _exporter_processor(exporter)
            add_processor(_exporters[exporter])


def _exporter_processor(kind: str) -> SpanProcessor:
    if kind == "console":
        return SimpleSpanProcessor(ConsoleSpanExporter(out=sys.stderr))
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError as exc:
        raise TracingError("--trace-exporter otlp needs the OTLP exporter: pip install 'omnisql[otlp]' "
                           "(opentelemetry-exporter-otlp)") from exc
    exporter: SpanExporter = OTLPSpanExporter()  # OTEL_EXPORTER_OTLP_ENDPOINT / _HEADERS, as every OTel SDK
    return BatchSpanProcessor(exporter)


def add_processor(processor: SpanProcessor) -> None:
    _dispatch.add(processor)


def remove_processor(processor: SpanProcessor) -> None:
    _dispatch.remove(processor)


def collected(trace_id: str) -> AbstractContextManager[list[ReadableSpan]]:
    """``with collected(tid) as spans:`` — the spans of that trace that end while the block runs."""
    return _collector.watch(trace_id)
