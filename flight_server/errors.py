"""The one place our error vocabulary becomes gRPC status codes. No traceback ever reaches a client: our errors
travel as their own message, anything unexpected as an incident id that points into the server log."""

from __future__ import annotations

import logging

import grpc

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
from flight_server.sessions import SessionNotFound

__all__ = ["GrpcError", "status_of"]

log = logging.getLogger("omnisql.flight")


# The ``x-omnisql-error-code`` a transport-level status carries when its raiser names none.
_ERROR_CODES = {grpc.StatusCode.INVALID_ARGUMENT: InvalidQuery.code, grpc.StatusCode.UNAUTHENTICATED:
                Unauthenticated.code, grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted.code,
                grpc.StatusCode.UNIMPLEMENTED: Unsupported.code}


class GrpcError(Exception):
    """A status decided by the transport itself (e.g. a descriptor kind we do not serve). It carries an
    ``x-omnisql-error-code`` like every other error, so programs branch on one trailer whatever raised it."""

    def __init__(self, code: grpc.StatusCode, message: str, error_code: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.error_code = error_code or _ERROR_CODES.get(code, "INTERNAL")


def _code_of(exc: OmniSQLError) -> grpc.StatusCode:
    if isinstance(exc, InvalidQuery):
        return grpc.StatusCode.INVALID_ARGUMENT
    if isinstance(exc, Unauthenticated):
        return grpc.StatusCode.UNAUTHENTICATED
    if isinstance(exc, EntitlementDenied):
        return grpc.StatusCode.PERMISSION_DENIED
    if isinstance(exc, QueryCancelled):
        return grpc.StatusCode.CANCELLED
    if isinstance(exc, ResourceExhausted):
        return grpc.StatusCode.RESOURCE_EXHAUSTED
    if isinstance(exc, SourceTimeout | QueryTimeout):
        return grpc.StatusCode.DEADLINE_EXCEEDED
    if isinstance(exc, RateLimitExhausted | UpstreamError | StaleData):
        return grpc.StatusCode.UNAVAILABLE
    if isinstance(exc, Unsupported):
        return grpc.StatusCode.UNIMPLEMENTED
    if isinstance(exc, SessionNotFound):
        return grpc.StatusCode.NOT_FOUND
    return grpc.StatusCode.INTERNAL


def status_of(exc: BaseException, method: str) -> tuple[grpc.StatusCode, str, list[tuple[str, str]]]:
    """(status code, message, trailing metadata) for an exception raised while serving ``method``.

    Trailers ``x-omnisql-error-code`` and ``x-omnisql-retry-after-s`` let programs branch without parsing text.
    """
    if isinstance(exc, GrpcError):
        return exc.code, f"{exc.error_code}: {exc}", [("x-omnisql-error-code", exc.error_code)]
    if isinstance(exc, OmniSQLError):
        trailers = [("x-omnisql-error-code", exc.code)]
        retry_after = getattr(exc, "retry_after_s", None)
        if retry_after is not None:
            trailers.append(("x-omnisql-retry-after-s", str(retry_after)))
        return _code_of(exc), str(exc), trailers
    incident = log_incident(log, f"in {method}", exc)
    return (grpc.StatusCode.INTERNAL,
            f"INTERNAL: unexpected server error (incident {incident}); the server log has details", [])
