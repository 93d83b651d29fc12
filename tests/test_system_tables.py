"""System tables through ADBC: ``omnisql.query_log`` shows each principal its own recent queries (what a JDBC or
BI user has instead of Flight app_metadata), ``omnisql.cache`` the cache's counters."""

from __future__ import annotations

import contextlib
from typing import Any

import adbc_driver_flightsql.dbapi as flightsql
import pyarrow as pa


def run(conn: Any, sql: str) -> pa.Table:
    with conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetch_arrow_table()


def connect(demo: dict[str, Any], token: str) -> Any:
    return flightsql.connect(demo["flight_uri"], db_kwargs={
        "adbc.flight.sql.authorization_header": f"Bearer {demo['tokens'][token]}"})


def test_the_query_log_shows_each_principal_its_own_queries(demo: dict[str, Any]) -> None:
    with connect(demo, "token_qa") as qa, connect(demo, "token_web_dev") as web:
        counted = run(qa, "SELECT count(*) AS n FROM jira.issues WHERE story_points >= 5").column(0)[0].as_py()
        run(web, "SELECT 1 AS one")
        log = run(qa, "SELECT user, outcome, rows, api_calls, from_cache, total_ms, sql_fingerprint "
                      "FROM omnisql.query_log ORDER BY started_at")
        others = run(web, "SELECT DISTINCT user FROM omnisql.query_log").column(0).to_pylist()
    last = log.to_pylist()[-1]
    assert set(log.column("user").to_pylist()) == {"qa"} and others == ["web_dev"]
    assert last["outcome"] == "ok" and last["rows"] == 1 and last["api_calls"] > 0 and not last["from_cache"]
    assert last["total_ms"] > 0 and len(last["sql_fingerprint"]) == 64
    assert counted > 0


def test_the_cache_table_and_metadata(demo: dict[str, Any]) -> None:
    with connect(demo, "token_dev") as dev:
        cache = run(dev, "SELECT entries, bytes, max_bytes, hits, misses FROM omnisql.cache").to_pylist()
        schemas = {s["db_schema_name"] for c in dev.adbc_get_objects(depth="db_schemas").read_all().to_pylist()
                   for s in c["catalog_db_schemas"]}
    assert len(cache) == 1 and cache[0]["max_bytes"] > 0
    assert "omnisql" not in schemas  # queryable, not listed: catalog browsers show the apps' tables


def test_flight_info_carries_the_plan_as_app_metadata(demo: dict[str, Any]) -> None:
    import json

    import pyarrow.flight as flight

    from clients.flight_client import statement_descriptor

    client = flight.FlightClient(demo["flight_uri"])
    options = flight.FlightCallOptions(headers=[(b"authorization", f"Bearer {demo['tokens']['token_dev']}".encode()),
                                                (b"x-omnisql-max-staleness-ms", b"5000")])
    info = client.get_flight_info(statement_descriptor("SELECT issue_key FROM jira.issues"), options)
    meta = json.loads(info.app_metadata)
    assert len(meta["trace_id"]) == 32 and meta["est_api_calls"] >= 1 and meta["max_staleness_ms"] == 5000
    assert meta["tables"] == ["jira.issues"] and "jira.issues: row filter" in meta["policy"]
    budget = meta["rate_limit_status"]["jira"]
    assert budget["capacity"] >= 1 and 0 <= budget["remaining"] <= budget["capacity"] and budget["reset_s"] >= 0


def test_the_sources_table_shows_budgets_requests_and_errors(demo: dict[str, Any]) -> None:
    """Per connector the principal may read: the bucket's state, requests made so far and the last error (its
    code only). A query's API calls show up in ``requests``; the query log has the budget after each query."""
    with connect(demo, "token_admin") as admin:
        before = {r["connector"]: r for r in run(admin, "SELECT * FROM omnisql.sources").to_pylist()}
        calls = run(admin, "SELECT count(*) FROM jira.issues WHERE status = 'Done'")
        after = {r["connector"]: r for r in run(admin, "SELECT * FROM omnisql.sources").to_pylist()}
        logged = run(admin, "SELECT api_calls, rate_limit_status FROM omnisql.query_log "
                            "WHERE sql_fingerprint IS NOT NULL ORDER BY started_at").to_pylist()
    assert calls.num_rows == 1
    assert {"github", "jira"} <= set(after) and "omnisql" not in after and "information_schema" not in after
    jira = after["jira"]
    assert jira["requests"] - before["jira"]["requests"] >= 1, "the count's API calls are counted"
    assert jira["last_success_at"] is not None
    assert jira["budget_capacity"] >= 1 and 0 <= jira["budget_remaining"] <= jira["budget_capacity"]
    assert jira["budget_reset_s"] >= 0 and jira["blocked_for_s"] >= 0
    import json

    counted = [r for r in logged if r["api_calls"] and "jira" in json.loads(r["rate_limit_status"])]
    assert counted, "the query log reports the budget of the connectors a query read"


def test_the_query_log_says_per_source_how_rows_were_had(demo: dict[str, Any]) -> None:
    """``from_cache`` overall and per source: a live query fetches, the same one within its staleness is a hit."""
    import json

    sql = "SELECT issue_key FROM jira.issues WHERE project = 'MOB' AND story_points = 8"
    with connect(demo, "token_admin") as live:
        run(live, sql)
    cached = flightsql.connect(demo["flight_uri"], db_kwargs={
        "adbc.flight.sql.authorization_header": f"Bearer {demo['tokens']['token_admin']}",
        "adbc.flight.sql.rpc.call_header.x-omnisql-max-staleness-ms": "600000"})
    with cached:
        run(cached, sql)
        rows = run(cached, "SELECT from_cache, sources FROM omnisql.query_log WHERE sources LIKE '%jira.issues%' "
                           "ORDER BY started_at DESC LIMIT 2").to_pylist()
    newest, before = (json.loads(r["sources"])["jira.issues"] for r in rows)
    assert rows[0]["from_cache"] and newest["cache_hits"] == 1 and newest["api_calls"] == 0
    assert newest["fetch"] == ["hit"] and before["fetch"] in (["full"], ["delta"]) and before["api_calls"] >= 1


def test_sources_lists_only_connectors_the_principal_may_read(reference_engine: Any) -> None:
    from security.principals import Principal

    stranger = Principal(user="stranger", roles=("visitor",))
    rows = reference_engine.query("SELECT connector FROM omnisql.sources",
                                  ctx=reference_engine.context(stranger)).table
    assert rows.num_rows == 0


def test_a_failing_source_shows_its_error_code_not_its_message(demo: dict[str, Any]) -> None:
    from tests.conftest import SandboxLog

    log = SandboxLog(demo)
    log.faults("jira", fail_next=20, fail_status=503)
    try:
        with connect(demo, "token_admin") as admin:
            with contextlib.suppress(flightsql.Error):
                run(admin, "SELECT issue_key FROM jira.issues WHERE status = 'Secret value'")
            jira = run(admin, "SELECT last_error, last_error_at, errors FROM omnisql.sources "
                              "WHERE connector = 'jira'").to_pylist()
    finally:
        log.faults("jira", fail_next=0)
    assert jira and jira[0]["last_error"] == "UPSTREAM_ERROR" and jira[0]["errors"] >= 1
