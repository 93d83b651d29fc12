"""DuckDB, configured once: in-memory, no file or network access, UTC. One cursor per query; every statement
binds the query's parameters itself and can be interrupted by the query's control."""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence

import duckdb
import pyarrow as pa

from core.errors import InvalidQuery
from planner.control import QueryControl

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

    def run(self, sql: str, views: dict[str, pa.Table], params: Sequence[duckdb.Value] = (),
            control: QueryControl | None = None) -> pa.Table:
        """``sql`` over ``views`` with ``params`` bound to ``$1..$n``; a stop of ``control`` interrupts it."""
        cursor = self.cursor()
        control = control or QueryControl()
        try:
            for name, table in views.items():
                cursor.register(name, table)
            with control.guard(cursor.interrupt):
                return cursor.sql(sql, params=list(params) or None).to_arrow_table()
        except duckdb.InterruptException as exc:
            raise control.error() from exc
        except duckdb.Error as exc:
            if control.stopped:
                raise control.error() from exc
            raise InvalidQuery(_clean(str(exc))) from exc
        finally:
            cursor.close()

    def result_schema(self, sql: str, views: dict[str, pa.Schema], params: Sequence[duckdb.Value] = (),
                      control: QueryControl | None = None) -> pa.Schema:
        """The result schema, known before any API call and without running the query: DuckDB binds it (types
        and names), and an empty result of those types gives their exact Arrow form."""
        empty = {name: schema.empty_table() for name, schema in views.items()}
        cursor = self.cursor()
        try:
            for name, table in empty.items():
                cursor.register(name, table)
            relation = cursor.sql(sql, params=list(params) or None)
            names, types = relation.columns, relation.types
        except duckdb.Error as exc:
            raise InvalidQuery(_clean(str(exc))) from exc
        finally:
            cursor.close()
        typed = ", ".join(f"CAST(NULL AS {t}) AS {_quote(n)}" for n, t in zip(names, types, strict=True))
        try:
            schema = self.run(f"SELECT {typed} WHERE false", {}).schema
        except InvalidQuery:  # a type without a SQL spelling (e.g. the NULL type): run it over empty tables
            schema = self.run(sql, empty, params, control).schema
        return _utc_named(schema)


def _utc_named(schema: pa.Schema) -> pa.Schema:
    """DuckDB names the session zone ``Etc/UTC``; the catalog (and the README) say ``UTC``. Same instants, one
    name, so a result's schema equals the table schema GetTables announced (the executor casts, zero-copy)."""
    fields = [f.with_type(pa.timestamp(f.type.unit, tz="UTC"))
              if pa.types.is_timestamp(f.type) and f.type.tz == "Etc/UTC" else f for f in schema]
    return pa.schema(fields, metadata=schema.metadata)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _clean(message: str) -> str:
    """DuckDB's message, with our internal view names turned back into something a user recognises."""
    return re.sub(r"__scan_\d+", "<table>", message).strip()
