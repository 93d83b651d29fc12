"""The one place our error vocabulary becomes Flight/gRPC status codes. No traceback ever reaches a client."""

from __future__ import annotations

import functools
import json
import logging
import uuid
from collections.abc import Callable
from typing import Any, TypeVar, cast

import pyarrow as pa
import pyarrow.flight as flight

from connectors.errors import (
    EntitlementDenied,
    InvalidQuery,
    OmniSQLError,
    RateLimitExhausted,
    SourceTimeout,
    StaleData,
    Unauthenticated,
    UpstreamError,
)

log = logging.getLogger("omnisql.flight")
F = TypeVar("F", bound=Callable[..., Any])


def to_flight_error(exc: OmniSQLError) -> Exception:
    message = str(exc)
    if isinstance(exc, InvalidQuery):
        return pa.ArrowInvalid(message)  # gRPC INVALID_ARGUMENT
    if isinstance(exc, Unauthenticated):
        return flight.FlightUnauthenticatedError(message)
    if isinstance(exc, EntitlementDenied):
        return flight.FlightUnauthorizedError(message)
    extra = json.dumps({"code": exc.code, "retry_after_s": getattr(exc, "retry_after_s", None)}).encode()
    if isinstance(exc, SourceTimeout):
        return flight.FlightTimedOutError(message, extra_info=extra)
    if isinstance(exc, RateLimitExhausted | UpstreamError | StaleData):
        return flight.FlightUnavailableError(message, extra_info=extra)
    return flight.FlightServerError(message, extra_info=extra)


def translate_errors(handler: F) -> F:
    """Wrap a Flight handler: our errors get their status code; anything else is logged and hidden."""

    @functools.wraps(handler)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return handler(*args, **kwargs)
        except OmniSQLError as exc:
            raise to_flight_error(exc) from None
        except (flight.FlightError, pa.ArrowInvalid):
            raise
        except Exception:
            incident = uuid.uuid4().hex[:12]
            log.exception("unexpected error in %s (incident %s)", handler.__name__, incident)
            raise flight.FlightInternalError(
                f"INTERNAL: unexpected server error (incident {incident}); the server log has details") from None

    return cast(F, wrapper)
