"""DuckDB, configured once: in-memory, bounded memory and never a spill to disk, no file or network access, no
extension loading, UTC. One cursor per query; every statement binds the query's parameters itself, can be
interrupted by the query's control, and streams its result under a byte cap."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator, Sequence

import duckdb
import pyarrow as pa

from core.errors import InvalidQuery, ResourceExhausted
from core.sizes import format_size
from planner.control import QueryControl

__all__ = ["Duck"]


DEFAULT_MEMORY_FRACTION = 0.25  # of physical RAM, for all queries together
DEFAULT_MAX_RESULT_BYTES = 512 * 1024 * 1024
RESULT_BATCH_ROWS = 64 * 1024  # rows per result batch (Flight frames of a few MB for typical widths)


def default_memory_limit() -> int:
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = 8 * 1024**3
    return int(total * DEFAULT_MEMORY_FRACTION)


class Duck:
    """``memory_limit``: bytes DuckDB may use for all queries together (source data never spills to disk: a
    query that needs more fails with RESOURCE_EXHAUSTED). ``max_result_bytes``: the largest result one query
    may return."""

    def __init__(self, threads: int = 2, memory_limit: int | None = None,
                 max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES) -> None:
        self.memory_limit = memory_limit or default_memory_limit()
        self.max_result_bytes = max_result_bytes
        self.db = duckdb.connect(":memory:", config={
            "threads": threads, "memory_limit": f"{self.memory_limit}B", "temp_directory": "",
            "max_temp_directory_size": "0B", "autoinstall_known_extensions": False,
            "autoload_known_extensions": False, "allow_community_extensions": False})
        self.db.execute("SET GLOBAL TimeZone = 'UTC'")  # GLOBAL: every cursor (one per query) inherits it
        self.db.execute("SET enable_external_access = false")
        self.db.execute("SET lock_configuration = true")
        self._lock = threading.Lock()
        self._arrow_types: dict[str, pa.DataType] = {}  # DuckDB type (as SQL) → its Arrow form in results

    def cursor(self) -> duckdb.DuckDBPyConnection:
        with self._lock:  # cursor creation is not thread-safe on a shared connection
            return self.db.cursor()

    def run(self, sql: str, views: dict[str, pa.Table], params: Sequence[duckdb.Value] = (),
            control: QueryControl | None = None) -> pa.Table:
        """``sql`` over ``views`` with ``params`` bound to ``$1..$n``; a stop of ``control`` interrupts it."""
        return self.stream(sql, views, params, control).read_all()

    def stream(self, sql: str, views: dict[str, pa.Table], params: Sequence[duckdb.Value] = (),
               control: QueryControl | None = None) -> pa.RecordBatchReader:
        """Like ``run``, as DuckDB produces it: record batches, refused as soon as they pass
        ``max_result_bytes`` (never held in full). Binding errors raise here; the cursor (and the views) live
        until the reader is exhausted or closed; a stop of ``control`` interrupts DuckDB inside a batch."""
        batches = self._batches(sql, views, params, control or QueryControl())
        schema = next(batches)
        assert isinstance(schema, pa.Schema)
        return pa.RecordBatchReader.from_batches(schema, batches)

    def _batches(self, sql: str, views: dict[str, pa.Table], params: Sequence[duckdb.Value],
                 control: QueryControl) -> Iterator[pa.Schema | pa.RecordBatch]:
        """The schema, then the batches (``stream``)."""
        cursor = self.cursor()
        control = control or QueryControl()
        try:
            for name, table in views.items():
                cursor.register(name, table)
            size = 0
            with control.guard(cursor.interrupt):
                reader = cursor.sql(sql, params=list(params) or None).to_arrow_reader(RESULT_BATCH_ROWS)
                yield reader.schema
                for batch in reader:
                    size += batch.nbytes
                    self.check_result_size(size)
                    yield batch
        except duckdb.InterruptException as exc:
            raise control.error() from exc
        except duckdb.OutOfMemoryException as exc:
            raise ResourceExhausted(
                f"the query needs more memory than OmniSQL's DuckDB may use ({format_size(self.memory_limit)}, "
                "duckdb_memory_limit; nothing spills to disk): filter or aggregate more, or select fewer "
                "columns") from exc
        except duckdb.Error as exc:
            if control.stopped:
                raise control.error() from exc
            raise InvalidQuery(_clean(str(exc))) from exc
        finally:
            cursor.close()

    def check_result_size(self, size: int) -> None:
        """Refuse a result of ``size`` bytes (so far) beyond ``max_result_bytes``."""
        if size > self.max_result_bytes:
            raise ResourceExhausted(
                f"the result is larger than {format_size(self.max_result_bytes)} (max_result_bytes); add a LIMIT, "
                "filter or aggregate, or select fewer columns")

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
        try:
            return pa.schema([pa.field(n, self._arrow_type(str(t))) for n, t in zip(names, types, strict=True)])
        except InvalidQuery:  # a type without a SQL spelling (e.g. the NULL type): run it over empty tables
            return self.run(sql, empty, params, control).schema

    def _arrow_type(self, duck_type: str) -> pa.DataType:
        """The Arrow type DuckDB gives a result column of this type, learned once per type by running
        ``SELECT CAST(NULL AS type)`` (a dict lookup after that: schema inference costs one bind)."""
        known = self._arrow_types.get(duck_type)
        if known is None:
            known = self.run(f"SELECT CAST(NULL AS {duck_type}) AS t WHERE false", {}).schema.field(0).type
            if len(self._arrow_types) < 4096:
                self._arrow_types[duck_type] = known
        return known


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _clean(message: str) -> str:
    """DuckDB's message, with our internal view names turned back into something a user recognises."""
    return re.sub(r"__scan_\d+", "<table>", message).strip()
