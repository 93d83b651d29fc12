"""The CLI's progress line: one line on stderr, redrawn in place while a query runs, only when stderr is a terminal
(quiet otherwise). It shows the elapsed time, the API calls the plan estimates and, while the server fetches, the
API calls made so far per source — asked of the server (``omnisql.QueryProgress``, flight_server/progress.py)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from clients.flight_rpc import FlightRpc

__all__ = ["POLL_S", "PROGRESS_DELAY_S", "Progress", "watch_progress"]

PROGRESS_DELAY_S = 0.3  # queries that finish sooner show no progress line at all
POLL_S = 0.5  # how often the server is asked while a query runs (one tiny action; nothing when not a terminal)


def _columns(stream: TextIO) -> int:
    """The width of the terminal ``stream`` draws on (80 when it cannot be asked)."""
    try:
        return os.get_terminal_size(stream.fileno()).columns or 80
    except (OSError, ValueError, AttributeError):
        return 80


class Progress:
    """The line's state, set by the call's thread and the poller, drawn by the main thread (``tick``)."""

    def __init__(self, stream: TextIO, enabled: bool) -> None:
        self.stream, self.enabled = stream, enabled
        self.started = time.monotonic()
        self.phase = "planning"
        self.estimate: int | None = None
        self.api_calls: dict[str, int] = {}  # per connector so far, as the server last said
        self.rows = 0
        self.shown = False
        self.stopped = False
        self._lock = threading.Lock()

    def set(self, phase: str, estimate: int | None = None, rows: int | None = None) -> None:
        with self._lock:
            self.phase = phase
            if estimate is not None:
                self.estimate = estimate
            if rows is not None:
                self.rows = rows

    def set_api_calls(self, api_calls: dict[str, int]) -> None:
        with self._lock:
            self.api_calls = dict(api_calls)

    def text(self) -> str:
        elapsed = time.monotonic() - self.started
        parts = [f"{self.phase} {elapsed:.1f} s"]
        if self.estimate is not None:
            parts.append(f"plan: ~{self.estimate} API call{'s' if self.estimate != 1 else ''}")
        if self.api_calls:
            parts.append("so far: " + ", ".join(f"{name} {n}" for name, n in self.api_calls.items()))
        if self.rows:
            parts.append(f"{self.rows:,} rows")
        return "omnisql: " + " · ".join(parts) + " · Ctrl-C cancels"

    def tick(self) -> None:
        with self._lock:
            if not self.enabled or self.stopped or time.monotonic() - self.started < PROGRESS_DELAY_S:
                return
            line = self.text()
            # one terminal line at most: a wrapped line would not be cleared by \r and ESC [K, and piles up
            columns = _columns(self.stream)
            if len(line) >= columns:
                line = line[:max(0, columns - 2)] + "…"
            self.stream.write("\r\x1b[K" + line)
            self.stream.flush()
            self.shown = True

    def stop(self) -> None:
        """Clear the line for good (before the result is printed, or an error)."""
        with self._lock:
            if self.shown and not self.stopped:
                self.stream.write("\r\x1b[K")
                self.stream.flush()
            self.stopped = True


@contextmanager
def watch_progress(rpc: FlightRpc, progress: Progress) -> Iterator[None]:
    """While the block runs (DoGet fetching), ask the server every ``POLL_S`` how far our query is. A server
    that cannot say (an older one) is asked once; the line then shows the estimate alone."""
    if not progress.enabled:
        yield
        return
    done = threading.Event()

    def poll() -> None:
        while not done.wait(POLL_S):
            answer = rpc.progress(timeout_s=POLL_S * 4)
            if not answer:
                return
            calls = answer.get("api_calls")
            if answer.get("running") and isinstance(calls, dict):
                progress.set_api_calls({str(k): int(v) for k, v in calls.items() if isinstance(v, int)})

    poller = threading.Thread(target=poll, name="omnisql-progress", daemon=True)
    poller.start()
    try:
        yield
    finally:
        done.set()
