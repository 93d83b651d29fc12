"""Conformance with the Flight SQL specification (FlightSql.proto, Flight.proto) as strict clients read it:
UNIMPLEMENTED for what OmniSQL does not offer, SqlInfo value types id by id, GetTables schemas that agree with
query results and carry the column metadata, GetXdbcTypeInfo. Through ADBC, pyarrow.flight and raw gRPC."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import adbc_driver_flightsql.dbapi as flightsql
import grpc
import pyarrow as pa
import pyarrow.flight as flight
import pytest
from google.protobuf import any_pb2
from sqlalchemy import types as sa_types
from sqlalchemy_adbc.reflection import adbc_type_to_sqla

from core.sqltypes import sql_type_name
from flight_server.column_metadata import KEYS
from flight_server.commands import pack
from flight_server.metadata import SCHEMAS
from flight_server.proto import flight_pb2 as fpb
from flight_server.proto import flight_sql_pb2 as pb
from flight_server.sql_info import SQL_INFO_SCHEMA
from planner.catalog import CATALOG_NAME

SERVICE = "/arrow.flight.protocol.FlightService/"

# The value type FlightSql.proto declares for every SqlInfo id (enum SqlInfo), in our words: server information
# 0-11 and 100-101, SQL syntax information 500-576. "string" ids may be null where the spec says so (6, 7).
_STRING, _BOOL, _INT64, _INT32, _STRINGS, _MAP = ("string_value", "bool_value", "bigint_value", "int32_bitmask",
                                                  "string_list", "int32_to_int32_list_map")
SPEC_SQL_INFO_TYPES: dict[int, str] = {
    0: _STRING,    # server name
    1: _STRING,    # server version
    2: _STRING,    # Arrow format version
    3: _BOOL,      # read only
    4: _BOOL,      # executes SQL
    5: _BOOL,      # executes Substrait plans
    6: _STRING,    # Substrait min version, null when Substrait is unsupported
    7: _STRING,    # Substrait max version, null when Substrait is unsupported
    8: _INT32,     # transaction RPC support, a SqlSupportedTransaction ordinal
    9: _BOOL,      # CancelQuery support
    10: _BOOL,     # bulk ingestion
    11: _BOOL,     # transactions for bulk ingestion
    100: _INT32,   # prepared statement timeout, ms
    101: _INT32,   # transaction timeout, ms
    500: _BOOL, 501: _BOOL, 502: _BOOL,  # CREATE/DROP of catalogs, schemas, tables
    503: _INT32,   # identifier case sensitivity ordinal
    504: _STRING,  # identifier quote character(s)
    505: _INT32,   # quoted identifier case sensitivity ordinal
    506: _BOOL,    # all tables selectable
    507: _INT32,   # null ordering ordinal
    508: _STRINGS, 509: _STRINGS, 510: _STRINGS, 511: _STRINGS, 512: _STRINGS,  # keywords, function lists
    513: _STRING,  # search string escape
    514: _STRING,  # extra identifier characters
    515: _BOOL, 516: _BOOL,  # column aliasing, NULL + x is NULL
    517: _MAP,     # supported conversions: int32 -> list<int32>
    518: _BOOL, 519: _BOOL, 520: _BOOL, 521: _BOOL,  # correlation names, ORDER BY expressions / unrelated
    522: _INT32,   # GROUP BY bitmask
    523: _BOOL, 524: _BOOL,  # LIKE escape clause, non-nullable columns
    525: _INT32, 526: _INT32,  # grammar level, ANSI92 level bitmasks
    527: _BOOL,    # integrity enhancement facility
    528: _INT32,   # outer join support ordinal
    529: _STRING, 530: _STRING, 531: _STRING,  # terms for schema, procedure, catalog
    532: _BOOL,    # catalog at start of a qualified name
    533: _INT32, 534: _INT32, 535: _INT32,  # schema/catalog actions, positioned commands bitmasks
    536: _BOOL, 537: _BOOL,  # SELECT FOR UPDATE, stored procedures
    538: _INT32,   # subqueries bitmask
    539: _BOOL,    # correlated subqueries
    540: _INT32,   # UNION bitmask
    **{i: _INT64 for i in range(541, 556)},  # the int64 limits (lengths, column counts, connections, row size)
    556: _BOOL,    # max row size includes blobs
    557: _INT64, 558: _INT64, 559: _INT64, 560: _INT64, 561: _INT64,  # statement/table/user limits
    562: _INT32,   # default transaction isolation ordinal
    563: _BOOL,    # transactions supported
    564: _INT32,   # isolation levels bitmask
    565: _BOOL, 566: _BOOL,  # DDL in transactions
    567: _INT32, 568: _INT32, 569: _INT32, 570: _INT32, 571: _INT32,  # result set types / concurrencies
    572: _BOOL, 573: _BOOL, 574: _BOOL, 575: _BOOL, 576: _BOOL,  # batch updates ... call syntax
}


@pytest.fixture()
def client(demo: dict[str, Any], admin_token: str) -> Iterator[tuple[flight.FlightClient, flight.FlightCallOptions]]:
    c = flight.FlightClient(demo["flight_uri"])
    yield c, flight.FlightCallOptions(headers=[(b"authorization", f"Bearer {admin_token}".encode())])
    c.close()


def _fetch(client: Any, message: Any) -> tuple[flight.FlightInfo, pa.Table]:
    c, options = client
    info = c.get_flight_info(flight.FlightDescriptor.for_command(pack(message)), options)
    return info, c.do_get(info.endpoints[0].ticket, options).read_all()


# -- A. unsupported is UNIMPLEMENTED ---------------------------------------------------------------------------
_SUBSTRAIT = pb.SubstraitPlan(plan=b"\x0a\x00", version="0.53.0")
_END = pb.ActionEndTransactionRequest.EndTransaction
_SAVEPOINT_END = pb.ActionEndSavepointRequest.EndSavepoint
UNSUPPORTED_ACTIONS = [
    ("BeginTransaction", pack(pb.ActionBeginTransactionRequest()), "transactions (BeginTransaction)"),
    ("EndTransaction", pack(pb.ActionEndTransactionRequest(transaction_id=b"t", action=_END.END_TRANSACTION_COMMIT)),
     "transactions (EndTransaction)"),
    ("BeginSavepoint", pack(pb.ActionBeginSavepointRequest(transaction_id=b"t", name="s")), "savepoints"),
    ("EndSavepoint", pack(pb.ActionEndSavepointRequest(savepoint_id=b"s", action=_SAVEPOINT_END.END_SAVEPOINT_RELEASE)),
     "savepoints"),
    ("CreatePreparedSubstraitPlan", pack(pb.ActionCreatePreparedSubstraitPlanRequest(plan=_SUBSTRAIT)),
     "Substrait plans are not supported"),
    ("CancelFlightInfo", fpb.CancelFlightInfoRequest(info=fpb.FlightInfo()).SerializeToString(),
     "cancel its DoGet call"),
    ("CancelQuery", pack(pb.ActionCancelQueryRequest(info=b"")), "cancel its DoGet call"),
    ("RenewFlightEndpoint", fpb.RenewFlightEndpointRequest(endpoint=fpb.FlightEndpoint()).SerializeToString(),
     "call GetFlightInfo again"),
    ("Frobnicate", b"", "unknown action 'Frobnicate'; supported: CreatePreparedStatement"),
]


@pytest.mark.parametrize(("action", "body", "says"), UNSUPPORTED_ACTIONS, ids=[a for a, _, _ in UNSUPPORTED_ACTIONS])
def test_unsupported_actions_are_unimplemented(client: Any, action: str, body: bytes, says: str) -> None:
    c, options = client
    with pytest.raises(pa.ArrowNotImplementedError, match="UNIMPLEMENTED: ") as excinfo:
        list(c.do_action(flight.Action(action, body), options))
    assert says in str(excinfo.value) and "Traceback" not in str(excinfo.value)


def _any(type_url: str) -> bytes:
    return any_pb2.Any(type_url=type_url, value=b"").SerializeToString()


UNSUPPORTED_COMMANDS = [
    ("update", pack(pb.CommandStatementUpdate(query="DELETE FROM jira.issues")), "OmniSQL is read-only"),
    ("prepared-update", pack(pb.CommandPreparedStatementUpdate(prepared_statement_handle=b"h")), "read-only"),
    ("ingest", pack(pb.CommandStatementIngest(table="t")), "bulk ingestion (CommandStatementIngest)"),
    ("substrait", pack(pb.CommandStatementSubstraitPlan(plan=_SUBSTRAIT)), "Substrait plans are not supported"),
    ("unknown-sql", _any("type.googleapis.com/arrow.flight.protocol.sql.CommandFrobnicate"),
     "unknown Flight SQL command type.googleapis.com/arrow.flight.protocol.sql.CommandFrobnicate"),
    ("unknown-other", _any("type.googleapis.com/acme.Query"), "unknown Flight SQL command"),
]


@pytest.mark.parametrize(("command", "says"), [(c, s) for _, c, s in UNSUPPORTED_COMMANDS],
                         ids=[n for n, _, _ in UNSUPPORTED_COMMANDS])
def test_unsupported_commands_are_unimplemented(client: Any, command: bytes, says: str) -> None:
    c, options = client
    descriptor = flight.FlightDescriptor.for_command(command)
    for call in (c.get_flight_info, c.get_schema):
        with pytest.raises(pa.ArrowNotImplementedError, match="UNIMPLEMENTED: ") as excinfo:
            call(descriptor, options)
        assert says in str(excinfo.value)
    # DoPut (where updates and ingestion arrive) says the same
    writer, _ = c.do_put(descriptor, pa.schema([("a", pa.int64())]), options)
    with pytest.raises(pa.ArrowNotImplementedError, match=re.escape(says)):
        writer.write_table(pa.table({"a": [1]}))
        writer.close()


def test_malformed_commands_stay_invalid_argument(client: Any) -> None:
    c, options = client
    for command in (b"\xff\xff not protobuf", b""):
        with pytest.raises(pa.ArrowInvalid, match="INVALID_QUERY: the Flight command"):
            c.get_flight_info(flight.FlightDescriptor.for_command(command), options)


@pytest.fixture()
def channel(demo: dict[str, Any]) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(demo["flight_uri"].removeprefix("grpc://")) as ch:
        yield ch


def test_unimplemented_over_raw_grpc(channel: grpc.Channel, admin_token: str) -> None:
    """PollFlightInfo, DoExchange, an unsupported action: status UNIMPLEMENTED, our message, our trailer."""
    auth = [("authorization", f"Bearer {admin_token}")]
    poll = channel.unary_unary(SERVICE + "PollFlightInfo", request_serializer=fpb.FlightDescriptor.SerializeToString,
                               response_deserializer=lambda b: b)
    exchange = channel.stream_stream(SERVICE + "DoExchange", request_serializer=fpb.FlightData.SerializeToString,
                                     response_deserializer=fpb.FlightData.FromString)
    action = channel.unary_stream(SERVICE + "DoAction", request_serializer=fpb.Action.SerializeToString,
                                  response_deserializer=fpb.Result.FromString)
    query = pack(pb.CommandStatementQuery(query="SELECT 1"))
    descriptor = fpb.FlightDescriptor(type=fpb.FlightDescriptor.CMD, cmd=query)
    calls = [
        (lambda: poll(descriptor, metadata=auth, timeout=30), "PollFlightInfo is not supported; call GetFlightInfo"),
        (lambda: list(exchange(iter([fpb.FlightData()]), metadata=auth, timeout=30)), "DoExchange is not supported"),
        (lambda: list(action(fpb.Action(type="BeginTransaction"), metadata=auth, timeout=30)), "transactions"),
    ]
    for call, says in calls:
        with pytest.raises(grpc.RpcError) as excinfo:
            call()
        error: Any = excinfo.value
        assert error.code() == grpc.StatusCode.UNIMPLEMENTED
        assert error.details().startswith("UNIMPLEMENTED: ") and says in error.details()
        assert ("x-omnisql-error-code", "UNIMPLEMENTED") in tuple(error.trailing_metadata())


def test_adbc_raises_not_supported(adbc_conn: Any) -> None:
    cursor = adbc_conn.cursor()
    try:
        for mode in ("create", "append"):
            with pytest.raises(flightsql.NotSupportedError, match="bulk ingestion"):
                cursor.adbc_ingest("t", pa.table({"a": [1]}), mode=mode)
        with pytest.raises(flightsql.NotSupportedError, match="read-only"):  # ExecuteUpdate
            cursor.executemany("SELECT ?", [(1,), (2,)])
    finally:
        cursor.close()
    cursor = adbc_conn.cursor()
    try:
        statement = cursor.adbc_statement
        statement.set_substrait_plan(b"\x0a\x00")
        with pytest.raises(flightsql.NotSupportedError, match="Substrait plans are not supported"):
            statement.execute_query()
        with pytest.raises(flightsql.NotSupportedError, match="Substrait plans are not supported"):
            statement.prepare()  # CreatePreparedSubstraitPlan
    finally:
        cursor.close()
    # Transactions: we report none (SqlInfo 8 = NONE, 563 = false), so ADBC refuses to leave autocommit itself and
    # commit/rollback are the no-ops DB-API asks for in autocommit mode.
    with pytest.raises(flightsql.NotSupportedError, match="transaction"):
        adbc_conn.adbc_connection.set_autocommit(False)
    adbc_conn.commit()
    adbc_conn.rollback()


def test_adbc_execute_schema_is_supported(adbc_conn: Any) -> None:
    cursor = adbc_conn.cursor()
    sql = "SELECT issue_key, story_points, created_at FROM jira.issues"
    schema = cursor.adbc_execute_schema(sql)
    cursor.execute(sql + " LIMIT 1")
    assert schema == cursor.fetch_arrow_table().schema
    cursor.close()


# -- C. SqlInfo: every id typed as the spec declares it ---------------------------------------------------------
def test_sql_info_types_match_the_spec_id_by_id(client: Any) -> None:
    info, table = _fetch(client, pb.CommandGetSqlInfo())
    assert info.schema == SQL_INFO_SCHEMA == table.schema
    union = table.column("value").combine_chunks()
    children = [f.name for f in union.type]
    got = {}
    for row, info_id in enumerate(table.column("info_name").to_pylist()):
        got[info_id] = (children[union.type_codes[row].as_py()], union[row].as_py())
    assert sorted(got) == sorted(SPEC_SQL_INFO_TYPES), "every id the spec defines, none other"
    for info_id, kind in SPEC_SQL_INFO_TYPES.items():
        assert got[info_id][0] == kind, f"SqlInfo {info_id}: {got[info_id][0]}, spec says {kind}"
    assert got[6][1] is None and got[7][1] is None  # Substrait unsupported: null, not ""
    assert got[5][1] is False and got[8][1] == 0 and got[563][1] is False and got[562][1] == 0
    assert got[3][1] is True and got[10][1] is False and got[9][1] is False


def test_sql_info_subset_and_adbc_get_info(client: Any, adbc_conn: Any) -> None:
    _, table = _fetch(client, pb.CommandGetSqlInfo(info=[7, 562, 99999]))
    assert table.column("info_name").to_pylist() == [7, 562]  # unknown ids skipped
    info = adbc_conn.adbc_get_info()
    assert info["vendor_name"] == "OmniSQL" and info["vendor_version"] == "0.1.0"


# -- C. GetTables schemas: what SELECT * returns, with the spec's column metadata -------------------------------
_FILTERS = {("github", "users"): " WHERE login = 'nobody'",  # github.users must be filtered by login
            ("github", "reviews"): " WHERE repo = 'web-frontend' AND number = 1",  # per pull request
            ("incidents", "list_incidents"): " WHERE service = 'auth'",  # MCP tools: their required arguments
            ("incidents", "get_incident"): " WHERE id = 'INC-1000'"}


def _tables(adbc_conn: Any) -> list[tuple[str, str]]:
    objects = adbc_conn.adbc_get_objects(depth="tables").read_all().to_pylist()
    return [(s["db_schema_name"], t["table_name"]) for s in objects[0]["catalog_db_schemas"]
            for t in s["db_schema_tables"]]


def _result_schema(adbc_conn: Any, schema: str, table: str) -> pa.Schema:
    cursor = adbc_conn.cursor()
    cursor.execute(f"SELECT * FROM {schema}.{table}{_FILTERS.get((schema, table), '')} LIMIT 0")
    result = cursor.fetch_arrow_table().schema
    cursor.close()
    return result


def test_table_schemas_have_the_nullability_and_names_of_query_results(adbc_conn: Any) -> None:
    tables = _tables(adbc_conn)
    assert len(tables) >= 3
    for schema, table in tables:
        declared = adbc_conn.adbc_get_table_schema(table, db_schema_filter=schema)
        result = _result_schema(adbc_conn, schema, table)
        assert declared.names == result.names, (schema, table)
        for d, r in zip(declared, result, strict=True):
            assert d.nullable == r.nullable, (schema, table, d, r)
            if not pa.types.is_timestamp(d.type):  # time zones: see the next test
                assert d.type == r.type, (schema, table, d, r)


def test_table_schema_types_equal_query_result_types(adbc_conn: Any) -> None:
    for schema, table in _tables(adbc_conn):
        declared = adbc_conn.adbc_get_table_schema(table, db_schema_filter=schema)
        assert [f.type for f in declared] == [f.type for f in _result_schema(adbc_conn, schema, table)]


def test_get_tables_schema_carries_column_metadata(client: Any) -> None:
    info, table = _fetch(client, pb.CommandGetTables(include_schema=True, db_schema_filter_pattern="github",
                                                     table_name_filter_pattern="pull_requests"))
    assert info.schema == SCHEMAS["tables_with_schema"] == table.schema
    (row,) = table.to_pylist()
    schema = pa.ipc.read_schema(pa.py_buffer(row["table_schema"]))
    meta = {f.name: {k.decode(): v.decode() for k, v in f.metadata.items()} for f in schema}
    pr_id, created, labels, title = meta["pr_id"], meta["created_at"], meta["labels"], meta["title"]
    for column in meta.values():
        assert column[KEYS["CATALOG_NAME"]] == CATALOG_NAME and column[KEYS["TABLE_NAME"]] == "pull_requests"
        assert column[KEYS["DB_SCHEMA_NAME"]] == column[KEYS["SCHEMA_NAME"]] == "github"
        assert column[KEYS["IS_READ_ONLY"]] == "1" and column[KEYS["IS_AUTO_INCREMENT"]] == "0"
        assert column[KEYS["IS_SEARCHABLE"]] == "1"
    assert (pr_id[KEYS["TYPE_NAME"]], pr_id[KEYS["PRECISION"]], pr_id[KEYS["SCALE"]]) == ("BIGINT", "19", "0")
    assert (created[KEYS["TYPE_NAME"]], created[KEYS["SCALE"]]) == ("TIMESTAMP WITH TIME ZONE", "6")
    assert labels[KEYS["TYPE_NAME"]] == "VARCHAR[]"
    assert title[KEYS["TYPE_NAME"]] == "VARCHAR" and title[KEYS["IS_CASE_SENSITIVE"]] == "1"
    assert any(KEYS["REMARKS"] in column for column in meta.values())  # the catalog's column descriptions


def test_adbc_get_objects_reads_type_names(adbc_conn: Any) -> None:
    """ADBC's GetObjects fills xdbc_type_name from TYPE_NAME; sqlalchemy-adbc reflects types from it."""
    objects = adbc_conn.adbc_get_objects(depth="columns", db_schema_filter="jira",
                                         table_name_filter="issues").read_all().to_pylist()
    columns = {c["column_name"]: c for c in objects[0]["catalog_db_schemas"][0]["db_schema_tables"][0]["table_columns"]}
    assert columns["issue_key"]["xdbc_type_name"] == "VARCHAR"
    assert columns["created_at"]["xdbc_type_name"] == "TIMESTAMP WITH TIME ZONE"
    expected = {"VARCHAR": sa_types.String, "DOUBLE": sa_types.Float, "BIGINT": sa_types.BigInteger,
                "TIMESTAMP WITH TIME ZONE": sa_types.DateTime}
    for column in columns.values():
        name = column["xdbc_type_name"]
        if name in expected:
            assert isinstance(adbc_type_to_sqla(name), expected[name]), name
        else:
            assert name.endswith("[]"), name  # lists: SQLAlchemy has no generic type for them


# -- C. GetXdbcTypeInfo -----------------------------------------------------------------------------------------
def test_xdbc_type_info_schema_order_and_filter(client: Any) -> None:
    info, table = _fetch(client, pb.CommandGetXdbcTypeInfo())
    assert info.schema == SCHEMAS["xdbc"] == table.schema
    rows = table.to_pylist()
    keys = [(r["data_type"], r["type_name"]) for r in rows]
    assert keys == sorted(keys), "ordered by data_type, then type_name"
    names = {r["type_name"] for r in rows}
    assert {"INTEGER", "SMALLINT", "TINYINT", "BIGINT", "HUGEINT", "DOUBLE", "FLOAT", "DECIMAL", "VARCHAR", "BLOB",
            "BOOLEAN", "DATE", "TIME", "TIMESTAMP", "TIMESTAMP WITH TIME ZONE", "INTERVAL", "LIST", "STRUCT",
            "MAP"} <= names
    for r in rows:  # datetime types use the generic DATETIME (9) with a subcode, as the spec says
        if r["data_type"] in (91, 92, 93):
            assert r["sql_data_type"] == 9 and r["datetime_subcode"] is not None
        else:
            assert r["sql_data_type"] == r["data_type"] and r["datetime_subcode"] is None
    _, timestamps = _fetch(client, pb.CommandGetXdbcTypeInfo(data_type=93))
    assert timestamps.column("type_name").to_pylist() == ["TIMESTAMP", "TIMESTAMP WITH TIME ZONE"]


def test_every_type_a_query_returns_is_in_xdbc_type_info(client: Any, adbc_conn: Any) -> None:
    _, types = _fetch(client, pb.CommandGetXdbcTypeInfo())
    known = set(types.column("type_name").to_pylist())
    cursor = adbc_conn.cursor()
    cursor.execute("SELECT 1::TINYINT a, 1::SMALLINT b, 1::INTEGER c, 1::BIGINT d, 1::HUGEINT e, 1.5::FLOAT f, "
                   "1.5::DOUBLE g, 1.5::DECIMAL(9,2) h, 'x' i, 'x'::BLOB j, true k, DATE '2024-01-01' l, "
                   "TIME '10:00' m, TIMESTAMP '2024-01-01' n, TIMESTAMPTZ '2024-01-01' o, INTERVAL 1 DAY p, "
                   "[1] q, {'a': 1} r, MAP {'k': 1} s, 1::UBIGINT t")
    result = cursor.fetch_arrow_table().schema
    cursor.close()
    for field in result:
        name = sql_type_name(field.type)
        base = "LIST" if name.endswith("[]") else name.split("(")[0]
        assert base in known, (field, name)
