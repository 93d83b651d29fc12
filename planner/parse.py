"""Parse SQL (DuckDB dialect), bind parameters as literals, and qualify every column against the catalog."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import OptimizeError, ParseError
from sqlglot.optimizer.qualify import qualify

from connectors.errors import InvalidQuery
from planner.catalog import CATALOG_NAME, Catalog

__all__ = ["SCAN_TAG", "base_tables", "bind_parameters", "parse_query", "placeholders", "qualify_query"]

SCAN_TAG = "omnisql_scan"
_QUERY_TYPES = (exp.Select, exp.SetOperation, exp.Subquery)


def parse_query(sql: str) -> exp.Expr:
    """Parse exactly one read-only query, or raise ``InvalidQuery`` saying what and where."""
    try:
        statements = [s for s in sqlglot.parse(sql, dialect="duckdb") if s is not None]
    except ParseError as exc:
        err = exc.errors[0] if exc.errors else {}
        where = f" at line {err.get('line')}, column {err.get('col')}" if err.get("line") else ""
        detail = err.get("description") or str(exc).splitlines()[0]
        near = f" near '{err.get('highlight')}'" if err.get("highlight") else ""
        raise InvalidQuery(f"SQL syntax error{where}{near}: {detail}") from exc
    if len(statements) != 1:
        raise InvalidQuery(f"expected exactly one SQL statement, got {len(statements)}; send one query per request")
    statement = statements[0]
    if isinstance(statement, exp.With):
        statement = statement.this
    if not isinstance(statements[0], _QUERY_TYPES):
        kind = statements[0].key.upper()
        raise InvalidQuery(f"only read-only queries (SELECT ...) are supported, got {kind}; OmniSQL never writes "
                           "to the source apps")
    _reject_table_functions(statements[0])
    return statements[0]


def _reject_table_functions(tree: exp.Expr) -> None:
    """DuckDB table functions (read_csv, glob, ...) could read the server's files: refuse them by name."""
    for node in tree.find_all(exp.Table):
        if isinstance(node.this, (exp.Func, exp.Anonymous)):
            raise InvalidQuery(f"table functions are not allowed in FROM ({node.this.sql('duckdb')}); query the "
                               "catalog's tables instead")


def placeholders(tree: exp.Expr) -> list[exp.Expr]:
    """Positional parameters in document order: ``?`` and ``$1``-style."""
    return [n for n in tree.walk() if isinstance(n, exp.Placeholder | exp.Parameter)]


def _literal(value: Any) -> exp.Expr:
    if value is None:
        return exp.Null()
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, int | float | Decimal):
        return exp.Literal.number(value)
    if isinstance(value, datetime):
        return exp.cast(exp.Literal.string(value.isoformat(sep=" ")), "TIMESTAMP")
    if isinstance(value, date):
        return exp.cast(exp.Literal.string(value.isoformat()), "DATE")
    if isinstance(value, bytes):
        return exp.cast(exp.Literal.string(value.hex()), "BLOB")
    return exp.Literal.string(str(value))


def bind_parameters(tree: exp.Expr, values: Sequence[Any]) -> exp.Expr:
    """Replace parameters by literals (so they can be pushed down like any literal)."""
    slots = placeholders(tree)
    if len(slots) != len(values):
        raise InvalidQuery(f"the query has {len(slots)} parameter(s) but {len(values)} value(s) were bound")
    tree = tree.copy()
    for slot, value in zip(placeholders(tree), values, strict=True):
        index = slot
        if isinstance(slot, exp.Parameter) and str(slot.this.name).isdigit():
            value = values[int(slot.this.name) - 1]
        index.replace(_literal(value))
    return tree


def base_tables(tree: exp.Expr, catalog: Catalog) -> list[exp.Table]:
    """Tag every reference to a catalog table with ``meta[SCAN_TAG] = i`` (CTE references are skipped)."""
    cte_names = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    tables: list[exp.Table] = []
    for node in tree.find_all(exp.Table):
        if not node.name or isinstance(node.this, exp.Func):
            continue
        schema = node.db
        if node.catalog and node.catalog.lower() != CATALOG_NAME:
            raise InvalidQuery(f"unknown catalog {node.catalog}; the only catalog is {CATALOG_NAME}")
        if not schema:
            if node.name.lower() in cte_names:
                continue
            spec = catalog.resolve_unqualified(node.name)
            if spec is None:
                raise InvalidQuery(f"unknown table {node.name}; write it with its schema, e.g. "
                                   f"{', '.join(f'{s}.{t}' for s, t in sorted(catalog.tables))}")
            node.set("db", exp.to_identifier(spec.schema_name))
        catalog.lookup(node.db, node.name)
        node.set("catalog", None)
        node.meta[SCAN_TAG] = len(tables)
        tables.append(node)
    return tables


def qualify_query(tree: exp.Expr, catalog: Catalog) -> exp.Expr:
    """A qualified copy: every column carries its table alias; unknown columns raise ``InvalidQuery``."""
    try:
        return qualify(tree.copy(), schema=dict(catalog.sqlglot_schema()), dialect="duckdb",
                       validate_qualify_columns=True, quote_identifiers=False, identify=False)
    except OptimizeError as exc:
        raise InvalidQuery(f"{exc}; check the column names against the catalog (GetTables / "
                           "adbc_get_table_schema)") from exc
