"""What every query goes through, whichever door it came in by (Flight or HTTP): a concurrency slot
(``admission``), one root span whose trace id becomes the query's ``trace_id`` (a caller's W3C ``traceparent``
makes it a child of the caller's trace), the ``QueryContext``, and at the end one audit line and one
``omnisql.query_log`` row. Metrics are read from the finished span (``flight_server/metrics.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from opentelemetry.trace import SpanKind

from core import tracing
from core.errors import ResourceExhausted
from flight_server.admission import Admission
from flight_server.progress import RUNNING
from planner.engine import Engine, OnCancel, QueryContext, QueryOptions
from security.audit import audit_query, outcome_of
from security.principals import Principal

__all__ = ["Busy", "query_scope", "record_query"]


class Busy(ResourceExhausted):
    """A concurrency cap (``max_concurrent_queries``, per principal or in total) refused the query at once:
    nothing is queued, so retrying in a moment is the answer (HTTP 429 with ``Retry-After: 1``)."""

    retry_after_s = 1.0


@contextmanager
def query_scope(engine: Engine, admission: Admission, principal: Principal, options: QueryOptions, *,
                transport: str, stage: str = "execute", traceparent: str | None = None,
                tracestate: str | None = None, on_cancel: OnCancel | None = None) -> Iterator[QueryContext]:
    """Hold a slot of ``principal`` and yield the query's context inside its root span ``omnisql.query``.

    ``stage`` is ``plan`` (GetFlightInfo, prepare) or ``execute``: the metrics count a query once, when it runs
    or when it is refused. A refusal by ``admission`` itself (too many queries) is inside the span too. An error
    leaving the block carries the trace id as ``trace_id`` (for answers that name it)."""
    attributes = {"omnisql.transport": transport, "omnisql.stage": stage, "enduser.id": principal.user}
    with tracing.span("omnisql.query", attributes, parent=tracing.extract_parent(traceparent, tracestate),
                      kind=SpanKind.SERVER) as root:
        try:
            with ExitStack() as stack:
                try:
                    stack.enter_context(admission.slot(principal))
                except ResourceExhausted as exc:
                    raise Busy(exc.args[0]) from exc
                ctx = engine.context(principal, options, on_cancel)
                ctx.trace_id = tracing.trace_id_of(root) or ctx.trace_id
                stack.enter_context(RUNNING.track(ctx.trace_id, principal))  # live API calls (progress.py)
                yield ctx
        except BaseException as exc:
            root.set_attribute("omnisql.outcome", outcome_of(exc))
            if isinstance(exc, Exception) and not hasattr(exc, "trace_id"):
                exc.trace_id = tracing.trace_id_of(root)  # type: ignore[attr-defined]
            raise
        root.set_attribute("omnisql.outcome", "ok")
        root.set_attribute("omnisql.api_calls", ctx.counters.api_calls)
        root.set_attribute("omnisql.rows", ctx.counters.rows)


def record_query(engine: Engine, ctx: QueryContext, sql: str, rows: int | None, error: BaseException | None) -> None:
    """One audit line per executed or refused query (security/audit.py: names, counts and decisions, never
    values), and the same query in the principal's ``omnisql.query_log``."""
    outcome = outcome_of(error)
    record = audit_query(trace_id=ctx.trace_id, principal=ctx.principal, sql=sql, tables=ctx.tables, rows=rows,
                         decisions=ctx.decisions, outcome=outcome, duration_ms=ctx.total_ms)
    engine.query_log.record(ctx, str(record["statement"]), outcome, rows)
