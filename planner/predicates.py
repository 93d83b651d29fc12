"""Turn one rewritten conjunct into a normalized ``Predicate`` on one column, with values coerced to the
column's type, or ``None`` when it is not a shape an API could take (it then stays local only)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pyarrow as pa
from sqlglot import exp

from core.types import Op, Predicate, TableSpec

__all__ = ["plain", "to_predicate"]

_OPS: dict[type[exp.Expr], Op] = {exp.EQ: "=", exp.NEQ: "<>", exp.LT: "<", exp.LTE: "<=", exp.GT: ">",
                                         exp.GTE: ">="}
_NO = object()  # "cannot coerce": the condition is not pushed
_T = exp.DataType.Type
# TIMESTAMP 'x' / TIMESTAMPTZ 'x' / DATE 'x' literals (sqlglot spells DuckDB's TIMESTAMP as TIMESTAMPNTZ)
_TIMESTAMP_TYPES = {_T.TIMESTAMP, _T.TIMESTAMPNTZ, _T.TIMESTAMPTZ, _T.TIMESTAMPLTZ, _T.DATETIME, _T.DATE}


def _coerce(node: exp.Expr, typ: pa.DataType) -> Any:
    """A literal's value in the column's type, only when SQL would compare them the same way."""
    if pa.types.is_date32(typ) or pa.types.is_boolean(typ):  # Salesforce's date and boolean fields
        return _date_or_bool(node, typ)
    if isinstance(node, exp.Cast) and isinstance(node.this, exp.Literal) and node.this.is_string:
        target = node.to.this
        if pa.types.is_timestamp(typ) and target == _T.DATE:  # DATE '2026-06-01 05:00' is midnight, not 05:00
            return _parse_date(node.this.this)
        if pa.types.is_timestamp(typ) and target in _TIMESTAMP_TYPES:
            return _parse_ts(node.this.this)
        return _NO
    if not isinstance(node, exp.Literal):
        return _NO
    if pa.types.is_string(typ):
        return node.this if node.is_string else _NO
    if pa.types.is_integer(typ) and node.is_number:
        value = float(node.this)
        return int(value) if value.is_integer() and abs(value) < 2**62 else _NO
    if pa.types.is_floating(typ) and node.is_number:
        return float(node.this)
    if pa.types.is_timestamp(typ) and node.is_string:
        return _parse_ts(node.this)
    return _NO


def _date_or_bool(node: exp.Expr, typ: pa.DataType) -> Any:
    """``DATE '2026-10-01'`` or ``'2026-10-01'`` on a date column; ``true``/``false`` on a boolean one."""
    if pa.types.is_boolean(typ):
        return node.this if isinstance(node, exp.Boolean) else _NO
    if isinstance(node, exp.Cast) and node.to.this == exp.DataType.Type.DATE:
        node = node.this
    if not (isinstance(node, exp.Literal) and node.is_string):
        return _NO
    try:
        return date.fromisoformat(node.this.strip())
    except ValueError:
        return _NO


def _parse_date(text: str) -> Any:
    """A DATE literal as the midnight it compares as; only a plain date (DuckDB drops a time part, which the
    timestamp parser would keep: such a literal stays with DuckDB)."""
    try:
        return datetime.combine(date.fromisoformat(text.strip()), datetime.min.time())
    except ValueError:
        return _NO


def _parse_ts(text: str) -> Any:
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        try:
            return datetime.combine(date.fromisoformat(text.strip()), datetime.min.time())
        except ValueError:
            return _NO
    # The columns are UTC instants and DuckDB's session time zone is UTC: a naive time is read as UTC, an explicit
    # offset names the instant exactly.
    return parsed.astimezone(UTC).replace(tzinfo=None) if parsed.tzinfo else parsed


def _like_prefix(pattern: exp.Expr) -> str | None:
    if not (isinstance(pattern, exp.Literal) and pattern.is_string):
        return None
    text = pattern.this
    if not text.endswith("%"):
        return None
    prefix = text[:-1]
    return prefix if prefix and not any(ch in prefix for ch in "%_\\") else None


def _contains(node: exp.ArrayContains, spec: TableSpec) -> Predicate | None:
    """``list_contains(labels, 'bug')`` (DuckDB's spellings all parse to ArrayContains) on a list column."""
    column = node.this
    if not isinstance(column, exp.Column) or column.name not in {c.name for c in spec.columns}:
        return None
    typ = spec.column(column.name).type
    if not pa.types.is_list(typ):
        return None
    value = _coerce(node.expression, typ.value_type)
    return None if value is _NO or value is None else Predicate(column.name, "CONTAINS", (value,))


# The arguments each shape may carry. sqlglot keeps modifiers as flags on the node (``NOT LIKE`` is ``Like``
# with ``negate``, ``BETWEEN SYMMETRIC`` is ``Between`` with ``symmetric``, ``1 IN labels`` is ``In`` with
# ``field``): a node with any other argument set is a different condition and is never pushed.
_PLAIN_ARGS: dict[type[exp.Expr], frozenset[str]] = {
    **{op: frozenset({"this", "expression"}) for op in _OPS},
    exp.In: frozenset({"this", "expressions"}), exp.Between: frozenset({"this", "low", "high", "symmetric"}),
    exp.Like: frozenset({"this", "expression"}), exp.Is: frozenset({"this", "expression"}),
    exp.ArrayContains: frozenset({"this", "expression"}),
}


def plain(node: exp.Expr) -> bool:
    """Whether ``node`` is one of the shapes pushdown knows with no modifier flag it does not (see ``_PLAIN_ARGS``)."""
    allowed = _PLAIN_ARGS.get(type(node))
    return allowed is not None and all(k in allowed or k.startswith("_") for k, v in node.args.items() if v)


def to_predicate(condition: exp.Expr, spec: TableSpec) -> Predicate | None:
    node = condition.unnest()
    if not plain(node):
        return None
    if isinstance(node, exp.ArrayContains):
        return _contains(node, spec)
    column = node.this if isinstance(node, exp.In | exp.Between | exp.Like | exp.Is) else node.args.get("this")
    if not isinstance(column, exp.Column) or column.name not in {c.name for c in spec.columns}:
        return None
    typ = spec.column(column.name).type
    if type(node) in _OPS:
        value = _coerce(node.expression, typ)
        return None if value is _NO else Predicate(column.name, _OPS[type(node)], (value,))
    if isinstance(node, exp.In):
        values = [_coerce(v, typ) for v in node.expressions]
        if not values or any(v is _NO for v in values):
            return None
        return Predicate(column.name, "IN", tuple(dict.fromkeys(values)))
    if isinstance(node, exp.Between):
        low, high = _coerce(node.args["low"], typ), _coerce(node.args["high"], typ)
        if _NO in (low, high):
            return None
        if node.args.get("symmetric") and high < low:  # BETWEEN SYMMETRIC 8 AND 3 is BETWEEN 3 AND 8
            low, high = high, low
        return Predicate(column.name, "BETWEEN", (low, high))
    if isinstance(node, exp.Like) and pa.types.is_string(typ):
        prefix = _like_prefix(node.expression)
        return Predicate(column.name, "LIKE_PREFIX", (prefix,)) if prefix else None
    if isinstance(node, exp.Is) and isinstance(node.expression, exp.Null):
        return Predicate(column.name, "IS_NULL")
    return None
