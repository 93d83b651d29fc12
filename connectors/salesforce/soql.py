"""Build SOQL from normalized predicates. Field names come only from ``describe`` (never from SQL text) and every
value is rendered by SOQL's literal rules: strings single-quoted with the documented backslash escapes (``\\%``
and ``\\_`` only in LIKE), numbers in plain decimal, dates unquoted. So no value can change the query's structure.

Each clause also says whether SOQL enforces exactly what SQL means: string comparison and LIKE are
case-insensitive in SOQL, so they only narrow; the connector re-checks every row, and pushes ``LIMIT`` into the
SOQL only when every clause is exact."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from core.types import Predicate

__all__ = ["Clause", "FieldRef", "build_where", "like_prefix", "literal", "quote", "soql_query"]

_ESCAPES = {"\\": "\\\\", "'": "\\'", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}
STRING_KINDS = frozenset({"id", "reference", "string", "picklist", "multipicklist", "textarea", "email", "phone",
                          "url", "combobox", "encryptedstring", "time"})
NUMBER_KINDS = frozenset({"int", "double", "currency", "percent", "long"})


@dataclass(frozen=True)
class FieldRef:
    """A column's API name (from describe) and its Salesforce field type."""

    name: str
    kind: str


@dataclass(frozen=True)
class Clause:
    text: str
    exact: bool  # SOQL enforces the SQL meaning; False: it only narrows


def quote(value: str, like: bool = False) -> str:
    """A SOQL string literal. Other control characters become ``\\uXXXX``."""
    out = []
    for ch in value:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif like and ch in "%_":
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "'" + "".join(out) + "'"


def like_prefix(prefix: str) -> str:
    """``'prefix%'`` with the prefix's own ``%`` and ``_`` escaped."""
    return quote(prefix, like=True)[:-1] + "%'"


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def literal(value: Any, kind: str, up: bool = False) -> tuple[str, bool] | None:
    """The value as a SOQL literal of the field's type and whether it is exact; None when it cannot be written.

    A dateTime literal has whole seconds: a value with a fraction is floored (``up``: ceiled) so the SOQL window
    contains the SQL one, and is marked inexact."""
    if kind in STRING_KINDS:
        return (quote(value), True) if isinstance(value, str) else None
    if kind == "boolean":
        return ("true" if value else "false", True) if isinstance(value, bool) else None
    if kind in NUMBER_KINDS:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            return None
        return (str(value) if isinstance(value, int) else format(Decimal(repr(value)), "f")), True
    if kind == "date":
        if isinstance(value, datetime):
            return None
        return (value.isoformat(), True) if isinstance(value, date) else None
    if kind == "datetime" and isinstance(value, datetime):
        moment = _utc(value)
        whole = moment.replace(microsecond=0)
        if up and whole != moment:
            whole += timedelta(seconds=1)
        return whole.strftime("%Y-%m-%dT%H:%M:%SZ"), whole == moment
    return None


def _clause(field: FieldRef, p: Predicate) -> Clause | None:
    name, kind = field.name, field.kind
    textual = kind in STRING_KINDS  # case-insensitive in SOQL
    if p.op == "IS_NULL":
        return Clause(f"{name} = null", True)
    if p.op == "LIKE_PREFIX":
        return Clause(f"{name} LIKE {like_prefix(str(p.values[0]))}", False) if textual else None
    if p.op == "IN":
        rendered = [literal(v, kind) for v in p.values]
        if any(r is None for r in rendered):
            return None
        return Clause(f"{name} IN ({', '.join(r[0] for r in rendered if r)})",
                      not textual and all(r[1] for r in rendered if r))
    if p.op == "BETWEEN":
        low, high = literal(p.values[0], kind), literal(p.values[1], kind, up=True)
        if low is None or high is None:
            return None
        return Clause(f"({name} >= {low[0]} AND {name} <= {high[0]})", low[1] and high[1] and not textual)
    if p.op in ("=", "<>", "<", "<=", ">", ">="):
        if p.op == "<>" and textual:
            return None  # case-insensitive != would drop rows SQL keeps
        rendered_one = literal(p.values[0], kind, up=p.op in ("<", "<="))
        if rendered_one is None:
            return None
        text, exact = rendered_one
        if p.op == "<>":  # SOQL's != keeps nulls; SQL's <> does not
            return Clause(f"({name} != {text} AND {name} != null)", exact) if exact else None
        if p.op == "=" and not exact:
            return None
        op = {"<": "<=", ">": ">="}.get(p.op, p.op) if not exact else p.op  # a widened bound must include it
        return Clause(f"{name} {op} {text}", exact and not textual)
    return None


def build_where(predicates: Sequence[Predicate], fields: Mapping[str, FieldRef]) -> tuple[str, bool]:
    """``(where, exact)``: the AND of every pushable predicate, and whether SOQL enforces all of them exactly
    (any predicate left out or only narrowed makes it inexact)."""
    clauses: list[Clause] = []
    exact = True
    for p in predicates:
        field = fields.get(p.column)
        clause = _clause(field, p) if field is not None else None
        if clause is None:
            exact = False
            continue
        clauses.append(clause)
        exact = exact and clause.exact
    return " AND ".join(c.text for c in clauses), exact


def soql_query(select: Sequence[str], sobject: str, where: str, order: tuple[str, bool] | None = None,
               limit: int | None = None, count: bool = False) -> str:
    """``SELECT ... FROM sobject [WHERE] [ORDER BY] [LIMIT]``; ``count``: ``SELECT COUNT()``."""
    parts = [f"SELECT {'COUNT()' if count else ', '.join(select)} FROM {sobject}"]
    if where:
        parts.append(f"WHERE {where}")
    if order is not None:
        parts.append(f"ORDER BY {order[0]} {'DESC' if order[1] else 'ASC'}")
    if limit is not None:
        parts.append(f"LIMIT {limit}")
    return " ".join(parts)
