"""One incoming RPC as the Flight SQL service sees it: who calls, from which session, the per-query headers
it sent, how to learn that it went away, and how to send a response header back. The transport builds it; the
service turns it into the query's ``QueryContext``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from core.errors import InvalidQuery
from planner.engine import OnCancel
from security.principals import Principal

__all__ = ["STALENESS_HEADER", "ALLOW_STALE_HEADER", "TRACE_HEADER", "Call"]

STALENESS_HEADER = "x-omnisql-max-staleness-ms"
ALLOW_STALE_HEADER = "x-omnisql-allow-stale"
TRACE_HEADER = "x-omnisql-trace-id"


@dataclass(frozen=True)
class Call:
    principal: Principal
    session_id: str | None = None
    on_cancel: OnCancel | None = None
    headers: Mapping[str, str] = field(default_factory=dict)  # the call's x-omnisql-* request headers
    send_header: Callable[[str, str], None] | None = None  # initial response metadata (once, before any data)

    def max_staleness_ms(self) -> int | None:
        """``x-omnisql-max-staleness-ms`` (ADBC: ``adbc.flight.sql.rpc.call_header.x-omnisql-max-staleness-ms``),
        or None when the call does not set it."""
        text = self.headers.get(STALENESS_HEADER)
        if text is None:
            return None
        if not text.strip().isdigit():
            raise InvalidQuery(f"{STALENESS_HEADER} must be a whole number of milliseconds >= 0, not {text[:20]!r}")
        return int(text)

    def allow_stale(self) -> bool | None:
        text = self.headers.get(ALLOW_STALE_HEADER)
        if text is None:
            return None
        if text.strip().lower() not in ("true", "false", "1", "0"):
            raise InvalidQuery(f"{ALLOW_STALE_HEADER} must be true or false, not {text[:20]!r}")
        return text.strip().lower() in ("true", "1")

    def reply(self, name: str, value: str) -> None:
        if self.send_header is not None:
            self.send_header(name, value)
