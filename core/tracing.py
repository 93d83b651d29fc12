"""Spans for every stage of a query, through the OpenTelemetry *API* only: the planner and the connectors call
``span(...)``; which SDK records and exports them is the server's choice (``flight_server/tracing.py`` installs
one with ``install``). Until then every span is OpenTelemetry's no-op, so in-process users pay nothing.

Attributes name stages, tables, routes and counts — never a row value, a filter value, a URL with its query or a
credential — because spans leave the process (OTLP, the console exporter)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

__all__ = ["Span", "current_trace_id", "extract_parent", "install", "span", "trace_id_of"]

AttributeValue = str | bool | int | float
_tracer: trace.Tracer = trace.NoOpTracer()
_PROPAGATOR = TraceContextTextMapPropagator()


def install(tracer: trace.Tracer) -> None:
    """Record spans with ``tracer`` from now on (the server does this once per process)."""
    global _tracer
    _tracer = tracer


@contextmanager
def span(name: str, attributes: Mapping[str, AttributeValue | None] | None = None, *,
         parent: otel_context.Context | None = None, kind: SpanKind = SpanKind.INTERNAL) -> Iterator[Span]:
    """A child of the current span (or of ``parent``), current inside the block. An exception marks it as an
    error with only the error's code as description: exception texts and stack traces stay out of spans."""
    attrs = {k: v for k, v in (attributes or {}).items() if v is not None}
    with _tracer.start_as_current_span(name, context=parent, kind=kind, attributes=attrs, record_exception=False,
                                       set_status_on_exception=False) as current:
        try:
            yield current
        except BaseException as exc:
            code = str(getattr(exc, "code", None) or type(exc).__name__)
            current.set_attribute("omnisql.error_code", code)
            current.set_status(Status(StatusCode.ERROR, code))
            raise


def extract_parent(traceparent: str | None, tracestate: str | None = None) -> otel_context.Context | None:
    """The caller's span as a parent (W3C ``traceparent``), or None when absent or malformed (then the query
    starts a trace of its own; a bad header never fails a query)."""
    if not traceparent:
        return None
    carrier = {"traceparent": traceparent, **({"tracestate": tracestate} if tracestate else {})}
    parent = _PROPAGATOR.extract(carrier)
    return parent if trace.get_current_span(parent).get_span_context().is_valid else None


def trace_id_of(current: Span) -> str | None:
    """The span's trace id as 32 hex digits, or None for a no-op span."""
    context = current.get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


def current_trace_id() -> str | None:
    return trace_id_of(trace.get_current_span())
