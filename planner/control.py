"""One query's deadline and cancellation, shared by planning, fetching and DuckDB.

A client that cancels (or whose gRPC deadline passes) and the server's own ``query_deadline_s`` end the query
the same way: every registered stopper runs once — the fetch tasks are cancelled (so no further API calls are
made) and a running DuckDB statement is interrupted (so the CPU is free within moments, not when the
statement would have finished).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator

from core.errors import OmniSQLError, QueryCancelled, QueryTimeout

__all__ = ["QueryControl"]

Stopper = Callable[[], object]


class QueryControl:
    def __init__(self, deadline_s: float | None = None) -> None:
        self.deadline_s = deadline_s
        self.deadline = time.monotonic() + deadline_s if deadline_s is not None else None
        self.reason: str | None = None  # "cancelled" or "deadline" once stopped
        self._stoppers: list[Stopper] = []
        self._lock = threading.Lock()

    @property
    def stopped(self) -> bool:
        return self.reason is not None

    def remaining(self) -> float | None:
        """Seconds left before the deadline (never negative), or None without one."""
        return None if self.deadline is None else max(self.deadline - time.monotonic(), 0.0)

    def cancel(self, reason: str = "cancelled") -> None:
        """Stop the query (idempotent): every registered stopper runs once, now."""
        with self._lock:
            if self.reason is not None:
                return
            self.reason = reason
            stoppers, self._stoppers = self._stoppers, []
        for stop in stoppers:
            with contextlib.suppress(Exception):  # a stopper of a finished task may fail; nothing to undo
                stop()

    def on_stop(self, stop: Stopper) -> None:
        """Run ``stop`` when the query is stopped (at once if it already is)."""
        with self._lock:
            if self.reason is None:
                self._stoppers.append(stop)
                return
        stop()

    def _forget(self, stop: Stopper) -> None:
        with self._lock, contextlib.suppress(ValueError):
            self._stoppers.remove(stop)

    @contextlib.contextmanager
    def guard(self, stop: Stopper) -> Iterator[None]:
        """While the block runs, a cancel or the deadline calls ``stop`` (e.g. DuckDB's interrupt)."""
        self.check()
        self.on_stop(stop)
        timer = None
        remaining = self.remaining()
        if remaining is not None:
            timer = threading.Timer(remaining, self.cancel, args=("deadline",))
            timer.daemon = True
            timer.start()
        try:
            yield
        finally:
            if timer is not None:
                timer.cancel()
            self._forget(stop)

    def check(self) -> None:
        """Raise the stop's error if the query was stopped or its deadline has passed."""
        if self.reason is None and self.deadline is not None and time.monotonic() >= self.deadline:
            self.cancel("deadline")
        if self.reason is not None:
            raise self.error()

    def error(self) -> OmniSQLError:
        if self.reason == "deadline":
            return QueryTimeout(f"the query ran past its deadline of {self.deadline_s:g} s (query_deadline_s) and "
                                "was stopped; narrow the query, or ask the operator for a longer deadline")
        return QueryCancelled("the client cancelled the query or its deadline passed; the query was stopped")
