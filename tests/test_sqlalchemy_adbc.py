"""SQLAlchemy 2 Core through the generic ADBC dialect (PyPI ``sqlalchemy-adbc``, URL ``adbc+flightsql://``), used the
way its README tells a new user to: schema-qualified ``Table(..., schema=...)`` objects, bound parameters (LIMIT too),
joins across the two apps, reflection, and pandas.read_sql over the engine. Every answer is compared with the same
query sent with literal values through the plain ADBC connection, or with counts from the seed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

from sandbox.seed import build_seed, team_of_project

metadata = sa.MetaData()
issues = sa.Table(
    "issues", metadata,
    sa.Column("issue_key", sa.String, primary_key=True),
    sa.Column("summary", sa.String),
    sa.Column("status", sa.String),
    sa.Column("branch_name", sa.String),
    sa.Column("story_points", sa.Float),
    sa.Column("team", sa.String),
    sa.Column("project", sa.String),
    schema="jira",
)
pull_requests = sa.Table(
    "pull_requests", metadata,
    sa.Column("pr_id", sa.BigInteger, primary_key=True),
    sa.Column("number", sa.BigInteger),
    sa.Column("repo", sa.String),
    sa.Column("title", sa.String),
    sa.Column("status", sa.String),
    sa.Column("branch", sa.String),
    schema="github",
)


def engine_url(demo: dict[str, Any], token: str) -> str:
    host_port = demo["flight_uri"].removeprefix("grpc://")
    # The dialect's documented forms: the token as the URL's password (sent as "Bearer <token>"), TLS off explicitly.
    return f"adbc+flightsql://omnisql:{token}@{host_port}?tls=false"


@pytest.fixture()
def engine(demo: dict[str, Any], admin_token: str) -> Iterator[sa.Engine]:
    engine = sa.create_engine(engine_url(demo, admin_token))
    yield engine
    engine.dispose()


def literal_rows(adbc_conn: Any, sql: str) -> list[tuple[Any, ...]]:
    """The independent answer: literal SQL through the plain ADBC connection (no SQLAlchemy, no parameters)."""
    cursor = adbc_conn.cursor()
    cursor.execute(sql)
    rows = [tuple(row) for row in cursor.fetchall()]
    cursor.close()
    return rows


def test_both_documented_url_forms_connect(demo: dict[str, Any], admin_token: str) -> None:
    host_port = demo["flight_uri"].removeprefix("grpc://")
    for url in (engine_url(demo, admin_token),
                f"adbc+flightsql://{host_port}?tls=false&authorization=Bearer%20{admin_token}"):
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM jira.issues")).scalar_one() == len(build_seed().issues)
        engine.dispose()


def test_text_query_with_bound_parameters(engine: sa.Engine, adbc_conn: Any) -> None:
    query = sa.text("SELECT issue_key, status FROM jira.issues WHERE project = :project AND status = :status "
                    "ORDER BY issue_key")
    with engine.connect() as conn:
        got = [tuple(r) for r in conn.execute(query, {"project": "WEB", "status": "Done"})]
    expected = literal_rows(adbc_conn, "SELECT issue_key, status FROM jira.issues WHERE project = 'WEB' "
                                       "AND status = 'Done' ORDER BY issue_key")
    assert got == expected
    assert len(got) == sum(1 for i in build_seed().issues if i.project == "WEB" and i.status == "Done") > 0


def test_text_query_with_bound_limit(engine: sa.Engine, adbc_conn: Any) -> None:
    """A parameter in LIMIT after one in WHERE: each must bind to its own placeholder."""
    query = sa.text("SELECT issue_key FROM jira.issues WHERE team = :team ORDER BY issue_key LIMIT :n")
    with engine.connect() as conn:
        got = [tuple(r) for r in conn.execute(query, {"team": "web", "n": 4})]
    assert got == literal_rows(adbc_conn, "SELECT issue_key FROM jira.issues WHERE team = 'web' "
                                          "ORDER BY issue_key LIMIT 4")
    assert len(got) == 4


def test_core_select_where_order_by_limit(engine: sa.Engine, adbc_conn: Any) -> None:
    """SQLAlchemy writes ``jira.issues.team = ?`` (schema-qualified column references) and ``LIMIT ?``."""
    query = (sa.select(issues.c.issue_key, issues.c.team, issues.c.status)
             .where(issues.c.team == "web", issues.c.status == "In Progress")
             .order_by(issues.c.issue_key.desc())
             .limit(5))
    compiled = str(query.compile(engine))
    assert "jira.issues.team = ?" in compiled and "LIMIT ?" in compiled
    with engine.connect() as conn:
        got = [tuple(r) for r in conn.execute(query)]
    assert got == literal_rows(adbc_conn, "SELECT issue_key, team, status FROM jira.issues WHERE team = 'web' "
                                          "AND status = 'In Progress' ORDER BY issue_key DESC LIMIT 5")
    assert len(got) == 5


def test_core_count_with_bound_parameter(engine: sa.Engine) -> None:
    seed = build_seed()
    query = sa.select(sa.func.count()).select_from(issues).where(issues.c.team == sa.bindparam("team"))
    with engine.connect() as conn:
        counts = {team: conn.execute(query, {"team": team}).scalar_one() for team in ("web", "mobile", "platform")}
    assert counts == {team: sum(1 for i in seed.issues if team_of_project(i.project) == team)
                      for team in ("web", "mobile", "platform")}


def test_core_join_across_apps(engine: sa.Engine, adbc_conn: Any) -> None:
    query = (sa.select(pull_requests.c.repo, pull_requests.c.number, issues.c.issue_key)
             .join_from(pull_requests, issues, pull_requests.c.branch == issues.c.branch_name)
             .where(issues.c.status == "In Progress", pull_requests.c.status == "merged")
             .order_by(pull_requests.c.repo, pull_requests.c.number, issues.c.issue_key))
    with engine.connect() as conn:
        got = [tuple(r) for r in conn.execute(query)]
    expected = literal_rows(adbc_conn, "SELECT gh.repo, gh.number, ji.issue_key FROM github.pull_requests gh "
                                       "JOIN jira.issues ji ON gh.branch = ji.branch_name WHERE ji.status = "
                                       "'In Progress' AND gh.status = 'merged' ORDER BY 1, 2, 3")
    assert got == expected
    seed = build_seed()
    in_progress = {i.branch for i in seed.issues if i.branch and i.status == "In Progress"}
    assert len(got) == sum(1 for p in seed.pulls if p.merged_at and p.head in in_progress) > 0


def test_core_aggregate_group_by(engine: sa.Engine) -> None:
    count = sa.func.count().label("n")
    query = (sa.select(pull_requests.c.status, count).group_by(pull_requests.c.status)
             .order_by(pull_requests.c.status))
    with engine.connect() as conn:
        got = {status: n for status, n in conn.execute(query)}
    pulls = build_seed().pulls
    assert got == {"closed": sum(1 for p in pulls if p.state == "closed" and not p.merged_at),
                   "merged": sum(1 for p in pulls if p.merged_at),
                   "open": sum(1 for p in pulls if p.state == "open")}


def test_inspector_schemas_and_column_types(engine: sa.Engine) -> None:
    """Reflection maps the server's type names (ARROW:FLIGHT:SQL:TYPE_NAME) to SQLAlchemy types, not NullType."""
    inspector = sa.inspect(engine)
    assert {"github", "jira"} <= set(inspector.get_schema_names())
    columns = {c["name"]: c["type"] for c in inspector.get_columns("issues", schema="jira")}
    assert list(columns)[:3] == ["issue_key", "summary", "status"]
    prs = {c["name"]: c["type"] for c in inspector.get_columns("pull_requests", schema="github")}
    wanted = {"issue_key": sa.String, "status": sa.String, "story_points": sa.Float, "created_at": sa.DateTime}
    got = {name: columns[name] for name in wanted}
    wanted_prs = {"number": sa.Integer, "repo": sa.String, "merged_at": sa.DateTime}
    got_prs = {name: prs[name] for name in wanted_prs}
    assert all(isinstance(got[n], wanted[n]) for n in wanted), got
    assert all(isinstance(got_prs[n], wanted_prs[n]) for n in wanted_prs), got_prs
    untyped = [name for name, kind in {**columns, **prs}.items() if isinstance(kind, sa.types.NullType)
               and name != "labels"]  # a list column has no SQLAlchemy generic type
    assert untyped == []


def test_autoloaded_table_queries_like_a_declared_one(engine: sa.Engine) -> None:
    reflected = sa.Table("pull_requests", sa.MetaData(), autoload_with=engine, schema="github")
    assert reflected.c.number.name == "number" and "merged_at" in reflected.c
    query = (sa.select(reflected.c.repo, reflected.c.number).where(reflected.c.repo == "mobile-app")
             .order_by(reflected.c.number).limit(3))
    with engine.connect() as conn:
        got = [tuple(r) for r in conn.execute(query)]
    numbers = sorted(p.number for p in build_seed().pulls if p.repo == "mobile-app")[:3]
    assert got == [("mobile-app", n) for n in numbers]


def test_pandas_read_sql_over_the_engine(engine: sa.Engine, adbc_conn: Any) -> None:
    query = (sa.select(issues.c.issue_key, issues.c.summary, issues.c.status)
             .where(issues.c.project == "MOB").order_by(issues.c.issue_key).limit(10))
    frame = pd.read_sql(query, engine)
    cursor = adbc_conn.cursor()
    cursor.execute("SELECT issue_key, summary, status FROM jira.issues WHERE project = 'MOB' "
                   "ORDER BY issue_key LIMIT 10")
    expected = cursor.fetch_arrow_table().to_pylist()
    assert list(frame.columns) == ["issue_key", "summary", "status"]
    assert frame.to_dict("records") == expected
    assert len(expected) == 10


def test_pandas_read_sql_text_with_params(engine: sa.Engine) -> None:
    frame = pd.read_sql(sa.text("SELECT repo, count(*) AS n FROM github.pull_requests WHERE status = :status "
                                "GROUP BY repo ORDER BY repo"), engine, params={"status": "open"})
    expected: dict[str, int] = {}
    for p in build_seed().pulls:
        if p.state == "open":
            expected[p.repo] = expected.get(p.repo, 0) + 1
    assert dict(zip(frame["repo"], frame["n"], strict=True)) == dict(sorted(expected.items()))
