"""Flight SQL column metadata on result and table schemas (flight_server/column_metadata.py), in process."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pytest
from sqlalchemy import types as sa_types
from sqlalchemy_adbc.reflection import adbc_type_to_sqla

from core.sqltypes import sql_type_name
from flight_server.column_metadata import KEYS, annotate_result_schema, annotate_table_schema
from flight_server.metadata import xdbc_type_info

# Every DuckDB type a query can produce, and the TYPE_NAME its Arrow form gets.
DUCKDB_TYPES = [
    ("1::TINYINT", "TINYINT"), ("1::SMALLINT", "SMALLINT"), ("1::INTEGER", "INTEGER"), ("1::BIGINT", "BIGINT"),
    ("1::HUGEINT", "DECIMAL(38,0)"), ("1::UTINYINT", "UTINYINT"), ("1::USMALLINT", "USMALLINT"),
    ("1::UINTEGER", "UINTEGER"), ("1::UBIGINT", "UBIGINT"), ("1.5::FLOAT", "FLOAT"), ("1.5::DOUBLE", "DOUBLE"),
    ("1.5::DECIMAL(10,2)", "DECIMAL(10,2)"), ("'x'::VARCHAR", "VARCHAR"), ("'x'::BLOB", "BLOB"),
    ("true", "BOOLEAN"), ("DATE '2020-01-01'", "DATE"), ("TIME '10:00'", "TIME"),
    ("TIMESTAMP '2020-01-01'", "TIMESTAMP"), ("TIMESTAMPTZ '2020-01-01'", "TIMESTAMP WITH TIME ZONE"),
    ("TIMESTAMP_MS '2020-01-01'", "TIMESTAMP"), ("INTERVAL 1 DAY", "INTERVAL"), ("[1, 2]", "INTEGER[]"),
    ("['a']", "VARCHAR[]"), ("[1, 2]::INTEGER[2]", "INTEGER[2]"), ("{'a': 1, 'b c': 'x'}",
                                                                    'STRUCT(a INTEGER, "b c" VARCHAR)'),
    ("MAP {'k': 1}", "MAP(VARCHAR, INTEGER)"), ("'a'::ENUM('a', 'b')", "VARCHAR"), ("uuid()", "VARCHAR"),
    ("NULL", "NULL"),
]
# SQLAlchemy's reflection (sqlalchemy-adbc reads TYPE_NAME through ADBC's xdbc_type_name) knows these.
SQLALCHEMY = {"TINYINT": sa_types.SmallInteger, "SMALLINT": sa_types.SmallInteger, "INTEGER": sa_types.Integer,
              "BIGINT": sa_types.BigInteger, "FLOAT": sa_types.Float, "DOUBLE": sa_types.Float,
              "DECIMAL(10,2)": sa_types.Numeric, "DECIMAL(38,0)": sa_types.Numeric, "VARCHAR": sa_types.String,
              "BLOB": sa_types.LargeBinary, "BOOLEAN": sa_types.Boolean, "DATE": sa_types.Date,
              "TIME": sa_types.Time, "TIMESTAMP": sa_types.DateTime, "TIMESTAMP WITH TIME ZONE": sa_types.DateTime}


@pytest.fixture(scope="module")
def duckdb_result() -> pa.Schema:
    db = duckdb.connect()
    select = ", ".join(f"{expr} AS c{i}" for i, (expr, _) in enumerate(DUCKDB_TYPES))
    return db.sql(f"SELECT {select}").to_arrow_table().schema


def test_type_names_of_every_duckdb_result_type(duckdb_result: pa.Schema) -> None:
    annotated = annotate_result_schema(duckdb_result)
    names = [f.metadata[KEYS["TYPE_NAME"].encode()].decode() for f in annotated]
    assert names == [name for _, name in DUCKDB_TYPES]


def test_sqlalchemy_understands_the_scalar_type_names() -> None:
    for name, expected in SQLALCHEMY.items():
        assert isinstance(adbc_type_to_sqla(name), expected), name


def test_every_result_type_is_in_xdbc_type_info(duckdb_result: pa.Schema) -> None:
    """A client can look every TYPE_NAME up in GetXdbcTypeInfo (by its base name; nested types by kind)."""
    known = set(xdbc_type_info(None).column("type_name").to_pylist())
    for field in duckdb_result:
        name = sql_type_name(field.type)
        if name == "NULL":
            continue
        base = ("ARRAY" if name.endswith("]") and not name.endswith("[]") else "LIST" if name.endswith("[]")
                else name.split("(")[0])
        assert base in known, (field, name)


def test_annotation_keeps_types_nullability_and_metadata() -> None:
    schema = pa.schema([pa.field("id", pa.int64(), nullable=False, metadata={"mine": "1"}),
                        pa.field("name", pa.string()),
                        pa.field("amount", pa.decimal128(12, 3)),
                        pa.field("at", pa.timestamp("us", tz="UTC"))], metadata={"k": "v"})
    annotated = annotate_result_schema(schema)
    assert annotated.equals(schema)  # same names, types, nullability (metadata aside)
    assert annotated.metadata == schema.metadata
    meta = [{k.decode(): v.decode() for k, v in f.metadata.items()} for f in annotated]
    assert meta[0] == {"mine": "1", KEYS["TYPE_NAME"]: "BIGINT", KEYS["PRECISION"]: "19", KEYS["SCALE"]: "0",
                       KEYS["IS_AUTO_INCREMENT"]: "0", KEYS["IS_CASE_SENSITIVE"]: "0", KEYS["IS_READ_ONLY"]: "1",
                       KEYS["IS_SEARCHABLE"]: "1"}
    assert meta[1][KEYS["IS_CASE_SENSITIVE"]] == "1" and KEYS["PRECISION"] not in meta[1]
    assert (meta[2][KEYS["PRECISION"]], meta[2][KEYS["SCALE"]]) == ("12", "3")
    assert (meta[3][KEYS["TYPE_NAME"]], meta[3][KEYS["PRECISION"]], meta[3][KEYS["SCALE"]]) == \
        ("TIMESTAMP WITH TIME ZONE", "32", "6")
    # the keys are the spec's: "ARROW:FLIGHT:SQL:" + name, booleans as "1"/"0"
    assert all(k.startswith("ARROW:FLIGHT:SQL:") for k in meta[0] if k != "mine")


def test_table_schema_names_its_origin() -> None:
    schema = annotate_table_schema(pa.schema([pa.field("login", pa.string())]), "omnisql", "github", "users",
                                   {"login": "GitHub login"})
    meta = {k.decode(): v.decode() for k, v in schema.field("login").metadata.items()}
    assert meta[KEYS["CATALOG_NAME"]] == "omnisql" and meta[KEYS["TABLE_NAME"]] == "users"
    assert meta[KEYS["DB_SCHEMA_NAME"]] == meta[KEYS["SCHEMA_NAME"]] == "github"
    assert meta[KEYS["REMARKS"]] == "GitHub login"
    # survives the IPC serialization GetTables uses
    assert pa.ipc.read_schema(schema.serialize()).field("login").metadata == schema.field("login").metadata
