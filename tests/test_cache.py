"""The scan cache under per-query freshness, against the sandbox over real HTTP: live queries always call
upstream, warm ones within their staleness bound call nothing, a broader cached scan answers a narrower one,
identical concurrent fetches coalesce, and a failed refresh is STALE_DATA unless the caller allows stale data."""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Iterator
from typing import Any

import adbc_driver_flightsql.dbapi as flightsql
import pyarrow as pa
import pytest

from core.errors import StaleData
from planner.context import QueryOptions
from tests.conftest import SandboxLog

LISTING = "SELECT issue_key, status, story_points FROM jira.issues WHERE project = 'MOB'"


@pytest.fixture()
def engine(demo: dict[str, Any]) -> Iterator[Any]:
    from demo.tenant import UNTHROTTLED, demo_config
    from flight_server.app import start_service

    service = start_service(demo_config(demo["sandbox"], "127.0.0.1", 0, UNTHROTTLED))
    yield service.engine
    service.stop()


def query(engine: Any, sql: str, staleness_ms: int, allow_stale: bool = False) -> Any:
    ctx = engine.context(options=QueryOptions(max_staleness_ms=staleness_ms, allow_stale=allow_stale))
    return engine.query(sql, ctx=ctx), ctx


def searches(log: SandboxLog) -> int:
    return len([r for r in log.requests("jira") if r["path"].endswith("/search/jql")])


def rows(table: Any) -> list[tuple[Any, ...]]:
    return sorted(tuple(r.values()) for r in table.to_pylist())


def test_live_queries_always_call_upstream(engine: Any, sandbox_log: SandboxLog) -> None:
    for _ in range(2):
        query(engine, LISTING, 0)
    assert searches(sandbox_log) >= 2


def test_a_warm_cache_within_staleness_makes_no_upstream_call(engine: Any, sandbox_log: SandboxLog) -> None:
    live, _ = query(engine, LISTING, 60_000)
    calls = searches(sandbox_log)
    cached, ctx = query(engine, LISTING, 60_000)
    assert searches(sandbox_log) == calls  # zero upstream requests
    assert rows(cached.table) == rows(live.table) and ctx.counters.cache_hits == 1
    assert ctx.freshness.freshness_ms > 0
    _, fresh = query(engine, LISTING, 0)  # staleness 0 ignores the cache
    assert searches(sandbox_log) > calls and fresh.counters.cache_hits == 0


def test_a_warm_hit_is_answered_without_the_io_loop(engine: Any, sandbox_log: SandboxLog,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Local hits (exact, or a broader copy narrowed) are read on the caller's thread — the loop round trip was a
    cached query's largest cost — and counted as the loop path counts them; a miss still takes the loop."""
    live, _ = query(engine, LISTING, 60_000)
    calls, hits_before = searches(sandbox_log), engine.executor.cache.stats.hits

    def no_loop(coro: Any) -> Any:
        coro.close()
        raise AssertionError("a warm hit went through the I/O loop")

    monkeypatch.setattr(engine.executor.loop, "submit", no_loop)
    cached, ctx = query(engine, LISTING, 60_000)
    narrowed, narrow_ctx = query(engine, LISTING + " AND status = 'Done'", 60_000)
    assert rows(cached.table) == rows(live.table) and ctx.counters.cache_hits == 1
    assert rows(narrowed.table) == [r for r in rows(live.table) if r[1] == "Done"] and narrowed.table.num_rows
    assert narrow_ctx.counters.cache_hits == 1 and narrow_ctx.freshness.freshness_ms > 0
    assert engine.executor.cache.stats.hits == hits_before + 2 and searches(sandbox_log) == calls
    assert ctx.rate_limits and ctx.sources["jira.issues"]["fetch"] == ["hit"]
    with pytest.raises(AssertionError, match="through the I/O loop"):
        query(engine, LISTING + " AND story_points > 3", 0)  # live: the loop, to fetch


def test_a_broader_cached_scan_answers_a_narrower_one(engine: Any, sandbox_log: SandboxLog) -> None:
    narrow = LISTING + " AND story_points >= 5"
    expected, _ = query(engine, narrow, 0)
    query(engine, LISTING, 60_000)
    calls = searches(sandbox_log)
    got, ctx = query(engine, narrow, 60_000)
    assert searches(sandbox_log) == calls and ctx.counters.cache_hits == 1
    assert rows(got.table) == rows(expected.table)


def test_identical_concurrent_fetches_coalesce(engine: Any, sandbox_log: SandboxLog) -> None:
    with sandbox_log.slowed("jira", 0.3), concurrent.futures.ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: query(engine, LISTING, 60_000)[0], range(6)))
    assert len({tuple(rows(a.table)) for a in answers}) == 1
    pages = searches(sandbox_log)
    single, _ = query(engine, LISTING.replace("'MOB'", "'WEB'"), 0)  # one uncached listing, for scale
    assert pages <= searches(sandbox_log) - pages  # six queries cost what one does


def test_a_failed_refresh_is_stale_data_unless_allowed(engine: Any, sandbox_log: SandboxLog) -> None:
    warm, _ = query(engine, LISTING, 60_000)
    time.sleep(0.05)
    sandbox_log.faults("jira", fail_next=50, fail_status=500)
    try:
        with pytest.raises(StaleData, match="only data .* old is cached"):
            query(engine, LISTING, 10)
        stale, ctx = query(engine, LISTING, 10, allow_stale=True)
    finally:
        sandbox_log.faults("jira", fail_next=0)
    assert rows(stale.table) == rows(warm.table) and ctx.freshness.stale


def test_the_session_option_reaches_the_cache(demo: dict[str, Any], admin_token: str, sandbox_log: SandboxLog) -> None:
    with flightsql.connect(demo["flight_uri"], db_kwargs={
            "adbc.flight.sql.authorization_header": f"Bearer {admin_token}",
            "adbc.flight.sql.rpc.with_cookie_middleware": "true"}) as conn:
        conn.adbc_connection.set_options(**{"adbc.flight.sql.session.option.max_staleness_ms": 60000})
        with conn.cursor() as cur:
            cur.execute(LISTING)
            first = cur.fetch_arrow_table()
            calls = searches(sandbox_log)
            cur.execute(LISTING)
            second = cur.fetch_arrow_table()
    assert searches(sandbox_log) == calls and rows(first) == rows(second)


def test_the_staleness_header_and_the_trace_id(demo: dict[str, Any], admin_token: str,
                                               sandbox_log: SandboxLog) -> None:
    """``x-omnisql-max-staleness-ms`` per call (ADBC: ``adbc.flight.sql.rpc.call_header.<name>``); every answer
    names its trace id in the ``x-omnisql-trace-id`` response header."""
    import pyarrow.flight as flight

    from clients.flight_client import statement_descriptor

    client = flight.FlightClient(demo["flight_uri"])
    auth = (b"authorization", f"Bearer {admin_token}".encode())
    warm = flight.FlightCallOptions(headers=[auth, (b"x-omnisql-max-staleness-ms", b"60000")])
    sql = LISTING + " AND story_points IS NOT NULL"

    def run(options: flight.FlightCallOptions) -> Any:
        info = client.get_flight_info(statement_descriptor(sql), options)
        return client.do_get(info.endpoints[0].ticket, options).read_all()

    run(warm)
    calls = searches(sandbox_log)
    run(warm)
    assert searches(sandbox_log) == calls
    bad = flight.FlightCallOptions(headers=[auth, (b"x-omnisql-max-staleness-ms", b"soon")])
    with pytest.raises(pa.ArrowInvalid, match="x-omnisql-max-staleness-ms must be a whole number"):
        run(bad)
    with flightsql.connect(demo["flight_uri"], db_kwargs={
            "adbc.flight.sql.authorization_header": f"Bearer {admin_token}",
            "adbc.flight.sql.rpc.call_header.x-omnisql-max-staleness-ms": "60000"}) as conn, conn.cursor() as cur:
        cur.execute(sql)
        cur.fetch_arrow_table()
    assert searches(sandbox_log) == calls  # the ADBC call header reached the cache too


def test_every_answer_names_its_trace_id(demo: dict[str, Any], admin_token: str) -> None:
    import grpc

    from clients.flight_client import statement_descriptor
    from flight_server.proto import flight_pb2 as fpb

    with grpc.insecure_channel(demo["flight_uri"].removeprefix("grpc://")) as channel:
        get_info = channel.unary_unary("/arrow.flight.protocol.FlightService/GetFlightInfo",
                                       request_serializer=fpb.FlightDescriptor.SerializeToString,
                                       response_deserializer=fpb.FlightInfo.FromString)
        descriptor = fpb.FlightDescriptor(type=fpb.FlightDescriptor.CMD,
                                          cmd=statement_descriptor("SELECT 1 AS x").command)
        _, call = get_info.with_call(descriptor, metadata=(("authorization", f"Bearer {admin_token}"),))
        headers = dict(call.initial_metadata())
    assert len(headers["x-omnisql-trace-id"]) == 32  # the OpenTelemetry trace id
