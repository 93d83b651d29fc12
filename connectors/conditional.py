"""Conditional GETs (``If-None-Match``): the bodies an API sent with an ETag, kept so a ``304 Not Modified`` can be
answered from memory. GitHub does not count a 304 against its rate limit, so re-reading an unchanged page is free.

One ``EtagCache`` per connector instance (a connector belongs to one tenant and holds one credential), and every
key also carries a digest of the credential and API version (``scope``): two credentials never share an entry, so a
body one token may see is never replayed to another. In memory only, never on disk; bounded in bytes, least
recently used first out. Keys are full URLs (filter values included): they are never logged."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass

import httpx

__all__ = ["EtagCache", "Stored", "scope_of"]

# Headers a 304 must not overwrite in, nor a stored copy keep: per-exchange, not per-representation.
_PER_EXCHANGE = ("content-length", "content-encoding", "transfer-encoding", "connection", "set-cookie")


def scope_of(*parts: str) -> str:
    """A digest naming what a cached body depends on besides its URL (credential, API version): the secret itself
    is never stored."""
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Stored:
    """One representation: its ETag, the headers that came with it (``link`` paging included) and its body."""

    etag: str
    headers: tuple[tuple[str, str], ...]
    content: bytes

    @property
    def size(self) -> int:
        return len(self.content) + sum(len(k) + len(v) for k, v in self.headers) + len(self.etag)

    def refreshed(self, not_modified: httpx.Headers) -> httpx.Headers:
        """The stored headers updated with the 304's own (RFC 9111 §4.3.4: rate-limit headers, ``link`` if sent)."""
        headers = httpx.Headers(list(self.headers))
        for key, value in not_modified.multi_items():
            if key.lower() not in _PER_EXCHANGE:
                headers[key] = value
        return headers


class EtagCache:
    """Bounded LRU of ``Stored`` by (scope, URL); ``max_bytes`` 0 turns conditional requests off."""

    def __init__(self, scope: str, max_bytes: int = 8 << 20) -> None:
        if max_bytes < 0:
            raise ValueError("max_bytes must be at least 0")
        self.scope = scope
        self.max_bytes = max_bytes
        self.size = 0
        self._entries: OrderedDict[tuple[str, str], Stored] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, url: str) -> Stored | None:
        with self._lock:
            found = self._entries.get((self.scope, url))
            if found is not None:
                self._entries.move_to_end((self.scope, url))
            return found

    def put(self, url: str, etag: str, headers: httpx.Headers, content: bytes) -> None:
        kept = tuple((k, v) for k, v in headers.multi_items()
                     if k.lower() not in _PER_EXCHANGE and not k.lower().startswith("x-ratelimit"))
        stored = Stored(etag, kept, content)
        key = (self.scope, url)
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self.size -= old.size
            if stored.size > self.max_bytes // 4:  # one page may not crowd out the rest
                return
            self._entries[key] = stored
            self.size += stored.size
            while self.size > self.max_bytes:
                _, dropped = self._entries.popitem(last=False)
                self.size -= dropped.size

    def __len__(self) -> int:
        return len(self._entries)
