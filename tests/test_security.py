"""The demo's access matrix and adversarial attempts to get around it, through the real ADBC driver against the
demo server (policy: demo/tenant.py). Expected counts come from the seed itself, not from the engine."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import adbc_driver_flightsql.dbapi as flightsql
import pyarrow as pa
import pytest

from demo.tenant import REPO_TEAMS
from sandbox.seed import build_seed, team_of_project
from tests.conftest import SandboxLog

SEED = build_seed()
TEAM_PULLS = {team: sum(1 for p in SEED.pulls if REPO_TEAMS[p.repo] == team) for team in ("mobile", "web")}
TEAM_ISSUES = {team: sum(1 for i in SEED.issues if team_of_project(i.project) == team) for team in ("mobile", "web")}
MASKED_EMAIL = re.compile(r"^[0-9a-f]{8}\*\*\*\*@acme\.example$")


def connect(demo: dict[str, Any], token: str) -> Any:
    return flightsql.connect(demo["flight_uri"], db_kwargs={"adbc.flight.sql.authorization_header": f"Bearer {token}"})


@pytest.fixture()
def as_user(demo: dict[str, Any]) -> Iterator[Any]:
    opened: dict[str, Any] = {}

    def conn(name: str) -> Any:
        if name not in opened:
            opened[name] = connect(demo, demo["tokens"][name])
        return opened[name]

    yield conn
    for c in opened.values():
        c.close()


def run(conn: Any, sql: str, params: Any = None) -> pa.Table:
    with conn.cursor() as cur:
        cur.execute(sql, params) if params is not None else cur.execute(sql)
        return cur.fetch_arrow_table()


def scalar(conn: Any, sql: str, params: Any = None) -> Any:
    return run(conn, sql, params).column(0)[0].as_py()


# -- the matrix ------------------------------------------------------------------------------------------------
def test_admin_sees_everything_raw(as_user: Any) -> None:
    admin = as_user("token_admin")
    assert scalar(admin, "SELECT count(*) FROM github.pull_requests") == len(SEED.pulls)
    assert scalar(admin, "SELECT count(*) FROM jira.issues") == len(SEED.issues)
    authors = set(run(admin, "SELECT DISTINCT author FROM github.pull_requests").column(0).to_pylist())
    assert authors == {p.author for p in SEED.pulls}


@pytest.mark.parametrize(("token", "team"), [("token_dev", "mobile"), ("token_web_dev", "web")])
def test_developers_see_their_team_raw(as_user: Any, token: str, team: str) -> None:
    conn = as_user(token)
    assert scalar(conn, "SELECT count(*) FROM github.pull_requests") == TEAM_PULLS[team]
    assert scalar(conn, "SELECT count(*) FROM jira.issues") == TEAM_ISSUES[team]
    assert run(conn, "SELECT DISTINCT team_id FROM github.pull_requests").column(0).to_pylist() == [team]
    authors = set(run(conn, "SELECT DISTINCT author FROM github.pull_requests").column(0).to_pylist())
    assert authors == {p.author for p in SEED.pulls if REPO_TEAMS[p.repo] == team}  # raw values


def test_the_row_filter_goes_upstream(as_user: Any, sandbox_log: SandboxLog) -> None:
    """token_dev's scans list only the mobile repository and carry the mobile project in JQL."""
    dev = as_user("token_dev")
    run(dev, "SELECT number FROM github.pull_requests")
    run(dev, "SELECT issue_key FROM jira.issues")
    listed = {r["path"] for r in sandbox_log.requests("github") if r["path"].endswith("/pulls")}
    assert listed and all("mobile-app" in path or "/repositories/" in path for path in listed)
    assert not any(repo in path for path in listed for repo in ("web-frontend", "platform-api", "infra-tools"))
    jql = [r["body"]["jql"] for r in sandbox_log.requests("jira") if r["path"].endswith("/search/jql")]
    assert jql and all('"MOB"' in q and '"WEB"' not in q for q in jql), jql
    plan = run(dev, "EXPLAIN SELECT number FROM github.pull_requests")
    assert "team_id = 'mobile'" in plan.column("pushed_exact")[0].as_py()


def test_qa_sees_mobile_rows_with_people_hidden(as_user: Any) -> None:
    qa = as_user("token_qa")
    rows = run(qa, "SELECT author, author_email FROM github.pull_requests")
    assert rows.num_rows == TEAM_PULLS["mobile"]
    assert set(rows.column("author").to_pylist()) == {"[HIDDEN]"}
    emails = [e for e in rows.column("author_email").to_pylist() if e is not None]
    assert emails and all(MASKED_EMAIL.match(e) for e in emails)
    issues = run(qa, "SELECT assignee, assignee_email, team FROM jira.issues")
    assert issues.num_rows == TEAM_ISSUES["mobile"] and set(issues.column("team").to_pylist()) == {"mobile"}
    assert set(issues.column("assignee").to_pylist()) <= {"[HIDDEN]", None}
    users = run(qa, "SELECT login, email FROM github.users WHERE login = 'ana-silva'")
    assert users.column("login").to_pylist() == ["ana-silva"]
    assert MASKED_EMAIL.match(users.column("email")[0].as_py())


def test_qa_may_not_read_diff_links(as_user: Any) -> None:
    qa = as_user("token_qa")
    star = run(qa, "SELECT * FROM github.pull_requests LIMIT 1")
    assert "diff_link" not in star.schema.names and "author" in star.schema.names
    for sql in ("SELECT diff_link FROM github.pull_requests", "SELECT gh.diff_link FROM github.pull_requests gh",
                "SELECT count(*) FROM github.pull_requests WHERE diff_link LIKE '%1%'"):
        with pytest.raises(flightsql.ProgrammingError, match="ENTITLEMENT_DENIED: you may not read "
                                                             "github.pull_requests.diff_link"):
            run(qa, sql)


def test_unknown_tokens_are_unauthenticated(demo: dict[str, Any]) -> None:
    with pytest.raises(Exception, match="UNAUTHENTICATED"), connect(demo, "not-a-token") as conn:
        run(conn, "SELECT 1")


def test_metadata_shows_only_what_may_be_read(as_user: Any) -> None:
    qa_schema = as_user("token_qa").adbc_get_table_schema("pull_requests", db_schema_filter="github")
    assert "diff_link" not in qa_schema.names
    admin_schema = as_user("token_admin").adbc_get_table_schema("pull_requests", db_schema_filter="github")
    assert "diff_link" in admin_schema.names


# -- adversarial -----------------------------------------------------------------------------------------------
QA_LEAKS = [
    # conditions on a masked column see masked values only: no raw value filters rows, upstream or locally
    ("SELECT count(*) FROM github.pull_requests WHERE author = 'ana-silva'", 0),
    ("SELECT count(*) FROM github.pull_requests WHERE author <> 'ana-silva'", TEAM_PULLS["mobile"]),
    ("SELECT count(*) FROM github.pull_requests WHERE author LIKE 'a%' OR author IN ('ben-okafor')", 0),
    ("SELECT count(*) FROM github.pull_requests WHERE author_email LIKE '%silva%'", 0),
    ("SELECT count(DISTINCT author) FROM github.pull_requests", 1),
    ("SELECT count(*) FROM (SELECT author, count(*) FROM github.pull_requests GROUP BY author)", 1),
    ("SELECT count(*) FROM (SELECT DISTINCT author FROM github.pull_requests ORDER BY author LIMIT 5)", 1),
    ("SELECT max(length(author)) FROM github.pull_requests", len("[HIDDEN]")),
    ("SELECT count(*) FROM (SELECT row_number() OVER (PARTITION BY author) AS n FROM github.pull_requests) "
     "WHERE n = 1", 1),
    # rows of other teams never enter, whatever the query says
    ("SELECT count(*) FROM github.pull_requests WHERE team_id = 'web'", 0),
    ("SELECT count(*) FROM github.pull_requests WHERE team_id = 'web' OR 1 = 1", TEAM_PULLS["mobile"]),
    ("SELECT count(*) FROM (SELECT * FROM jira.issues UNION ALL SELECT * FROM jira.issues)", 2 * TEAM_ISSUES["mobile"]),
    ("WITH t AS (SELECT team FROM jira.issues) SELECT count(*) FROM t WHERE team <> 'mobile'", 0),
    ("SELECT count(*) FROM jira.issues WHERE issue_key IN (SELECT issue_key FROM jira.issues WHERE project = 'WEB')",
     0),
    ("SELECT count(*) FROM github.pull_requests gh JOIN jira.issues ji ON gh.branch = ji.branch_name "
     "WHERE ji.team <> 'mobile' OR gh.team_id <> 'mobile'", 0),
]


@pytest.mark.parametrize(("sql", "expected"), QA_LEAKS, ids=[f"leak-{i:02d}" for i in range(len(QA_LEAKS))])
def test_qa_queries_reveal_nothing_raw(as_user: Any, sql: str, expected: int) -> None:
    assert scalar(as_user("token_qa"), sql) == expected


def test_parameters_and_prepared_statements_see_the_policy_too(as_user: Any) -> None:
    qa = as_user("token_qa")
    assert scalar(qa, "SELECT count(*) FROM github.pull_requests WHERE author = ?", ("ana-silva",)) == 0
    assert scalar(qa, "SELECT count(*) FROM jira.issues WHERE team = ?", ("web",)) == 0


def test_errors_show_masked_values_only(as_user: Any) -> None:
    with pytest.raises(flightsql.ProgrammingError) as raised:
        run(as_user("token_qa"), "SELECT CAST(author AS INTEGER) FROM github.pull_requests")
    message = str(raised.value)
    assert not any(u.login in message for u in SEED.users)


def test_a_join_on_a_masked_column_never_binds_upstream(as_user: Any, sandbox_log: SandboxLog) -> None:
    """Masked authors cannot supply logins to github.users (that would filter upstream by raw values)."""
    with pytest.raises(flightsql.ProgrammingError, match="needs a filter on login"):
        run(as_user("token_qa"),
            "SELECT u.email FROM github.pull_requests gh JOIN github.users u ON u.login = gh.author")
    assert not [r for r in sandbox_log.requests("github") if r["path"].startswith("/users/")]


def test_a_prepared_statement_of_another_principal_is_denied(demo: dict[str, Any]) -> None:
    import pyarrow.flight as flight
    from google.protobuf import any_pb2

    from flight_server.commands import pack
    from flight_server.proto import flight_sql_pb2 as pb

    client = flight.FlightClient(demo["flight_uri"])

    def options(token: str) -> flight.FlightCallOptions:
        return flight.FlightCallOptions(headers=[(b"authorization", f"Bearer {demo['tokens'][token]}".encode())])

    request = pb.ActionCreatePreparedStatementRequest(query="SELECT issue_key FROM jira.issues")
    result = next(iter(client.do_action(flight.Action("CreatePreparedStatement", pack(request)),
                                        options("token_admin"))))
    wrapper = any_pb2.Any()
    wrapper.ParseFromString(result.body.to_pybytes())
    prepared = pb.ActionCreatePreparedStatementResult()
    wrapper.Unpack(prepared)
    command = pb.CommandPreparedStatementQuery(prepared_statement_handle=prepared.prepared_statement_handle)
    with pytest.raises(flight.FlightUnauthorizedError, match="ENTITLEMENT_DENIED"):
        client.get_flight_info(flight.FlightDescriptor.for_command(pack(command)), options("token_qa"))


# -- the same matrix through pyarrow.flight and flightsql-dbapi ------------------------------------------------
MATRIX = {  # token → (pull requests, issues, authors raw?, diff_link)
    "token_admin": (len(SEED.pulls), len(SEED.issues), True, "readable"),
    "token_dev": (TEAM_PULLS["mobile"], TEAM_ISSUES["mobile"], True, "readable"),
    "token_qa": (TEAM_PULLS["mobile"], TEAM_ISSUES["mobile"], False, "denied"),
    "token_web_dev": (TEAM_PULLS["web"], TEAM_ISSUES["web"], True, "readable"),
}


@pytest.mark.parametrize("token", sorted(MATRIX))
def test_the_matrix_through_pyarrow_flight(demo: dict[str, Any], token: str) -> None:
    import pyarrow.flight as flight

    from clients.flight_client import statement_descriptor

    client = flight.FlightClient(demo["flight_uri"])
    options = flight.FlightCallOptions(headers=[(b"authorization", f"Bearer {demo['tokens'][token]}".encode())])

    def query(sql: str) -> pa.Table:
        info = client.get_flight_info(statement_descriptor(sql), options)
        return client.do_get(info.endpoints[0].ticket, options).read_all()

    pulls, issues, raw, diff_link = MATRIX[token]
    assert query("SELECT count(*) AS n FROM github.pull_requests").column(0)[0].as_py() == pulls
    assert query("SELECT count(*) AS n FROM jira.issues").column(0)[0].as_py() == issues
    authors = set(query("SELECT DISTINCT author FROM github.pull_requests").column(0).to_pylist())
    assert (authors != {"[HIDDEN]"}) == raw
    if diff_link == "denied":
        with pytest.raises(flight.FlightUnauthorizedError, match="ENTITLEMENT_DENIED"):
            query("SELECT diff_link FROM github.pull_requests")


@pytest.mark.parametrize("token", sorted(MATRIX))
def test_the_matrix_through_flightsql_dbapi(demo: dict[str, Any], token: str, flightsql_dbapi_python: Any) -> None:
    import json
    import subprocess
    from pathlib import Path

    script = Path(__file__).with_name("flightsql_dbapi_matrix.py")
    done = subprocess.run([str(flightsql_dbapi_python), str(script), demo["flight_uri"], demo["tokens"][token]],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    pulls, issues, raw, diff_link = MATRIX[token]
    assert (out["pulls"], out["issues"], out["diff_link"]) == (pulls, issues, diff_link)
    assert (out["authors"] != ["[HIDDEN]"]) == raw
