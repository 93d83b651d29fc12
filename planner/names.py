"""The names DuckDB gives a query's unaliased expression columns, as the user wrote the query.

The final SQL is the query's tree written back by sqlglot, which spells some functions its own way
(``list(x)`` → ``ARRAY_AGG(x)``, ``string_agg`` → ``LISTAGG``, ``date_trunc('month', t)`` →
``DATE_TRUNC('MONTH', t)``, ``if(...)`` → ``CASE ...``); DuckDB names an unaliased expression after its text, so
the answer's column was ``listagg(status, ',')`` where DuckDB (and every other engine run on the query as written)
says ``string_agg(status, ',')``. ``WrittenNames`` binds the query as written against empty tables of the
catalog's schemas (binding only: nothing runs, no function is called), and the planner aliases those columns of
the final SQL with the names found there."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import duckdb
from sqlglot import exp

from planner.catalog import Catalog

__all__ = ["WrittenNames", "unnamed_outputs"]


class WrittenNames:
    """One in-memory DuckDB holding an empty table per catalog table (built on first use)."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._db: duckdb.DuckDBPyConnection | None = None
        self._lock = threading.Lock()

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        """A cursor of the connection (built on first use); creating one is not thread-safe, hence the lock."""
        with self._lock:
            if self._db is None:
                db = duckdb.connect(":memory:", config={"enable_external_access": False})  # binds, never reads
                for (schema, name), spec in self.catalog.tables.items():
                    try:  # a schema DuckDB reserves (information_schema, system): its own tables stand in
                        db.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
                        db.register("__empty", spec.arrow_schema.empty_table())
                        db.execute(f'CREATE TABLE "{schema}"."{name}" AS SELECT * FROM __empty')
                    except duckdb.Error:
                        pass
                    finally:
                        db.unregister("__empty")
                self._db = db
            return self._db.cursor()

    def names(self, sql: str, params: Sequence[duckdb.Value], default_schema: str | None) -> list[str] | None:
        """The column names of ``sql`` as DuckDB binds it as written, or None when it does not bind there."""
        try:
            cursor = self._cursor()
        except duckdb.Error:
            return None
        try:
            schemas = [default_schema.lower()] if default_schema else []
            schemas += [s for s in self.catalog.schemas if s not in schemas]
            cursor.execute("SET search_path = '" + ",".join(s for s in schemas if s.isidentifier()) + "'")
            return list(cursor.sql(sql, params=list(params) or None).columns)
        except (duckdb.Error, ValueError, TypeError, RuntimeError):
            return None
        finally:
            cursor.close()


def unnamed_outputs(tree: exp.Expr) -> tuple[exp.Select, list[int]] | None:
    """The SELECT whose list names the result (the first of a set operation, the subquery under a bare ``SELECT *``)
    and the positions of its unaliased expressions (not columns, not literals), when each of its items is one
    output column; None otherwise."""
    select = tree
    while True:
        while isinstance(select, exp.SetOperation | exp.Subquery):
            select = select.this
        if not isinstance(select, exp.Select):
            return None
        from_ = select.args.get("from_")
        if len(select.expressions) == 1 and isinstance(select.expressions[0], exp.Star) \
                and not any(select.expressions[0].args.values()) and not select.args.get("joins") \
                and from_ is not None and isinstance(from_.this, exp.Subquery):
            select = from_.this  # SELECT * FROM (q) s ...: q's list names the result (BI tools' wrappers)
            continue
        break
    positions = []
    for i, item in enumerate(select.expressions):
        bare = item.unalias()
        if isinstance(bare, exp.Star) or (isinstance(bare, exp.Column) and isinstance(bare.this, exp.Star)) \
                or item.find(exp.Columns) is not None:  # a star or COLUMNS(...) is any number of columns
            return None
        if not isinstance(item, exp.Alias | exp.Column | exp.Literal):
            positions.append(i)
    return select, positions
