"""Hostile SQL and parameters: each gets a classified error (never INTERNAL), no statement reaches the server's
files or settings, memory and result size are bounded, an API budget is enforced before spending, and an
innocent client on the same server is still served while it happens."""

from __future__ import annotations

import datetime
import time
from typing import Any

import pyarrow as pa
import pytest

from core.errors import InvalidQuery, QueryTimeout, ResourceExhausted
from planner.context import QueryLimits
from planner.control import QueryControl
from planner.duck import Duck
from planner.parameters import to_parameters
from tests.conftest import SandboxLog
from tests.hostile.innocent import Innocent
from tests.hostile.innocent import run_sql as _run

TABLE_FUNCTIONS = [
    "SELECT * FROM (SELECT 1) t JOIN LATERAL duckdb_settings() s ON true",
    "SELECT * FROM (SELECT 1) t CROSS JOIN LATERAL (SELECT * FROM query('SELECT 42')) s",
    "SELECT (SELECT count(*) FROM duckdb_settings())",
    "WITH x AS (SELECT * FROM read_csv('/etc/passwd')) SELECT * FROM x",
    "SELECT issue_key FROM jira.issues UNION SELECT * FROM glob('/etc/*')",
    "SELECT * FROM range((SELECT count(*) FROM read_csv('/etc/passwd')))",  # a generator's argument is checked too
]


@pytest.mark.parametrize("sql", TABLE_FUNCTIONS)
def test_table_functions_are_refused_in_every_position(adbc_conn: Any, innocent: Innocent, sql: str) -> None:
    with pytest.raises(Exception, match="INVALID_QUERY: table functions are not allowed"):
        _run(adbc_conn, sql)


def test_row_generators_stream_within_the_limits(adbc_conn: Any, innocent: Innocent) -> None:
    """``range``/``generate_series`` read nothing, so they are allowed; what they can cost is bounded like any
    query: 10 billion rows stop at ``max_result_bytes`` while streaming (RESOURCE_EXHAUSTED naming the limit, the
    server's memory untouched) and everyone else is still served."""
    with pytest.raises(Exception, match=r"RESOURCE_EXHAUSTED: the result is larger than .* \(max_result_bytes\)"):
        _run(adbc_conn, "SELECT r.range FROM (SELECT 1) t, LATERAL range(10000000000) r")
    assert _run(adbc_conn, "SELECT * FROM range(5)").column("range").to_pylist() == [0, 1, 2, 3, 4]
    days = _run(adbc_conn, "SELECT count(*) AS n FROM generate_series(DATE '2026-01-01', DATE '2026-12-31', "
                           "INTERVAL 1 DAY) g(d)")
    assert days.column("n")[0].as_py() == 365


def test_a_generator_without_end_stops_at_the_deadline() -> None:
    """``count(*)`` over a trillion generated rows would run for hours: the deadline interrupts DuckDB."""
    duck = Duck()
    control = QueryControl(deadline_s=1.0)
    began = time.monotonic()
    with pytest.raises(QueryTimeout):
        duck.run("SELECT count(*) FROM range(1000000000000)", {}, control=control)
    assert time.monotonic() - began < 10
    assert duck.run("SELECT 41 + 1 AS n", {}).column("n")[0].as_py() == 42


@pytest.mark.parametrize("setting", ["enable_external_access", "lock_configuration"])
def test_duckdb_is_locked_down(adbc_conn: Any, setting: str) -> None:
    """DuckDB runs without external access and with its configuration locked; a client can neither read the
    settings (``current_setting`` names the server's paths) nor change them."""
    from planner.duck import Duck

    value = Duck().db.execute(f"SELECT current_setting('{setting}')").fetchone()
    assert value == ((setting == "lock_configuration"),)
    with pytest.raises(Exception, match="INVALID_QUERY: current_setting"):
        _run(adbc_conn, f"SELECT current_setting('{setting}') AS v")
    with pytest.raises(Exception, match="INVALID_QUERY"):
        _run(adbc_conn, "SET enable_external_access = true")


def test_deep_nesting_is_a_classified_error(adbc_conn: Any, innocent: Innocent) -> None:
    with pytest.raises(Exception, match="INVALID_QUERY: the query nests too deeply"):
        _run(adbc_conn, "SELECT " + "(" * 3000 + "1" + ")" * 3000)


@pytest.mark.parametrize("value", [datetime.time(1, 2, 3), datetime.timedelta(seconds=5), b"\x00\xff",
                                   float("nan"), datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC),
                                   datetime.date(2026, 1, 2)])
def test_parameters_of_every_type_round_trip(adbc_conn: Any, value: Any) -> None:
    got = _run(adbc_conn, "SELECT ? AS x", (value,)).column("x")[0].as_py()
    if isinstance(value, float):
        assert got != got  # NaN stays NaN
    elif isinstance(value, datetime.timedelta):  # DuckDB binds a duration as an INTERVAL
        assert (got.months, got.days, got.nanoseconds) == (0, 0, 5_000_000_000)
    else:
        assert got == value


def test_struct_parameters_bind(adbc_conn: Any) -> None:
    batch = pa.table({"p": pa.array([{"a": 1, "b": "x"}])})
    with adbc_conn.cursor() as cur:
        cur.execute("SELECT $1 AS x", batch)
        assert cur.fetch_arrow_table().column("x")[0].as_py() == {"a": 1, "b": "x"}


def test_memory_is_bounded_and_duckdb_lives_on() -> None:
    duck = Duck(memory_limit=256 * 1024**2)
    with pytest.raises(ResourceExhausted, match=r"more memory than .* \(256 MiB, duckdb_memory_limit"):
        duck.run("SELECT string_agg(repeat('x', 1000), ',') FROM (SELECT unnest(range(1000000)))", {})
    assert duck.run("SELECT 41 + 1 AS n", {}).column("n")[0].as_py() == 42
    temp = duck.db.execute("SELECT current_setting('temp_directory'), current_setting('max_temp_directory_size')")
    assert temp.fetchone() == ("", "0 bytes")  # never spills source data to disk


def test_results_are_bounded_while_streaming() -> None:
    duck = Duck(max_result_bytes=1024 * 1024)
    with pytest.raises(ResourceExhausted, match=r"larger than 1 MiB \(max_result_bytes\)"):
        duck.run("SELECT repeat('x', 100) AS s FROM (SELECT unnest(range(1000000)))", {})


def test_an_unbindable_parameter_is_invalid_not_internal() -> None:
    class Opaque(pa.ExtensionType):
        def __init__(self) -> None:
            super().__init__(pa.binary(), "test.opaque")

        def __arrow_ext_serialize__(self) -> bytes:
            return b""

        @classmethod
        def __arrow_ext_deserialize__(cls, storage_type: pa.DataType, serialized: bytes) -> Opaque:
            return cls()

    storage = pa.array([b"x"])
    params = to_parameters(pa.table({"p": pa.ExtensionArray.from_storage(Opaque(), storage)}))
    with pytest.raises(InvalidQuery, match=r"parameter \$1 of type"):
        params.duckdb_values()


def test_api_budget_refuses_before_spending(demo: dict[str, Any], sandbox_log: SandboxLog) -> None:
    """``login IN (300 values)`` would cost 300 calls: refused with the estimate, no request made."""
    from demo.tenant import UNTHROTTLED, demo_config
    from flight_server.app import start_service

    service = start_service(demo_config(demo["sandbox"], "127.0.0.1", 0, UNTHROTTLED))
    try:
        service.engine.limits = QueryLimits(api_calls=100)
        logins = ", ".join(f"'user-{i}'" for i in range(300))
        sql = f"SELECT login, name FROM github.users WHERE login IN ({logins})"
        sandbox_log.clear()
        with pytest.raises(ResourceExhausted, match=r"about 300 API calls .* max_api_calls_per_query = 100"):
            service.engine.query(sql)
        assert sandbox_log.requests("github") == []
        explained = service.engine.query("EXPLAIN " + sql).table  # the estimate stays visible
        assert explained.column("est_api_calls")[0].as_py() == 300
    finally:
        service.stop()
