"""``POST /v1/query``'s body and headers, checked before anything runs: every mistake is a 400 that says what is
wrong, so a script's author fixes it from the message alone."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from core.errors import InvalidQuery

__all__ = ["ARROW_STREAM", "MAX_BODY_BYTES", "QueryRequest", "parse_body", "wants_arrow"]

ARROW_STREAM = "application/vnd.apache.arrow.stream"
MAX_BODY_BYTES = 1 << 20  # SQL and parameters, not data: a megabyte is plenty
_KEYS = {"sql", "params", "metadata"}
_METADATA_KEYS = ("max_staleness_ms", "allow_stale", "default_schema")


@dataclass(frozen=True)
class QueryRequest:
    sql: str
    params: pa.Table | None  # one row: the values bound to ?, $1, ... (None when there are none)
    max_staleness_ms: int | None
    allow_stale: bool
    default_schema: str | None = None  # unqualified table names resolve here (Flight: the session option ``schema``)


def parse_body(raw: bytes) -> QueryRequest:
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidQuery('the request body must be JSON like {"sql": "SELECT ...", "params": [...]}') from exc
    if not isinstance(body, dict):
        raise InvalidQuery('the request body must be a JSON object like {"sql": "SELECT ..."}')
    unknown = sorted(set(body) - _KEYS)
    if unknown:
        raise InvalidQuery(f"unknown key(s) in the request body: {', '.join(unknown)}; expected sql, params, "
                           "metadata")
    sql = body.get("sql")
    if not isinstance(sql, str) or not sql.strip():
        raise InvalidQuery('"sql" is required: the SQL text of one query, as a string')
    metadata = body.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise InvalidQuery('"metadata" must be an object: {"max_staleness_ms": N, "allow_stale": false, '
                           '"default_schema": "jira"}')
    unknown = sorted(set(metadata) - set(_METADATA_KEYS))
    if unknown:
        raise InvalidQuery(f"unknown key(s) in metadata: {', '.join(unknown)}; expected {', '.join(_METADATA_KEYS)}")
    staleness = metadata.get("max_staleness_ms")
    if staleness is not None and (isinstance(staleness, bool) or not isinstance(staleness, int) or staleness < 0):
        raise InvalidQuery('metadata.max_staleness_ms must be a whole number of milliseconds >= 0')
    allow_stale = metadata.get("allow_stale", False)
    if not isinstance(allow_stale, bool):
        raise InvalidQuery("metadata.allow_stale must be true or false")
    schema = metadata.get("default_schema")
    if schema is not None and not isinstance(schema, str):
        raise InvalidQuery('metadata.default_schema must be a string naming a schema, e.g. "jira" (or null: none)')
    return QueryRequest(sql, _params(body.get("params")), staleness, allow_stale, schema.lower() if schema else None)


def _params(values: Any) -> pa.Table | None:
    """A JSON array of scalars as one row of Arrow values (int → BIGINT, number → DOUBLE, string → VARCHAR,
    bool → BOOLEAN, null → NULL), bound positionally: the first to ``?``/``$1``."""
    if values is None:
        return None
    if not isinstance(values, list):
        raise InvalidQuery('"params" must be an array of values bound in order to ?, $1, $2, ...')
    columns = {}
    for number, value in enumerate(values, start=1):
        if isinstance(value, dict | list):
            raise InvalidQuery(f"parameter ${number} must be a string, number, boolean or null, not "
                               f"{'an object' if isinstance(value, dict) else 'an array'}")
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidQuery(f"parameter ${number} must be a finite number")
        try:
            columns[str(number)] = pa.array([value])
        except (pa.ArrowException, OverflowError) as exc:
            raise InvalidQuery(f"parameter ${number} is out of range for a 64-bit integer; send it as a string") \
                from exc
    return pa.table(columns) if columns else None


def wants_arrow(accept: str) -> bool:
    """``Accept: application/vnd.apache.arrow.stream`` (alone or preferred to JSON) asks for Arrow IPC."""
    for part in accept.split(","):
        media = part.split(";")[0].strip().lower()
        if media == ARROW_STREAM:
            return True
        if media in ("application/json", "*/*", "application/*"):
            return False
    return False
