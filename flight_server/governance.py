"""Rate limits and the scan cache as the operator sets them — the tenant YAML's ``rate_limits`` and ``cache``
sections, and the ``serve`` flags that override them — and their wiring: buckets and cache entries in this
process by default, in Redis (shared by every replica that names it) with ``cache.redis_url`` or ``--redis``.

```yaml
rate_limits:                  # one token bucket per (tenant, connector) credential
  burst: 50                   # requests at once
  refill_per_s: 10            # then this many per second
  max_wait_ms: 1000           # a request waits at most this long for a token, else RATE_LIMIT_EXHAUSTED
  connectors: {github: {burst: 100, refill_per_s: 1.4}}   # per connector; unset keys come from above
cache:
  max_bytes: 256MiB           # this process's cache (least recently used go first)
  max_age_s: 3600             # no entry is served, or kept in Redis, longer than this
  default_max_staleness_ms: 0 # the tenant's default when a query says nothing (0: live)
  full_refresh_s: 300         # delta refresh: merge only the changes into a cached scan, in full again after
                              # this (deletions); 0 turns delta refresh off
  redis_url: redis://redis:6379/0   # or redis_url_env: REDIS_URL (a URL with a password)
```"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from connectors.ratelimit import MemoryBuckets, RateLimit, RateLimiter, RateLimits, RedisBuckets
from flight_server.limits import LimitError, parse_size
from planner.cache import ScanCache
from planner.cache_redis import RedisStore

if TYPE_CHECKING:
    from flight_server.config import TenantConfig

__all__ = ["CacheSettings", "Governance", "GovernanceError", "add_serve_flags", "apply_serve_flags",
           "parse_cache", "parse_rate_limits", "redacted", "start_governance"]

log = logging.getLogger("omnisql.flight")

_RATE_KEYS = ("burst", "refill_per_s", "max_wait_ms")
_CACHE_KEYS = ("max_bytes", "max_age_s", "default_max_staleness_ms", "full_refresh_s", "redis_url", "redis_url_env")
_SCHEMES = ("redis://", "rediss://", "unix://")


class GovernanceError(ValueError):
    """``rate_limits`` or ``cache`` is wrong, or Redis cannot be reached; the message names the key."""


@dataclass(frozen=True)
class CacheSettings:
    max_bytes: int = 256 * 1024 * 1024
    max_age_s: float = 3600.0
    default_max_staleness_ms: int = 0
    full_refresh_s: float = 300.0  # 0: no delta refresh (every fresh fetch is a full one)
    redis_url: str | None = field(default=None, repr=False)  # may hold a password


def _mapping(where: str, value: Any) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise GovernanceError(f"{where} must be a mapping")
    return value


def _unknown(where: str, section: Mapping[str, Any], known: Iterable[str]) -> None:
    extra = sorted(set(map(str, section)) - set(known))
    if extra:
        raise GovernanceError(f"{where}: unknown key(s) {', '.join(extra)} (known: {', '.join(known)})")


def _number(where: str, value: Any, minimum: float, integer: bool, above: bool = False) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float) or (integer and not isinstance(value, int)):
        raise GovernanceError(f"{where} must be {'a whole number' if integer else 'a number'}, not {value!r}")
    if value < minimum or (above and value == minimum):
        raise GovernanceError(f"{where} must be {'above' if above else 'at least'} {minimum:g}, not {value!r}")
    return value


def _rate(where: str, section: Mapping[str, Any], base: RateLimit) -> RateLimit:
    _unknown(where, section, _RATE_KEYS)
    burst = _number(f"{where}.burst", section.get("burst", base.burst), 1, True)
    refill = _number(f"{where}.refill_per_s", section.get("refill_per_s", base.refill_per_s), 0, False, above=True)
    wait = _number(f"{where}.max_wait_ms", section.get("max_wait_ms", base.max_wait_ms), 0, True)
    return RateLimit(burst=burst, refill_per_s=float(refill), max_wait_ms=wait)


def parse_rate_limits(value: Any, connector_names: Iterable[str]) -> RateLimits:
    """The ``rate_limits`` section; ``connectors`` entries must name configured connectors."""
    section = _mapping("rate_limits", value)
    _unknown("rate_limits", section, (*_RATE_KEYS, "connectors"))
    default = _rate("rate_limits", {k: v for k, v in section.items() if k != "connectors"}, RateLimit())
    names = set(connector_names)
    overrides = {}
    for name, entry in _mapping("rate_limits.connectors", section.get("connectors")).items():
        if name not in names:
            raise GovernanceError(f"rate_limits.connectors.{name}: no such connector (configured: "
                                  f"{', '.join(sorted(names)) or 'none'})")
        overrides[str(name)] = _rate(f"rate_limits.connectors.{name}", _mapping(
            f"rate_limits.connectors.{name}", entry), default)
    return RateLimits(default, overrides)


def parse_cache(value: Any, environ: Mapping[str, str] | None = None) -> CacheSettings:
    """The ``cache`` section; the Redis URL from ``redis_url``, or from the variable ``redis_url_env`` names."""
    section = _mapping("cache", value)
    _unknown("cache", section, _CACHE_KEYS)
    default = CacheSettings()
    try:
        max_bytes = parse_size("cache.max_bytes", section.get("max_bytes", default.max_bytes))
    except LimitError as exc:
        raise GovernanceError(str(exc)) from exc
    max_age = _number("cache.max_age_s", section.get("max_age_s", default.max_age_s), 0, False, above=True)
    staleness = _number("cache.default_max_staleness_ms", section.get("default_max_staleness_ms", 0), 0, True)
    full_refresh = _number("cache.full_refresh_s", section.get("full_refresh_s", default.full_refresh_s), 0, False)
    if "redis_url" in section and "redis_url_env" in section:
        raise GovernanceError("cache: give redis_url or redis_url_env, not both")
    url = section.get("redis_url")
    if "redis_url_env" in section:
        name = str(section["redis_url_env"])
        url = (environ if environ is not None else os.environ).get(name)
        if not url:
            raise GovernanceError(f"environment variable {name} (from cache.redis_url_env) is not set")
    if url is not None:
        check_redis_url("cache.redis_url", url)
    return CacheSettings(max_bytes=max_bytes, max_age_s=float(max_age), default_max_staleness_ms=staleness,
                         full_refresh_s=float(full_refresh), redis_url=url)


def check_redis_url(where: str, url: Any) -> str:
    if not isinstance(url, str) or not url.startswith(_SCHEMES):
        raise GovernanceError(f"{where} must be a redis://, rediss:// or unix:// URL")
    return url


def redacted(url: str) -> str:
    """The URL without its password, for messages and logs."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if not at:
        return url
    user = userinfo.partition(":")[0]
    return f"{scheme}{sep}{user + ':' if user else ''}***@{host}"


# -- serve flags -------------------------------------------------------------------------------------------------
def add_serve_flags(parser: argparse.ArgumentParser) -> None:
    """``serve`` flags overriding ``cache`` and the tenant-wide ``rate_limits`` (per-connector entries still win)."""
    group = parser.add_argument_group("rate limits and cache")
    group.add_argument("--redis", metavar="URL", help="keep rate-limit buckets and the scan cache in this Redis, "
                       "shared with every replica that names it (overrides cache.redis_url)")
    group.add_argument("--cache-max-bytes", metavar="SIZE", help="this process's scan cache, e.g. 512MiB "
                       "(overrides cache.max_bytes; default 256MiB)")
    group.add_argument("--default-max-staleness-ms", type=int, metavar="MS", help="staleness a query accepts "
                       "when it says nothing (overrides cache.default_max_staleness_ms; default 0: live)")
    group.add_argument("--cache-full-refresh-s", type=float, metavar="S", help="delta refresh: a cached scan takes "
                       "only the changes, in full again after S seconds; 0 turns it off (overrides "
                       "cache.full_refresh_s; default 300)")
    group.add_argument("--rate-limit-burst", type=int, metavar="N", help="requests one credential may send at "
                       "once (overrides rate_limits.burst; default 50)")
    group.add_argument("--rate-limit-refill-per-s", type=float, metavar="R", help="then R requests per second "
                       "(overrides rate_limits.refill_per_s; default 10)")
    group.add_argument("--rate-limit-max-wait-ms", type=int, metavar="MS", help="how long a request may wait for "
                       "a token before RATE_LIMIT_EXHAUSTED (overrides rate_limits.max_wait_ms; default 1000)")


def apply_serve_flags(config: TenantConfig, args: argparse.Namespace) -> TenantConfig:
    """``config`` with the flags given on the command line (GovernanceError when one is out of range)."""
    cache = config.cache
    if args.redis is not None:
        cache = dataclasses.replace(cache, redis_url=check_redis_url("--redis", args.redis))
    if args.cache_max_bytes is not None:
        try:
            cache = dataclasses.replace(cache, max_bytes=parse_size("--cache-max-bytes", args.cache_max_bytes))
        except LimitError as exc:
            raise GovernanceError(str(exc)) from exc
    if args.default_max_staleness_ms is not None:
        staleness = _number("--default-max-staleness-ms", args.default_max_staleness_ms, 0, True)
        cache = dataclasses.replace(cache, default_max_staleness_ms=staleness)
    if args.cache_full_refresh_s is not None:
        refresh = _number("--cache-full-refresh-s", args.cache_full_refresh_s, 0, False)
        cache = dataclasses.replace(cache, full_refresh_s=float(refresh))
    flags = {key: value for key in _RATE_KEYS if (value := getattr(args, f"rate_limit_{key}")) is not None}
    rate_limits = config.rate_limits
    if flags:
        default = _rate("--rate-limit", flags, rate_limits.default)
        rate_limits = dataclasses.replace(rate_limits, default=default)
    return dataclasses.replace(config, cache=cache, rate_limits=rate_limits)


# -- wiring ------------------------------------------------------------------------------------------------------
@dataclass
class Governance:
    """The process's rate limiter and scan cache, and the Redis client they share (if any)."""

    limiter: RateLimiter
    cache: ScanCache
    redis: Any | None = None

    async def aclose(self) -> None:
        if self.redis is not None:
            await self.redis.aclose()


async def start_governance(rate_limits: RateLimits, cache: CacheSettings) -> Governance:
    """Run on the engine's event loop (the Redis client belongs to it). With a Redis URL, Redis must answer now:
    a replica that cannot reach it refuses to start rather than silently keeping a budget of its own."""
    scan_cache = ScanCache(max_bytes=cache.max_bytes, max_age_s=cache.max_age_s, full_refresh_s=cache.full_refresh_s)
    if cache.redis_url is None:
        return Governance(RateLimiter(rate_limits, MemoryBuckets()), scan_cache)
    from redis.asyncio import Redis
    from redis.exceptions import RedisError

    client = Redis.from_url(cache.redis_url, socket_timeout=5.0, socket_connect_timeout=3.0,
                            health_check_interval=30)
    try:
        await client.ping()
    except (RedisError, OSError, TimeoutError) as exc:
        await client.aclose()
        raise GovernanceError(f"cannot reach Redis at {redacted(cache.redis_url)} ({type(exc).__name__}); check "
                              "cache.redis_url / --redis") from exc
    await _warn_if_persistent(client, cache.redis_url)
    scan_cache.shared = RedisStore(client, cache.max_age_s, max_entry_bytes=cache.max_bytes)
    return Governance(RateLimiter(rate_limits, RedisBuckets(client)), scan_cache, client)


async def _warn_if_persistent(client: Any, url: str) -> None:
    """Cached rows must never reach a disk: say so when this Redis snapshots or appends (managed Redis often
    forbids CONFIG; then nothing is said)."""
    from redis.exceptions import RedisError

    try:
        save = (await client.config_get("save")).get("save", "")
        appendonly = (await client.config_get("appendonly")).get("appendonly", "no")
    except (RedisError, OSError, TimeoutError):
        return
    if save or appendonly != "no":
        log.warning("Redis at %s persists to disk (save %r, appendonly %s); run it with --save \"\" --appendonly no "
                    "so cached rows stay in RAM", redacted(url), save, appendonly)
