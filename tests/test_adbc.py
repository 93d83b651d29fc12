"""The ADBC Flight SQL driver (Go, via adbc_driver_flightsql.dbapi) against the running demo."""

from __future__ import annotations

from typing import Any

import adbc_driver_flightsql.dbapi as flightsql
import pyarrow as pa
import pytest

from sandbox.seed import build_seed


def test_execute_returns_arrow(adbc_conn: Any) -> None:
    cursor = adbc_conn.cursor()
    cursor.execute("SELECT repo, count(*) AS n FROM github.pull_requests GROUP BY repo ORDER BY repo")
    table = cursor.fetch_arrow_table()
    assert table.column_names == ["repo", "n"]
    assert table.column("repo").to_pylist() == ["infra-tools", "mobile-app", "platform-api", "web-frontend"]
    assert table.column("n").to_pylist() == [275] * 4  # the seed's pulls, round-robin over four repositories
    assert sum(table.column("n").to_pylist()) == len(build_seed().pulls)


def test_parameters_bind_as_values(adbc_conn: Any) -> None:
    cursor = adbc_conn.cursor()
    cursor.execute("SELECT count(*) FROM jira.issues WHERE status = ? AND project = ?", ("In Progress", "WEB"))
    (count,) = cursor.fetchone()
    cursor.execute("SELECT count(*) FROM jira.issues WHERE status = 'In Progress' AND project = 'WEB'")
    assert cursor.fetchone() == (count,)
    assert count > 0
    cursor.execute("SELECT count(*) FROM jira.issues WHERE status = ?", ("In Progress' OR '1'='1",))
    assert cursor.fetchone() == (0,)


def test_same_prepared_statement_with_new_parameters(adbc_conn: Any) -> None:
    cursor = adbc_conn.cursor()
    counts = {}
    for status in ("open", "closed", "merged"):
        cursor.execute("SELECT count(*) FROM github.pull_requests WHERE status = ?", (status,))
        counts[status] = cursor.fetchone()[0]
    assert sum(counts.values()) == len(build_seed().pulls)
    assert len(set(counts.values())) == 3


def test_get_info_reports_server_and_no_transactions(adbc_conn: Any) -> None:
    info = adbc_conn.adbc_get_info()
    assert info["vendor_name"] == "OmniSQL"
    assert info["vendor_version"] == "0.1.0"


def test_get_objects_lists_catalog_schemas_tables_columns(adbc_conn: Any) -> None:
    objects = adbc_conn.adbc_get_objects(depth="all").read_all().to_pylist()
    assert [c["catalog_name"] for c in objects] == ["omnisql"]
    schemas = {s["db_schema_name"]: s for s in objects[0]["catalog_db_schemas"]}
    assert {"github", "jira"} <= set(schemas)  # and the other demo apps
    tables = {t["table_name"]: t for t in schemas["jira"]["db_schema_tables"]}
    columns = [c["column_name"] for c in tables["issues"]["table_columns"]]
    assert columns[:3] == ["issue_key", "summary", "status"]
    assert "story_points" in columns and "branch_name" in columns


def test_get_table_schema(adbc_conn: Any) -> None:
    schema = adbc_conn.adbc_get_table_schema("pull_requests", db_schema_filter="github")
    assert schema.field("additions").type == pa.int64()
    assert schema.field("merged_at").type == pa.timestamp("us", tz="UTC")
    assert schema.field("labels").type == pa.list_(pa.string())
    # What SELECT * returns: DuckDB declares every result column nullable (tests/test_flightsql_conformance.py).
    assert schema.field("pr_id").nullable
    assert schema.field("pr_id").metadata[b"ARROW:FLIGHT:SQL:TYPE_NAME"] == b"BIGINT"


def test_basic_auth_handshake(demo: dict[str, Any]) -> None:
    conn = flightsql.connect(demo["flight_uri"], db_kwargs={"username": "admin",
                                                           "password": demo["tokens"]["token_admin"]})
    try:
        cursor = conn.cursor()
        cursor.execute("SELECT count(*) FROM jira.issues")
        assert cursor.fetchone() == (len(build_seed().issues),)
    finally:
        conn.close()


def test_bad_token_is_unauthenticated(demo: dict[str, Any]) -> None:
    with pytest.raises(flightsql.Error, match="UNAUTHENTICATED") as excinfo:
        conn = flightsql.connect(demo["flight_uri"], db_kwargs={
            "adbc.flight.sql.authorization_header": "Bearer not-a-token"})
        conn.cursor().execute("SELECT 1")
    assert "Traceback" not in str(excinfo.value)


@pytest.mark.parametrize(("sql", "expected"), [
    ("SELEC * FROM jira.issues", "syntax error"),
    ("SELECT * FROM jira.nope", "unknown table jira.nope"),
    ("SELECT nope FROM jira.issues", "Column 'nope' could not be resolved"),
    ("DELETE FROM jira.issues", "only read-only queries"),
    ("SELECT * FROM read_csv('/etc/passwd')", "table functions are not allowed"),
    ("SELECT * FROM github.users", "github.users needs a filter on login"),
])
def test_bad_queries_are_invalid_argument(adbc_conn: Any, sql: str, expected: str) -> None:
    cursor = adbc_conn.cursor()
    with pytest.raises(flightsql.ProgrammingError, match="INVALID_ARGUMENT") as excinfo:
        cursor.execute(sql)
    cursor.close()
    assert expected in str(excinfo.value)
    assert "Traceback" not in str(excinfo.value) and "Python exception" not in str(excinfo.value)
