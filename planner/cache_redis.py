"""The scan cache's shared store: entries in Redis, so every replica that names the same Redis reads what any of
them fetched. One string per entry: the fetch time (8 bytes) then the batches as an Arrow IPC stream, written
with an expiry of the cache's ``max_age_s`` (Redis drops it; nothing outlives it). The key is a SHA-256 of the
cache key (scope, credential, table, projection, conditions), so no filter value appears in Redis's key space.

Redis must keep this in RAM only: run it with ``--save "" --appendonly no`` (no RDB snapshots, no AOF), and bound
it with ``--maxmemory`` and ``--maxmemory-policy allkeys-lru``. A Redis that fails or is unreachable costs a miss
(read) or a skipped write-back, logged at most once a minute; it never fails a query."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import struct
import time
from typing import Any

import pyarrow as pa

from core.types import ScanRequest
from planner.cache import CachedScan, CacheKey

__all__ = ["RedisStore", "decode_entry", "encode_entry"]

log = logging.getLogger("omnisql.cache")

_HEADER = struct.Struct("<dd")  # fetched_at, then when the last full fetch started (time.time())
_LOG_EVERY_S = 60.0


def encode_entry(entry: CachedScan) -> bytes:
    """The fetch time, then the batches as one Arrow IPC stream (an empty scan is a stream with no batches)."""
    schema = entry.batches[0].schema if entry.batches else pa.schema([])
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, schema) as writer:
        for batch in entry.batches:
            writer.write_batch(batch)
    return _HEADER.pack(entry.fetched_at, entry.last_full) + sink.getvalue().to_pybytes()


def decode_entry(raw: bytes, request: ScanRequest) -> CachedScan:
    fetched_at, full_at = _HEADER.unpack_from(raw)
    reader = pa.ipc.open_stream(pa.py_buffer(raw)[_HEADER.size:])
    batches = tuple(reader)
    return CachedScan(batches, fetched_at, request, sum(b.nbytes for b in batches),
                      None if full_at == fetched_at else full_at)


class RedisStore:
    """``planner.cache.EntryStore`` over a ``redis.asyncio`` client."""

    def __init__(self, client: Any, max_age_s: float, max_entry_bytes: int = 256 << 20,
                 prefix: str = "omnisql:scan:") -> None:
        self.client = client
        self.max_age_s = max_age_s
        self.max_entry_bytes = max_entry_bytes
        self.prefix = prefix
        self._warned_at = -math.inf

    def name(self, key: CacheKey) -> str:
        return self.prefix + hashlib.sha256(json.dumps(key, default=str).encode()).hexdigest()

    async def get(self, key: CacheKey, request: ScanRequest) -> CachedScan | None:
        from redis.exceptions import RedisError

        try:
            raw = await self.client.get(self.name(key))
        except (RedisError, OSError, TimeoutError) as exc:
            self._warn("read", exc)
            return None
        if raw is None:
            return None
        try:
            return decode_entry(raw, request)
        except (pa.ArrowInvalid, struct.error) as exc:  # another version's layout, or a damaged value: a miss
            self._warn("decode", exc)
            return None

    async def put(self, key: CacheKey, entry: CachedScan) -> None:
        from redis.exceptions import RedisError

        ttl_ms = int((self.max_age_s - max(time.time() - entry.fetched_at, 0.0)) * 1000)
        if entry.nbytes > self.max_entry_bytes or ttl_ms <= 0:
            return
        try:
            value = encode_entry(entry)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:  # batches of differing schemas: keep it local only
            self._warn("encode", exc)
            return
        try:
            await self.client.set(self.name(key), value, px=ttl_ms)
        except (RedisError, OSError, TimeoutError) as exc:
            self._warn("write", exc)

    def _warn(self, what: str, exc: BaseException) -> None:
        now = time.monotonic()
        if now - self._warned_at > _LOG_EVERY_S:
            self._warned_at = now
            log.warning("scan cache: Redis %s failed (%s); treated as a miss", what, type(exc).__name__)
