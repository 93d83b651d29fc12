"""The scan cache: what one API request returned, kept in RAM (never on disk) so a query that accepts data up to
``max_staleness_ms`` old can skip the upstream call.

Keyed by the asking principal's security scope, the table, the projection and everything that shapes the rows
(pushed predicates, pre-filters, residual, limit, order): rows never cross scopes whose policies differ.
Identical fetches in flight are coalesced when the running one started within the caller's staleness bound
(single-flight). A broader cached scan answers a narrower one by filtering locally when that is exact
(subsumption). Bounded in bytes (least recently used go first) and in age. When a fresh fetch fails and only an
older copy exists, the caller gets ``STALE_DATA`` — or, with ``allow_stale``, the old copy, marked as such.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import pyarrow as pa

from connectors.filtering import filter_batch
from core.errors import RateLimitExhausted, SourceTimeout, StaleData, UpstreamError
from core.types import ScanRequest

__all__ = ["CacheKey", "CachedScan", "Freshness", "ScanCache", "cache_key"]

CacheKey = tuple[str, str, tuple[str, ...], tuple[str, ...], tuple[str, ...], str, int | None, str]
_FETCH_FAILURES = (UpstreamError, SourceTimeout, RateLimitExhausted)


def cache_key(scope: str, request: ScanRequest) -> CacheKey:
    return (scope, request.table, tuple(request.columns), tuple(sorted(map(str, request.predicates))),
            tuple(sorted(map(str, request.prefilters))), str(request.residual) if request.residual is not None
            else "", request.limit, repr(request.order_by))


@dataclass(frozen=True)
class CachedScan:
    batches: tuple[pa.RecordBatch, ...]
    fetched_at: float  # time.time() when the upstream fetch started (the data is at least this old)
    request: ScanRequest
    nbytes: int

    def age_ms(self, now: float | None = None) -> float:
        return max(((now or time.time()) - self.fetched_at) * 1000, 0.0)


@dataclass
class Freshness:
    """What a query asks for and what it got (read into the answer's metadata and EXPLAIN ANALYZE)."""

    max_staleness_ms: int = 0
    allow_stale: bool = False
    hits: int = 0
    stale: bool = False
    oldest_fetch: float | None = None  # time.time() of the oldest data used

    def used(self, fetched_at: float) -> None:
        self.oldest_fetch = fetched_at if self.oldest_fetch is None else min(self.oldest_fetch, fetched_at)

    @property
    def freshness_ms(self) -> float:
        return 0.0 if self.oldest_fetch is None else max((time.time() - self.oldest_fetch) * 1000, 0.0)


@dataclass
class _Stats:
    hits: int = 0
    misses: int = 0
    coalesced: int = 0
    evictions: int = 0


Loader = Callable[[], Awaitable[list[pa.RecordBatch]]]


@dataclass
class ScanCache:
    max_bytes: int = 256 * 1024 * 1024
    max_age_s: float = 3600.0
    entries: OrderedDict[CacheKey, CachedScan] = field(default_factory=OrderedDict)
    stats: _Stats = field(default_factory=_Stats)
    _bytes: int = 0
    _inflight: dict[CacheKey, tuple[float, asyncio.Future[CachedScan]]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def nbytes(self) -> int:
        return self._bytes

    async def scan(self, scope: str, request: ScanRequest, freshness: Freshness, load: Loader
                   ) -> tuple[list[pa.RecordBatch], bool]:
        """(the request's batches, whether they came from the cache): cached if young enough, else fetched
        (coalesced with an identical fetch that started within the staleness bound), else — when the fetch
        fails — the stale copy or ``STALE_DATA``."""
        key = cache_key(scope, request)
        bound_s = freshness.max_staleness_ms / 1000
        now = time.time()
        hit = self._fresh(key, request, scope, now - bound_s) if freshness.max_staleness_ms > 0 else None
        if hit is not None:
            freshness.hits += 1
            freshness.used(hit.fetched_at)
            return list(hit.batches), True
        running = self._inflight.get(key)
        if running is not None and freshness.max_staleness_ms > 0 and running[0] >= now - bound_s:
            self.stats.coalesced += 1
            entry = await asyncio.shield(running[1])
            freshness.hits += 1
            freshness.used(entry.fetched_at)
            return list(entry.batches), True
        return await self._fetch(key, request, freshness, load), False

    async def _fetch(self, key: CacheKey, request: ScanRequest, freshness: Freshness, load: Loader
                     ) -> list[pa.RecordBatch]:
        started = time.time()
        future: asyncio.Future[CachedScan] = asyncio.get_running_loop().create_future()
        self._inflight[key] = (started, future)
        self.stats.misses += 1
        try:
            batches = await load()
        except _FETCH_FAILURES as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiting callers get it, nobody logs "never retrieved"
            return self._stale(key, freshness, exc)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()
            raise
        finally:
            if self._inflight.get(key, (0.0, None))[1] is future:
                del self._inflight[key]
        entry = CachedScan(tuple(batches), started, request, sum(b.nbytes for b in batches))
        future.set_result(entry)
        self._put(key, entry)
        freshness.used(started)
        return batches

    def _stale(self, key: CacheKey, freshness: Freshness, error: Exception) -> list[pa.RecordBatch]:
        with self._lock:
            old = self.entries.get(key)
        if old is None:
            raise error
        if not freshness.allow_stale:
            raise StaleData(f"a fresh fetch failed ({error}) and only data {old.age_ms() / 1000:.0f} s old is "
                            "cached; retry later, or accept it with allow_stale") from error
        freshness.stale = True
        freshness.used(old.fetched_at)
        return list(old.batches)

    def _fresh(self, key: CacheKey, request: ScanRequest, scope: str, not_before: float) -> CachedScan | None:
        """An entry for exactly this request fetched at or after ``not_before``, or one that subsumes it."""
        with self._lock:
            entry = self.entries.get(key)
            if entry is not None and entry.fetched_at >= not_before and entry.fetched_at >= time.time() - \
                    self.max_age_s:
                self.entries.move_to_end(key)
                self.stats.hits += 1
                return entry
            broader = [(k, e) for k, e in self.entries.items()
                       if k[0] == scope and e.fetched_at >= not_before and _subsumes(e.request, request)]
        if not broader:
            return None
        _, entry = broader[-1]
        self.stats.hits += 1
        return CachedScan(_narrowed(entry, request), entry.fetched_at, request, entry.nbytes)

    def _put(self, key: CacheKey, entry: CachedScan) -> None:
        if entry.nbytes > self.max_bytes:
            return
        with self._lock:
            old = self.entries.pop(key, None)
            if old is not None:
                self._bytes -= old.nbytes
            self.entries[key] = entry
            self._bytes += entry.nbytes
            while self._bytes > self.max_bytes and self.entries:
                _, evicted = self.entries.popitem(last=False)
                self._bytes -= evicted.nbytes
                self.stats.evictions += 1


def _subsumes(cached: ScanRequest, wanted: ScanRequest) -> bool:
    """The cached rows, filtered by the wanted request's extra predicates, are exactly the wanted rows: same
    table, no limit or row-shaping extras on the cached side, its predicates a subset, its columns a superset
    that includes every column the extra predicates name."""
    if cached.table != wanted.table or cached.limit is not None or wanted.limit is not None:
        return False
    if cached.prefilters or cached.residual is not None or wanted.prefilters or wanted.residual is not None:
        return False
    have = set(map(str, cached.predicates))
    if not have <= set(map(str, wanted.predicates)):
        return False
    extra = [p for p in wanted.predicates if str(p) not in have]
    return set(wanted.columns) | {p.column for p in extra} <= set(cached.columns)


def _narrowed(entry: CachedScan, wanted: ScanRequest) -> tuple[pa.RecordBatch, ...]:
    have = set(map(str, entry.request.predicates))
    extra = [p for p in wanted.predicates if str(p) not in have]
    out = []
    for batch in entry.batches:
        kept = filter_batch(batch, extra)
        schema = pa.schema([kept.schema.field(c) for c in wanted.columns])
        out.append(pa.RecordBatch.from_arrays([kept.column(c) for c in wanted.columns], schema=schema))
    return tuple(out)
