"""Pass: put the column on the left of a comparison (``5 < x`` → ``x > 5``) so pushdown sees one shape."""

from __future__ import annotations

from sqlglot import exp

_FLIPPED: dict[type[exp.Expr], type[exp.Expr]] = {
    exp.LT: exp.GT, exp.GT: exp.LT, exp.LTE: exp.GTE, exp.GTE: exp.LTE, exp.EQ: exp.EQ, exp.NEQ: exp.NEQ,
}


def flip_comparisons(condition: exp.Expr) -> exp.Expr:
    flipped = _FLIPPED.get(type(condition))
    if flipped is None or not isinstance(condition, exp.Binary):
        return condition
    if not isinstance(condition.left, exp.Column) and isinstance(condition.right, exp.Column):
        return flipped(this=condition.right.copy(), expression=condition.left.copy())
    return condition
