"""Rate-limit governance in one process: the token bucket's arithmetic on a fake clock, the gate's bounds (max_wait_ms,
the query deadline, cancellation), ApiClient taking a token before every request and adapting the bucket to what
the API says — all over httpx's MockTransport; then, through ADBC against a demo with the default buckets, 100 rapid
live queries get RATE_LIMIT_EXHAUSTED instead of more upstream calls than the bucket allows."""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.http import ApiClient, reset_in_s
from connectors.ratelimit import MemoryBuckets, RateLimit, RateLimiter, RateLimits
from connectors.requester import GitHubErrors
from core.errors import RateLimitExhausted
from core.types import ScanStats
from sandbox.seed import build_seed
from tests.conftest import launch_demo

URL = "https://api.example.test/x"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def take(store: MemoryBuckets, limit: RateLimit, max_wait_s: float = 1.0) -> tuple[bool, float]:
    return asyncio.run(store.take("t/github", limit, max_wait_s))


# -- the bucket ------------------------------------------------------------------------------------------------
def test_burst_then_reservations_up_to_max_wait_then_refusal_that_takes_nothing() -> None:
    clock, limit = Clock(), RateLimit(burst=50, refill_per_s=10)
    store = MemoryBuckets(clock)
    assert all(take(store, limit) == (True, 0.0) for _ in range(50))
    waits = [take(store, limit) for _ in range(10)]  # the next ten wait 0.1 .. 1.0 s for their tokens
    assert all(granted for granted, _ in waits)
    assert [round(w, 3) for _, w in waits] == [round(0.1 * n, 3) for n in range(1, 11)]
    refused = take(store, limit)
    assert refused[0] is False and refused[1] == pytest.approx(1.1)
    assert take(store, limit) == refused  # a refusal changes nothing
    clock.now += 2.0  # 20 tokens later: the 10 reserved are paid, 10 are free
    assert [take(store, limit)[1] for _ in range(10)] == [0.0] * 10
    assert take(store, limit)[1] == pytest.approx(0.1)


def test_what_the_api_says_adapts_the_bucket() -> None:
    clock, limit = Clock(), RateLimit(burst=50, refill_per_s=10)
    store = MemoryBuckets(clock)
    asyncio.run(store.observe("t/github", limit, remaining=3, blocked_for_s=None))
    assert [take(store, limit)[1] for _ in range(3)] == [0.0, 0.0, 0.0]  # never more than the API has left
    asyncio.run(store.observe("t/github", limit, remaining=0, blocked_for_s=30.0))
    granted, wait = take(store, limit)
    assert not granted and wait == pytest.approx(30.0)
    clock.now += 30.0
    assert take(store, limit) == (True, 0.0)  # refilled while blocked
    asyncio.run(store.give_back("t/github", limit))
    assert store.buckets["t/github"].tokens <= limit.burst


def test_connectors_override_the_tenant_default() -> None:
    limits = RateLimits(RateLimit(burst=5), {"jira": RateLimit(burst=7, refill_per_s=1)})
    limiter = RateLimiter(limits)
    assert limiter.gate("acme/jira").limit.burst == 7
    assert limiter.gate("acme/github").limit.burst == 5
    assert limiter.gate("a/b/github").credential == "a/b/github"


# -- the gate --------------------------------------------------------------------------------------------------
def test_the_gate_waits_then_refuses_with_retry_after_and_never_past_the_deadline() -> None:
    async def go() -> None:
        limiter = RateLimiter(RateLimits(RateLimit(burst=1, refill_per_s=20, max_wait_ms=100)))
        gate = limiter.gate("t/github")
        await gate.acquire()
        started = time.monotonic()
        outcomes = await asyncio.gather(*(gate.acquire() for _ in range(3)), return_exceptions=True)
        assert time.monotonic() - started >= 0.09  # two waited for their tokens: 1/20 s, then 2/20 s
        assert outcomes[:2] == [None, None]
        refused = outcomes[2]  # a third would wait 0.15 s, more than max_wait_ms
        assert isinstance(refused, RateLimitExhausted) and "later than max_wait_ms = 100 allows" in str(refused)
        assert refused.retry_after_s is not None and 0.1 <= refused.retry_after_s <= 0.3
        soon = limiter.gate("t/jira", deadline=time.monotonic() + 0.01)
        await soon.acquire()
        with pytest.raises(RateLimitExhausted, match="later than the query's deadline allows"):
            await soon.acquire()

    asyncio.run(go())


def test_a_cancelled_wait_gives_its_token_back() -> None:
    async def go() -> float:
        clock = Clock()
        store = MemoryBuckets(clock)
        limiter = RateLimiter(RateLimits(RateLimit(burst=1, refill_per_s=1, max_wait_ms=5000)), store)
        gate = limiter.gate("t/github")
        await gate.acquire()
        waiting = asyncio.ensure_future(gate.acquire())
        await asyncio.sleep(0.01)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await asyncio.sleep(0.01)  # the give-back runs on the loop
        return store.buckets["t/github"].tokens

    assert asyncio.run(go()) == pytest.approx(0.0)  # -1 while reserved, back to 0


# -- ApiClient ---------------------------------------------------------------------------------------------------
def run(handler: Callable[[httpx.Request], httpx.Response], limit: RateLimit, calls: int,
        store: MemoryBuckets | None = None) -> tuple[list[Any], ScanStats]:
    """``calls`` GETs through one ApiClient under one gate; returns each outcome (body or error) and the stats."""

    async def go() -> tuple[list[Any], ScanStats]:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            api = ApiClient("GitHub", http, "https://api.example.test", errors=GitHubErrors())
            stats = ScanStats(gate=RateLimiter(RateLimits(limit), store).gate("t/github"))
            outcomes: list[Any] = []
            for _ in range(calls):
                try:
                    outcomes.append(await api.get_json(URL, stats, "/x"))
                except RateLimitExhausted as exc:
                    outcomes.append(exc)
            return outcomes, stats

    return asyncio.run(go())


def test_a_refused_request_is_never_sent_nor_counted() -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={"ok": True})

    outcomes, stats = run(handler, RateLimit(burst=2, refill_per_s=0.01, max_wait_ms=0), calls=4)
    assert outcomes[:2] == [{"ok": True}] * 2
    assert all(isinstance(o, RateLimitExhausted) for o in outcomes[2:])
    assert len(sent) == 2 and stats.api_calls == 2


def test_remaining_zero_blocks_the_bucket_until_the_reset() -> None:
    sent: list[httpx.Request] = []
    reset = int(time.time()) + 30

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={}, headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)})

    outcomes, _ = run(handler, RateLimit(), calls=2)
    assert outcomes[0] == {} and isinstance(outcomes[1], RateLimitExhausted)
    assert 25 <= (outcomes[1].retry_after_s or 0) <= 31 and len(sent) == 1


def test_a_rate_limit_answer_fails_fast_for_every_later_request() -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(429, json={"message": "slow down"}, headers={"retry-after": "5"})

    started = time.monotonic()
    outcomes, _ = run(handler, RateLimit(), calls=3)
    assert time.monotonic() - started < 2, "a 5 s Retry-After beyond max_wait_ms fails fast, it is not slept"
    assert all(isinstance(o, RateLimitExhausted) and 4 <= (o.retry_after_s or 0) <= 5.1 for o in outcomes)
    assert len(sent) == 1  # the later ones were refused by the bucket, not sent


def test_a_short_retry_after_is_waited_through_the_bucket() -> None:
    answers = iter([httpx.Response(429, headers={"retry-after": "0"}), httpx.Response(200, json={"ok": 1})])
    outcomes, stats = run(lambda request: next(answers), RateLimit(), calls=1)
    assert outcomes == [{"ok": 1}] and stats.api_calls == 2


def test_reset_headers_in_every_shape() -> None:
    now = 1_800_000_000.0
    assert reset_in_s("1800000030", now) == 30
    assert reset_in_s("1800000030000", now) == 30  # epoch milliseconds
    iso = datetime.fromtimestamp(now + 120, UTC).strftime("%Y-%m-%dT%H:%MZ")  # Jira: minutes, no seconds
    assert reset_in_s(iso, now) == pytest.approx(120, abs=60)
    assert reset_in_s("2000-01-01T00:00Z", now) == 0.0
    assert reset_in_s("soon", now) is None


def trailers(error: Any) -> dict[str, str]:
    """The gRPC trailers an ADBC error carries (``x-omnisql-error-code``, ``x-omnisql-retry-after-s``)."""
    text = lambda v: v.decode() if isinstance(v, bytes) else str(v)  # noqa: E731
    return {text(key): text(value) for key, value in error.details}


# -- through ADBC ----------------------------------------------------------------------------------------------
# One GET /users/{login} per login: five API calls per query, whatever the cache (the queries are live).
FIVE_USERS = ("SELECT login, name FROM github.users WHERE login IN ("
              + ", ".join(f"'{u.login}'" for u in build_seed().users[:5]) + ")")


def test_rapid_live_queries_get_rate_limit_exhausted_not_more_calls(tmp_path: Path) -> None:
    """The demo's default buckets (50 at once, then 10/s, max_wait_ms 1000): 100 live queries of 5 lookups each
    from 4 clients ask for 500 calls in a few seconds. Upstream sees no more than the bucket allows; the rest are
    RATE_LIMIT_EXHAUSTED with a retry-after trailer, never another error."""
    import adbc_driver_flightsql.dbapi as flightsql

    with launch_demo(tmp_path, throttled=True) as info:
        github = info["sandbox"]["github"]["base_url"]
        httpx.delete(f"{github}/_sandbox/requests").raise_for_status()
        # Without ETags: every lookup is a counted 200 (a 304 to a conditional request would give its token back).
        httpx.post(f"{github}/_sandbox/faults", json={"etags": False}).raise_for_status()

        def one(_: int) -> Any:
            with flightsql.connect(info["flight_uri"], db_kwargs={
                    "adbc.flight.sql.authorization_header": f"Bearer {info['tokens']['token_admin']}"}) as conn, \
                    conn.cursor() as cur:
                try:
                    cur.execute(FIVE_USERS)
                    assert cur.fetch_arrow_table().num_rows == 5
                    return 5
                except flightsql.Error as exc:
                    return exc

        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            outcomes = list(pool.map(one, range(100)))
        elapsed = time.monotonic() - started
        upstream = [r for r in httpx.get(f"{github}/_sandbox/requests").json() if r["path"].startswith("/users/")]
    refused = [o for o in outcomes if isinstance(o, Exception)]
    assert refused and len(refused) < 100
    assert len(upstream) <= 50 + 10 * elapsed + 1, (len(upstream), elapsed)
    for error in refused:
        sent = trailers(error)
        assert sent.get("x-omnisql-error-code") == "RATE_LIMIT_EXHAUSTED", error
        assert float(sent["x-omnisql-retry-after-s"]) > 0
