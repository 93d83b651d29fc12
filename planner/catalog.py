"""The catalog: every connector's TableSpecs, looked up by ``schema.table``."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Mapping

from sqlglot.schema import MappingSchema

from core.errors import InvalidQuery
from core.sqltypes import sql_type_name
from core.types import TableSpec

__all__ = ["CATALOG_NAME", "Catalog"]

CATALOG_NAME = "omnisql"


class Catalog:
    def __init__(self, specs: Iterable[TableSpec]) -> None:
        self.tables: dict[tuple[str, str], TableSpec] = {(s.schema_name, s.name): s for s in specs}
        self.version = catalog_version(self.tables.values())

    @property
    def schemas(self) -> list[str]:
        return sorted({schema for schema, _ in self.tables})

    def lookup(self, schema: str, table: str) -> TableSpec:
        spec = self.tables.get((schema.lower(), table.lower()))
        if spec is None:
            raise self.unknown(schema, table)
        return spec

    def unknown(self, schema: str | None, table: str) -> InvalidQuery:
        """The error for a table name this catalog does not have, listing the tables it does (so the catalog to
        ask is the one the asking principal may see)."""
        known = ", ".join(f"{s}.{t}" for s, t in sorted(self.tables)) or "none"
        if schema:
            return InvalidQuery(f"unknown table {schema}.{table}; available tables: {known}")
        return InvalidQuery(f"unknown table {table}; write it with its schema, e.g. {known}")

    def resolve_unqualified(self, table: str, default_schema: str | None = None) -> TableSpec | None:
        """A table named without its schema: in the default schema (the session's ``schema``) if it is there,
        else the one table of that name in any schema (None when none or several)."""
        if default_schema is not None and (default_schema.lower(), table.lower()) in self.tables:
            return self.tables[(default_schema.lower(), table.lower())]
        matches = [spec for (_, t), spec in self.tables.items() if t == table.lower()]
        return matches[0] if len(matches) == 1 else None

    @functools.cached_property
    def qualifier_schema(self) -> MappingSchema:
        """``sqlglot_schema`` as sqlglot's own schema object, built once per catalog (building it normalizes
        every name: a tenth of a trivial query's planning when done per query)."""
        return MappingSchema(dict(self.sqlglot_schema()), dialect="duckdb")

    def sqlglot_schema(self) -> Mapping[str, Mapping[str, Mapping[str, str]]]:
        """``{schema: {table: {column: type}}}`` for sqlglot's qualifier (types only need to be plausible)."""
        out: dict[str, dict[str, dict[str, str]]] = {}
        for (schema, table), spec in self.tables.items():
            out.setdefault(schema, {})[table] = {c.name: sql_type_name(c.type) for c in spec.columns}
        return out


def catalog_version(specs: Iterable[TableSpec]) -> int:
    """A number that changes when the set of tables (or a table's columns) changes, and only then: a fingerprint,
    so it is also stable across restarts and anything keyed by it (caches, clients' metadata) stays valid."""
    digest = hashlib.sha256()
    for spec in sorted(specs, key=lambda s: (s.schema_name, s.name)):
        digest.update(f"{spec.qualified_name}\n".encode())
        for column in spec.columns:
            digest.update(f"\t{column.name}:{column.type}:{column.nullable}\n".encode())
    return int.from_bytes(digest.digest()[:8], "big") >> 1  # a non-negative int64
