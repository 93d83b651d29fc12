"""One call per key per scan: a per-row lookup that many pages (or repositories, in parallel) need is fetched
once and shared. The first caller fetches inside its own task (so cancelling the scan cancels it); the others
wait for its result, or its error."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["Memo"]


class Memo:
    def __init__(self) -> None:
        self._results: dict[Any, asyncio.Future[Any]] = {}

    async def get(self, key: Any, fetch: Callable[[], Awaitable[Any]]) -> Any:
        future = self._results.get(key)
        if future is not None:
            return await asyncio.shield(future)  # a waiter's cancellation must not cancel the shared result
        future = asyncio.get_running_loop().create_future()
        self._results[key] = future
        try:
            value = await fetch()
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters get it; no "never retrieved" warning when there are none
            raise
        future.set_result(value)
        return value
