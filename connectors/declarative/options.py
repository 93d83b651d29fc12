"""Pushed predicates → request options, as the manifest's ``filters`` block says: query parameters, JSON body
fields, GraphQL variables, a GraphQL filter object, or fragments of the API's own query language.

Values only ever travel as data: in a GraphQL *variable* (never spliced into the document), URL-encoded by httpx,
as JSON, or as a quoted literal of the query language. A predicate the manifest cannot express (an operator it
does not map, a value its ``match`` regex rejects) is simply not sent: the connector re-checks every condition on
the rows it lists, so leaving one out only costs rows, never correctness."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from connectors.declarative.manifest import FilterDef, OrderDef, TableDef
from core.types import Predicate

__all__ = ["Options", "build_options", "graphql_clause"]

COMPARATORS = {"=": "eq", "<>": "neq", "IN": "in", "<": "lt", "<=": "lte", ">": "gt", ">=": "gte",
               "LIKE_PREFIX": "startsWith"}
_QL_OPS = {"=": "=", "<>": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


@dataclass
class Options:
    """What a scan adds to the manifest's request template."""

    params: dict[str, Any] = field(default_factory=dict)
    body: dict[str, Any] = field(default_factory=dict)
    variables: dict[str, Any] = field(default_factory=dict)
    clauses: list[dict[str, Any]] = field(default_factory=list)  # GraphQL filter parts, ANDed
    fragments: list[str] = field(default_factory=list)  # query-language parts, joined
    sent: list[str] = field(default_factory=list)  # the predicates that went out, for logs and tests

    def graphql_filter(self) -> dict[str, Any] | None:
        """One filter object: the clauses merged when their keys do not collide, else ``{and: [...]}``."""
        if not self.clauses:
            return None
        merged: dict[str, Any] = {}
        for clause in self.clauses:
            if not _merge_into(merged, clause):
                return {"and": self.clauses}
        return merged


def _merge_into(target: dict[str, Any], clause: Mapping[str, Any]) -> bool:
    for key, value in clause.items():
        if key not in target:
            target[key] = value
        elif isinstance(target[key], dict) and isinstance(value, dict):
            if not _merge_into(target[key], value):
                return False
        else:
            return False
    return True


def format_value(value: Any, style: str) -> Any:
    """A predicate value as the API wants it (timestamps and dates as ISO 8601 text, or epoch numbers)."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        if style == "epoch_s":
            return int(value.timestamp())
        if style == "epoch_ms":
            return int(value.timestamp() * 1000)
        if style == "date":
            return value.date().isoformat()
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def graphql_clause(spec: FilterDef, predicate: Predicate) -> dict[str, Any] | None:
    """``{team: {key: {eq: "ENG"}}}`` for ``team_key = 'ENG'`` (path ``team.key``); None when not expressible."""
    values = [format_value(v, spec.value_format) for v in predicate.values]
    op = predicate.op
    if op == "BETWEEN":
        comparator: dict[str, Any] = {spec.comparators.get(">=", "gte"): values[0],
                                      spec.comparators.get("<=", "lte"): values[1]}
    elif op == "IS_NULL":
        comparator = {spec.comparators.get("IS_NULL", "null"): True}
    elif op == "IN":
        comparator = {spec.comparators.get("IN", "in"): values}
    elif op in COMPARATORS:
        comparator = {spec.comparators.get(op, COMPARATORS[op]): values[0]}
    else:
        return None
    node: dict[str, Any] = comparator
    for key in reversed(str(spec.arg).split(".")):
        node = {key: node}
    return node


def _each(spec: FilterDef, predicate: Predicate) -> dict[str, Any] | None:
    """The ``each`` template filled from ``match``'s named groups, once per match of every value; several fills
    become ``or`` (an IN list, or a text with several candidates). A value with no match sends nothing: the
    pattern cannot narrow it, and leaving the filter out loses no rows."""
    if predicate.op not in ("=", "IN") or spec.match is None:
        return None
    filled = []
    for value in predicate.values:
        found = [m.groupdict() for m in spec.match.finditer(value)] if isinstance(value, str) else []
        if not found:
            return None
        filled += [_fill(spec.arg, groups) for groups in found]
    unique = list({json.dumps(f, sort_keys=True): f for f in filled}.values())
    return unique[0] if len(unique) == 1 else {"or": unique}


def _fill(template: Any, groups: Mapping[str, str | None]) -> Any:
    """``"{team|upper}"`` → the group, transformed (``upper``, ``lower``, ``int``); only whole-string placeholders."""
    if isinstance(template, dict):
        return {k: _fill(v, groups) for k, v in template.items()}
    if isinstance(template, list):
        return [_fill(v, groups) for v in template]
    if isinstance(template, str) and template.startswith("{") and template.endswith("}"):
        name, _, transform = template[1:-1].partition("|")
        value: Any = groups.get(name) or ""
        if transform == "upper":
            value = value.upper()
        elif transform == "lower":
            value = value.lower()
        elif transform == "int":
            value = int(value)
        return value
    return template


def _quote(value: Any, language: Mapping[str, str]) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    quote, escape = language.get("quote", '"'), language.get("escape", "\\")
    text = str(value).replace(escape, escape + escape) if escape else str(value)
    return quote + text.replace(quote, (escape or quote) + quote) + quote


_PLACEHOLDER = re.compile(r"\{(op|values|value)\}")


def _fragment(spec: FilterDef, predicate: Predicate, language: Mapping[str, str]) -> str | None:
    """``"{column} {op} {value}"``-style template; ``{values}`` is the quoted, comma-joined IN list."""
    values = [_quote(format_value(v, spec.value_format), language) for v in predicate.values]
    op = {"IN": "IN", **_QL_OPS}.get(predicate.op)
    if op is None:
        return None
    # one pass over the template: a value that reads "{value}" is text, never a placeholder filled again (a
    # second pass put a quoted value inside the quotes around it, leaving the rest of it outside any quotes)
    filled = {"op": op, "values": ", ".join(values), "value": values[0] if values else ""}
    return _PLACEHOLDER.sub(lambda m: filled[m.group(1)], str(spec.arg))


def _scalar_or_list(spec: FilterDef, predicate: Predicate) -> Any:
    values = [format_value(v, spec.value_format) for v in predicate.values]
    if predicate.op != "IN":
        return values[0]
    return ",".join(map(str, values)) if spec.in_style == "comma" else values


def _set(target: dict[str, Any], path: str, value: Any) -> bool:
    keys = path.split(".")
    node = target
    for key in keys[:-1]:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            return False
    if keys[-1] in node:  # two conditions on one field: keep the first, the rows are re-checked
        return False
    node[keys[-1]] = value
    return True


def build_options(table: TableDef, predicates: Iterable[Predicate], language: Mapping[str, str]) -> Options:
    """Every predicate the manifest can send, as request options (the rest stay local only)."""
    options = Options()
    for predicate in predicates:
        for spec in table.filters:
            if spec.column != predicate.column or predicate.op not in spec.ops:
                continue
            if _apply(spec, predicate, options, language):
                options.sent.append(str(predicate))
                break
    return options


def _apply(spec: FilterDef, predicate: Predicate, options: Options, language: Mapping[str, str]) -> bool:
    if spec.target in ("graphql", "each"):
        clause = graphql_clause(spec, predicate) if spec.target == "graphql" else _each(spec, predicate)
        if clause is None:
            return False
        options.clauses.append(clause)
        return True
    if spec.target == "fragment":
        text = _fragment(spec, predicate, language)
        if text is not None:
            options.fragments.append(text)
        return text is not None
    if predicate.op in ("BETWEEN", "IS_NULL"):  # a plain parameter carries one value (or an IN list)
        return False
    value = _scalar_or_list(spec, predicate)
    if spec.target == "query_param":
        if spec.arg in options.params:
            return False
        options.params[spec.arg] = value
        return True
    if spec.target == "body_field":
        return _set(options.body, spec.arg, value)
    if spec.arg in options.variables:
        return False
    options.variables[spec.arg] = value
    return True


def order_option(order: OrderDef, descending: bool) -> tuple[str, str, Any] | None:
    """(target, name, value) that asks the API for this order; None when it has no such direction."""
    value = order.desc if descending else order.asc
    return None if value is None else (order.target, order.arg, value)
