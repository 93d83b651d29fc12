"""Live progress of the queries running now: the API calls each has made so far, per connector, for the CLI's
progress line (issue #11). A query's upstream requests are already spans (``omnisql.upstream``), so counting them as
they end is one dictionary increment, and only for queries someone runs right now (``track``).

Asked with the Flight action ``omnisql.QueryProgress`` (body: the query's trace id, which a client names itself
with a W3C ``traceparent``). Only the principal that runs a query sees it: any other trace id — another
principal's, a finished query's, one never seen — is answered alike, as not running."""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor

from core.errors import InvalidQuery
from security.principals import Principal

__all__ = ["ACTION", "DESCRIPTION", "RUNNING", "RunningQueries", "answer"]

ACTION = "omnisql.QueryProgress"
DESCRIPTION = ("A running query's API calls so far, per connector (body: its trace id, as named by the caller's "
               "traceparent); JSON")
_TRACE_ID = re.compile(r"[0-9a-f]{32}")


@dataclass
class _Running:
    owner: tuple[str, str]  # (tenant, user)
    started: float
    holders: int = 0  # stages of one query (plan, execute) may overlap with a caller's retries
    api_calls: Counter[str] = field(default_factory=Counter)


class RunningQueries(SpanProcessor):
    """Upstream requests per connector of every tracked trace, counted as their spans end."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.queries: dict[str, _Running] = {}

    @contextmanager
    def track(self, trace_id: str, principal: Principal) -> Iterator[None]:
        owner = (principal.tenant, principal.user)
        with self.lock:
            entry = self.queries.get(trace_id)
            if entry is None or entry.owner != owner:  # a trace id is the caller's to pick: the latest owner wins
                entry = self.queries[trace_id] = _Running(owner, time.monotonic())
            entry.holders += 1
        try:
            yield
        finally:
            with self.lock:
                entry.holders -= 1
                if entry.holders <= 0 and self.queries.get(trace_id) is entry:
                    del self.queries[trace_id]

    def on_end(self, span: ReadableSpan) -> None:
        if span.name != "omnisql.upstream" or span.context is None or not self.queries:
            return
        trace_id = format(span.context.trace_id, "032x")
        connector = str((span.attributes or {}).get("omnisql.connector", "other"))
        with self.lock:
            entry = self.queries.get(trace_id)
            if entry is not None:
                entry.api_calls[connector] += 1

    def progress(self, trace_id: str, principal: Principal) -> dict[str, object]:
        with self.lock:
            entry = self.queries.get(trace_id)
            if entry is None or entry.owner != (principal.tenant, principal.user):
                return {"trace_id": trace_id, "running": False}
            return {"trace_id": trace_id, "running": True, "elapsed_ms": round((time.monotonic() - entry.started)
                                                                                * 1000, 1),
                    "api_calls": dict(sorted(entry.api_calls.items()))}


RUNNING = RunningQueries()


def answer(principal: Principal, body: bytes) -> bytes:
    """The action's one result body: the progress of ``body``'s trace id as JSON."""
    trace_id = body.decode("ascii", "replace").strip().lower()
    if not _TRACE_ID.fullmatch(trace_id):
        raise InvalidQuery(f"{ACTION} takes a trace id (32 hexadecimal digits) as its body")
    return json.dumps(RUNNING.progress(trace_id, principal), separators=(",", ":")).encode()
