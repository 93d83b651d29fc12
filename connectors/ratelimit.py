"""Rate-limit governance: one token bucket per credential (``<tenant>/<connector>``), kept in this process or in
Redis (then shared by every replica), consulted by ``ApiClient`` before each request it sends.

A bucket holds up to ``burst`` tokens and refills at ``refill_per_s``. A request takes one token; when none is
left it reserves the next one (the bucket goes below zero by the requests queued ahead) and sleeps until that
token exists: at most ``max_wait_ms``, and never past the query's deadline. A request that would wait longer is
refused at once with RATE_LIMIT_EXHAUSTED and ``retry_after_s`` (when its token would exist): the refusal takes
nothing from the bucket and nothing is sent. A query cancelled while waiting gives its reserved token back.

What the API says adapts the bucket: ``x-ratelimit-remaining`` caps the tokens (never more than the API has
left), ``remaining: 0`` blocks the bucket until ``x-ratelimit-reset``, and a rate-limit answer (429, GitHub's 403,
``Retry-After``) blocks it for as long as the API asked, for every query and, with Redis, every replica.

With Redis the bucket is one hash per credential updated by one Lua script (atomic, on Redis's clock, so replicas'
clocks need not agree), with an expiry once it would be full again: nothing outlives its use. If Redis cannot be
reached mid-run, each replica falls back to its own in-process bucket (logged) rather than failing every query."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from core.errors import RateLimitExhausted

__all__ = ["BucketStore", "BudgetStatus", "Gate", "MemoryBuckets", "RateLimit", "RateLimiter", "RateLimits",
           "RedisBuckets"]

log = logging.getLogger("omnisql.connectors")


@dataclass(frozen=True)
class RateLimit:
    """One credential's bucket: ``burst`` requests at once, then ``refill_per_s``; a request waits for its token at
    most ``max_wait_ms``."""

    burst: int = 50
    refill_per_s: float = 10.0
    max_wait_ms: int = 1000

    def __post_init__(self) -> None:
        if self.burst < 1 or not self.refill_per_s > 0 or self.max_wait_ms < 0:
            raise ValueError("burst must be at least 1, refill_per_s above 0 and max_wait_ms at least 0")


@dataclass(frozen=True)
class RateLimits:
    """The tenant's buckets: ``default`` for every connector, ``connectors`` overrides by connector name."""

    default: RateLimit = RateLimit()
    connectors: Mapping[str, RateLimit] = field(default_factory=dict)

    def for_connector(self, name: str) -> RateLimit:
        return self.connectors.get(name, self.default)


class BucketStore(Protocol):
    """Where buckets live. ``take`` returns (granted, seconds until the token exists); a refusal changes nothing."""

    async def take(self, key: str, limit: RateLimit, max_wait_s: float) -> tuple[bool, float]: ...

    async def give_back(self, key: str, limit: RateLimit) -> None: ...

    async def observe(self, key: str, limit: RateLimit, remaining: int | None, blocked_for_s: float | None
                      ) -> None: ...

    async def peek(self, key: str, limit: RateLimit) -> tuple[float, float]:
        """(tokens now, seconds the bucket stays blocked), changing nothing."""
        ...


@dataclass(frozen=True)
class BudgetStatus:
    """A credential's budget as answers and ``omnisql.sources`` report it."""

    remaining: int  # requests that may go out at once now
    capacity: int  # the bucket's burst
    refill_per_s: float
    reset_s: float  # seconds until the bucket is full again (blocked time included)
    blocked_for_s: float  # seconds the API told us to stay away (Retry-After, remaining 0 until reset)

    def as_dict(self) -> dict[str, float | int]:
        return {"remaining": self.remaining, "capacity": self.capacity, "refill_per_s": self.refill_per_s,
                "reset_s": round(self.reset_s, 3), "blocked_for_s": round(self.blocked_for_s, 3)}


@dataclass
class _Bucket:
    tokens: float
    stamp: float
    blocked_until: float = 0.0

    def refill(self, limit: RateLimit, now: float) -> None:
        self.tokens = min(limit.burst, self.tokens + max(now - self.stamp, 0.0) * limit.refill_per_s)
        self.stamp = now


class MemoryBuckets:
    """Buckets in this process (one per credential; scans of all queries run on one event loop)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.buckets: dict[str, _Bucket] = {}

    def _bucket(self, key: str, limit: RateLimit) -> tuple[_Bucket, float]:
        now = self.clock()
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = self.buckets[key] = _Bucket(float(limit.burst), now)
        bucket.refill(limit, now)
        return bucket, now

    async def take(self, key: str, limit: RateLimit, max_wait_s: float) -> tuple[bool, float]:
        bucket, now = self._bucket(key, limit)
        wait = max((1.0 - bucket.tokens) / limit.refill_per_s, bucket.blocked_until - now, 0.0)
        if wait > max_wait_s:
            return False, wait
        bucket.tokens -= 1.0
        return True, wait

    async def give_back(self, key: str, limit: RateLimit) -> None:
        bucket, _ = self._bucket(key, limit)
        bucket.tokens = min(float(limit.burst), bucket.tokens + 1.0)

    async def observe(self, key: str, limit: RateLimit, remaining: int | None, blocked_for_s: float | None
                      ) -> None:
        bucket, now = self._bucket(key, limit)
        if remaining is not None:
            bucket.tokens = min(bucket.tokens, float(remaining))
        if blocked_for_s is not None:
            bucket.blocked_until = max(bucket.blocked_until, now + blocked_for_s)
            bucket.tokens = min(bucket.tokens, 0.0)

    async def peek(self, key: str, limit: RateLimit) -> tuple[float, float]:
        return self.peek_now(key, limit)

    def peek_now(self, key: str, limit: RateLimit) -> tuple[float, float]:
        """``peek`` without the event loop: a read of plain numbers, safe from any thread."""
        bucket = self.buckets.get(key)
        if bucket is None:
            return float(limit.burst), 0.0
        now = self.clock()
        tokens = min(limit.burst, bucket.tokens + max(now - bucket.stamp, 0.0) * limit.refill_per_s)
        return tokens, max(bucket.blocked_until - now, 0.0)


# KEYS[1]: the bucket. ARGV: op (take | give | observe | peek), burst, refill_per_s, then max_wait_s (take) or remaining
# and blocked_for_s ('' when unknown; observe). Returns {granted 0/1, wait_s as text} (Lua numbers would be cut to
# integers on the way back). A refused take writes nothing; peek returns {tokens, blocked_for_s} as text and writes
# nothing.
_SCRIPT = """
local burst = tonumber(ARGV[2])
local rate = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local s = redis.call('HMGET', KEYS[1], 'tokens', 'stamp', 'blocked')
local tokens = tonumber(s[1]) or burst
local stamp = tonumber(s[2]) or now
local blocked = tonumber(s[3]) or 0
tokens = math.min(burst, tokens + math.max(now - stamp, 0) * rate)
local result = {1, '0'}
if ARGV[1] == 'peek' then
  return {tostring(tokens), tostring(math.max(blocked - now, 0))}
end
if ARGV[1] == 'take' then
  local wait = math.max((1 - tokens) / rate, blocked - now, 0)
  if wait > tonumber(ARGV[4]) then
    return {0, tostring(wait)}
  end
  tokens = tokens - 1
  result = {1, tostring(wait)}
elseif ARGV[1] == 'give' then
  tokens = math.min(burst, tokens + 1)
else
  if ARGV[4] ~= '' then tokens = math.min(tokens, tonumber(ARGV[4])) end
  if ARGV[5] ~= '' then
    blocked = math.max(blocked, now + tonumber(ARGV[5]))
    tokens = math.min(tokens, 0)
  end
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'stamp', tostring(now), 'blocked', tostring(blocked))
local full_in = (burst - tokens) / rate + math.max(blocked - now, 0)
redis.call('PEXPIRE', KEYS[1], math.ceil(full_in * 1000) + 1000)
return result
"""

_REDIS_DOWN_LOG_EVERY_S = 60.0


class RedisBuckets:
    """Buckets in Redis, shared by every replica that names the same Redis (``redis.asyncio`` client)."""

    def __init__(self, client: Any, prefix: str = "omnisql:ratelimit:") -> None:
        self.client = client
        self.prefix = prefix
        self.script = client.register_script(_SCRIPT)
        self.fallback = MemoryBuckets()
        self._warned_at = -math.inf

    async def _run(self, key: str, *args: object) -> tuple[bool, float] | None:
        from redis.exceptions import RedisError

        try:
            granted, wait = await self.script(keys=[self.prefix + key], args=[str(a) for a in args])
        except (RedisError, OSError, TimeoutError) as exc:
            now = time.monotonic()
            if now - self._warned_at > _REDIS_DOWN_LOG_EVERY_S:
                self._warned_at = now
                log.warning("rate-limit buckets: Redis is unreachable (%s); this replica uses its own in-process "
                            "bucket until it is back", type(exc).__name__)
            return None
        return bool(int(granted)), float(wait)

    async def take(self, key: str, limit: RateLimit, max_wait_s: float) -> tuple[bool, float]:
        answer = await self._run(key, "take", limit.burst, limit.refill_per_s, repr(max_wait_s))
        return answer if answer is not None else await self.fallback.take(key, limit, max_wait_s)

    async def give_back(self, key: str, limit: RateLimit) -> None:
        if await self._run(key, "give", limit.burst, limit.refill_per_s) is None:
            await self.fallback.give_back(key, limit)

    async def observe(self, key: str, limit: RateLimit, remaining: int | None, blocked_for_s: float | None
                      ) -> None:
        answer = await self._run(key, "observe", limit.burst, limit.refill_per_s,
                                 "" if remaining is None else remaining,
                                 "" if blocked_for_s is None else repr(blocked_for_s))
        if answer is None:
            await self.fallback.observe(key, limit, remaining, blocked_for_s)

    async def peek(self, key: str, limit: RateLimit) -> tuple[float, float]:
        from redis.exceptions import RedisError

        try:
            tokens, blocked = await self.script(keys=[self.prefix + key],
                                                args=["peek", str(limit.burst), str(limit.refill_per_s)])
        except (RedisError, OSError, TimeoutError):
            return await self.fallback.peek(key, limit)
        return float(tokens), float(blocked)


class RateLimiter:
    """The tenant's rate limits over one bucket store; ``gate`` binds a credential and a query's deadline."""

    def __init__(self, limits: RateLimits | None = None, store: BucketStore | None = None) -> None:
        self.limits = limits or RateLimits()
        self.store: BucketStore = store or MemoryBuckets()
        self._background: set[asyncio.Task[None]] = set()

    def gate(self, credential: str, deadline: float | None = None) -> Gate:
        """The gate for one scan: ``credential`` is ``<tenant>/<connector name>`` (the connector picks the
        bucket's settings); ``deadline`` is the query's, on ``time.monotonic()``."""
        return Gate(self, credential, self.limits.for_connector(credential.rpartition("/")[2]), deadline)

    async def status(self, credential: str) -> BudgetStatus:
        """The credential's budget now (``<tenant>/<connector name>``), without spending from it."""
        limit = self.limits.for_connector(credential.rpartition("/")[2])
        return _status(limit, *await self.store.peek(credential, limit))

    def status_now(self, credential: str) -> BudgetStatus | None:
        """``status`` without a trip to the event loop when the buckets live in this process; None when they
        live elsewhere (Redis), where only ``status`` can read them."""
        if not isinstance(self.store, MemoryBuckets):
            return None
        limit = self.limits.for_connector(credential.rpartition("/")[2])
        return _status(limit, *self.store.peek_now(credential, limit))

    def later(self, coro: Any) -> None:
        """Run ``coro`` without waiting for it (a token given back while the query is being cancelled)."""
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)


def _retry_after(wait_s: float) -> float:
    return max(math.ceil(wait_s * 10) / 10, 0.1)


@dataclass
class Gate:
    """``core.types.RequestGate`` for one credential under one query's deadline."""

    limiter: RateLimiter
    credential: str
    limit: RateLimit
    deadline: float | None = None

    async def acquire(self) -> None:
        allowed, bound = self.limit.max_wait_ms / 1000, f"max_wait_ms = {self.limit.max_wait_ms}"
        if self.deadline is not None and self.deadline - time.monotonic() < allowed:
            allowed, bound = max(self.deadline - time.monotonic(), 0.0), "the query's deadline"
        granted, wait = await self.limiter.store.take(self.credential, self.limit, allowed)
        if not granted:
            retry = _retry_after(wait)
            raise RateLimitExhausted(
                f"the API budget of {self.credential} is spent for now: its next request could go in {wait:.1f} s, "
                f"later than {bound} allows (burst {self.limit.burst}, then {self.limit.refill_per_s:g} requests/s). "
                f"Retry after {retry:g} s, or accept cached data with a larger max_staleness_ms",
                retry_after_s=retry)
        if wait > 0:
            try:
                await asyncio.sleep(wait)
            except asyncio.CancelledError:  # the query stopped: its reserved token is someone else's
                self.limiter.later(self.limiter.store.give_back(self.credential, self.limit))
                raise

    async def release(self) -> None:
        """Give back the token of a request the API did not count (a 304 to a conditional GET)."""
        await self.limiter.store.give_back(self.credential, self.limit)

    async def observe(self, remaining: int | None, blocked_for_s: float | None) -> None:
        """Adapt the bucket to what the API said; a remaining count above the burst cannot lower it (no call)."""
        if blocked_for_s is None and (remaining is None or remaining >= self.limit.burst):
            return
        await self.limiter.store.observe(self.credential, self.limit, remaining, blocked_for_s)


def _status(limit: RateLimit, tokens: float, blocked: float) -> BudgetStatus:
    reset = max(limit.burst - tokens, 0.0) / limit.refill_per_s + blocked
    return BudgetStatus(max(int(tokens), 0) if blocked <= 0 else 0, limit.burst, limit.refill_per_s, reset, blocked)
