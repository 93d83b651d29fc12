"""Build JQL from normalized predicates. Values are always quoted and escaped, so no value can change the
structure of the query (quotes, backslashes, JQL keywords and reserved characters stay inside the string)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from core.types import Predicate

__all__ = ["build_jql", "quote", "text_term"]


def quote(value: object) -> str:
    """A JQL string literal: backslash and double quote escaped, control characters spelled out."""
    text = str(value)
    text = (text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
            .replace("\t", "\\t"))
    return f'"{text}"'


# JQL reads an absolute date in the API user's profile time zone, which we do not know: widening the window by
# the largest offset there is (UTC-12 … UTC+14) keeps it a superset of the SQL window (rows are re-checked).
_ANY_ZONE = timedelta(hours=14)


def _minute(value: datetime, up: bool) -> str:
    """JQL dates have minute precision and a time zone we cannot know: round and widen so the API window
    contains the SQL window, whatever the user's zone (it only narrows)."""
    value = value + _ANY_ZONE if up else value - _ANY_ZONE
    floor = value.replace(second=0, microsecond=0)
    if up and floor != value:
        floor += timedelta(minutes=1)
    return quote(floor.strftime("%Y-%m-%d %H:%M"))


# Jira reads the string after ``~`` as a Lucene query: these characters are its syntax (``/`` starts a regular
# expression, ``-``/``!`` negate, ``*``/``?`` are wildcards), and AND / OR / NOT are its operators.
_LUCENE_RESERVED = frozenset('+-&|!(){}[]^"~*?:\\/')
_LUCENE_OPERATORS = re.compile(r"\b(AND|OR|NOT)\b")


def text_term(value: object) -> str:
    """``value`` as literal text for ``~``: every Lucene metacharacter escaped and the operator words lowercased
    (its analyzer lowercases them anyway), so a value can only narrow to the issues that contain its words —
    ``x -y`` must not become "x but not y", nor ``feature/login`` a regular expression. Quote it with ``quote``."""
    text = "".join("\\" + c if c in _LUCENE_RESERVED else c for c in str(value))
    return _LUCENE_OPERATORS.sub(lambda m: m.group(1).lower(), text)


def _clause(field: str, p: Predicate, kind: str) -> str | None:
    if kind == "text":  # text fields only support ~ (contains), so = and IN narrow via ~
        if p.op == "=":
            return f"{field} ~ {quote(text_term(p.values[0]))}"
        if p.op == "IN":
            return "(" + " OR ".join(f"{field} ~ {quote(text_term(v))}" for v in p.values) + ")"
        return None
    if kind == "date":
        v = p.values
        if p.op in (">", ">="):
            return f"{field} >= {_minute(v[0], up=False)}"
        if p.op in ("<", "<="):
            return f"{field} <= {_minute(v[0], up=True)}"
        if p.op == "BETWEEN":
            return f"{field} >= {_minute(v[0], up=False)} AND {field} <= {_minute(v[1], up=True)}"
        return None
    literal = (lambda x: repr(float(x))) if kind == "number" else quote
    if p.op == "=":
        return f"{field} = {literal(p.values[0])}"
    if p.op == "<>":  # JQL != also drops empty fields, as SQL <> drops NULL
        return f"{field} != {literal(p.values[0])}"
    if p.op == "IN":
        return f"{field} IN ({', '.join(literal(v) for v in p.values)})"
    if p.op in ("<", "<=", ">", ">="):
        return f"{field} {p.op} {literal(p.values[0])}"
    if p.op == "BETWEEN":
        return f"{field} >= {literal(p.values[0])} AND {field} <= {literal(p.values[1])}"
    if p.op == "IS_NULL":
        return f"{field} IS EMPTY"
    return None


def _projects_clause(projects: Sequence[str]) -> str:
    """``project IN (...)``; no project at all becomes a clause no issue matches."""
    return f"project IN ({', '.join(map(quote, projects))})" if projects else "issuekey IS EMPTY"


def _key_may_start(project: str, prefix: str) -> bool:
    """Whether some key ``PROJECT-<n>`` can start with ``prefix`` (e.g. 'WEB-1' or 'WE' for project WEB)."""
    head = f"{project}-"
    if prefix.startswith(head):
        return prefix[len(head):].isdigit() or prefix == head
    return head.startswith(prefix)


def build_jql(predicates: Sequence[Predicate], fields: Mapping[str, tuple[str, str]],
              team_projects: Mapping[str, Sequence[str]], default_restriction: str) -> str:
    """AND of one clause per pushable predicate; ``fields`` maps column → (JQL field, kind).

    ``team`` is not a Jira field: it becomes ``project IN (...)`` through the tenant's team mapping, and so does
    ``issue_key LIKE 'WEB-%'`` (the configured projects whose keys can start with the prefix)."""
    clauses: list[str] = []
    for p in predicates:
        if p.column == "team" and p.op in ("=", "IN"):
            projects = sorted({proj for team in p.values for proj in team_projects.get(str(team), ())})
            clauses.append(_projects_clause(projects))
            continue
        if p.column == "issue_key" and p.op == "LIKE_PREFIX":
            prefix = str(p.values[0])
            known = {proj for projs in team_projects.values() for proj in projs}
            if known:  # without a configured project list there is nothing to narrow to
                clauses.append(_projects_clause(sorted(proj for proj in known if _key_may_start(proj, prefix))))
            continue
        if p.column not in fields:
            continue
        field, kind = fields[p.column]
        clause = _clause(field, p, kind)
        if clause:
            clauses.append(clause)
    return " AND ".join(clauses) if clauses else default_restriction
