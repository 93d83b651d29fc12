"""Flight SQL column metadata: the ``ARROW:FLIGHT:SQL:*`` field metadata keys the spec lists for GetTables'
``table_schema`` and for query result schemas (FlightSql.proto, CommandGetTables / CommandStatementQuery).

``TYPE_NAME`` is the SQL name of the column's type as DuckDB (our engine) spells it, in forms SQLAlchemy's
reflection understands (``BIGINT``, ``DOUBLE``, ``VARCHAR``, ``BOOLEAN``, ``TIMESTAMP WITH TIME ZONE``,
``DECIMAL(p,s)``, ``VARCHAR[]`` ...). All values are strings; booleans are ``"1"``/``"0"`` as the spec says.
"""

from __future__ import annotations

from functools import lru_cache

import pyarrow as pa

from core.sqltypes import precision_scale, sql_type_name

__all__ = ["KEYS", "annotate_result_schema", "annotate_table_schema", "column_metadata"]

_P = "ARROW:FLIGHT:SQL:"
KEYS = {name: _P + name for name in (
    "CATALOG_NAME", "DB_SCHEMA_NAME", "SCHEMA_NAME", "TABLE_NAME", "TYPE_NAME", "PRECISION", "SCALE",
    "IS_AUTO_INCREMENT", "IS_CASE_SENSITIVE", "IS_READ_ONLY", "IS_SEARCHABLE", "REMARKS")}

def column_metadata(field: pa.Field, remarks: str | None = None) -> dict[str, str]:
    """The type-level keys for one column (no catalog/schema/table: a result column may have no single
    origin). OmniSQL is read-only and every column can be used in WHERE."""
    precision, scale = precision_scale(field.type)
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
    nullability, names and existing metadata are kept, so the data still matches. Remembered per schema (its IPC
    bytes: pyarrow's schema equality ignores field metadata), so a repeated query's answer costs a lookup."""
    return _annotated(schema.serialize().to_pybytes())


@lru_cache(maxsize=1024)
def _annotated(serialized: bytes) -> pa.Schema:
    schema = pa.ipc.read_schema(pa.py_buffer(serialized))
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
