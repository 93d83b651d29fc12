"""Misbehaviour every stand-in can be told to show, as an ASGI layer in front of it (so no app needs code for it):
jitter, a random share of answers failed (``error_rate``: 5xx, or a 429 storm), answers cut short or made not-JSON,
and connections dropped after the headers. Set with ``POST /_sandbox/faults`` (``jitter_s``, ``error_rate``,
``truncate_next``, ``malformed_next``, ``drop_next``) beside the stand-ins' own ``latency_s`` / ``fail_next`` /
``fail_status`` / ``retry_after``, or at start with ``omnisql sandbox --faults`` (sandbox/fault_spec.py)."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from sandbox.common import Faults

__all__ = ["FaultLayer"]

Scope = dict[str, Any]


class FaultLayer:
    def __init__(self, app: Any, faults: Faults) -> None:
        self.app = app
        self.faults = faults
        self.rng = random.Random(7)

    def _take(self, name: str) -> bool:
        left = getattr(self.faults, name, 0)
        if left > 0:
            setattr(self.faults, name, left - 1)
            return True
        return False

    async def _fail(self, send: Any) -> None:
        """An ``error_rate`` hit: the ``fail_status`` (503 unless set; a 429 storm with ``retry_after``)."""
        status = self.faults.fail_status
        body = b'{"message": "' + (b"Server Error" if status >= 500 else b"Too many requests") + b'"}'
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        if self.faults.retry_after:
            headers.append((b"retry-after", str(self.faults.retry_after).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_sandbox"):
            await self.app(scope, receive, send)
            return
        jitter = getattr(self.faults, "jitter_s", 0.0)
        if jitter:
            await asyncio.sleep(self.rng.uniform(0, jitter))
        rate = getattr(self.faults, "error_rate", 0.0)
        if rate and self.rng.random() < rate:
            await self._fail(send)
            return
        mode = next((m for m in ("drop_next", "truncate_next", "malformed_next") if self._take(m)), None)
        if mode is None:
            await self.app(scope, receive, send)
            return
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def capture(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, capture)
        body = b"".join(chunks)
        if mode == "malformed_next":
            body = b"<html><body>502 Bad Gateway</body></html>"
        elif mode == "truncate_next":
            body = body[:max(len(body) // 2, 1)]
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        if mode == "drop_next":  # promise a body, send part of it, then hang up
            await send({"type": "http.response.start", "status": start.get("status", 200),
                        "headers": [*headers, (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body[:len(body) // 2], "more_body": True})
            raise ConnectionResetError("sandbox fault: connection dropped")
        await send({"type": "http.response.start", "status": start.get("status", 200),
                    "headers": [*headers, (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
