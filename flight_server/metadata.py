"""Catalog metadata answers (GetCatalogs, GetDbSchemas, GetTables, GetTableTypes, GetXdbcTypeInfo, keys) with
the spec's exact schemas, nullability included."""

from __future__ import annotations

import re

import pyarrow as pa

from planner.catalog import CATALOG_NAME, Catalog

__all__ = ["SCHEMAS", "catalogs", "db_schemas", "keys_empty", "primary_keys", "table_types", "tables",
           "xdbc_type_info"]


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


def _matches(pattern: str | None, value: str) -> bool:
    """SQL LIKE semantics for the metadata filter patterns (% and _, backslash escapes)."""
    if not pattern:
        return True
    regex = ""
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            regex += re.escape(pattern[i + 1])
            i += 2
            continue
        regex += ".*" if ch == "%" else "." if ch == "_" else re.escape(ch)
        i += 1
    return re.fullmatch(regex, value, flags=re.DOTALL) is not None


def _catalog_ok(catalog: str | None) -> bool:
    return catalog is None or catalog == CATALOG_NAME


def catalogs() -> pa.Table:
    return pa.Table.from_pylist([{"catalog_name": CATALOG_NAME}], schema=SCHEMAS["catalogs"])


def db_schemas(catalog: Catalog, catalog_name: str | None, pattern: str | None) -> pa.Table:
    rows = [{"catalog_name": CATALOG_NAME, "db_schema_name": s} for s in catalog.schemas
            if _catalog_ok(catalog_name) and _matches(pattern, s)]
    return pa.Table.from_pylist(rows, schema=SCHEMAS["db_schemas"])


def tables(catalog: Catalog, catalog_name: str | None, schema_pattern: str | None, table_pattern: str | None,
           table_types_filter: list[str], include_schema: bool) -> pa.Table:
    rows = []
    for (schema, name), spec in sorted(catalog.tables.items()):
        if not (_catalog_ok(catalog_name) and _matches(schema_pattern, schema) and _matches(table_pattern, name)):
            continue
        if table_types_filter and "TABLE" not in table_types_filter:
            continue
        row = {"catalog_name": CATALOG_NAME, "db_schema_name": schema, "table_name": name, "table_type": "TABLE"}
        if include_schema:
            row["table_schema"] = spec.arrow_schema.serialize().to_pybytes()
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=SCHEMAS["tables_with_schema" if include_schema else "tables"])


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


# (type_name, data_type, column_size, prefix, suffix, case_sensitive, searchable, unsigned, radix)
_TYPES = [
    ("BOOLEAN", -7, 1, None, None, False, 2, None, None),
    ("BIGINT", -5, 19, None, None, False, 2, False, 10),
    ("VARCHAR", 12, 65536, "'", "'", True, 3, None, None),
    ("DOUBLE", 8, 53, None, None, False, 2, False, 2),
    ("TIMESTAMP", 93, 26, "TIMESTAMP '", "'", False, 2, None, None),
    ("DATE", 91, 10, "DATE '", "'", False, 2, None, None),
]


def xdbc_type_info(data_type: int | None) -> pa.Table:
    rows = []
    for name, code, size, prefix, suffix, case, searchable, unsigned, radix in sorted(_TYPES,
                                                                                      key=lambda r: (r[1], r[0])):
        if data_type is not None and data_type != code:
            continue
        rows.append({"type_name": name, "data_type": code, "column_size": size, "literal_prefix": prefix,
                     "literal_suffix": suffix, "create_params": None, "nullable": 1, "case_sensitive": case,
                     "searchable": searchable, "unsigned_attribute": unsigned, "fixed_prec_scale": False,
                     "auto_increment": None, "local_type_name": name, "minimum_scale": None,
                     "maximum_scale": None, "sql_data_type": 9 if code in (91, 93) else code,
                     "datetime_subcode": {91: 1, 93: 3}.get(code), "num_prec_radix": radix,
                     "interval_precision": None})
    return pa.Table.from_pylist(rows, schema=SCHEMAS["xdbc"])
