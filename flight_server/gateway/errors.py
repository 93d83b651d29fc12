"""The one place our error vocabulary becomes HTTP statuses (gRPC's is ``flight_server/errors.py``). The body is
always ``{"error": {"code", "message", "retry_after_ms"?, "trace_id"}}``; anything unexpected is INTERNAL with an
incident id that points into the server log, never a traceback."""

from __future__ import annotations

import json
import logging
import math
import secrets

from starlette.responses import Response

from core import tracing
from core.errors import (
    EntitlementDenied,
    InvalidQuery,
    OmniSQLError,
    QueryCancelled,
    QueryTimeout,
    RateLimitExhausted,
    ResourceExhausted,
    SourceTimeout,
    StaleData,
    Unauthenticated,
    Unsupported,
    UpstreamError,
)
from core.incidents import log_incident
from flight_server.query_scope import Busy

__all__ = ["HttpProblem", "error_response", "status_of"]

log = logging.getLogger("omnisql.http")


class HttpProblem(OmniSQLError):
    """A refusal decided by the gateway itself (bad body, unknown path, wrong method), with its own status."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code  # type: ignore[misc]  # an instance's code: NOT_FOUND, METHOD_NOT_ALLOWED, ...


_STATUSES: tuple[tuple[type[OmniSQLError], int], ...] = (
    (InvalidQuery, 400), (Unauthenticated, 401), (EntitlementDenied, 403), (Busy, 429),
    (RateLimitExhausted, 429), (ResourceExhausted, 413), (Unsupported, 501), (StaleData, 503),
    (UpstreamError, 503), (SourceTimeout, 504), (QueryTimeout, 504), (QueryCancelled, 499),
)


def status_of(exc: OmniSQLError) -> int:
    if isinstance(exc, HttpProblem):
        return exc.status
    return next((status for kind, status in _STATUSES if isinstance(exc, kind)), 500)


def _message(exc: OmniSQLError) -> str:
    """The text without the ``CODE: `` prefix that ``str()`` adds (the code has its own field)."""
    return str(exc.args[0]) if exc.args else exc.code


def error_response(exc: BaseException, trace_id: str | None = None) -> Response:
    # Every error names a trace id, even one no query was started for (a bad path): support asks for it.
    trace_id = trace_id or getattr(exc, "trace_id", None) or tracing.current_trace_id() or secrets.token_hex(16)
    body: dict[str, object]
    if isinstance(exc, OmniSQLError):
        status, body = status_of(exc), {"code": exc.code, "message": _message(exc)}
    else:
        incident = log_incident(log, "answering HTTP", exc)
        status, body = 500, {"code": "INTERNAL",
                             "message": f"unexpected server error (incident {incident}); the server log has details"}
    headers: dict[str, str] = {}
    retry_after = getattr(exc, "retry_after_s", None)
    if isinstance(retry_after, int | float) and retry_after >= 0:
        body["retry_after_ms"] = int(math.ceil(retry_after * 1000))
        headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="omnisql"'
    body["trace_id"] = trace_id
    headers["X-OmniSQL-Trace-Id"] = trace_id
    return Response(json.dumps({"error": body}), status_code=status, headers=headers,
                    media_type="application/json")
