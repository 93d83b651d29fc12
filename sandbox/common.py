"""Machinery shared by the stand-ins: a request log tests can read, a per-credential rate budget,
and control routes (``/_sandbox/...``) that a real API would not have but a test harness needs."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


@dataclass
class RequestLog:
    """Every request the stand-in answered, newest last; bounded so a long benchmark cannot grow it forever."""

    entries: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=200_000))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, request: Request, status: int, body: dict[str, Any] | None = None) -> None:
        entry = {"method": request.method, "path": request.url.path, "query": dict(request.query_params),
                 "status": status, "body": body, "at": time.time()}
        with self.lock:
            self.entries.append(entry)

    def snapshot(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.entries)

    def clear(self) -> None:
        with self.lock:
            self.entries.clear()


@dataclass
class RateBudget:
    """A fixed-window request budget per credential, like GitHub's hourly core limit."""

    limit: int
    window_s: int = 3600
    used: dict[str, int] = field(default_factory=dict)
    reset_at: dict[str, float] = field(default_factory=dict)

    def take(self, credential: str) -> tuple[int, int, int]:
        """Spend one request; returns (remaining, used, reset_epoch). remaining < 0 means refused."""
        now = time.time()
        if now >= self.reset_at.get(credential, 0):
            self.reset_at[credential] = now + self.window_s
            self.used[credential] = 0
        self.used[credential] += 1
        used = self.used[credential]
        return self.limit - used, used, int(self.reset_at[credential])


@dataclass
class Faults:
    """Injected misbehaviour for tests: extra latency, or the next N requests answered with a status."""

    latency_s: float = 0.0
    fail_next: int = 0
    fail_status: int = 503
    retry_after: str | None = None
    jitter_s: float = 0.0  # the rest are applied by sandbox/faults.py's FaultLayer, in front of every stand-in
    truncate_next: int = 0
    malformed_next: int = 0
    drop_next: int = 0
    etags: bool = True  # False: the GitHub stand-in sends no ETag and never answers 304 (like a proxy that strips them)
    error_rate: float = 0.0  # each request answered ``fail_status`` with this probability (FaultLayer)


# What ``POST /_sandbox/faults`` (and ``omnisql sandbox --faults``) may set, and how each value is read.
FAULT_KEYS: dict[str, type] = {"latency_s": float, "jitter_s": float, "fail_next": int, "fail_status": int,
                               "retry_after": str, "truncate_next": int, "malformed_next": int, "drop_next": int,
                               "error_rate": float, "etags": bool}


def apply_faults(faults: Faults, settings: dict[str, Any]) -> None:
    """Set every fault from ``settings``; one left out is cleared (an empty object clears them all)."""
    fresh = Faults()
    for key in FAULT_KEYS:
        setattr(faults, key, settings[key] if key in settings and settings[key] is not None
                else getattr(fresh, key))


def control_routes(log: RequestLog, faults: Faults) -> list[Route]:
    """``GET/DELETE /_sandbox/requests`` and ``POST /_sandbox/faults`` for tests and benchmarks."""

    async def requests(request: Request) -> Response:
        if request.method == "DELETE":
            log.clear()
            return JSONResponse({"cleared": True})
        return JSONResponse(log.snapshot())

    async def set_faults(request: Request) -> Response:
        body = await request.json()
        apply_faults(faults, {k: (v if k == "retry_after" or v is None else FAULT_KEYS[k](v))
                              for k, v in body.items() if k in FAULT_KEYS})
        return JSONResponse({"latency_s": faults.latency_s, "fail_next": faults.fail_next})

    return [Route("/_sandbox/requests", requests, methods=["GET", "DELETE"]),
            Route("/_sandbox/faults", set_faults, methods=["POST"])]
