"""The identity provider's public keys (a JWKS), read from a file or fetched over HTTP(S), cached per key id.

Attacker-minded rules: only signature keys that fit RS256 (RSA, 2048 bits or more) or ES256 (EC P-256) are
kept, each pinned to its one algorithm, so a token can never choose how its key is used (no HS256 with a public
key as the secret, no RSA key read as EC). A key id we do not know refreshes the set, but at most once per
``min_refresh_interval_s`` (counting failed fetches too), so a flood of made-up key ids costs one fetch, not one
per request. A fetch is bounded in time and size, follows no redirects, and a failed one keeps the keys we had.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt import PyJWK, PyJWKError

__all__ = ["JwksCache", "JwksError", "VerifyKey", "file_source", "parse_jwks", "url_source"]

log = logging.getLogger("omnisql.identity")

MAX_KEYS = 100
MIN_RSA_BITS = 2048
_ALG_OF_KTY = {"RSA": "RS256", "EC": "ES256"}


class JwksError(Exception):
    """The JWKS could not be read or is not a JWKS (kept server-side: callers answer UNAUTHENTICATED)."""


@dataclass(frozen=True)
class VerifyKey:
    algorithm: str  # the one algorithm this key verifies
    key: Any  # a cryptography public key object


def file_source(path: str | Path, max_bytes: int) -> Callable[[], bytes]:
    """Reads the file anew on each refresh, so replacing it rotates the keys."""
    def read() -> bytes:
        try:
            with open(path, "rb") as f:
                data = f.read(max_bytes + 1)
        except OSError as exc:
            raise JwksError(f"cannot read the JWKS file: {exc.strerror}") from exc
        if len(data) > max_bytes:
            raise JwksError(f"the JWKS file is larger than {max_bytes} bytes")
        return data
    return read


def url_source(url: str, timeout_s: float, max_bytes: int) -> Callable[[], bytes]:
    """GET with a timeout on connecting and on every read, a hard deadline on the whole body, no redirects."""
    def fetch() -> bytes:
        deadline = time.monotonic() + timeout_s
        try:
            with httpx.Client(timeout=timeout_s, follow_redirects=False) as client, \
                    client.stream("GET", url, headers={"accept": "application/json"}) as response:
                if response.status_code != 200:
                    raise JwksError(f"the JWKS endpoint answered HTTP {response.status_code}")
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > max_bytes:
                        raise JwksError(f"the JWKS response is larger than {max_bytes} bytes")
                    if time.monotonic() > deadline:
                        raise JwksError(f"the JWKS response took longer than {timeout_s}s")
                return bytes(body)
        except httpx.HTTPError as exc:
            raise JwksError(f"cannot fetch the JWKS: {type(exc).__name__}") from exc
    return fetch


def parse_jwks(data: bytes, algorithms: tuple[str, ...]) -> dict[tuple[str, str], VerifyKey]:
    """Usable keys by (kid, algorithm). Keys without a kid, of other types, too weak, or meant for something
    other than signatures are skipped (logged), not fatal: one odd key must not lock every user out."""
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise JwksError("the JWKS is not JSON") from exc
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise JwksError("the JWKS has no 'keys' list")
    keys: dict[tuple[str, str], VerifyKey] = {}
    for i, entry in enumerate(entries[:MAX_KEYS]):
        usable = _usable(entry, algorithms)
        if isinstance(usable, str):
            log.info("JWKS key #%d skipped: %s", i, usable)
        elif (entry["kid"], usable.algorithm) in keys:
            log.warning("JWKS key #%d skipped: its kid repeats an earlier key's", i)
        else:
            keys[(entry["kid"], usable.algorithm)] = usable
    if len(entries) > MAX_KEYS:
        log.warning("JWKS has %d keys; only the first %d are used", len(entries), MAX_KEYS)
    return keys


def _usable(entry: Any, algorithms: tuple[str, ...]) -> VerifyKey | str:
    """The key, or why it is skipped."""
    if not isinstance(entry, Mapping):
        return "not an object"
    kid, kty = entry.get("kid"), entry.get("kty")
    if not isinstance(kid, str) or not kid:
        return "no kid"
    algorithm = _ALG_OF_KTY.get(kty) if isinstance(kty, str) else None
    if algorithm is None or algorithm not in algorithms:
        return f"key type {kty!r} is not one of the allowed algorithms {', '.join(algorithms)}"
    if entry.get("alg", algorithm) != algorithm:
        return f"its alg {entry.get('alg')!r} does not fit its key type {kty}"
    if entry.get("use", "sig") != "sig" or "verify" not in entry.get("key_ops", ["verify"]):
        return "not a signature key"
    if kty == "EC" and entry.get("crv") != "P-256":
        return f"curve {entry.get('crv')!r} is not P-256 (ES256)"
    if "d" in entry or "k" in entry:  # a private or symmetric key published by mistake: do not use it at all
        return "holds private key material"
    try:
        key = PyJWK(dict(entry), algorithm=algorithm).key
    except (PyJWKError, ValueError, TypeError, KeyError) as exc:
        return f"unreadable ({type(exc).__name__})"
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < MIN_RSA_BITS:
        return f"RSA key of {key.key_size} bits is too short"
    if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        return "not a public key"
    return VerifyKey(algorithm, key)


class JwksCache:
    """Keys by (kid, algorithm); thread-safe (gRPC verifies tokens from its thread pool)."""

    def __init__(self, source: Callable[[], bytes], algorithms: tuple[str, ...], min_refresh_interval_s: float,
                 max_age_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._source = source
        self._algorithms = algorithms
        self._min_interval_s = min_refresh_interval_s
        self._max_age_s = max_age_s
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: dict[tuple[str, str], VerifyKey] = {}
        self._loaded_at: float | None = None
        self._attempted_at: float | None = None
        self.fetches = 0  # attempts, for the tests and for operators' curiosity

    def key(self, kid: str, algorithm: str) -> VerifyKey | None:
        """The key for ``kid`` and ``algorithm``, refreshing the set first when it is stale or lacks the kid."""
        found = self._keys.get((kid, algorithm))
        if found is not None and not self._stale():
            return found
        self._refresh()
        return self._keys.get((kid, algorithm))

    def _stale(self) -> bool:
        return self._loaded_at is None or self._clock() - self._loaded_at > self._max_age_s

    def _refresh(self) -> None:
        with self._lock:  # concurrent callers wait for one fetch rather than each starting their own
            now = self._clock()
            if self._attempted_at is not None and now - self._attempted_at < self._min_interval_s:
                return
            self._attempted_at = now
            self.fetches += 1
            try:
                keys = parse_jwks(self._source(), self._algorithms)
            except JwksError as exc:
                log.warning("JWKS refresh failed (keeping %d known keys): %s", len(self._keys), exc)
                return
            self._keys, self._loaded_at = keys, now
