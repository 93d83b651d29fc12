"""Schema discovery in plain SQL through ADBC — ``SHOW TABLES``, ``SHOW SCHEMAS``, ``DESCRIBE``, ``SHOW <table>``
and ``information_schema`` — agrees with the Flight SQL metadata RPCs and follows the policy: a principal sees
only the tables and columns it may read, masked columns in their masked type."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pytest

from core.sqltypes import sql_type_name


def _connect(demo: dict[str, Any], token: str) -> Any:
    import adbc_driver_flightsql.dbapi as flightsql

    return flightsql.connect(demo["flight_uri"], db_kwargs={
        "adbc.flight.sql.authorization_header": f"Bearer {demo['tokens'][token]}"})


@pytest.fixture()
def qa_conn(demo: dict[str, Any]) -> Iterator[Any]:
    conn = _connect(demo, "token_qa")
    yield conn
    conn.close()


def _rows(conn: Any, sql: str) -> list[dict[str, Any]]:
    cursor = conn.cursor()
    cursor.execute(sql)
    return list(cursor.fetch_arrow_table().to_pylist())


def _rpc_tables(conn: Any) -> set[tuple[str, str]]:
    objects = conn.adbc_get_objects(depth="tables").read_all().to_pylist()
    return {(schema["db_schema_name"], table["table_name"])
            for catalog in objects for schema in catalog["catalog_db_schemas"] or []
            for table in schema["db_schema_tables"] or []}


@pytest.mark.parametrize("sql", ["SHOW TABLES", "show all tables", "SELECT table_schema AS schema, table_name AS "
                                 "name FROM information_schema.tables"])
def test_show_tables_lists_what_get_objects_lists(adbc_conn: Any, sql: str) -> None:
    listed = {(r["schema"], r["name"]) for r in _rows(adbc_conn, sql)}
    assert listed == _rpc_tables(adbc_conn)
    assert ("jira", "issues") in listed and not any(s in ("omnisql", "information_schema") for s, _ in listed)


def test_show_tables_from_one_schema_and_show_schemas(adbc_conn: Any) -> None:
    assert {r["name"] for r in _rows(adbc_conn, "SHOW TABLES FROM github")} == \
        {t for s, t in _rpc_tables(adbc_conn) if s == "github"}
    assert {r["schema"] for r in _rows(adbc_conn, "SHOW SCHEMAS")} == {s for s, _ in _rpc_tables(adbc_conn)}


@pytest.mark.parametrize("sql", ["DESCRIBE jira.issues", "desc Jira.Issues", "DESCRIBE TABLE omnisql.jira.issues",
                                 "SHOW jira.issues", "SHOW COLUMNS FROM jira.issues"])
def test_describe_matches_the_table_schema_rpc(adbc_conn: Any, sql: str) -> None:
    declared: pa.Schema = adbc_conn.adbc_get_table_schema("issues", db_schema_filter="jira")
    described = _rows(adbc_conn, sql)
    assert [(r["column_name"], r["column_type"]) for r in described] == \
        [(f.name, sql_type_name(f.type)) for f in declared]
    assert {r["null"] for r in described} == {"YES", "NO"}, "declared NOT NULL columns say so"
    by_name = {r["column_name"]: r for r in described}
    assert by_name["issue_key"]["key"] is True and by_name["summary"]["key"] is False
    assert by_name["status"]["pushdown"] is not None, "what the API can filter is part of the description"


@pytest.mark.parametrize(("sql", "schema", "table"), [("DESCRIBE omnisql.query_log", "omnisql", "query_log"),
                                                     ("DESCRIBE query_log", "omnisql", "query_log"),
                                                     ("DESCRIBE information_schema.tables", "information_schema",
                                                      "tables")])
def test_describe_of_a_system_table_matches_what_it_answers(adbc_conn: Any, sql: str, schema: str,
                                                            table: str) -> None:
    """System tables are queryable by everyone but not listed in information_schema: DESCRIBE still has their
    columns (it answered no rows), typed as for any table, in the order a query returns them."""
    cursor = adbc_conn.cursor()
    cursor.execute(f"SELECT * FROM {schema}.{table} LIMIT 0")
    answered = cursor.fetch_arrow_table().schema
    described = _rows(adbc_conn, sql)
    assert [(r["column_name"], r["column_type"]) for r in described] == \
        [(f.name, sql_type_name(f.type)) for f in answered]
    assert all(isinstance(r["key"], bool) and r["null"] in ("YES", "NO") for r in described)
    assert _rows(adbc_conn, "DESCRIBE jira.issues")[0].keys() == described[0].keys()


def test_information_schema_columns_joins_like_any_table(adbc_conn: Any) -> None:
    counts = _rows(adbc_conn, "SELECT table_schema, table_name, count(*) AS n, max(ordinal_position) AS last "
                              "FROM information_schema.columns GROUP BY ALL ORDER BY ALL")
    for row in counts:
        declared = adbc_conn.adbc_get_table_schema(row["table_name"], db_schema_filter=row["table_schema"])
        assert row["n"] == row["last"] == len(declared)


def test_a_principal_sees_its_policy_in_discovery(adbc_conn: Any, qa_conn: Any) -> None:
    """QA: diff_link is denied (absent), author is redacted (still VARCHAR), author_email masked; it sees
    the same tables through SQL as through GetObjects, and DESCRIBE agrees with GetTableSchema."""
    assert {(r["schema"], r["name"]) for r in _rows(qa_conn, "SHOW TABLES")} == _rpc_tables(qa_conn)
    qa_columns = [r["column_name"] for r in _rows(qa_conn, "DESCRIBE github.pull_requests")]
    admin_columns = [r["column_name"] for r in _rows(adbc_conn, "DESCRIBE github.pull_requests")]
    assert "diff_link" in admin_columns and "diff_link" not in qa_columns
    assert qa_columns == [f.name for f in qa_conn.adbc_get_table_schema("pull_requests", db_schema_filter="github")]
    assert not _rows(qa_conn, "SELECT * FROM information_schema.columns WHERE column_name = 'diff_link'")


def test_a_principal_without_grants_sees_no_tables(reference_engine: Any) -> None:
    """The demo policy's default is deny: a principal no rule matches discovers nothing (but the query works)."""
    from security.principals import Principal

    stranger = Principal(user="stranger", roles=("visitor",))
    for sql in ("SHOW TABLES", "SELECT * FROM information_schema.columns", "SHOW SCHEMAS"):
        assert reference_engine.query(sql, ctx=reference_engine.context(stranger)).table.num_rows == 0
    admin = Principal(user="root", roles=("admin",))
    assert reference_engine.query("SHOW TABLES", ctx=reference_engine.context(admin)).table.num_rows > 0


def test_describe_of_a_denied_table_is_entitlement_denied(demo: dict[str, Any]) -> None:
    import adbc_driver_flightsql.dbapi as flightsql

    conn = _connect(demo, "token_dev")
    try:
        denied = [t for t in ("salesforce.accounts", "github.users", "jira.issues")
                  if t.split(".")[1] not in {n for _, n in _rpc_tables(conn)}]
        if not denied:
            pytest.skip("the developer principal may read every table")
        with pytest.raises(flightsql.Error, match="ENTITLEMENT_DENIED|PERMISSION_DENIED"):
            _rows(conn, f"DESCRIBE {denied[0]}")
    finally:
        conn.close()


@pytest.mark.parametrize("sql, expected", [
    ("DESCRIBE jira.nope", "unknown table jira.nope"),
    ("DESCRIBE nope", "unknown table nope"),
    ("DESCRIBE SELECT 1", "prepare it"),
])
def test_discovery_errors_say_what_to_do(adbc_conn: Any, sql: str, expected: str) -> None:
    import adbc_driver_flightsql.dbapi as flightsql

    with pytest.raises(flightsql.ProgrammingError, match="INVALID_ARGUMENT") as excinfo:
        _rows(adbc_conn, sql)
    assert expected in str(excinfo.value)
