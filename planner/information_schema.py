"""Schema discovery in plain SQL, for clients that cannot call the Flight SQL metadata RPCs (JDBC consoles, BI
tools' SQL editors, a person typing): ``information_schema.schemata`` / ``.tables`` / ``.columns``, and the
statements ``SHOW TABLES``, ``SHOW SCHEMAS``, ``DESCRIBE <table>`` rewritten into queries over them.

Each principal sees the catalog as the policy shows it to them (denied tables and columns absent, masked columns
in their masked type), looked up by the query's security scope: principals who share a scope see alike."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence

import pyarrow as pa
import sqlglot
from sqlglot import exp

from core.errors import InvalidQuery
from core.sqltypes import sql_type_name
from core.types import ColumnSpec, ScanRequest, ScanStats, TableSpec
from planner.access import INFORMATION_SCHEMA
from planner.catalog import CATALOG_NAME, Catalog

__all__ = ["DESCRIBE_TARGET", "INFORMATION_SCHEMA", "InformationSchemaConnector", "describe_listed", "describe_query",
           "rewrite_discovery"]

DESCRIBE_TARGET = "omnisql_describe"  # meta on a rewritten DESCRIBE: (schema or None, table) it names


def _spec(name: str, description: str, columns: Sequence[tuple[str, pa.DataType, str]]) -> TableSpec:
    return TableSpec(schema_name=INFORMATION_SCHEMA, name=name, row_estimate=100, limit_pushdown=False,
                     cacheable=False, description=description,
                     columns=tuple(ColumnSpec(n, t, d) for n, t, d in columns))


SCHEMATA = _spec("schemata", "The schemas you can read (one per connector)", (
    ("catalog_name", pa.string(), "Always omnisql"), ("schema_name", pa.string(), "Schema (connector) name")))
TABLES = _spec("tables", "The tables you can read", (
    ("table_catalog", pa.string(), "Always omnisql"), ("table_schema", pa.string(), "Schema (connector)"),
    ("table_name", pa.string(), "Table"), ("table_type", pa.string(), "Always BASE TABLE"),
    ("table_comment", pa.string(), "What the table holds")))
COLUMNS = _spec("columns", "The columns you can read, as you see them (masked columns in their masked type)", (
    ("table_catalog", pa.string(), "Always omnisql"), ("table_schema", pa.string(), "Schema (connector)"),
    ("table_name", pa.string(), "Table"), ("column_name", pa.string(), "Column"),
    ("ordinal_position", pa.int32(), "Position in the table, from 1"),
    ("is_nullable", pa.string(), "YES or NO"), ("data_type", pa.string(), "SQL type"),
    ("is_primary_key", pa.bool_(), "Part of the table's primary key"),
    ("pushdown", pa.string(), "Operators the source API filters by (exact or inexact), or null"),
    ("required_filter", pa.bool_(), "Queries must filter this column (the API cannot list without it)"),
    ("column_comment", pa.string(), "What the column holds")))


class InformationSchemaConnector:
    """Implements ``core.types.Connector`` for ``information_schema``: rows from the asking scope's catalog."""

    name = INFORMATION_SCHEMA

    def __init__(self, catalog_for_scope: Callable[[str], Catalog]) -> None:
        self.catalog_for_scope = catalog_for_scope

    async def open(self) -> None:
        return None

    async def aclose(self) -> None:
        return None

    def tables(self) -> Sequence[TableSpec]:
        return (SCHEMATA, TABLES, COLUMNS)

    async def scan(self, request: ScanRequest, stats: ScanStats) -> AsyncIterator[pa.RecordBatch]:
        specs = sorted(self.catalog_for_scope(request.scope).tables.values(),
                       key=lambda s: (s.schema_name, s.name))
        spec, rows = {SCHEMATA.name: (SCHEMATA, _schemata), TABLES.name: (TABLES, _tables),
                      COLUMNS.name: (COLUMNS, _columns)}[request.table]
        full = pa.Table.from_pylist(rows(specs), schema=spec.arrow_schema)
        stats.rows += full.num_rows
        stats.listed += full.num_rows
        out = spec.schema_for(request.columns)
        for batch in full.select(out.names).to_batches() or [pa.RecordBatch.from_pylist([], schema=out)]:
            yield batch


def _schemata(specs: Sequence[TableSpec]) -> list[dict[str, object]]:
    return [{"catalog_name": CATALOG_NAME, "schema_name": s} for s in dict.fromkeys(s.schema_name for s in specs)]


def _tables(specs: Sequence[TableSpec]) -> list[dict[str, object]]:
    return [{"table_catalog": CATALOG_NAME, "table_schema": s.schema_name, "table_name": s.name,
             "table_type": "BASE TABLE", "table_comment": s.description or None} for s in specs]


def _columns(specs: Sequence[TableSpec]) -> list[dict[str, object]]:
    return [{"table_catalog": CATALOG_NAME, "table_schema": s.schema_name, "table_name": s.name,
             "column_name": c.name, "ordinal_position": i, "is_nullable": "YES" if c.nullable else "NO",
             "data_type": sql_type_name(c.type), "is_primary_key": c.name in s.primary_key,
             "pushdown": _pushdown(c), "required_filter": c.filter is not None and c.filter.required,
             "column_comment": c.description or None}
            for s in specs for i, c in enumerate(s.columns, start=1)]


def _pushdown(column: ColumnSpec) -> str | None:
    cap = column.filter
    if cap is None or not cap.ops:
        return None
    ops = ", ".join(sorted(cap.ops))
    return f"{ops} [{'exact' if cap.exact else 'inexact'}]"


_COLUMNS_OF = ("SELECT column_name, data_type AS column_type, is_nullable AS \"null\", is_primary_key AS \"key\", "
               "pushdown, required_filter, column_comment AS description FROM information_schema.columns")


def rewrite_discovery(statement: exp.Expr) -> exp.Expr | None:
    """``SHOW TABLES [FROM s]``, ``SHOW ALL TABLES``, ``SHOW SCHEMAS``/``DATABASES``, ``DESCRIBE [TABLE] t``,
    ``SHOW t`` and ``SHOW COLUMNS FROM t`` as SELECTs over ``information_schema``; None for anything else."""
    if isinstance(statement, exp.Show):
        kind = statement.name.upper()
        if kind in ("TABLES", "ALL TABLES"):
            where = ""
            source = statement.args.get("from_") or statement.args.get("from")
            if isinstance(source, exp.Expr) and source.name:
                where = f" WHERE table_schema = {_literal(source.name.lower())}"
            return _select("SELECT table_schema AS \"schema\", table_name AS name, table_comment AS description "
                           f"FROM information_schema.tables{where} ORDER BY 1, 2")
        return None
    if isinstance(statement, exp.Describe):
        if isinstance(statement.this, exp.Table):
            return _describe(statement.this)
        raise InvalidQuery("DESCRIBE takes a table (DESCRIBE jira.issues); for a query's result columns, prepare "
                           "it (ADBC: adbc_prepare / execute_schema, Flight SQL: GetSchema)")
    if isinstance(statement, exp.Command) and statement.name.upper() == "SHOW":
        rest = statement.args.get("expression")
        words = (rest.name if isinstance(rest, exp.Expr) else str(rest or "")).split()
        if [w.upper() for w in words] in (["SCHEMAS"], ["DATABASES"]):
            return _select("SELECT schema_name AS \"schema\" FROM information_schema.schemata ORDER BY 1")
        if len(words) == 3 and [w.upper() for w in words[:2]] == ["COLUMNS", "FROM"]:
            words = words[2:]
        if len(words) == 1:
            try:
                table = sqlglot.parse_one(words[0], into=exp.Table, dialect="duckdb")
            except sqlglot.errors.ParseError:
                return None
            return _describe(table)
    return None


def _describe(table: exp.Table) -> exp.Expr:
    if table.catalog and table.catalog.lower() != CATALOG_NAME:
        raise InvalidQuery(f"unknown catalog {table.catalog}; the only catalog is {CATALOG_NAME}")
    return describe_query(table.db.lower() or None, table.name.lower())


def describe_query(schema: str | None, table: str) -> exp.Expr:
    """The columns of one table; the planner resolves an unqualified name (and refuses an unknown one) through
    the ``DESCRIBE_TARGET`` it finds in the tree's meta, then asks again with the schema."""
    where = f"table_name = {_literal(table)}" + (f" AND table_schema = {_literal(schema)}" if schema else "")
    tree = _select(f"{_COLUMNS_OF} WHERE {where} ORDER BY ordinal_position")
    tree.meta[DESCRIBE_TARGET] = (schema, table)
    return tree


def describe_listed(spec: TableSpec) -> exp.Expr:
    """``DESCRIBE`` of a table ``information_schema`` does not list (the system tables ``omnisql.*`` and
    ``information_schema.*``, queryable by everyone): the same columns and types as ``describe_query``, from the
    spec itself."""
    def value(v: object) -> str:
        return "NULL" if v is None else str(v).upper() if isinstance(v, bool) else _literal(str(v))

    rows = ", ".join(f"({r['ordinal_position']}, {value(r['column_name'])}, {value(r['data_type'])}, "
                     f"{value(r['is_nullable'])}, {value(r['is_primary_key'])}, {value(r['pushdown'])}, "
                     f"{value(r['required_filter'])}, {value(r['column_comment'])})" for r in _columns([spec]))
    return _select('SELECT CAST(n AS VARCHAR) AS column_name, CAST(t AS VARCHAR) AS column_type, '
                   'CAST(u AS VARCHAR) AS "null", CAST(k AS BOOLEAN) AS "key", CAST(p AS VARCHAR) AS pushdown, '
                   'CAST(r AS BOOLEAN) AS required_filter, CAST(d AS VARCHAR) AS description '
                   f"FROM (VALUES {rows}) AS c(i, n, t, u, k, p, r, d) ORDER BY i")


def _literal(text: str) -> str:
    return exp.Literal.string(text).sql("duckdb")


def _select(sql: str) -> exp.Expr:
    return sqlglot.parse_one(sql, dialect="duckdb")
