"""Run in flightsql-dbapi's own venv (it pins SQLAlchemy 1.4): SQLAlchemy Core through its ``datafusion://`` dialect,
once as installed (bound values are inlined as literals) and once with its prepared-statement feature on (``?``
placeholders bound through a Flight SQL prepared statement). Prints one JSON object: mode → case → rows or error."""

from __future__ import annotations

import json
import sys
from typing import Any

import sqlalchemy as sa

uri, token = sys.argv[1], sys.argv[2]
host, port = uri.removeprefix("grpc://").rsplit(":", 1)

metadata = sa.MetaData()
issues = sa.Table(
    "issues", metadata,
    sa.Column("issue_key", sa.String, primary_key=True),
    sa.Column("status", sa.String),
    sa.Column("branch_name", sa.String),
    sa.Column("team", sa.String),
    sa.Column("project", sa.String),
    schema="jira",
)
pull_requests = sa.Table(
    "pull_requests", metadata,
    sa.Column("pr_id", sa.BigInteger, primary_key=True),
    sa.Column("number", sa.BigInteger),
    sa.Column("repo", sa.String),
    sa.Column("status", sa.String),
    sa.Column("branch", sa.String),
    schema="github",
)

QUERIES: dict[str, Any] = {
    "where_order_by_limit": sa.select(issues.c.issue_key, issues.c.team, issues.c.status)
    .where(issues.c.team == "web", issues.c.status == "In Progress")
    .order_by(issues.c.issue_key.desc()).limit(5),
    "count_where": sa.select(sa.func.count()).select_from(issues).where(issues.c.project == "MOB"),
    "join": sa.select(pull_requests.c.repo, pull_requests.c.number, issues.c.issue_key)
    .join_from(pull_requests, issues, pull_requests.c.branch == issues.c.branch_name)
    .where(issues.c.status == "In Progress", pull_requests.c.status == "merged")
    .order_by(pull_requests.c.repo, pull_requests.c.number, issues.c.issue_key),
    "group_by": sa.select(pull_requests.c.status, sa.func.count().label("n"))
    .group_by(pull_requests.c.status).order_by(pull_requests.c.status),
}


def plain(value: Any) -> Any:
    """numpy scalars (flightsql-dbapi converts results through pandas) → Python values."""
    return value.item() if hasattr(value, "item") else value


def run(engine: Any, query: Any) -> dict[str, Any]:
    sql = ""
    try:
        with engine.connect() as conn:  # the dialect picks its compiler (literal or ?) on the first connect
            sql = str(query.compile(conn))
            return {"sql": sql, "rows": [[plain(v) for v in row] for row in conn.execute(query)]}
    except Exception as exc:  # the client's own error types; the test reports the text
        return {"sql": sql, "error": str(exc)[:3000]}


out: dict[str, dict[str, Any]] = {}
for mode, features in (("literal", ""), ("prepared", "&feature-sqlalchemy-prepared-statements=on")):
    engine = sa.create_engine(f"datafusion://{host}:{port}?insecure=true&token={token}{features}")
    results = {name: run(engine, query) for name, query in QUERIES.items()}
    try:
        reflected = sa.MetaData()
        reflected.reflect(engine, schema="jira")
        table = reflected.tables["jira.issues"]
        results["reflect"] = {"tables": sorted(reflected.tables),
                              "types": {c.name: type(c.type).__name__ for c in table.c}}
        query = sa.select(table.c.issue_key).where(table.c.project == "PLAT").order_by(table.c.issue_key).limit(3)
        results["reflected_table_query"] = run(engine, query)
    except Exception as exc:
        results["reflect"] = {"error": str(exc)[:3000]}
    out[mode] = results
    engine.dispose()
print(json.dumps(out))
