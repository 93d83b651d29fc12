"""Rewrite passes over one WHERE/ON conjunct, run in this order. Each is a pure function with golden
``input → expected`` fixtures in tests/test_passes.py."""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp

from planner.passes.flip_comparisons import flip_comparisons
from planner.passes.or_to_in import or_to_in

Pass = Callable[[exp.Expr], exp.Expr]

PASSES: tuple[tuple[str, Pass], ...] = (
    ("or_to_in", or_to_in),
    ("flip_comparisons", flip_comparisons),
)


def rewrite(condition: exp.Expr) -> exp.Expr:
    for _, rewrite_pass in PASSES:
        condition = rewrite_pass(condition)
    return condition


__all__ = ["PASSES", "rewrite"]
