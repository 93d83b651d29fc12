"""One HMAC helper for everything the server signs (tickets, session tokens). Each use names its domain and
signs under a key derived for that domain, so a value signed for one purpose never verifies as another, even
though every replica shares one secret."""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["Signer"]


class Signer:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret
        self._keys: dict[str, bytes] = {}

    def _key(self, domain: str) -> bytes:
        key = self._keys.get(domain)
        if key is None:
            key = self._keys[domain] = hmac.new(self._secret, b"omnisql/" + domain.encode(), hashlib.sha256).digest()
        return key

    def sign(self, domain: str, payload: bytes) -> bytes:
        """The 32-byte HMAC-SHA256 of ``payload`` in ``domain``."""
        return hmac.new(self._key(domain), payload, hashlib.sha256).digest()

    def verify(self, domain: str, payload: bytes, mac: bytes) -> bool:
        """Constant-time check that ``mac`` signs ``payload`` in ``domain``."""
        return hmac.compare_digest(mac, self.sign(domain, payload))
