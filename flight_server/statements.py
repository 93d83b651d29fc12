"""Prepared statements: server-side handles bound to their principal, holding the SQL and bound parameters.
Idle handles expire so a client that never closes them cannot grow the server's memory."""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field

import pyarrow as pa
from sqlglot import exp

from core.errors import InvalidQuery
from planner.catalog import Catalog
from planner.parameters import parameter_indexes
from planner.parse import parse_query
from planner.planner import split_explain

__all__ = ["PreparedStatement", "StatementStore", "parameter_schema"]


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


def parameter_schema(sql: str, catalog: Catalog) -> pa.Schema:
    """One field per parameter number (``$1`` first), typed from the column it is first compared with (int64 in
    LIMIT/OFFSET, utf8 when unknown), for JDBC and clients that type their values from it."""
    tree = parse_query(split_explain(sql)[1])
    columns = {c.name: c.type for spec in catalog.tables.values() for c in spec.columns}
    types: dict[int, pa.DataType | None] = {}
    for slot in tree.find_all(exp.Placeholder, exp.Parameter):
        number = int(slot.name) if slot.name.isdigit() else 0
        parent = slot.parent
        if isinstance(parent, exp.Limit | exp.Offset):
            typ: pa.DataType | None = pa.int64()
        elif isinstance(parent, exp.In):
            typ = columns.get(parent.this.name) if isinstance(parent.this, exp.Column) else None
        elif isinstance(parent, exp.Binary):
            other = parent.left if parent.right is slot else parent.right
            typ = columns.get(other.name) if isinstance(other, exp.Column) else None
        else:
            typ = None
        if types.get(number) is None:
            types[number] = typ
    count = max(parameter_indexes(tree), default=0)
    return pa.schema([pa.field(f"parameter_{n}", types.get(n) or pa.string()) for n in range(1, count + 1)])
