"""One query's deadline and cancellation, shared by planning, fetching and DuckDB.

A client that cancels (or whose gRPC deadline passes) and the server's own ``query_deadline_s`` end the query
the same way: every registered stopper runs once — the fetch tasks are cancelled (so no further API calls are
made) and a running DuckDB statement is interrupted (so the CPU is free within moments, not when the
statement would have finished).
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import threading
import time
from collections.abc import Callable, Iterator

from core.errors import OmniSQLError, QueryCancelled, QueryTimeout

__all__ = ["QueryControl"]

Stopper = Callable[[], object]


class _Watchdog:
    """One daemon thread that fires deadlines (a heap), instead of a timer thread per statement: starting a thread
    costs more than a trivial query's whole DuckDB run."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Stopper]] = []
        self._live: set[int] = set()  # handles neither fired nor cancelled
        self._ids = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def at(self, when: float, fire: Stopper) -> int:
        """Call ``fire`` at ``time.monotonic() >= when`` unless ``cancel``led first; returns the handle."""
        with self._wake:
            handle = next(self._ids)
            heapq.heappush(self._heap, (when, handle, fire))
            self._live.add(handle)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="omnisql-deadlines", daemon=True)
                self._thread.start()
            if self._heap[0][1] == handle:  # only an earlier wake-up needs the thread now (one switch per query
                self._wake.notify()  # otherwise: deadlines arrive in order, so this is rare)
            return handle

    def cancel(self, handle: int) -> None:
        with self._wake:
            self._live.discard(handle)
            if len(self._heap) > 2 * len(self._live) + 64:  # many cancelled: rebuild instead of waiting them out
                self._heap = [entry for entry in self._heap if entry[1] in self._live]
                heapq.heapify(self._heap)

    def _run(self) -> None:
        while True:
            with self._wake:
                while self._heap and self._heap[0][1] not in self._live:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._wake.wait()
                    continue
                when, handle, fire = self._heap[0]
                wait = when - time.monotonic()
                if wait > 0:
                    self._wake.wait(wait)
                    continue
                heapq.heappop(self._heap)
                self._live.discard(handle)
            with contextlib.suppress(Exception):
                fire()


_WATCHDOG = _Watchdog()


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
        timer = _WATCHDOG.at(self.deadline, self._expire) if self.deadline is not None else None
        try:
            yield
        finally:
            if timer is not None:
                _WATCHDOG.cancel(timer)
            self._forget(stop)

    def _expire(self) -> None:
        self.cancel("deadline")

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
