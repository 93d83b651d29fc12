"""Pass: an OR of equalities (or IN lists) on one column becomes one IN list, which an API can take."""

from __future__ import annotations

from sqlglot import exp


def _column_values(node: exp.Expr) -> tuple[exp.Column, list[exp.Expr]] | None:
    if isinstance(node, exp.Paren):
        return _column_values(node.this)
    if isinstance(node, exp.EQ):
        col, val = (node.left, node.right) if isinstance(node.left, exp.Column) else (node.right, node.left)
        if isinstance(col, exp.Column) and not val.find(exp.Column):
            return col, [val]
    if isinstance(node, exp.In) and isinstance(node.this, exp.Column) and not node.args.get("query") \
            and node.expressions:
        return node.this, list(node.expressions)
    if isinstance(node, exp.Or):
        left, right = _column_values(node.left), _column_values(node.right)
        if left and right and left[0] == right[0]:
            return left[0], left[1] + right[1]
    return None


def or_to_in(condition: exp.Expr) -> exp.Expr:
    if not isinstance(condition, exp.Or | exp.Paren):
        return condition
    found = _column_values(condition)
    if found is None or not isinstance(condition.unnest(), exp.Or):
        return condition
    column, values = found
    return exp.In(this=column.copy(), expressions=[v.copy() for v in values])
