"""Prepared statements: server-side handles bound to their principal, holding the SQL and bound parameters.
Idle handles expire so a client that never closes them cannot grow the server's memory."""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field

import pyarrow as pa

from core.errors import InvalidQuery

__all__ = ["PreparedStatement", "StatementStore"]


@dataclass
class PreparedStatement:
    user: str
    sql: str
    parameter_schema: pa.Schema
    params: pa.Table | None = None  # the bound rows (DoPut); each row is one execution
    touched: float = field(default_factory=time.monotonic)


class StatementStore:
    def __init__(self, idle_ttl_s: float = 3600.0, max_statements: int = 10_000) -> None:
        self.items: dict[bytes, PreparedStatement] = {}
        self.lock = threading.Lock()
        self.idle_ttl_s = idle_ttl_s
        self.max_statements = max_statements

    def add(self, statement: PreparedStatement) -> bytes:
        handle = secrets.token_bytes(16)
        with self.lock:
            self._expire()
            if len(self.items) >= self.max_statements:
                raise InvalidQuery("too many open prepared statements; close the ones you no longer use")
            self.items[handle] = statement
        return handle

    def get(self, handle: bytes, user: str) -> PreparedStatement:
        with self.lock:
            statement = self.items.get(handle)
            if statement is None or statement.user != user:
                raise InvalidQuery("unknown or expired prepared statement handle; prepare the statement again")
            statement.touched = time.monotonic()
            return statement

    def close(self, handle: bytes, user: str) -> None:
        with self.lock:
            statement = self.items.get(handle)
            if statement is not None and statement.user == user:
                del self.items[handle]

    def _expire(self) -> None:
        cutoff = time.monotonic() - self.idle_ttl_s
        for handle in [h for h, s in self.items.items() if s.touched < cutoff]:
            del self.items[handle]
