"""The one error vocabulary of OmniSQL.

Every layer raises these (with ``from exc`` context); only ``flight_server`` translates them to Flight
status codes. Each carries a machine-readable ``code`` and a message that says what happened and what to do.
"""

from __future__ import annotations

__all__ = [
    "EntitlementDenied",
    "InvalidQuery",
    "OmniSQLError",
    "QueryCancelled",
    "QueryTimeout",
    "RateLimitExhausted",
    "ResourceExhausted",
    "SourceTimeout",
    "StaleData",
    "Unauthenticated",
    "Unsupported",
    "UpstreamError",
]


class OmniSQLError(Exception):
    """Base of every error a client may see."""

    code = "INTERNAL"

    def __str__(self) -> str:
        return f"{self.code}: {super().__str__()}"


class InvalidQuery(OmniSQLError):
    """The SQL (or its parameters) cannot be planned: syntax, unknown names, missing required filters."""

    code = "INVALID_QUERY"


class Unauthenticated(OmniSQLError):
    """No credentials, or credentials we do not recognise."""

    code = "UNAUTHENTICATED"


class EntitlementDenied(OmniSQLError):
    """The principal is known but may not read this table or column."""

    code = "ENTITLEMENT_DENIED"


class RateLimitExhausted(OmniSQLError):
    """An upstream API budget is spent; ``retry_after_s`` says when it refills."""

    code = "RATE_LIMIT_EXHAUSTED"

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ResourceExhausted(OmniSQLError):
    """The query needs more than a configured limit allows (memory, result size, API calls, concurrency); the
    message names the limit."""

    code = "RESOURCE_EXHAUSTED"


class SourceTimeout(OmniSQLError):
    """An upstream API did not answer within the query deadline."""

    code = "SOURCE_TIMEOUT"


class StaleData(OmniSQLError):
    """Cached data is older than the query's ``max_staleness_ms`` and cannot be refreshed."""

    code = "STALE_DATA"


class QueryCancelled(OmniSQLError):
    """The client cancelled the call (or its deadline passed): fetching stopped, no further API calls are made."""

    code = "CANCELLED"


class QueryTimeout(OmniSQLError):
    """The whole query (planning, fetching and DuckDB) ran past ``query_deadline_s`` and was stopped."""

    code = "QUERY_TIMEOUT"


class UpstreamError(OmniSQLError):
    """An upstream API answered with an error or a body we cannot read."""

    code = "UPSTREAM_ERROR"


class Unsupported(OmniSQLError):
    """A Flight SQL feature OmniSQL does not offer (transactions, updates, ingestion, Substrait, ...); the
    message names it and says what to use instead."""

    code = "UNIMPLEMENTED"
