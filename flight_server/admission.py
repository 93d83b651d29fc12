"""Fairness: how many queries run at once, per principal and in total.

A query holds one slot while it is planned (GetFlightInfo, GetSchema, CreatePreparedStatement) and while it runs
and streams its result (DoGet). Over a cap the call is refused at once with RESOURCE_EXHAUSTED naming the limit:
never queued, because a queue lets one principal's burst delay everyone behind it, and a refused client knows
to back off."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from core.errors import ResourceExhausted
from security.principals import Principal

__all__ = ["Admission"]


class Admission:
    def __init__(self, max_total: int, max_per_principal: int) -> None:
        self.max_total = max_total
        self.max_per_principal = max_per_principal
        self._lock = threading.Lock()
        self._running: Counter[tuple[str, str]] = Counter()
        self.total = 0

    def running(self, principal: Principal) -> int:
        with self._lock:
            return self._running[(principal.tenant, principal.user)]

    @contextmanager
    def slot(self, principal: Principal) -> Iterator[None]:
        """Hold one query slot of ``principal`` for the duration of the block, or refuse at once."""
        key = (principal.tenant, principal.user)
        with self._lock:
            if self._running[key] >= self.max_per_principal:
                raise ResourceExhausted(
                    f"{principal.user} already runs {self._running[key]} queries, the most one principal may run at "
                    f"once (max_concurrent_queries_per_principal = {self.max_per_principal}); wait for one to "
                    "finish, or cancel one you no longer need, and retry")
            if self.total >= self.max_total:
                raise ResourceExhausted(
                    f"the server already runs {self.total} queries, the most it runs at once (max_concurrent_queries "
                    f"= {self.max_total}); retry in a moment")
            self._running[key] += 1
            self.total += 1
        try:
            yield
        finally:
            with self._lock:
                self.total -= 1
                self._running[key] -= 1
                if not self._running[key]:
                    del self._running[key]
