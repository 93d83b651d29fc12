"""The audit log: one JSON line per query on the logger ``omnisql.audit`` (route it with logging config).

A line says who ran what shape of statement over which tables, what the policy did and how it ended. It never
holds row contents, literal values, parameters, tokens or secrets: the statement is a fingerprint (SHA-256 of the
SQL with every literal replaced by ``?`` and comments dropped), so the same query with other values has the same
fingerprint and a password typed into a WHERE clause never reaches the log.

    {"event": "query", "time": "2026-01-01T12:00:00.000Z", "trace_id": "...", "user": "ana", "tenant": "acme",
     "roles": ["dev"], "statement": "9f2c...", "tables": ["github.pull_requests"], "rows": 12,
     "decisions": ["github.pull_requests: row filter"], "outcome": "ok", "duration_ms": 41.7}
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import re
import time
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.tokens import TokenType

from core.errors import OmniSQLError
from security.principals import Principal

__all__ = ["AUDIT_LOGGER", "audit_query", "fingerprint", "normalize_sql", "outcome_of"]

AUDIT_LOGGER = "omnisql.audit"
DIALECT = "duckdb"
UNREADABLE = "<unreadable statement>"  # what SQL that cannot even be tokenized normalizes to
MAX_FIELD_CHARS = 256
MAX_LIST_ITEMS = 100
_OUTCOME = re.compile(r"ok|[A-Z][A-Z0-9_]{0,63}")
_LITERAL_NODES: tuple[type[exp.Expr], ...] = tuple(
    getattr(exp, name) for name in ("Literal", "BitString", "HexString", "ByteString", "RawString", "UnicodeString",
                                    "National", "Heredoc") if hasattr(exp, name))
_LITERAL_TOKENS = frozenset(TokenType[name] for name in (
    "STRING", "NUMBER", "BIT_STRING", "HEX_STRING", "BYTE_STRING", "NATIONAL_STRING", "NATIONAL_RAW_STRING",
    "RAW_STRING", "HEREDOC_STRING", "UNICODE_STRING") if name in TokenType.__members__)


def outcome_of(error: BaseException | None) -> str:
    """``ok``, the error's code for our errors, ``INTERNAL`` for anything else (its text is never used)."""
    if error is None:
        return "ok"
    return error.code if isinstance(error, OmniSQLError) else "INTERNAL"


def fingerprint(sql: str) -> str:
    """SHA-256 (hex) of the normalized statement: equal for the same query with other literal values."""
    return hashlib.sha256(normalize_sql(sql).encode()).hexdigest()


@lru_cache(maxsize=512)
def normalize_sql(sql: str) -> str:
    """``sql`` with every literal replaced by ``?`` (an IN list of literals by one ``?``), comments dropped,
    keywords and spacing canonical. What sqlglot cannot parse is normalized token by token instead; the result
    is checked to hold no literal token either way."""
    try:
        trees = sqlglot.parse(sql, read=DIALECT)
        if trees and all(t is not None and not isinstance(t, exp.Command) for t in trees):
            text = "; ".join(_placeholders(t).sql(DIALECT, comments=False) for t in trees if t is not None)
            if not _holds_literal(text):
                return text
    except Exception:  # noqa: BLE001 -- whatever the parser makes of hostile text, the audit line must be written
        pass
    return _by_tokens(sql)


def _placeholders(tree: exp.Expr) -> exp.Expr:
    def replace(node: exp.Expr) -> exp.Expr:
        if isinstance(node, _LITERAL_NODES):
            return exp.Placeholder()
        if isinstance(node, exp.In) and node.expressions and all(map(_is_literal, node.expressions)):
            return exp.In(this=node.this, expressions=[exp.Placeholder()])
        return node
    return tree.transform(replace)


def _is_literal(node: exp.Expr) -> bool:
    return isinstance(node, _LITERAL_NODES) or (isinstance(node, exp.Neg) and isinstance(node.this, _LITERAL_NODES))


def _tokens(sql: str) -> list[tuple[bool, str]]:
    """(is a literal value, text) per token; the number of a ``$1`` parameter is no value."""
    tokens = sqlglot.Dialect.get_or_raise(DIALECT).tokenize(sql)
    return [(t.token_type in _LITERAL_TOKENS and not (i and tokens[i - 1].token_type == TokenType.PARAMETER), t.text)
            for i, t in enumerate(tokens)]


def _holds_literal(text: str) -> bool:
    try:
        return any(literal for literal, _ in _tokens(text))
    except Exception:  # noqa: BLE001
        return True


def _by_tokens(sql: str) -> str:
    try:
        tokens = _tokens(sql)
    except Exception:  # noqa: BLE001 -- an unterminated string, say: its text must not leak, so none is kept
        return UNREADABLE
    return " ".join("?" if literal else text for literal, text in tokens)


def audit_query(*, trace_id: str, principal: Principal, sql: str, tables: Iterable[str], rows: int | None,
                decisions: Iterable[str], outcome: str, duration_ms: float, now: float | None = None,
                logger: logging.Logger | None = None) -> dict[str, Any]:
    """Write one audit line (at INFO on ``omnisql.audit``) and return it as a dict.

    ``outcome`` is ``ok`` or an error code (``outcome_of(exc)``); anything else is recorded as ``INTERNAL``,
    so an error message passed by mistake cannot carry values into the log. ``rows`` is None when no result
    was produced. ``decisions`` are the policy's short summaries, in the order they were applied."""
    stamp = datetime.datetime.fromtimestamp(time.time() if now is None else now, datetime.UTC)
    record = {
        "event": "query",
        "time": stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "trace_id": _short(trace_id),
        "user": _short(principal.user),
        "tenant": _short(principal.tenant),
        "roles": [_short(r) for r in principal.roles[:MAX_LIST_ITEMS]],
        "statement": fingerprint(sql),
        "tables": sorted({_short(t) for t in tables})[:MAX_LIST_ITEMS],
        "rows": rows if isinstance(rows, int) and not isinstance(rows, bool) and rows >= 0 else None,
        "decisions": [_short(d) for d in list(decisions)[:MAX_LIST_ITEMS]],
        "outcome": outcome if isinstance(outcome, str) and _OUTCOME.fullmatch(outcome) else "INTERNAL",
        "duration_ms": round(float(duration_ms), 3),
    }
    log = logger or logging.getLogger(AUDIT_LOGGER)
    if log.isEnabledFor(logging.INFO):
        log.info("%s", json.dumps(record, separators=(",", ":")))  # ASCII-escaped: one line whatever the names hold
    return record


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= MAX_FIELD_CHARS else text[:MAX_FIELD_CHARS] + "…"
