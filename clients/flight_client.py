"""A minimal pyarrow.flight Flight SQL client (CommandStatementQuery → DoGet), used by the CLI."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.flight as flight

from flight_server.commands import pack
from flight_server.proto import flight_sql_pb2 as pb

__all__ = ["run_query", "statement_descriptor"]


def statement_descriptor(sql: str) -> flight.FlightDescriptor:
    return flight.FlightDescriptor.for_command(pack(pb.CommandStatementQuery(query=sql)))


def run_query(uri: str, token: str, sql: str, tls_root_certs: bytes | None = None) -> pa.Table:
    """``tls_root_certs``: PEM of the CA to trust for a ``grpc+tls://`` server (default: the system's)."""
    client = flight.FlightClient(uri, tls_root_certs=tls_root_certs) if tls_root_certs else flight.FlightClient(uri)
    options = flight.FlightCallOptions(headers=[(b"authorization", f"Bearer {token}".encode())])
    try:
        info = client.get_flight_info(statement_descriptor(sql), options)
        return pa.concat_tables(client.do_get(e.ticket, options).read_all() for e in info.endpoints)
    finally:
        client.close()
