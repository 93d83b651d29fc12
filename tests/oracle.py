"""An independent oracle: the sandbox's seed as plain DuckDB tables, built without any connector.

Why: a differential test whose "truth" is the engine itself (pushdown off) shares every decoding bug with the
thing it checks: a wrong timestamp parse, a misread JSON path, a dropped page would be on both sides and the
test would pass. Here each column is derived straight from ``sandbox.seed`` (the dataclasses the stand-ins
serve) following what the real APIs put on the wire and what our tables document:

* ``github.pull_requests``: one row per pull request of every repository (the listing has no default filter once
  ``state=all``); ``status`` is ``'merged'`` when ``merged_at`` is set, else GitHub's ``state``; ``team_id`` comes
  from the organisation's repository → team mapping; ``additions``/``deletions`` from the pull request detail;
  ``author_email`` is the author's *public* email (null when hidden); ``diff_link`` is GitHub's ``diff_url``
  (``html_url`` + ``.diff``); ``labels`` keep the API's order.
* ``github.users``: every user of the org by login (GitHub's ``GET /users/{login}`` profile).
* ``jira.issues``: ``assignee`` is Jira's ``displayName``, ``assignee_email`` its ``emailAddress`` (absent when the
  user hides it, so null); ``team`` from the project → team mapping; the two custom fields as plain columns.

Only the *schemas* are taken from the connectors' ``TableSpec``s (names, order, Arrow types), so a result
compared with this oracle must also agree on types. Timestamps are ``timestamp[us, tz=UTC]`` (TIMESTAMPTZ with
the session in UTC, as the engine's DuckDB runs).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import duckdb
import pyarrow as pa

from connectors.github.tables import PULL_REQUESTS, USERS
from connectors.jira.tables import ISSUES
from core.types import TableSpec
from sandbox.seed import ORG, JiraIssue, PullRequest, Seed, User, build_seed, team_of_project, team_of_repo

__all__ = ["connect_oracle", "issue_row", "oracle_answer", "oracle_tables", "pull_request_row", "user_row"]


def pull_request_row(pr: PullRequest, users: Mapping[str, User]) -> dict[str, Any]:
    """One ``github.pull_requests`` row, as GitHub's list + detail + user endpoints define it."""
    author = users.get(pr.author)
    return {
        "pr_id": pr.id,
        "number": pr.number,
        "repo": pr.repo,
        "title": pr.title,
        "author": pr.author,
        "author_email": author.email if author else None,
        "status": "merged" if pr.merged_at is not None else pr.state,
        "branch": pr.head,
        "base_branch": pr.base,
        "team_id": team_of_repo(pr.repo),
        "additions": pr.additions,
        "deletions": pr.deletions,
        "diff_link": f"https://github.com/{ORG}/{pr.repo}/pull/{pr.number}.diff",
        "labels": list(pr.labels),
        "created_at": pr.created,
        "updated_at": pr.updated,
        "merged_at": pr.merged_at,
    }


def user_row(user: User) -> dict[str, Any]:
    """One ``github.users`` row: the public profile of ``GET /users/{login}`` (``email`` null when hidden)."""
    return {"login": user.login, "user_id": user.github_id, "name": user.name, "email": user.email,
            "company": user.company, "location": user.location, "type": "User", "created_at": user.created}


def issue_row(issue: JiraIssue, users: Mapping[str, User]) -> dict[str, Any]:
    """One ``jira.issues`` row, as Jira's search returns the fields (assignee by display name and email)."""
    assignee = users.get(issue.assignee) if issue.assignee else None
    return {
        "issue_key": issue.key,
        "summary": issue.summary,
        "status": issue.status,
        "branch_name": issue.branch,
        "story_points": issue.story_points,
        "assignee": assignee.name if assignee else None,
        "assignee_email": assignee.email if assignee else None,
        "team": team_of_project(issue.project),
        "project": issue.project,
        "labels": list(issue.labels),
        "created_at": issue.created,
        "updated_at": issue.updated,
        "customer": issue.customer,
    }


def _table(spec: TableSpec, rows: Iterable[dict[str, Any]]) -> pa.Table:
    """Rows as an Arrow table of exactly ``spec``'s schema; a non-nullable column holding a null is an error."""
    schema = spec.arrow_schema
    rows = list(rows)
    table = pa.Table.from_pylist(rows, schema=schema)
    for field in schema:
        if not field.nullable and table.column(field.name).null_count:
            raise ValueError(f"{spec.qualified_name}.{field.name} is declared NOT NULL but the seed has nulls")
    return table


def oracle_tables(seed: Seed | None = None) -> dict[str, pa.Table]:
    """``{"github.pull_requests": ..., "github.users": ..., "jira.issues": ...}`` straight from the seed."""
    seed = seed or build_seed()
    users = {u.login: u for u in seed.users}
    return {
        PULL_REQUESTS.qualified_name: _table(PULL_REQUESTS, (pull_request_row(p, users) for p in seed.pulls)),
        USERS.qualified_name: _table(USERS, (user_row(u) for u in seed.users)),
        ISSUES.qualified_name: _table(ISSUES, (issue_row(i, users) for i in seed.issues)),
    }


def connect_oracle(seed: Seed | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB (session in UTC) holding the oracle tables under their SQL names."""
    return oracle_db(oracle_tables(seed))


def oracle_db(tables: Mapping[str, pa.Table]) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB (session in UTC) holding ``tables`` (``schema.table`` → rows) under those names."""
    db = duckdb.connect(":memory:")
    db.execute("SET TimeZone = 'UTC'")
    for name, table in tables.items():
        schema, _, bare = name.partition(".")
        db.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        db.register("incoming", table)
        db.execute(f"CREATE TABLE {schema}.{bare} AS SELECT * FROM incoming")
        db.unregister("incoming")
    return db


def oracle_answer(db: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] = ()) -> pa.Table:
    """``sql`` on the oracle. A fresh cursor does not inherit the parent's ``SET TimeZone`` (it starts from
    the machine's zone), so each cursor sets UTC itself."""
    cursor = db.cursor()
    try:
        cursor.execute("SET TimeZone = 'UTC'")
        return cursor.sql(sql, params=list(params) or None).to_arrow_table()
    finally:
        cursor.close()
