"""What an external decision point may answer for one (principal, table), read as strictly as the tenant file's
rules: the same mask vocabulary, the same row-filter parser (a condition over the table's columns, no subqueries,
``:user.x`` bound as literals) and the same checks a rule gets at start-up. Anything else is refused — a typo such
as ``row_fitler`` must fail the query, never drop a filter and let every row through.

The answer (OPA's data API shape)::

    {"result": {"allow": true, "rule": "qa pull requests",
                "row_filter": "team_id = :user.team",
                "masks": {"author": "redact", "author_email": "email", "diff_link": "deny"}}}

``{"result": false}`` / ``{"result": true}`` are a plain deny / allow; an answer without ``result`` (OPA's
undefined decision) denies."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sqlglot import exp

from core.types import TableSpec
from security.masks import MIN_KEY_BYTES, Mask, mask_supports
from security.policy import (
    PolicyError,
    TableDecision,
    bind_row_filter,
    parse_mask,
    parse_row_filter,
    unknown_filter_columns,
)
from security.principals import Principal

__all__ = ["ANSWER_KEYS", "AnswerError", "read_answer"]

ANSWER_KEYS = ("allow", "rule", "row_filter", "masks")
LABEL = "decision point"
_RULE_NAME = re.compile(r"[\w .:/#@()-]{1,80}")  # shown in EXPLAIN and the audit log: short, printable


class AnswerError(ValueError):
    """The answer cannot be used; the message says why without quoting the answer's SQL or any value."""


def read_answer(body: Any, spec: TableSpec, principal: Principal, mask_key: bytes) -> TableDecision:
    """The decision for ``spec`` in ``body`` (the decoded JSON), checked like a rule of the tenant file."""
    table = spec.qualified_name
    if not isinstance(body, dict):
        raise AnswerError("the answer is not a JSON object")
    if "result" not in body:
        return TableDecision(table, False, f"{LABEL} (no decision)")
    result = body["result"]
    if isinstance(result, bool):
        return TableDecision(table, result, LABEL)
    if not isinstance(result, dict):
        raise AnswerError("result must be an object or true/false")
    unknown = set(result) - set(ANSWER_KEYS)
    if unknown:
        raise AnswerError(f"result has unknown key(s) {sorted(unknown)}; known: {', '.join(ANSWER_KEYS)}")
    allow, rule = result.get("allow"), result.get("rule")
    if not isinstance(allow, bool):
        raise AnswerError("result.allow must be true or false")
    if rule is not None and not (isinstance(rule, str) and _RULE_NAME.fullmatch(rule)):
        raise AnswerError("result.rule must be a short name (letters, digits, spaces and .:/#@()-)")
    label = f"{LABEL}: {rule}" if rule else LABEL
    if not allow:
        return TableDecision(table, False, label)
    row_filter = _row_filter(result.get("row_filter"), spec, principal)
    masks = _masks(result.get("masks"), spec, mask_key)
    return TableDecision(table, True, label, row_filter,
                         {c: m for c, m in masks.items() if m is not None},
                         frozenset(c for c, m in masks.items() if m is None))


def _row_filter(text: Any, spec: TableSpec, principal: Principal) -> exp.Expr | None:
    if text is None:
        return None
    if not isinstance(text, str) or not text.strip():
        raise AnswerError("result.row_filter must be a SQL condition (a string) or null")
    try:
        unknown = unknown_filter_columns(parse_row_filter(text, LABEL), spec)
    except PolicyError as exc:
        reason = "has a subquery or is no condition" if "subquer" in str(exc) else "is not a SQL condition"
        raise AnswerError(f"result.row_filter {reason}") from exc
    if unknown:
        raise AnswerError(f"result.row_filter names {sorted(unknown)}, which {spec.qualified_name} does not have")
    return bind_row_filter(text, principal)


def _masks(raw: Any, spec: TableSpec, mask_key: bytes) -> Mapping[str, Mask | None]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise AnswerError("result.masks must map column names to masks")
    names = {c.name for c in spec.columns}
    masks: dict[str, Mask | None] = {}
    for column, value in raw.items():
        if column not in names:
            raise AnswerError(f"result.masks names {column!r}, which {spec.qualified_name} does not have")
        try:
            mask = parse_mask(value, LABEL, column)
        except PolicyError as exc:
            raise AnswerError(f"result.masks.{column} must be redact, null, hash, email, deny or {{partial: N}}") \
                from exc
        if mask is not None and not mask_supports(mask, spec.column(column).type):
            raise AnswerError(f"a {mask.kind} mask cannot apply to {spec.qualified_name}.{column} "
                              f"({spec.column(column).type}); use redact, null or deny")
        if mask is not None and mask.kind in ("hash", "email") and len(mask_key) < MIN_KEY_BYTES:
            raise AnswerError(f"a {mask.kind} mask needs a key of at least {MIN_KEY_BYTES} bytes in the variable "
                              "policy.mask_key_env names")
        masks[column] = mask
    return masks
