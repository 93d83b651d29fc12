"""Governance across replicas through a real Redis (``redis-server`` started here on 127.0.0.1, a random port, no
persistence): the token-bucket script shared by two clients, the scan cache's Arrow IPC entries with their expiry,
a Redis that goes away, and two demo server processes sharing one Redis — their combined upstream calls stay
within the shared bucket, one's cache fill is the other's hit, and one's ticket is redeemed by the other.

Skipped only where ``redis-server`` is not installed on a developer's machine; under CI (``CI`` set) a missing
binary fails, since .ci/run installs it."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.flight as flight
import pytest

from clients.flight_client import statement_descriptor
from connectors.ratelimit import RateLimit, RateLimiter, RateLimits, RedisBuckets
from core.errors import RateLimitExhausted
from core.types import Predicate, ScanRequest
from planner.cache import CachedScan, ScanCache, cache_key
from planner.cache_redis import RedisStore
from tests.answers import assert_same_answer, is_ordered
from tests.conftest import launch_demo
from tests.differential_queries import differential_queries
from tests.oracle import oracle_answer
from tests.test_rate_limits import FIVE_USERS, trailers

LISTING = "SELECT issue_key, status, story_points FROM jira.issues WHERE project = 'MOB'"
SECRET = "replicas-share-this-ticket-secret"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def redis_server(directory: Path) -> Iterator[str]:
    """A throwaway redis-server: loopback only, RAM only (no RDB snapshots, no AOF), its files under ``directory``."""
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is not installed; .ci/run installs it (apt-get install redis-server)")
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    for _ in range(5):
        port = _free_port()
        process = subprocess.Popen([binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                                    "--appendonly", "no", "--dir", str(directory), "--protected-mode", "yes"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and process.poll() is None:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    break
            time.sleep(0.05)
        if process.poll() is None:
            break
    else:
        raise RuntimeError("redis-server did not start")
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def redis_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("redis")


@pytest.fixture(scope="module")
def redis_url(redis_dir: Path) -> Iterator[str]:
    with redis_server(redis_dir) as url:
        yield url


def client(url: str) -> Any:
    from redis.asyncio import Redis

    return Redis.from_url(url, socket_timeout=2.0)


# -- Redis itself --------------------------------------------------------------------------------------------------
def test_redis_keeps_everything_in_ram(redis_url: str, redis_dir: Path) -> None:
    async def go() -> tuple[Any, Any]:
        redis = client(redis_url)
        try:
            return await redis.config_get("save"), await redis.config_get("appendonly")
        finally:
            await redis.aclose()

    save, appendonly = asyncio.run(go())
    assert {k.decode() if isinstance(k, bytes) else k: v for k, v in save.items()}.get("save") in ("", b"")
    assert {k.decode() if isinstance(k, bytes) else k: v for k, v in appendonly.items()}.get("appendonly") in (
        "no", b"no")
    assert not list(redis_dir.glob("*.rdb")) and not list(redis_dir.glob("*.aof"))


# -- buckets -------------------------------------------------------------------------------------------------------
def test_two_replicas_share_one_bucket(redis_url: str) -> None:
    """Two clients (as two replicas) take from one credential's bucket: together no more than burst + refill."""
    limit = RateLimit(burst=10, refill_per_s=2, max_wait_ms=0)

    async def go() -> tuple[int, float, list[float]]:
        first, second = client(redis_url), client(redis_url)
        try:
            gates = [RateLimiter(RateLimits(limit), RedisBuckets(c)).gate("shared/github") for c in (first, second)]
            started, granted, retry = time.monotonic(), 0, []
            for n in range(40):
                try:
                    await gates[n % 2].acquire()
                    granted += 1
                except RateLimitExhausted as exc:
                    retry.append(exc.retry_after_s or 0.0)
            return granted, time.monotonic() - started, retry
        finally:
            await first.aclose()
            await second.aclose()

    granted, elapsed, retry = asyncio.run(go())
    assert 10 <= granted <= 10 + 2 * elapsed + 1
    assert retry and all(0 < r <= 0.6 for r in retry)  # the next token is at most 1/2 s away


def test_the_redis_bucket_reserves_adapts_and_gives_back(redis_url: str) -> None:
    limit = RateLimit(burst=2, refill_per_s=10, max_wait_ms=1000)

    async def go() -> None:
        redis = client(redis_url)
        store = RedisBuckets(redis)
        try:
            assert [await store.take("t/a", limit, 1.0) for _ in range(2)] == [(True, 0.0), (True, 0.0)]
            granted, wait = await store.take("t/a", limit, 1.0)
            assert granted and 0.05 < wait <= 0.1  # reserved: its token comes in 0.1 s
            refused = await store.take("t/a", limit, 0.0)
            assert refused[0] is False and 0.1 < refused[1] <= 0.2
            assert (await store.take("t/a", limit, 0.0))[0] is False  # a refusal took nothing
            await store.give_back("t/a", limit)
            await store.observe("t/b", limit, remaining=0, blocked_for_s=30.0)
            blocked = await store.take("t/b", limit, 1.0)
            assert blocked[0] is False and 29 < blocked[1] <= 30
            ttl = await redis.pttl("omnisql:ratelimit:t/b")
            assert 30_000 < ttl <= 32_000  # gone once it would be full again
            tokens, blocked_for = await store.peek("t/b", limit)  # what omnisql.sources shows; it takes nothing
            assert tokens < 1 and 29 < blocked_for <= 30
            assert await store.peek("t/never-used", limit) == (2.0, 0.0)
            status = await RateLimiter(RateLimits(limit), store).status("t/b")
            assert status.remaining == 0 and status.capacity == 2 and 29 < status.reset_s <= 31
        finally:
            await redis.aclose()

    asyncio.run(go())


def test_an_unreachable_redis_falls_back_to_this_process() -> None:
    limit = RateLimit(burst=1, refill_per_s=0.01, max_wait_ms=0)

    async def go() -> tuple[bool, bool, Any]:
        redis = client(f"redis://127.0.0.1:{_free_port()}/0")
        try:
            store = RedisBuckets(redis)
            first, _ = await store.take("t/a", limit, 0.0)
            second, _ = await store.take("t/a", limit, 0.0)
            request = ScanRequest("issues", ("issue_key",))
            return first, second, await RedisStore(redis, 60).get(cache_key("s", request), request)
        finally:
            await redis.aclose()

    assert asyncio.run(go()) == (True, False, None)


# -- cache entries ---------------------------------------------------------------------------------------------------
def test_cache_entries_travel_as_arrow_ipc_with_an_expiry(redis_url: str) -> None:
    request = ScanRequest("issues", ("issue_key", "points"), (Predicate("project", "=", ("SECRETPROJ",)),),
                          credential="acme/jira")
    batch = pa.record_batch({"issue_key": ["MOB-1", "MOB-2"], "points": [3, None]})
    key = cache_key("acme:abc", request)

    async def go() -> tuple[CachedScan | None, int, list[Any], CachedScan | None]:
        redis = client(redis_url)
        try:
            store = RedisStore(redis, max_age_s=60)
            await store.put(key, CachedScan((batch,), time.time() - 5, request, batch.nbytes))
            got = await store.get(key, request)
            keys = [k async for k in redis.scan_iter("omnisql:scan:*")]
            empty_key = cache_key("acme:abc", ScanRequest("issues", ("x",)))
            await store.put(empty_key, CachedScan((), time.time(), request, 0))
            return got, await redis.pttl(store.name(key)), keys, await store.get(empty_key, request)
        finally:
            await redis.aclose()

    got, ttl, keys, empty = asyncio.run(go())
    assert got is not None and pa.Table.from_batches(got.batches).equals(pa.Table.from_batches([batch]))
    assert 50_000 < ttl <= 55_000  # max_age_s minus the entry's age
    assert keys and not any(b"SECRETPROJ" in k or b"MOB" in k for k in keys)  # keys are digests
    assert empty is not None and empty.batches == ()


def test_a_fill_in_one_cache_is_a_hit_in_another(redis_url: str) -> None:
    request = ScanRequest("issues", ("issue_key",), credential="acme/jira")
    batch = pa.record_batch({"issue_key": ["WEB-7"]})
    loads: list[int] = []

    async def load() -> list[pa.RecordBatch]:
        loads.append(1)
        return [batch]

    async def go() -> tuple[str, str, int]:
        from planner.cache import Freshness

        first, second = client(redis_url), client(redis_url)
        try:
            one = ScanCache(shared=RedisStore(first, 60))
            other = ScanCache(shared=RedisStore(second, 60))
            _, hit_one = await one.scan("acme:x", request, Freshness(60_000), load)
            rows, hit_other = await other.scan("acme:x", request, Freshness(60_000), load)
            assert rows[0].equals(batch)
            return hit_one, hit_other, other.stats.shared_hits
        finally:
            await first.aclose()
            await second.aclose()

    assert asyncio.run(go()) == ("full", "hit", 1) and len(loads) == 1


# -- two demo replicas -----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def replicas(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[dict[str, Any]]]:
    """Two ``serve --demo`` processes on one Redis and one ticket secret, with small buckets (20, then 5/s)."""
    flags = ("--redis", redis_url, "--rate-limit-burst", "20", "--rate-limit-refill-per-s", "5")
    env = {"OMNISQL_SECRET": SECRET}
    with launch_demo(tmp_path_factory.mktemp("a"), *flags, throttled=True, env=env) as a, \
            launch_demo(tmp_path_factory.mktemp("b"), *flags, throttled=True, env=env) as b:
        yield [a, b]


def upstream(info: dict[str, Any], app: str, prefix: str) -> int:
    entries = httpx.get(f"{info['sandbox'][app]['base_url']}/_sandbox/requests").json()
    return sum(1 for e in entries if e["path"].startswith(prefix))


def clear(info: dict[str, Any]) -> None:
    for app in ("github", "jira"):
        httpx.delete(f"{info['sandbox'][app]['base_url']}/_sandbox/requests").raise_for_status()


def adbc(info: dict[str, Any], staleness_ms: int | None = None) -> Any:
    import adbc_driver_flightsql.dbapi as flightsql

    conn = flightsql.connect(info["flight_uri"], db_kwargs={
        "adbc.flight.sql.authorization_header": f"Bearer {info['tokens']['token_admin']}",
        "adbc.flight.sql.rpc.with_cookie_middleware": "true"})
    if staleness_ms is not None:
        conn.adbc_connection.set_options(**{"adbc.flight.sql.session.option.max_staleness_ms": staleness_ms})
    return conn


def rows(table: pa.Table) -> list[tuple[Any, ...]]:
    return sorted(tuple(r.values()) for r in table.to_pylist())


def test_a_cache_fill_on_one_replica_is_a_hit_on_the_other(replicas: list[dict[str, Any]]) -> None:
    a, b = replicas
    clear(a)
    clear(b)
    with adbc(a, 60_000) as conn, conn.cursor() as cur:
        cur.execute(LISTING)
        filled = cur.fetch_arrow_table()
    assert upstream(a, "jira", "/rest/api/3/search") > 0
    with adbc(b, 60_000) as conn, conn.cursor() as cur:
        cur.execute(LISTING)
        hit = cur.fetch_arrow_table()
        cur.execute("SELECT from_cache, api_calls FROM omnisql.query_log ORDER BY started_at DESC LIMIT 2")
        log = cur.fetch_arrow_table().to_pylist()
    assert upstream(b, "jira", "/rest/api/3/search") == 0  # B called nothing: A's fill answered it
    assert rows(hit) == rows(filled) and filled.num_rows > 0
    assert {"from_cache": True, "api_calls": 0} in log
    with adbc(b) as conn, conn.cursor() as cur:  # a live query on B still calls upstream
        cur.execute(LISTING)
        cur.fetch_arrow_table()
    assert upstream(b, "jira", "/rest/api/3/search") > 0


def test_a_ticket_from_one_replica_is_redeemed_by_the_other(replicas: list[dict[str, Any]]) -> None:
    a, b = replicas
    options = flight.FlightCallOptions(headers=[(b"authorization", f"Bearer {a['tokens']['token_admin']}".encode())])
    planner, runner = flight.FlightClient(a["flight_uri"]), flight.FlightClient(b["flight_uri"])
    try:
        info = planner.get_flight_info(statement_descriptor("SELECT issue_key FROM jira.issues WHERE project = 'WEB' "
                                                            "ORDER BY issue_key"), options)
        redeemed = runner.do_get(info.endpoints[0].ticket, options).read_all()
        local = planner.do_get(info.endpoints[0].ticket, options).read_all()
    finally:
        planner.close()
        runner.close()
    assert redeemed.num_rows > 0 and redeemed.equals(local) and redeemed.schema == info.schema


def test_two_replicas_together_stay_within_the_shared_budget(replicas: list[dict[str, Any]]) -> None:
    """Live five-lookup queries from 4 clients spread over both replicas: the GitHub calls both sandboxes saw add up
    to no more than the one shared bucket allows (20, then 5/s); the rest are RATE_LIMIT_EXHAUSTED."""
    import adbc_driver_flightsql.dbapi as flightsql

    for info in replicas:
        clear(info)
        # Without ETags: every lookup is a counted 200 (a 304 to a conditional request gives its token back).
        httpx.post(f"{info['sandbox']['github']['base_url']}/_sandbox/faults", json={"etags": False}).raise_for_status()

    def one(n: int) -> Any:
        with adbc(replicas[n % 2]) as conn, conn.cursor() as cur:
            try:
                cur.execute(FIVE_USERS)
                return cur.fetch_arrow_table().num_rows
            except flightsql.Error as exc:
                return trailers(exc).get("x-omnisql-error-code")

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(4) as pool:  # two per replica: under the per-principal cap
        outcomes = list(pool.map(one, range(60)))
    elapsed = time.monotonic() - started
    calls = sum(upstream(info, "github", "/users/") for info in replicas)
    assert calls <= 20 + 5 * elapsed + 1, (calls, elapsed)
    assert "RATE_LIMIT_EXHAUSTED" in outcomes
    assert set(outcomes) <= {5, "RATE_LIMIT_EXHAUSTED"}
    assert all(upstream(info, "github", "/users/") > 0 for info in replicas)  # both replicas did take part


# -- the differential suite through a shared cache -------------------------------------------------------------------
@pytest.fixture(scope="module")
def shared_engines(redis_url: str, demo: dict[str, Any]) -> Iterator[tuple[Any, Any]]:
    """Two in-process replicas over the demo's sandbox, sharing one Redis scan cache."""
    import dataclasses

    from demo.tenant import UNTHROTTLED, demo_config
    from flight_server.app import start_service

    config = demo_config(demo["sandbox"], "127.0.0.1", 0, UNTHROTTLED)
    config = dataclasses.replace(config, cache=dataclasses.replace(config.cache, redis_url=redis_url))
    first, second = start_service(config), start_service(config)
    yield first.engine, second.engine
    first.stop()
    second.stop()


@pytest.mark.parametrize("sql", [pytest.param(sql, id=query_id) for query_id, sql in differential_queries()])
def test_a_replica_answers_right_from_the_others_copies(sql: str, oracle: Any, shared_engines: tuple[Any, Any]
                                                        ) -> None:
    """Every differential query on one replica, then on the other within an hour's staleness: the second
    replica's scans come from the entries the first left in Redis (Arrow IPC there and back), and both answers
    are the oracle's."""
    from planner.context import QueryOptions

    expected = oracle_answer(oracle, sql)
    for engine in shared_engines:
        ctx = engine.context(options=QueryOptions(max_staleness_ms=3_600_000))
        assert_same_answer(engine.query(sql, ctx=ctx).table, expected, is_ordered(sql), context=sql)
    # the same plan reads the first replica's copies; what each replica learned may differ (statistics are per
    # process) and change a join's plan, but some of its scans still come from the shared copies
    assert ctx.counters.cache_hits > 0, "the second replica read none of the copies the first left"
