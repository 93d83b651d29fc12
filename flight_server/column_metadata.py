"""Flight SQL column metadata: the ``ARROW:FLIGHT:SQL:*`` field metadata keys the spec lists for GetTables'
``table_schema`` and for query result schemas (FlightSql.proto, CommandGetTables / CommandStatementQuery).

``TYPE_NAME`` is the SQL name of the column's type as DuckDB (our engine) spells it, in forms SQLAlchemy's
reflection understands (``BIGINT``, ``DOUBLE``, ``VARCHAR``, ``BOOLEAN``, ``TIMESTAMP WITH TIME ZONE``,
``DECIMAL(p,s)``, ``VARCHAR[]`` ...). All values are strings; booleans are ``"1"``/``"0"`` as the spec says.
"""

from __future__ import annotations

import pyarrow as pa

__all__ = ["KEYS", "annotate_result_schema", "annotate_table_schema", "column_metadata", "sql_type_name"]

_P = "ARROW:FLIGHT:SQL:"
KEYS = {name: _P + name for name in (
    "CATALOG_NAME", "DB_SCHEMA_NAME", "SCHEMA_NAME", "TABLE_NAME", "TYPE_NAME", "PRECISION", "SCALE",
    "IS_AUTO_INCREMENT", "IS_CASE_SENSITIVE", "IS_READ_ONLY", "IS_SEARCHABLE", "REMARKS")}

_INTEGERS = {
    pa.int8(): ("TINYINT", 3), pa.int16(): ("SMALLINT", 5), pa.int32(): ("INTEGER", 10), pa.int64(): ("BIGINT", 19),
    pa.uint8(): ("UTINYINT", 3), pa.uint16(): ("USMALLINT", 5), pa.uint32(): ("UINTEGER", 10),
    pa.uint64(): ("UBIGINT", 20),
}
_SCALE_OF_UNIT = {"s": 0, "ms": 3, "us": 6, "ns": 9}


def sql_type_name(t: pa.DataType) -> str:
    """The SQL type name of an Arrow type as DuckDB produces it (e.g. DuckDB's TIMESTAMPTZ arrives as
    ``timestamp[us, tz=UTC]`` and is named ``TIMESTAMP WITH TIME ZONE``)."""
    if t in _INTEGERS:
        return _INTEGERS[t][0]
    if pa.types.is_boolean(t):
        return "BOOLEAN"
    if pa.types.is_float16(t) or pa.types.is_float32(t):
        return "FLOAT"
    if pa.types.is_float64(t):
        return "DOUBLE"
    if pa.types.is_decimal(t):
        return f"DECIMAL({t.precision},{t.scale})"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "VARCHAR"
    if (pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t)
            or pa.types.is_binary_view(t)):
        return "BLOB"
    if pa.types.is_date(t):
        return "DATE"
    if pa.types.is_time(t):
        return "TIME"
    if pa.types.is_timestamp(t):
        return "TIMESTAMP WITH TIME ZONE" if t.tz else "TIMESTAMP"
    if pa.types.is_interval(t) or pa.types.is_duration(t):
        return "INTERVAL"
    if pa.types.is_fixed_size_list(t):
        return f"{sql_type_name(t.value_type)}[{t.list_size}]"
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_list_view(t):
        return f"{sql_type_name(t.value_type)}[]"
    if pa.types.is_map(t):
        return f"MAP({sql_type_name(t.key_type)}, {sql_type_name(t.item_type)})"
    if pa.types.is_struct(t):
        return "STRUCT(" + ", ".join(f"{_quote(f.name)} {sql_type_name(f.type)}" for f in t) + ")"
    if pa.types.is_union(t):
        return "UNION(" + ", ".join(f"{_quote(f.name)} {sql_type_name(f.type)}" for f in t) + ")"
    if pa.types.is_dictionary(t):
        return sql_type_name(t.value_type)
    if pa.types.is_null(t):
        return "NULL"
    if isinstance(t, pa.ExtensionType):
        return sql_type_name(t.storage_type)
    return str(t).upper()


def _quote(name: str) -> str:
    return name if name.isidentifier() else '"' + name.replace('"', '""') + '"'


def _precision_scale(t: pa.DataType) -> tuple[int | None, int | None]:
    """(PRECISION, SCALE): digits for exact numerics, bits for floats, characters for dates and times."""
    if t in _INTEGERS:
        return _INTEGERS[t][1], 0
    if pa.types.is_decimal(t):
        return t.precision, t.scale
    if pa.types.is_float16(t) or pa.types.is_float32(t):
        return 24, None
    if pa.types.is_float64(t):
        return 53, None
    if pa.types.is_date(t):
        return 10, None
    if pa.types.is_time(t):
        scale = _SCALE_OF_UNIT[t.unit]
        return 8 + (scale and scale + 1), scale
    if pa.types.is_timestamp(t):
        scale = _SCALE_OF_UNIT[t.unit]
        return 19 + (scale and scale + 1) + (6 if t.tz else 0), scale
    if pa.types.is_boolean(t):
        return 1, None
    return None, None


def column_metadata(field: pa.Field, remarks: str | None = None) -> dict[str, str]:
    """The type-level keys for one column (no catalog/schema/table: a result column may have no single
    origin). OmniSQL is read-only and every column can be used in WHERE."""
    precision, scale = _precision_scale(field.type)
    text = pa.types.is_string(field.type) or pa.types.is_large_string(field.type) \
        or pa.types.is_string_view(field.type)
    out = {KEYS["TYPE_NAME"]: sql_type_name(field.type)}
    if precision is not None:
        out[KEYS["PRECISION"]] = str(precision)
    if scale is not None:
        out[KEYS["SCALE"]] = str(scale)
    out[KEYS["IS_AUTO_INCREMENT"]] = "0"
    out[KEYS["IS_CASE_SENSITIVE"]] = "1" if text else "0"
    out[KEYS["IS_READ_ONLY"]] = "1"
    out[KEYS["IS_SEARCHABLE"]] = "1"
    if remarks:
        out[KEYS["REMARKS"]] = remarks
    return out


def _with_metadata(field: pa.Field, extra: dict[str, str]) -> pa.Field:
    existing = {k.decode(): v.decode() for k, v in (field.metadata or {}).items()}
    return field.with_metadata({**existing, **extra})


def annotate_result_schema(schema: pa.Schema) -> pa.Schema:
    """``schema`` with the Flight SQL column metadata on every field (TYPE_NAME, PRECISION, SCALE, IS_*); types,
    nullability, names and existing metadata are kept, so the data still matches."""
    return pa.schema([_with_metadata(f, column_metadata(f)) for f in schema], metadata=schema.metadata)


def annotate_table_schema(schema: pa.Schema, catalog: str, db_schema: str, table: str,
                          remarks: dict[str, str] | None = None) -> pa.Schema:
    """A table's schema as GetTables serializes it: every key, the column's origin included. The db schema is
    written under the spec's ``DB_SCHEMA_NAME`` and under ``SCHEMA_NAME``, the key Arrow's C++, Go and Java
    libraries (and so ADBC) read."""
    origin = {KEYS["CATALOG_NAME"]: catalog, KEYS["DB_SCHEMA_NAME"]: db_schema, KEYS["SCHEMA_NAME"]: db_schema,
              KEYS["TABLE_NAME"]: table}
    return pa.schema([_with_metadata(f, {**origin, **column_metadata(f, (remarks or {}).get(f.name))})
                      for f in schema], metadata=schema.metadata)
