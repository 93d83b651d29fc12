"""The audit log (security/audit.py): one JSON line per query on ``omnisql.audit``, with a statement fingerprint
that holds no literal value, and nothing of rows, tokens or error messages."""

from __future__ import annotations

import json
import logging

import pytest

from core.errors import EntitlementDenied, QueryTimeout
from security.audit import AUDIT_LOGGER, UNREADABLE, audit_query, fingerprint, normalize_sql, outcome_of
from security.principals import Principal

ANA = Principal("ana", "acme", ("dev", "qa"), {"team": "mobile"})


def _audit(caplog: pytest.LogCaptureFixture, **overrides: object) -> dict[str, object]:
    arguments: dict[str, object] = {
        "trace_id": "t-1", "principal": ANA, "sql": "SELECT title FROM github.pull_requests WHERE author = 'ana'",
        "tables": ["github.pull_requests"], "rows": 3, "decisions": ["github.pull_requests: row filter"],
        "outcome": "ok", "duration_ms": 12.3456, "now": 1767268800.25}
    arguments.update(overrides)
    with caplog.at_level(logging.INFO, logger=AUDIT_LOGGER):
        returned = audit_query(**arguments)  # type: ignore[arg-type]
    lines = [r for r in caplog.records if r.name == AUDIT_LOGGER]
    assert len(lines) == 1 and "\n" not in lines[0].getMessage()
    logged = json.loads(lines[0].getMessage())
    assert logged == returned
    return logged


def test_one_line_with_every_field(caplog: pytest.LogCaptureFixture) -> None:
    line = _audit(caplog)
    assert line == {
        "event": "query", "time": "2026-01-01T12:00:00.250Z", "trace_id": "t-1", "user": "ana", "tenant": "acme",
        "roles": ["dev", "qa"], "statement": fingerprint("SELECT title FROM github.pull_requests WHERE author = 'x'"),
        "tables": ["github.pull_requests"], "rows": 3, "decisions": ["github.pull_requests: row filter"],
        "outcome": "ok", "duration_ms": 12.346}
    assert len(str(line["statement"])) == 64


def test_no_literal_value_comment_or_attribute_reaches_the_line(caplog: pytest.LogCaptureFixture) -> None:
    sql = ("SELECT * FROM jira.issues /* hunter2 */ WHERE summary = 'p@ssw0rd-42' AND story_points > 31337 -- s3cr3t\n"
           "AND issue_key IN ('SECRET-1', 'SECRET-2')")
    text = json.dumps(_audit(caplog, sql=sql, tables=["jira.issues", "jira.issues"]))
    for secret in ("hunter2", "p@ssw0rd", "31337", "s3cr3t", "SECRET", "mobile", "summary"):
        assert secret not in text
    assert json.loads(text)["tables"] == ["jira.issues"]


def test_outcomes_are_codes_never_messages(caplog: pytest.LogCaptureFixture) -> None:
    assert outcome_of(None) == "ok"
    assert outcome_of(EntitlementDenied("you may not read x")) == "ENTITLEMENT_DENIED"
    assert outcome_of(QueryTimeout("slow")) == "QUERY_TIMEOUT"
    assert outcome_of(RuntimeError("token=abc")) == "INTERNAL"
    assert _audit(caplog, outcome="ENTITLEMENT_DENIED", rows=None)["outcome"] == "ENTITLEMENT_DENIED"
    caplog.clear()
    line = _audit(caplog, outcome="INVALID_QUERY: column 'secret-value' not found")
    assert line["outcome"] == "INTERNAL" and "secret-value" not in json.dumps(line)


def test_hostile_names_stay_one_escaped_line(caplog: pytest.LogCaptureFixture) -> None:
    evil = Principal('ana"}\n{"event": "forged', "acme", ("r\u2028ole",))
    line = _audit(caplog, principal=evil, trace_id="x" * 10_000, decisions=["d"] * 1000, rows=True)
    assert line["user"] == evil.user and line["roles"] == ["r\u2028ole"]
    assert len(str(line["trace_id"])) <= 257 and len(line["decisions"]) == 100  # type: ignore[arg-type]
    assert line["rows"] is None


def test_nothing_is_written_when_the_logger_is_off(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger=AUDIT_LOGGER):
        record = audit_query(trace_id="t", principal=ANA, sql="SELECT 1", tables=(), rows=1, decisions=(),
                             outcome="ok", duration_ms=1)
    assert record["statement"] == fingerprint("SELECT 2") and not caplog.records


@pytest.mark.parametrize(("sql", "normalized"), [
    ("select  a from T where b='x' and c in (1, 2, -3) limit 10", "SELECT a FROM T WHERE b = ? AND c IN (?) LIMIT ?"),
    ("SELECT * FROM t WHERE x = ? AND y = $1", "SELECT * FROM t WHERE x = ? AND y = $1"),
    ("SELECT $$dollar secret$$, 1e9, -0.5", "SELECT ?, ?, -?"),
    ("SELECT 1 /* secret */ -- more", "SELECT ?"),
    ("SELECT a FROM t WHERE a IN (SELECT b FROM u WHERE c = 'z')",
     "SELECT a FROM t WHERE a IN (SELECT b FROM u WHERE c = ?)"),
])
def test_normalization_replaces_literals(sql: str, normalized: str) -> None:
    assert normalize_sql(sql) == normalized


def test_same_shape_same_fingerprint_other_shape_other() -> None:
    a = fingerprint("SELECT title FROM github.pull_requests WHERE number = 1 AND repo IN ('a')")
    assert a == fingerprint("select title\nfrom github.pull_requests where number=99 and repo in ('b', 'c', 'd')")
    assert a != fingerprint("SELECT title FROM github.pull_requests WHERE number > 1 AND repo IN ('a')")
    assert a != fingerprint("SELECT body FROM github.pull_requests WHERE number = 1 AND repo IN ('a')")


@pytest.mark.parametrize("sql", [
    "EXPLAIN SELECT * FROM t WHERE secret = 'p4ss'",  # a Command to sqlglot: normalized by tokens
    "SELEC oops FROM t WHERE s = 'p4ss' AND n = 4242",  # does not parse
    "SELECT x'p4ss', E'p4ss', N'p4ss'",  # literal kinds some dialects lack
])
def test_statements_sqlglot_cannot_parse_still_lose_their_literals(sql: str) -> None:
    normalized = normalize_sql(sql)
    assert "p4ss" not in normalized and "4242" not in normalized and normalized != UNREADABLE


def test_text_that_cannot_be_tokenized_keeps_nothing() -> None:
    assert normalize_sql("SELECT 'unterminated p4ss") in (UNREADABLE, "SELECT ?")
    assert "p4ss" not in normalize_sql("SELECT 'unterminated p4ss")
