"""Prepared statements: server-side handles bound to their principal, holding the SQL and bound parameters.

The store is bounded per principal, never globally: idle handles expire, and a principal holds at most
``max_per_user`` (opening one more closes its own least recently used). A client that never closes its handles
so only ever evicts its own, and cannot lock other users out."""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

import pyarrow as pa

from core.errors import EntitlementDenied, InvalidQuery, ResourceExhausted
from core.sizes import format_size

__all__ = ["PreparedStatement", "StatementStore"]

log = logging.getLogger("omnisql.flight")


@dataclass
class PreparedStatement:
    user: str
    sql: str
    parameter_schema: pa.Schema
    params: pa.Table | None = None  # the bound rows (DoPut); each row is one execution
    touched: float = field(default_factory=time.monotonic)


class StatementStore:
    def __init__(self, idle_ttl_s: float = 3600.0, max_per_user: int = 100,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.items: OrderedDict[bytes, PreparedStatement] = OrderedDict()  # least recently used first
        self.by_user: dict[str, OrderedDict[bytes, None]] = {}  # the same order, per user
        self.lock = threading.Lock()
        self.idle_ttl_s = idle_ttl_s
        self.max_per_user = max_per_user
        self._clock = clock

    def __len__(self) -> int:
        with self.lock:
            return len(self.items)

    def count(self, user: str) -> int:
        with self.lock:
            return len(self.by_user.get(user, ()))

    def add(self, statement: PreparedStatement) -> bytes:
        handle = secrets.token_bytes(16)
        with self.lock:
            now = self._clock()
            self._expire(now)
            while len(mine := self.by_user.get(statement.user, ())) >= self.max_per_user:
                log.info("closing the least recently used prepared statement of %s: it holds "
                         "max_prepared_statements_per_principal = %d", statement.user, self.max_per_user)
                self._drop(next(iter(mine)))
            statement.touched = now
            self.items[handle] = statement
            self.by_user.setdefault(statement.user, OrderedDict())[handle] = None
        return handle

    def get(self, handle: bytes, user: str) -> PreparedStatement:
        with self.lock:
            return self._lookup(handle, user)

    def bind(self, handle: bytes, user: str, params: pa.Table | None, max_bytes: int) -> None:
        """Bind ``params`` (DoPut) to the statement, refused when the principal's open statements would hold
        more than ``max_bytes`` of bound parameters together: each upload is bounded, and so is their sum."""
        with self.lock:
            statement = self._lookup(handle, user)
            held = sum(bound.nbytes for h in self.by_user[user] if h != handle
                       and (bound := self.items[h].params) is not None)
            if params is not None and held + params.nbytes > max_bytes:
                raise ResourceExhausted(
                    f"your open prepared statements would hold more than {format_size(max_bytes)} of bound "
                    "parameters (4 x max_upload_bytes); close the statements you no longer use")
            statement.params = params

    def _lookup(self, handle: bytes, user: str) -> PreparedStatement:
        """The statement (marked used), under the lock."""
        self._expire(self._clock())
        statement = self.items.get(handle)
        if statement is None:
            raise InvalidQuery("unknown or expired prepared statement handle; prepare the statement again")
        if statement.user != user:  # handles are 128-bit random: saying so reveals nothing guessable
            raise EntitlementDenied("the prepared statement belongs to another principal; prepare it with "
                                    "your own token")
        statement.touched = self._clock()
        self.items.move_to_end(handle)
        self.by_user[user].move_to_end(handle)
        return statement

    def close(self, handle: bytes, user: str) -> None:
        with self.lock:
            statement = self.items.get(handle)
            if statement is not None and statement.user == user:
                self._drop(handle)

    def _expire(self, now: float) -> None:
        cutoff = now - self.idle_ttl_s
        while self.items:
            handle, statement = next(iter(self.items.items()))
            if statement.touched >= cutoff:
                return
            self._drop(handle)

    def _drop(self, handle: bytes) -> None:
        statement = self.items.pop(handle)
        mine = self.by_user[statement.user]
        del mine[handle]
        if not mine:
            del self.by_user[statement.user]
