"""The one Arrow ↔ SQL type mapping: the names DuckDB (our engine) gives Arrow types, used by the catalog (for
qualification), the Flight SQL column metadata (TYPE_NAME, PRECISION, SCALE) and GetXdbcTypeInfo."""

from __future__ import annotations

import pyarrow as pa

__all__ = ["precision_scale", "sql_type_name"]

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


def precision_scale(t: pa.DataType) -> tuple[int | None, int | None]:
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
