"""What the server lets queries and principals use: the tenant config's limit keys, validated, with their defaults.

The engine's per-query limits (memory, result size, API calls, deadline) travel in ``QueryLimits``; the
fairness limits (queries at once, prepared statements, upload size) are the Flight layer's own. Every limit is
refused with RESOURCE_EXHAUSTED naming its key, so an operator knows what to raise."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from planner.engine import QueryLimits

__all__ = ["LimitError", "ServerLimits", "parse_deadline", "parse_limits", "parse_size"]

MiB = 1024 * 1024
_UNITS = {"": 1, "b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4,
          "kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*", re.IGNORECASE)


class LimitError(ValueError):
    """A limit's value is wrong; the message names the key and what it accepts."""


@dataclass(frozen=True)
class ServerLimits:
    duckdb_memory_limit: int | None = None  # bytes DuckDB may use for all queries together (None: a quarter of RAM)
    max_result_bytes: int = 512 * MiB  # the largest result one query may return
    max_api_calls_per_query: int = 5000  # estimated API calls, refused before spending
    max_concurrent_queries: int = 16  # planning (GetFlightInfo, GetSchema, prepare) and DoGet, all principals
    max_concurrent_queries_per_principal: int = 4
    max_prepared_statements_per_principal: int = 100  # beyond it, the principal's least recently used closes
    max_upload_bytes: int = 16 * MiB  # one DoPut (bound parameters), counted while it is read
    max_fetch_bytes_per_query: int = 1024 * MiB  # Arrow bytes one query's scans may bring in, counted as they come

    def query_limits(self, deadline_s: float) -> QueryLimits:
        """The engine's per-query limits."""
        return QueryLimits(deadline_s=deadline_s, memory_bytes=self.duckdb_memory_limit,
                           result_bytes=self.max_result_bytes, api_calls=self.max_api_calls_per_query,
                           fetch_bytes=self.max_fetch_bytes_per_query)

    @property
    def grpc_workers(self) -> int:
        """gRPC worker threads: room for every admitted query, for as many refused at once, and for the cheap
        calls (handshakes, metadata, actions), so the query caps bite long before the workers run out."""
        return 2 * self.max_concurrent_queries + 16

    @property
    def max_bound_bytes_per_principal(self) -> int:
        """Bound parameters all of one principal's open prepared statements may hold together."""
        return 4 * self.max_upload_bytes

    @property
    def max_receive_message_bytes(self) -> int:
        """gRPC's per-message cap: an upload up to ``max_upload_bytes`` in one message, and a DoGet ticket that
        carries those parameters back (base64: 4/3 of their size) with its SQL."""
        return 2 * self.max_upload_bytes + 4 * MiB


_POSITIVE_INTS = ("max_api_calls_per_query", "max_concurrent_queries", "max_concurrent_queries_per_principal",
                  "max_prepared_statements_per_principal")
_SIZES = ("duckdb_memory_limit", "max_result_bytes", "max_fetch_bytes_per_query", "max_upload_bytes")
KEYS = _POSITIVE_INTS + _SIZES


def parse_size(key: str, value: Any) -> int:
    """Bytes from an integer or a size string: ``"4GiB"``, ``"512 MiB"``, ``"100MB"`` (KiB/MiB/GiB/TiB are
    powers of 1024, KB/MB/GB/TB of 1000, as DuckDB reads them)."""
    if isinstance(value, int) and not isinstance(value, bool):
        number: float = value
    elif isinstance(value, str) and (match := _SIZE.fullmatch(value)) and match[2].lower() in _UNITS:
        number = float(match[1]) * _UNITS[match[2].lower()]
    else:
        raise LimitError(f"{key} must be a number of bytes or a size such as '4GiB' or '512MiB', not {value!r}")
    if number < 1:
        raise LimitError(f"{key} must be at least 1 byte, not {value!r}")
    return int(number)


def positive_int(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise LimitError(f"{key} must be a whole number of at least 1, not {value!r}")
    return value


def parse_limits(raw: Mapping[str, Any]) -> ServerLimits:
    """The limit keys of a tenant config (top level), each validated; a key left out keeps its default."""
    values: dict[str, int] = {}
    for key in KEYS:
        if raw.get(key) is not None:
            values[key] = parse_size(key, raw[key]) if key in _SIZES else positive_int(key, raw[key])
    return ServerLimits(**values)


def parse_deadline(raw: Mapping[str, Any]) -> float:
    """``query_deadline_s``: seconds, more than 0 (default 60)."""
    value = raw.get("query_deadline_s", 60.0)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < float("inf"):
        raise LimitError(f"query_deadline_s must be a number of seconds above 0, not {value!r}")
    return float(value)

