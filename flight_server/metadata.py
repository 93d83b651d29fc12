"""Catalog metadata answers (GetCatalogs, GetDbSchemas, GetTables, GetTableTypes, GetXdbcTypeInfo, keys) with
the spec's exact schemas, nullability included."""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa

from core.types import TableSpec
from flight_server.column_metadata import annotate_table_schema
from flight_server.like import LikePattern
from planner.catalog import CATALOG_NAME, Catalog

__all__ = ["SCHEMAS", "catalogs", "db_schemas", "keys_empty", "primary_keys", "table_schema", "table_types",
           "tables", "xdbc_type_info"]


def _f(name: str, typ: pa.DataType, nullable: bool = True) -> pa.Field:
    return pa.field(name, typ, nullable=nullable)


_KEY_REF = [_f("pk_catalog_name", pa.string()), _f("pk_db_schema_name", pa.string()),
            _f("pk_table_name", pa.string(), False), _f("pk_column_name", pa.string(), False),
            _f("fk_catalog_name", pa.string()), _f("fk_db_schema_name", pa.string()),
            _f("fk_table_name", pa.string(), False), _f("fk_column_name", pa.string(), False),
            _f("key_sequence", pa.int32(), False), _f("fk_key_name", pa.string()), _f("pk_key_name", pa.string()),
            _f("update_rule", pa.uint8(), False), _f("delete_rule", pa.uint8(), False)]

SCHEMAS: dict[str, pa.Schema] = {
    "catalogs": pa.schema([_f("catalog_name", pa.string(), False)]),
    "db_schemas": pa.schema([_f("catalog_name", pa.string()), _f("db_schema_name", pa.string(), False)]),
    "tables": pa.schema([_f("catalog_name", pa.string()), _f("db_schema_name", pa.string()),
                         _f("table_name", pa.string(), False), _f("table_type", pa.string(), False)]),
    "table_types": pa.schema([_f("table_type", pa.string(), False)]),
    "primary_keys": pa.schema([_f("catalog_name", pa.string()), _f("db_schema_name", pa.string()),
                               _f("table_name", pa.string(), False), _f("column_name", pa.string(), False),
                               _f("key_name", pa.string()), _f("key_sequence", pa.int32(), False)]),
    "keys": pa.schema(_KEY_REF),
    "xdbc": pa.schema([
        _f("type_name", pa.string(), False), _f("data_type", pa.int32(), False), _f("column_size", pa.int32()),
        _f("literal_prefix", pa.string()), _f("literal_suffix", pa.string()),
        _f("create_params", pa.list_(pa.field("item", pa.string(), nullable=False))),
        _f("nullable", pa.int32(), False), _f("case_sensitive", pa.bool_(), False),
        _f("searchable", pa.int32(), False), _f("unsigned_attribute", pa.bool_()),
        _f("fixed_prec_scale", pa.bool_(), False), _f("auto_increment", pa.bool_()),
        _f("local_type_name", pa.string()), _f("minimum_scale", pa.int32()), _f("maximum_scale", pa.int32()),
        _f("sql_data_type", pa.int32(), False), _f("datetime_subcode", pa.int32()),
        _f("num_prec_radix", pa.int32()), _f("interval_precision", pa.int32())]),
}
SCHEMAS["tables_with_schema"] = SCHEMAS["tables"].append(_f("table_schema", pa.binary(), False))


def _matcher(pattern: str | None) -> Callable[[str], bool]:
    """SQL LIKE for a metadata filter pattern (``%`` and ``_``, backslash escapes), compiled once per request;
    no pattern matches everything. Linear in the pattern: see ``flight_server/like.py``."""
    if not pattern:
        return lambda value: True
    return LikePattern.compile(pattern).matches


def _catalog_ok(catalog: str | None) -> bool:
    return catalog is None or catalog == CATALOG_NAME


def catalogs() -> pa.Table:
    return pa.Table.from_pylist([{"catalog_name": CATALOG_NAME}], schema=SCHEMAS["catalogs"])


def db_schemas(catalog: Catalog, catalog_name: str | None, pattern: str | None) -> pa.Table:
    matches = _matcher(pattern)
    rows = [{"catalog_name": CATALOG_NAME, "db_schema_name": s} for s in catalog.schemas
            if _catalog_ok(catalog_name) and matches(s)]
    return pa.Table.from_pylist(rows, schema=SCHEMAS["db_schemas"])


def tables(catalog: Catalog, catalog_name: str | None, schema_pattern: str | None, table_pattern: str | None,
           table_types_filter: list[str], include_schema: bool) -> pa.Table:
    rows = []
    schema_matches, table_matches = _matcher(schema_pattern), _matcher(table_pattern)
    for (schema, name), spec in sorted(catalog.tables.items()):
        if not (_catalog_ok(catalog_name) and schema_matches(schema) and table_matches(name)):
            continue
        if table_types_filter and "TABLE" not in table_types_filter:
            continue
        row = {"catalog_name": CATALOG_NAME, "db_schema_name": schema, "table_name": name, "table_type": "TABLE"}
        if include_schema:
            row["table_schema"] = table_schema(spec).serialize().to_pybytes()
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=SCHEMAS["tables_with_schema" if include_schema else "tables"])


def table_schema(spec: TableSpec) -> pa.Schema:
    """The schema GetTables reports for a table: what ``SELECT * FROM`` it returns (DuckDB declares every result
    column nullable, so every field is nullable here too; the catalog's NOT NULL columns stay not null in the
    data), annotated with the Flight SQL column metadata (origin, TYPE_NAME, PRECISION, ..., REMARKS)."""
    fields = [pa.field(c.name, c.type, nullable=True) for c in spec.columns]
    remarks = {c.name: c.description for c in spec.columns if c.description}
    return annotate_table_schema(pa.schema(fields), CATALOG_NAME, spec.schema_name, spec.name, remarks)


def table_types() -> pa.Table:
    return pa.Table.from_pylist([{"table_type": "TABLE"}], schema=SCHEMAS["table_types"])


def primary_keys(catalog: Catalog, catalog_name: str | None, schema: str | None, table: str) -> pa.Table:
    rows = []
    for (s, t), spec in sorted(catalog.tables.items()):
        if _catalog_ok(catalog_name) and (schema is None or schema == s) and t == table:
            rows += [{"catalog_name": CATALOG_NAME, "db_schema_name": s, "table_name": t, "column_name": col,
                      "key_name": f"{t}_pkey", "key_sequence": i + 1} for i, col in enumerate(spec.primary_key)]
    return pa.Table.from_pylist(rows, schema=SCHEMAS["primary_keys"])


def keys_empty() -> pa.Table:
    """Exported/imported keys and cross references: SaaS tables declare no foreign keys."""
    return SCHEMAS["keys"].empty_table()


# Every type a result can have (DuckDB's names; see flight_server/column_metadata.py for the Arrow mapping), as
# (type_name, data_type, column_size, literal prefix, suffix, create_params, case_sensitive, searchable,
#  unsigned_attribute, fixed_prec_scale, minimum_scale, maximum_scale, datetime_subcode, num_prec_radix).
# data_type is the XdbcDataType (JDBC/ODBC) code; nested types have none there and are reported as VARBINARY,
# as ADBC's drivers do. searchable: 2 = comparisons (BASIC), 3 = also LIKE (FULL).
_BIT, _TINYINT, _BIGINT, _VARBINARY, _DECIMAL, _INTEGER, _SMALLINT = -7, -6, -5, -3, 3, 4, 5
_REAL, _DOUBLE, _INTERVAL, _VARCHAR, _DATE, _TIME, _TIMESTAMP, _DATETIME = 7, 8, 10, 12, 91, 92, 93, 9
_TYPES: list[tuple[str, int, int | None, str | None, str | None, list[str] | None, bool, int, bool | None, bool,
                   int | None, int | None, int | None, int | None]] = [
    ("BOOLEAN", _BIT, 1, None, None, None, False, 2, None, False, None, None, None, None),
    ("TINYINT", _TINYINT, 3, None, None, None, False, 2, False, False, 0, 0, None, 10),
    ("UTINYINT", _TINYINT, 3, None, None, None, False, 2, True, False, 0, 0, None, 10),
    ("BIGINT", _BIGINT, 19, None, None, None, False, 2, False, False, 0, 0, None, 10),
    ("UBIGINT", _BIGINT, 20, None, None, None, False, 2, True, False, 0, 0, None, 10),
    ("BLOB", _VARBINARY, None, "'", "'::BLOB", None, False, 2, None, False, None, None, None, None),
    ("LIST", _VARBINARY, None, None, None, ["element_type"], False, 2, None, False, None, None, None, None),
    ("ARRAY", _VARBINARY, None, None, None, ["element_type", "size"], False, 2, None, False, None, None, None,
     None),
    ("STRUCT", _VARBINARY, None, None, None, ["fields"], False, 2, None, False, None, None, None, None),
    ("MAP", _VARBINARY, None, None, None, ["key_type", "value_type"], False, 2, None, False, None, None, None,
     None),
    ("UNION", _VARBINARY, None, None, None, ["members"], False, 2, None, False, None, None, None, None),
    ("DECIMAL", _DECIMAL, 38, None, None, ["precision", "scale"], False, 2, False, True, 0, 38, None, 10),
    ("HUGEINT", _DECIMAL, 38, None, None, None, False, 2, False, False, 0, 0, None, 10),
    ("UHUGEINT", _DECIMAL, 38, None, None, None, False, 2, True, False, 0, 0, None, 10),
    ("INTEGER", _INTEGER, 10, None, None, None, False, 2, False, False, 0, 0, None, 10),
    ("UINTEGER", _INTEGER, 10, None, None, None, False, 2, True, False, 0, 0, None, 10),
    ("SMALLINT", _SMALLINT, 5, None, None, None, False, 2, False, False, 0, 0, None, 10),
    ("USMALLINT", _SMALLINT, 5, None, None, None, False, 2, True, False, 0, 0, None, 10),
    ("FLOAT", _REAL, 24, None, None, None, False, 2, False, False, None, None, None, 2),
    ("DOUBLE", _DOUBLE, 53, None, None, None, False, 2, False, False, None, None, None, 2),
    ("INTERVAL", _INTERVAL, None, "INTERVAL '", "'", None, False, 2, None, False, None, None, None, None),
    ("VARCHAR", _VARCHAR, 2147483647, "'", "'", None, True, 3, None, False, None, None, None, None),
    ("DATE", _DATE, 10, "DATE '", "'", None, False, 2, None, False, None, None, 1, None),
    ("TIME", _TIME, 15, "TIME '", "'", None, False, 2, None, False, 0, 6, 2, None),
    ("TIMESTAMP", _TIMESTAMP, 26, "TIMESTAMP '", "'", None, False, 2, None, False, 0, 6, 3, None),
    ("TIMESTAMP WITH TIME ZONE", _TIMESTAMP, 32, "TIMESTAMPTZ '", "'", None, False, 2, None, False, 0, 6, 5,
     None),
]


def xdbc_type_info(data_type: int | None) -> pa.Table:
    """GetXdbcTypeInfo: one row per type, ordered by data_type then type_name as the spec asks."""
    rows = []
    for (name, code, size, prefix, suffix, params, case, searchable, unsigned, fixed, min_scale, max_scale,
         subcode, radix) in sorted(_TYPES, key=lambda r: (r[1], r[0])):
        if data_type is not None and data_type != code:
            continue
        datetime = code in (_DATE, _TIME, _TIMESTAMP)
        rows.append({"type_name": name, "data_type": code, "column_size": size, "literal_prefix": prefix,
                     "literal_suffix": suffix, "create_params": params, "nullable": 1, "case_sensitive": case,
                     "searchable": searchable, "unsigned_attribute": unsigned, "fixed_prec_scale": fixed,
                     "auto_increment": False if unsigned is not None else None, "local_type_name": name,
                     "minimum_scale": min_scale, "maximum_scale": max_scale,
                     "sql_data_type": _DATETIME if datetime else code, "datetime_subcode": subcode,
                     "num_prec_radix": radix, "interval_precision": None})
    return pa.Table.from_pylist(rows, schema=SCHEMAS["xdbc"])
