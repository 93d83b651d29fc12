"""DuckDB, configured once: in-memory, no file or network access, UTC. One cursor per query."""

from __future__ import annotations

import re
import threading

import duckdb
import pyarrow as pa

from connectors.errors import InvalidQuery

__all__ = ["Duck"]


class Duck:
    def __init__(self, threads: int = 2) -> None:
        self.db = duckdb.connect(":memory:", config={"threads": threads})
        self.db.execute("SET TimeZone = 'UTC'")
        self.db.execute("SET enable_external_access = false")
        self.db.execute("SET lock_configuration = true")
        self._lock = threading.Lock()

    def cursor(self) -> duckdb.DuckDBPyConnection:
        with self._lock:  # cursor creation is not thread-safe on a shared connection
            return self.db.cursor()

    def run(self, sql: str, views: dict[str, pa.Table]) -> pa.Table:
        cursor = self.cursor()
        try:
            for name, table in views.items():
                cursor.register(name, table)
            return cursor.sql(sql).to_arrow_table()
        except duckdb.Error as exc:
            raise InvalidQuery(_clean(str(exc))) from exc
        finally:
            cursor.close()

    def result_schema(self, sql: str, views: dict[str, pa.Schema]) -> pa.Schema:
        """The result schema, known before any API call: the query over empty tables."""
        empty = {name: schema.empty_table() for name, schema in views.items()}
        return self.run(sql, empty).schema


def _clean(message: str) -> str:
    """DuckDB's message, with our internal view names turned back into something a user recognises."""
    return re.sub(r"__scan_\d+", "<table>", message).strip()
