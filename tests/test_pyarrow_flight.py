"""pyarrow.flight speaking raw Flight SQL: metadata commands, schema agreement, auth."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.flight as flight
import pytest

from flight_server.commands import pack
from flight_server.metadata import SCHEMAS
from flight_server.proto import flight_sql_pb2 as pb
from flight_server.sql_info import SQL_INFO_SCHEMA


def _descriptor(message: Any) -> flight.FlightDescriptor:
    return flight.FlightDescriptor.for_command(pack(message))


@pytest.fixture()
def client(demo: dict[str, Any], admin_token: str) -> Any:
    c = flight.FlightClient(demo["flight_uri"])
    options = flight.FlightCallOptions(headers=[(b"authorization", f"Bearer {admin_token}".encode())])
    yield c, options
    c.close()


def _fetch(client: Any, message: Any) -> tuple[flight.FlightInfo, pa.Table]:
    c, options = client
    info = c.get_flight_info(_descriptor(message), options)
    table = c.do_get(info.endpoints[0].ticket, options).read_all()
    return info, table


def test_sql_info_layout_and_values(client: Any) -> None:
    info, table = _fetch(client, pb.CommandGetSqlInfo(info=[0, 2, 3, 8, 504, 508]))
    assert info.schema == SQL_INFO_SCHEMA == table.schema
    values = dict(zip(table.column("info_name").to_pylist(), table.column("value").to_pylist(), strict=True))
    assert values[0] == "OmniSQL" and values[3] is True and values[8] == 0 and values[504] == '"'
    assert values[2] == pa.__version__ and "EXPLAIN" in values[508]
    _, everything = _fetch(client, pb.CommandGetSqlInfo())
    assert everything.num_rows > 80


def test_get_tables_with_schema_round_trips(client: Any) -> None:
    info, table = _fetch(client, pb.CommandGetTables(include_schema=True, db_schema_filter_pattern="git%"))
    assert info.schema == SCHEMAS["tables_with_schema"] == table.schema
    rows = table.to_pylist()
    assert [(r["db_schema_name"], r["table_name"]) for r in rows] == [("github", "commits"), ("github", "issues"),
                                                                       ("github", "pull_requests"),
                                                                       ("github", "repositories"),
                                                                       ("github", "reviews"),
                                                                       ("github", "users")]
    schema = pa.ipc.read_schema(pa.py_buffer(rows[2]["table_schema"]))  # pull_requests
    assert "author_email" in schema.names


@pytest.mark.parametrize(("message", "key"), [
    (pb.CommandGetCatalogs(), "catalogs"), (pb.CommandGetDbSchemas(), "db_schemas"),
    (pb.CommandGetTableTypes(), "table_types"), (pb.CommandGetXdbcTypeInfo(), "xdbc"),
    (pb.CommandGetPrimaryKeys(table="issues"), "primary_keys"), (pb.CommandGetExportedKeys(table="issues"), "keys"),
])
def test_metadata_schemas_match_spec(client: Any, message: Any, key: str) -> None:
    info, table = _fetch(client, message)
    assert info.schema == SCHEMAS[key] == table.schema


def test_primary_keys(client: Any) -> None:
    _, table = _fetch(client, pb.CommandGetPrimaryKeys(db_schema="jira", table="issues"))
    assert table.to_pylist()[0]["column_name"] == "issue_key"


def test_flight_info_schema_equals_stream_schema(client: Any) -> None:
    info, table = _fetch(client, pb.CommandStatementQuery(
        query="SELECT gh.number, gh.labels, gh.merged_at, ji.story_points FROM github.pull_requests gh "
              "JOIN jira.issues ji ON gh.branch = ji.branch_name WHERE gh.repo = 'web-frontend'"))
    assert info.schema == table.schema
    assert table.num_rows > 0


def test_ticket_is_bound_to_its_principal(demo: dict[str, Any], client: Any) -> None:
    c, options = client
    info = c.get_flight_info(_descriptor(pb.CommandStatementQuery(query="SELECT 1 AS x")), options)
    other = flight.FlightCallOptions(headers=[(b"authorization", f"Bearer {demo['tokens']['token_qa']}".encode())])
    with pytest.raises(flight.FlightUnauthorizedError, match="ENTITLEMENT_DENIED: the ticket belongs to another"):
        c.do_get(info.endpoints[0].ticket, other).read_all()
    forged = flight.Ticket(info.endpoints[0].ticket.ticket[:-3] + b"xyz")
    with pytest.raises(pa.ArrowInvalid):
        c.do_get(forged, options).read_all()


def test_missing_token_is_unauthenticated(demo: dict[str, Any]) -> None:
    c = flight.FlightClient(demo["flight_uri"])
    with pytest.raises(flight.FlightUnauthenticatedError) as excinfo:
        c.get_flight_info(_descriptor(pb.CommandGetCatalogs()))
    assert "Traceback" not in str(excinfo.value)


def test_basic_token_handshake_issues_bearer(demo: dict[str, Any]) -> None:
    c = flight.FlightClient(demo["flight_uri"])
    header = c.authenticate_basic_token("dev", demo["tokens"]["token_dev"])
    assert header[0] == b"authorization" and header[1].startswith(b"Bearer oms1.")
    options = flight.FlightCallOptions(headers=[header])
    info = c.get_flight_info(_descriptor(pb.CommandGetCatalogs()), options)
    assert c.do_get(info.endpoints[0].ticket, options).read_all().num_rows == 1
    with pytest.raises(flight.FlightUnauthenticatedError):
        c.authenticate_basic_token("dev", "wrong")


def test_updates_are_refused(client: Any) -> None:
    c, options = client
    with pytest.raises(pa.ArrowNotImplementedError, match="UNIMPLEMENTED: OmniSQL is read-only"):
        c.get_flight_info(_descriptor(pb.CommandStatementUpdate(query="DELETE FROM jira.issues")), options)
