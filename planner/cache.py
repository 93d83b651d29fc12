"""The scan cache: what one API request returned, kept in RAM (never on disk) so a query that accepts data up to
``max_staleness_ms`` old can skip the upstream call.

Keyed by the asking principal's security scope, the credential (tenant and connector), the table, the projection
and everything that shapes the rows (pushed predicates, pre-filters, residual, limit, order): rows never cross
scopes whose policies differ. Identical fetches in flight are coalesced when the running one started within the
caller's staleness bound (single-flight, in this process). A broader cached scan answers a narrower one by
filtering locally when that is exact (subsumption, over this process's entries only). Bounded in bytes (least
recently used go first) and in age. When a fresh fetch fails and only an older copy exists, the caller gets
``STALE_DATA`` (``RATE_LIMIT_EXHAUSTED`` with its retry-after when a rate limit refused the fetch) — or, with
``allow_stale``, the old copy, marked as such.

**Delta refresh.** When a query needs fresher rows than a cached scan holds and the table's connector can list
what changed since a time (``ChangeListing``), the scan is refreshed by fetching only the records changed since
the copy was fetched (less ``delta_overlap_s`` for clock skew) and merging them by primary key: a changed record
replaces its old version, or leaves the copy when it no longer matches the request. Deletions are not changes an
API lists, so a full fetch replaces the copy once its last full fetch is ``full_refresh_s`` old.

Entries live in an ``EntryStore``. The in-process LRU (``MemoryStore``) always holds this replica's entries; with a
shared store (``planner/cache_redis.py``: Arrow IPC bytes in Redis under a TTL) every fill is written there too and
a local miss is looked up there before the API is called, so one replica's fetch is another's hit. The local LRU
stays in front as a near cache: repeated hits cost no Redis round trip.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

import pyarrow as pa
import pyarrow.compute as pc

from connectors.filtering import filter_batch
from core.errors import RateLimitExhausted, SourceTimeout, StaleData, UpstreamError
from core.types import Changes, ScanRequest

__all__ = ["CacheKey", "CachedScan", "ChangesLoader", "EntryStore", "FetchKind", "Freshness", "MemoryStore",
           "ScanCache", "cache_key"]

FetchKind = Literal["hit", "delta", "full"]  # how a request's rows were had: cached, changes merged, fetched

CacheKey = tuple[str, str, str, tuple[str, ...], tuple[str, ...], tuple[str, ...], str, int | None, str]
_FETCH_FAILURES = (UpstreamError, SourceTimeout, RateLimitExhausted)


def cache_key(scope: str, request: ScanRequest) -> CacheKey:
    """Everything that decides a request's rows. The credential (``<tenant>/<connector>``) separates tenants and
    two connectors of one type (``github`` and ``gh_oss`` both have ``pull_requests``)."""
    return (scope, request.credential, request.table, tuple(request.columns),
            tuple(sorted(map(str, request.predicates))), tuple(sorted(map(str, request.prefilters))),
            str(request.residual) if request.residual is not None else "", request.limit, repr(request.order_by))


@dataclass(frozen=True)
class CachedScan:
    batches: tuple[pa.RecordBatch, ...]
    fetched_at: float  # time.time() when the upstream fetch started (the data is at least this old)
    request: ScanRequest
    nbytes: int
    full_at: float | None = None  # when the last full fetch started (None: this fetch was full)

    @property
    def last_full(self) -> float:
        return self.fetched_at if self.full_at is None else self.full_at

    def age_ms(self, now: float | None = None) -> float:
        return max(((now or time.time()) - self.fetched_at) * 1000, 0.0)


@dataclass
class Freshness:
    """What a query asks for and what it got (read into the answer's metadata and EXPLAIN ANALYZE)."""

    max_staleness_ms: int = 0
    allow_stale: bool = False
    hits: int = 0
    deltas: int = 0  # scans refreshed by merging changes
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
    deltas: int = 0  # refreshes that fetched only the changes
    shared_hits: int = 0  # hits found in the shared store (another replica's fetch, or ours before a restart)


class EntryStore(Protocol):
    """Where cached scans live. ``get`` returns the entry for ``key`` whatever its age (the cache judges age);
    ``request`` is what the key was made from, for stores that do not keep it. Failures are the store's to
    absorb: a store that cannot answer returns None and a put that fails is dropped."""

    async def get(self, key: CacheKey, request: ScanRequest) -> CachedScan | None: ...

    async def put(self, key: CacheKey, entry: CachedScan) -> None: ...


@dataclass
class MemoryStore:
    """The in-process LRU, bounded in bytes; it alone answers subsumption (it keeps each entry's request)."""

    max_bytes: int = 256 * 1024 * 1024
    entries: OrderedDict[CacheKey, CachedScan] = field(default_factory=OrderedDict)
    nbytes: int = 0
    evictions: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def get(self, key: CacheKey, request: ScanRequest) -> CachedScan | None:
        return self.peek(key)

    async def put(self, key: CacheKey, entry: CachedScan) -> None:
        self.add(key, entry)

    def peek(self, key: CacheKey, not_before: float = 0.0) -> CachedScan | None:
        """The entry if fetched at or after ``not_before`` (marked recently used), else None."""
        with self._lock:
            entry = self.entries.get(key)
            if entry is None or entry.fetched_at < not_before:
                return None
            self.entries.move_to_end(key)
            return entry

    def add(self, key: CacheKey, entry: CachedScan) -> None:
        if entry.nbytes > self.max_bytes:
            return
        with self._lock:
            old = self.entries.pop(key, None)
            if old is not None:
                self.nbytes -= old.nbytes
            self.entries[key] = entry
            self.nbytes += entry.nbytes
            while self.nbytes > self.max_bytes and self.entries:
                _, evicted = self.entries.popitem(last=False)
                self.nbytes -= evicted.nbytes
                self.evictions += 1

    def broader(self, scope: str, request: ScanRequest, not_before: float) -> CachedScan | None:
        """The newest entry of this scope fetched at or after ``not_before`` that subsumes ``request``."""
        with self._lock:
            broader = [e for k, e in self.entries.items()
                       if k[0] == scope and e.fetched_at >= not_before and _subsumes(e.request, request)]
        return broader[-1] if broader else None


Loader = Callable[[], Awaitable[list[pa.RecordBatch]]]
ChangesLoader = Callable[[float], Awaitable[Changes | None]]  # since (time.time()) → the changes, or None


@dataclass
class ScanCache:
    max_bytes: int = 256 * 1024 * 1024
    max_age_s: float = 3600.0
    shared: EntryStore | None = None  # e.g. Redis: filled by every replica, read on a local miss
    full_refresh_s: float = 300.0  # a copy refreshed by deltas is fetched in full again after this (deletions)
    delta_overlap_s: float = 60.0  # changes are asked for since the copy's fetch less this (clock skew)
    stats: _Stats = field(default_factory=_Stats)
    local: MemoryStore = field(init=False)
    _inflight: dict[CacheKey, tuple[float, asyncio.Future[CachedScan]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.local = MemoryStore(self.max_bytes)

    @property
    def entries(self) -> OrderedDict[CacheKey, CachedScan]:
        """This process's entries (the shared store's are not counted)."""
        return self.local.entries

    @property
    def nbytes(self) -> int:
        return self.local.nbytes

    async def scan(self, scope: str, request: ScanRequest, freshness: Freshness, load: Loader,
                   changes: ChangesLoader | None = None, key_column: str | None = None, page_rows: int = 0
                   ) -> tuple[list[pa.RecordBatch], FetchKind]:
        """(the request's batches, how they were had): cached if young enough (here, by subsumption, or in the
        shared store), else refreshed by ``changes`` merged on ``key_column`` when a recent enough copy of more
        than one page (``page_rows``) exists — a copy of one page costs no more to fetch again than its changes —,
        else fetched (coalesced with an identical fetch that started within the staleness bound), else — when the
        fetch fails — the stale copy or ``STALE_DATA``."""
        key = cache_key(scope, request)
        live = freshness.max_staleness_ms <= 0
        not_before = self._not_before(freshness)
        hit = None if live else self._find_local(key, request, scope, not_before)
        if hit is not None:
            return self.use(hit, freshness), "hit"
        running = self._inflight.get(key)
        if running is not None and not live and running[0] >= not_before:
            self.stats.coalesced += 1
            entry = await asyncio.shield(running[1])
            if entry.fetched_at >= not_before:  # a fill answered from the shared store may be older than we accept
                return self._used(entry, freshness), "hit"
        delta = _Delta(changes, key_column, page_rows) \
            if changes is not None and key_column is not None and key_column in request.columns else None
        return await self._fill(key, request, freshness, load, None if live else not_before, delta)

    def hit_now(self, scope: str, request: ScanRequest, freshness: Freshness) -> CachedScan | None:
        """This process's copy of the request young enough for ``freshness`` (exact or by subsumption), found
        from any thread without the I/O loop and not yet counted: ``use`` it, or go through ``scan``."""
        if freshness.max_staleness_ms <= 0:
            return None
        return self._find_local(cache_key(scope, request), request, scope, self._not_before(freshness))

    def use(self, entry: CachedScan, freshness: Freshness) -> list[pa.RecordBatch]:
        """A local hit's batches, counted in the cache's statistics and the query's freshness."""
        self.stats.hits += 1
        return self._used(entry, freshness)

    def _used(self, entry: CachedScan, freshness: Freshness) -> list[pa.RecordBatch]:
        freshness.hits += 1
        freshness.used(entry.fetched_at)
        return list(entry.batches)

    def _not_before(self, freshness: Freshness) -> float:
        now = time.time()
        return max(now - freshness.max_staleness_ms / 1000, now - self.max_age_s)

    def _find_local(self, key: CacheKey, request: ScanRequest, scope: str, not_before: float) -> CachedScan | None:
        """An entry for exactly this request fetched at or after ``not_before``, or one that subsumes it."""
        entry = self.local.peek(key, not_before)
        if entry is None:
            broader = self.local.broader(scope, request, not_before)
            if broader is None:
                return None
            entry = CachedScan(_narrowed(broader, request), broader.fetched_at, request, broader.nbytes)
        return entry

    async def _fill(self, key: CacheKey, request: ScanRequest, freshness: Freshness, load: Loader,
                    not_before: float | None, delta: _Delta | None = None) -> tuple[list[pa.RecordBatch], FetchKind]:
        """One fill, registered for single-flight before anything is awaited: the shared store when the caller
        accepts cached data (``not_before``), else the changes merged into a recent copy (``delta``), else the
        upstream fetch; written back to both stores."""
        started = time.time()
        future: asyncio.Future[CachedScan] = asyncio.get_running_loop().create_future()
        self._inflight[key] = (started, future)
        full_at: float | None = None
        try:
            shared = await self._shared_hit(key, request, not_before)
            if shared is not None:
                future.set_result(shared)
                return self._used(shared, freshness), "hit"
            self.stats.misses += 1
            merged = await self._refreshed(key, delta, started) if delta is not None else None
            if merged is not None:
                batches, full_at = merged
            else:
                batches = await load()
        except _FETCH_FAILURES as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiting callers get it, nobody logs "never retrieved"
            return await self._stale(key, request, freshness, exc), "full"
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()
            raise
        finally:
            if self._inflight.get(key, (0.0, None))[1] is future:
                del self._inflight[key]
        entry = CachedScan(tuple(batches), started, request, sum(b.nbytes for b in batches), full_at)
        future.set_result(entry)
        await self._put(key, entry)
        freshness.used(started)
        if full_at is not None:
            self.stats.deltas += 1
            freshness.deltas += 1
            return batches, "delta"
        return batches, "full"

    async def _refreshed(self, key: CacheKey, delta: _Delta, started: float
                         ) -> tuple[list[pa.RecordBatch], float] | None:
        """A recent copy with the changes since its fetch merged in, and when its last full fetch was; None when
        there is no such copy (or it is due for a full fetch) or the connector cannot list the changes."""
        old = self.local.peek(key)
        if old is None or started - old.last_full > self.full_refresh_s \
                or sum(b.num_rows for b in old.batches) <= delta.page_rows:
            return None
        changes = await delta.changes(old.fetched_at - self.delta_overlap_s)
        if changes is None:
            return None
        return _merged(old.batches, changes, delta.key_column), old.last_full

    async def _shared_hit(self, key: CacheKey, request: ScanRequest, not_before: float | None) -> CachedScan | None:
        if self.shared is None or not_before is None:
            return None
        entry = await self.shared.get(key, request)
        if entry is None or entry.fetched_at < not_before:
            return None
        self._remember(key, entry)
        self.stats.hits += 1
        self.stats.shared_hits += 1
        return entry

    async def _put(self, key: CacheKey, entry: CachedScan) -> None:
        if entry.nbytes > self.max_bytes:
            return
        self._remember(key, entry)
        if self.shared is not None:
            await self.shared.put(key, entry)

    def _remember(self, key: CacheKey, entry: CachedScan) -> None:
        self.local.add(key, entry)
        self.stats.evictions = self.local.evictions

    async def _stale(self, key: CacheKey, request: ScanRequest, freshness: Freshness, error: Exception
                     ) -> list[pa.RecordBatch]:
        old = self.local.peek(key)
        if old is None and self.shared is not None:
            old = await self.shared.get(key, request)
        if old is None:
            raise error
        if not freshness.allow_stale and isinstance(error, RateLimitExhausted):  # keep the code and retry-after
            raise RateLimitExhausted(f"{error.args[0]} (a copy {old.age_ms() / 1000:.0f} s old is cached: accept "
                                     "it with allow_stale)", retry_after_s=error.retry_after_s) from error
        if not freshness.allow_stale:
            raise StaleData(f"a fresh fetch failed ({error}) and only data {old.age_ms() / 1000:.0f} s old is "
                            "cached; retry later, or accept it with allow_stale") from error
        freshness.stale = True
        freshness.used(old.fetched_at)
        return list(old.batches)


@dataclass(frozen=True)
class _Delta:
    changes: ChangesLoader
    key_column: str
    page_rows: int  # a copy with no more rows than one API page is fetched again in full (as cheap, and exact)


def _merged(old: tuple[pa.RecordBatch, ...], changes: Changes, key_column: str) -> list[pa.RecordBatch]:
    """The old rows whose key did not change, then the changed rows that match: Arrow kernels, no row loop."""
    if not old:
        return list(changes.batches)
    table = pa.Table.from_batches(old)
    kept = table.filter(pc.invert(pc.is_in(table.column(key_column), value_set=changes.keys)))
    fresh = pa.Table.from_batches(changes.batches, schema=table.schema) if changes.batches else None
    merged = pa.concat_tables([kept, fresh]) if fresh is not None else kept
    return merged.combine_chunks().to_batches() or [pa.RecordBatch.from_pylist([], schema=table.schema)]


def _subsumes(cached: ScanRequest, wanted: ScanRequest) -> bool:
    """The cached rows, filtered by the wanted request's extra predicates, are exactly the wanted rows: same
    table and credential, no limit or row-shaping extras on the cached side, its predicates a subset, its columns
    a superset that includes every column the extra predicates name."""
    if cached.table != wanted.table or cached.credential != wanted.credential or cached.limit is not None \
            or wanted.limit is not None:
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
    wanted_columns = set(wanted.columns)
    out = []
    for batch in entry.batches:  # the cached copy's column order (the table's), as a fetch of ``wanted`` has it
        kept = filter_batch(batch, extra)
        schema = pa.schema([f for f in kept.schema if f.name in wanted_columns])
        out.append(pa.RecordBatch.from_arrays([kept.column(f.name) for f in schema], schema=schema))
    return tuple(out)
