"""Linear, defined only by ``connectors/manifests/linear.yaml``, through ADBC against the demo (whose sandbox runs the
graphql-core Linear stand-in): answers with pushdown equal DuckDB over the seed (built here without any connector),
values reach Linear only as GraphQL variables, listings page, and EXPLAIN says what was pushed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

import duckdb
import httpx
import pyarrow as pa
import pytest

from connectors.declarative import load_manifest
from connectors.declarative.factory import BUILTIN_DIR
from connectors.declarative.tables import table_spec
from sandbox.linear_seed import build_linear_seed
from tests.answers import adbc_answer, assert_same_answer, is_ordered
from tests.oracle import connect_oracle, oracle_answer

MANIFEST = load_manifest(BUILTIN_DIR / "linear.yaml")
DOCUMENTS = {t.request.document for t in MANIFEST.tables}


def _ts(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text.replace("Z", "+00:00"))


def issue_row(i: dict[str, Any]) -> dict[str, Any]:
    """One ``linear.issues`` row straight from the stand-in's records, as the manifest documents each column."""
    return {"id": i["id"], "identifier": i["identifier"], "number": int(i["number"]), "title": i["title"],
            "description": i["description"], "state": i["state"]["name"], "state_type": i["state"]["type"],
            "team_key": i["team"]["key"], "team_name": i["team"]["name"],
            "assignee": (i["assignee"] or {}).get("name"), "assignee_email": (i["assignee"] or {}).get("email"),
            "creator": (i["creator"] or {}).get("name"), "estimate": i["estimate"], "priority": int(i["priority"]),
            "priority_label": i["priorityLabel"], "labels": [label["name"] for label in i["labels"]][:25],
            "branch_name": i["branchName"], "url": i["url"], "created_at": _ts(i["createdAt"]),
            "updated_at": _ts(i["updatedAt"]), "started_at": _ts(i["startedAt"]),
            "completed_at": _ts(i["completedAt"]), "canceled_at": _ts(i["canceledAt"]),
            "due_date": date.fromisoformat(i["dueDate"]) if i["dueDate"] else None,
            "project": (i["project"] or {}).get("name"),
            "cycle": int(i["cycle"]["number"]) if i["cycle"] else None}


@pytest.fixture(scope="module")
def oracle() -> Iterator[duckdb.DuckDBPyConnection]:
    """GitHub and Jira from ``tests/oracle.py``, plus ``linear.*`` from the Linear seed."""
    db = connect_oracle()
    seed = build_linear_seed()
    rows = {"issues": [issue_row(i) for i in seed.issues],
            "teams": [{"id": t["id"], "key": t["key"], "name": t["name"], "description": t["description"],
                       "created_at": _ts(t["createdAt"])} for t in seed.teams],
            "users": [{"id": u["id"], "name": u["name"], "display_name": u["displayName"], "email": u["email"],
                       "active": u["active"], "admin": u["admin"], "created_at": _ts(u["createdAt"])}
                      for u in seed.users]}
    db.execute("CREATE SCHEMA linear")
    for table in MANIFEST.tables:
        db.register("incoming", pa.Table.from_pylist(rows[table.name], schema=table_spec("linear", table).arrow_schema))
        db.execute(f"CREATE TABLE linear.{table.name} AS SELECT * FROM incoming")
        db.unregister("incoming")
    yield db
    db.close()


class LinearLog:
    def __init__(self, demo: dict[str, Any]) -> None:
        self.url = demo["sandbox"]["linear"]["base_url"]

    def clear(self) -> None:
        httpx.delete(f"{self.url}/_sandbox/requests").raise_for_status()

    def graphql(self) -> list[dict[str, Any]]:
        return [e for e in httpx.get(f"{self.url}/_sandbox/requests").json() if e["path"] == "/graphql"]

    def faults(self, **settings: Any) -> None:
        httpx.post(f"{self.url}/_sandbox/faults", json=settings).raise_for_status()


@pytest.fixture()
def linear_log(demo: dict[str, Any]) -> Iterator[LinearLog]:
    log = LinearLog(demo)
    log.clear()
    yield log
    log.faults()


BIND_BRANCH = ("SELECT gh.number, li.identifier, li.state FROM github.pull_requests gh JOIN linear.issues li "
               "ON gh.branch = li.branch_name WHERE gh.repo = 'infra-tools' AND gh.status = 'open'")
BIND_KEY = ("SELECT ji.issue_key, li.state FROM jira.issues ji JOIN linear.issues li ON li.identifier = ji.issue_key "
            "WHERE ji.issue_key IN ('MOB-1', 'MOB-3', 'WEB-2', 'PLAT-7')")
QUERIES = [
    "SELECT * FROM linear.issues",
    "SELECT identifier, title FROM linear.issues WHERE state = 'In Progress' AND team_key = 'MOB'",
    "SELECT identifier, state FROM linear.issues WHERE state IN ('Done', 'Canceled') AND priority <= 2",
    "SELECT identifier FROM linear.issues WHERE state_type <> 'completed' AND estimate >= 5",
    "SELECT identifier, assignee FROM linear.issues WHERE assignee IS NULL",
    "SELECT identifier, assignee_email FROM linear.issues WHERE assignee_email = 'ana.silva@acme.example'",
    "SELECT identifier FROM linear.issues WHERE identifier IN ('MOB-1', 'WEB-2', 'PLAT-3', 'web-5', 'NOPE')",
    "SELECT identifier, branch_name FROM linear.issues WHERE branch_name = 'feature/mob-1-payments'",
    "SELECT identifier FROM linear.issues WHERE created_at >= TIMESTAMP '2026-03-01' "
    "AND created_at < TIMESTAMP '2026-04-01 00:00:00.5'",
    "SELECT identifier, due_date FROM linear.issues WHERE due_date BETWEEN DATE '2026-02-01' AND DATE '2026-05-01'",
    "SELECT identifier, completed_at FROM linear.issues WHERE completed_at IS NULL AND number < 30",
    "SELECT identifier FROM linear.issues WHERE title LIKE 'Fix%' AND team_name = 'Web'",
    "SELECT team_key, state, count(*) AS n, avg(estimate) AS points FROM linear.issues GROUP BY ALL",
    "SELECT identifier, updated_at FROM linear.issues WHERE team_key = 'PLAT' ORDER BY number LIMIT 7",
    "SELECT identifier FROM linear.issues WHERE state = 'Todo' LIMIT 3",
    "SELECT * FROM linear.teams WHERE key IN ('MOB', 'WEB')",
    "SELECT name, email, active FROM linear.users WHERE active = true ORDER BY name",
    "SELECT li.identifier, u.display_name FROM linear.issues li JOIN linear.users u ON li.assignee_email = u.email "
    "WHERE li.state = 'In Review'",
    BIND_BRANCH,
    BIND_KEY,
    "SELECT gh.repo, gh.number, ji.issue_key, li.identifier, li.state FROM github.pull_requests gh "
    "JOIN jira.issues ji ON gh.branch = ji.branch_name JOIN linear.issues li ON li.branch_name = gh.branch "
    "WHERE ji.status = 'In Progress'",
]


@pytest.mark.parametrize("sql", QUERIES, ids=[f"q{i:02d}" for i in range(len(QUERIES))])
def test_linear_answers_equal_duckdb_over_the_seed(sql: str, oracle: duckdb.DuckDBPyConnection,
                                                    adbc_session: Any) -> None:
    got = adbc_answer(adbc_session, sql)
    expected = oracle_answer(oracle, sql)
    if "LIMIT" in sql and "ORDER BY" not in sql:  # any 3 matching rows will do
        assert got.num_rows == min(3, expected.num_rows)
        assert set(got.column(0).to_pylist()) <= set(expected.column(0).to_pylist())
        return
    assert_same_answer(got, expected, is_ordered(sql), sql)


def test_the_three_source_query_has_rows(adbc_session: Any) -> None:
    got = adbc_answer(adbc_session, QUERIES[-1])
    assert got.num_rows > 10


def test_hostile_values_travel_only_in_variables(adbc_session: Any, linear_log: LinearLog) -> None:
    hostile = ['x") { id } } query Evil { viewer { email } } #', "a'b\"c\\d", "}}}{{{", "$filter", "\u2028\x00"]
    for value in hostile:
        got = adbc_answer(adbc_session, "SELECT identifier FROM linear.issues WHERE state = ? AND title = ?",
                          (value, value))
        assert got.num_rows == 0
    sent = linear_log.graphql()
    assert len(sent) == len(hostile)
    for entry, value in zip(sent, hostile, strict=True):
        assert entry["body"]["query"] in DOCUMENTS  # the document is the manifest's, untouched
        assert entry["body"]["variables"]["filter"] == {"state": {"name": {"eq": value}}, "title": {"eq": value}}
        assert entry["status"] == 200


def test_a_full_listing_follows_cursors_over_several_pages(adbc_session: Any, linear_log: LinearLog) -> None:
    assert adbc_answer(adbc_session, "SELECT count(*) AS n FROM linear.issues").column(0)[0].as_py() == 500
    sent = linear_log.graphql()
    assert len(sent) == 5
    assert [e["body"]["variables"].get("after") is None for e in sent] == [True, False, False, False, False]
    assert all(e["body"]["variables"]["first"] == 100 for e in sent)


def test_pushed_conditions_become_one_issue_filter(adbc_session: Any, linear_log: LinearLog) -> None:
    adbc_answer(adbc_session, "SELECT identifier FROM linear.issues WHERE team_key IN ('MOB', 'WEB') "
                              "AND state_type = 'started' AND priority BETWEEN 1 AND 2 AND assignee IS NULL "
                              "AND identifier = 'MOB-7'")
    (entry,) = linear_log.graphql()
    assert entry["body"]["variables"]["filter"] == {
        "team": {"key": {"in": ["MOB", "WEB"], "eq": "MOB"}}, "state": {"type": {"eq": "started"}},
        "priority": {"gte": 1, "lte": 2}, "assignee": {"null": True}, "number": {"eq": 7}}


def test_explain_shows_what_is_pushed_and_what_is_rechecked(adbc_session: Any, linear_log: LinearLog) -> None:
    plan = adbc_answer(adbc_session, "EXPLAIN SELECT identifier FROM linear.issues WHERE state = 'Done' "
                                     "AND branch_name = 'feature/web-2-cache' AND description LIKE '%Jira%'")
    step = plan.to_pylist()[0]
    assert step["source_table"] == "linear.issues"
    assert step["pushed_exact"] == "state = 'Done'"
    assert step["pushed_inexact"] == "branch_name = 'feature/web-2-cache'"
    assert "description" in (step["local"] or "")
    assert linear_log.graphql() == []  # EXPLAIN calls nothing


def test_a_429_with_retry_after_is_waited_out(adbc_session: Any, linear_log: LinearLog) -> None:
    linear_log.faults(fail_next=1, fail_status=429, retry_after="1")
    got = adbc_answer(adbc_session, "SELECT key FROM linear.teams")
    assert sorted(got.column(0).to_pylist()) == ["MOB", "PLAT", "WEB"]
    assert [e["status"] for e in linear_log.graphql()] == [429, 200]


@pytest.mark.parametrize("sql", [BIND_BRANCH, BIND_KEY], ids=["branch", "identifier"])
def test_bind_joins_send_the_keys_as_one_or_filter(sql: str, adbc_session: Any, linear_log: LinearLog) -> None:
    plan = {r["alias"]: r for r in adbc_answer(adbc_session, "EXPLAIN " + sql).to_pylist()}
    assert plan["li"]["strategy"] == "bind join" and plan["li"]["est_api_calls"] <= 2
    got = adbc_answer(adbc_session, sql)
    sent = linear_log.graphql()
    assert 1 <= len(sent) <= 2 and all("after" not in e["body"]["variables"] for e in sent)  # no full listing
    candidates = [c for e in sent for c in e["body"]["variables"]["filter"]["or"]]
    assert all(set(c) == {"team", "number"} for c in candidates)
    assert got.num_rows <= len(candidates)


def test_a_long_retry_after_is_rate_limit_exhausted(adbc_session: Any, linear_log: LinearLog) -> None:
    """Last in this file: the refusal blocks the demo's Linear bucket for those 11 s (what it is for)."""
    import adbc_driver_manager

    linear_log.faults(fail_next=1, fail_status=429, retry_after="11")
    with pytest.raises(adbc_driver_manager.Error) as raised:
        adbc_answer(adbc_session, "SELECT key FROM linear.teams WHERE name = 'Mobile'")
    assert "RATE_LIMIT_EXHAUSTED" in str(raised.value) and "linear" in str(raised.value)
