"""The Flight SQL service: dispatches commands to metadata answers, the planner and the executor."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.flight as flight
from google.protobuf.message import Message

from connectors.errors import InvalidQuery
from flight_server import metadata
from flight_server.auth import MIDDLEWARE_KEY, AuthMiddleware, AuthMiddlewareFactory, HandshakeHandler
from flight_server.commands import pack, unpack
from flight_server.errors import translate_errors
from flight_server.proto import flight_sql_pb2 as pb
from flight_server.sql_info import SQL_INFO_SCHEMA, sql_info_table
from flight_server.statements import PreparedStatement, StatementStore, parameter_schema
from flight_server.tickets import TicketSigner
from planner.engine import Engine
from security.principals import Principal, TokenAuthenticator

__all__ = ["OmniSQLFlightServer"]

log = logging.getLogger("omnisql.flight")
_METADATA_COMMANDS = (pb.CommandGetSqlInfo, pb.CommandGetCatalogs, pb.CommandGetDbSchemas, pb.CommandGetTables,
                      pb.CommandGetTableTypes, pb.CommandGetXdbcTypeInfo, pb.CommandGetPrimaryKeys,
                      pb.CommandGetExportedKeys, pb.CommandGetImportedKeys, pb.CommandGetCrossReference)


class OmniSQLFlightServer(flight.FlightServerBase):
    def __init__(self, location: str, engine: Engine, authenticator: TokenAuthenticator,
                 secret: bytes | None = None) -> None:
        super().__init__(location, auth_handler=HandshakeHandler(),
                         middleware={MIDDLEWARE_KEY: AuthMiddlewareFactory(authenticator)})
        self.engine = engine
        self.tickets = TicketSigner(secret or secrets.token_bytes(32))
        self.statements = StatementStore()

    # -- helpers -----------------------------------------------------------------------------------------------
    @staticmethod
    def principal(context: flight.ServerCallContext) -> Principal:
        middleware = context.get_middleware(MIDDLEWARE_KEY)
        if not isinstance(middleware, AuthMiddleware):
            raise flight.FlightUnauthenticatedError("UNAUTHENTICATED: no credentials")
        return middleware.principal

    def _metadata_table(self, command: Message) -> pa.Table:
        catalog = self.engine.catalog
        if isinstance(command, pb.CommandGetSqlInfo):
            return sql_info_table(list(command.info))
        if isinstance(command, pb.CommandGetCatalogs):
            return metadata.catalogs()
        if isinstance(command, pb.CommandGetDbSchemas):
            return metadata.db_schemas(catalog, _opt(command, "catalog"), _opt(command, "db_schema_filter_pattern"))
        if isinstance(command, pb.CommandGetTables):
            return metadata.tables(catalog, _opt(command, "catalog"), _opt(command, "db_schema_filter_pattern"),
                                   _opt(command, "table_name_filter_pattern"), list(command.table_types),
                                   command.include_schema)
        if isinstance(command, pb.CommandGetTableTypes):
            return metadata.table_types()
        if isinstance(command, pb.CommandGetXdbcTypeInfo):
            return metadata.xdbc_type_info(_opt(command, "data_type"))
        if isinstance(command, pb.CommandGetPrimaryKeys):
            return metadata.primary_keys(catalog, _opt(command, "catalog"), _opt(command, "db_schema"),
                                         command.table)
        return metadata.keys_empty()

    def _metadata_schema(self, command: Message) -> pa.Schema:
        if isinstance(command, pb.CommandGetSqlInfo):
            return SQL_INFO_SCHEMA
        if isinstance(command, pb.CommandGetTables) and command.include_schema:
            return metadata.SCHEMAS["tables_with_schema"]
        return self._metadata_table(command).schema

    def _query_of(self, command: Message, user: str) -> tuple[str, list[Any]]:
        if isinstance(command, pb.CommandStatementQuery):
            return command.query, []
        if isinstance(command, pb.CommandPreparedStatementQuery):
            statement = self.statements.get(command.prepared_statement_handle, user)
            return statement.sql, list(statement.params)
        if isinstance(command, pb.CommandStatementUpdate | pb.CommandPreparedStatementUpdate):
            raise InvalidQuery("OmniSQL is read-only: updates are not supported")
        raise InvalidQuery(f"unsupported command {type(command).__name__} for this call")

    # -- Flight RPCs -------------------------------------------------------------------------------------------
    @translate_errors
    def get_flight_info(self, context: flight.ServerCallContext, descriptor: flight.FlightDescriptor
                        ) -> flight.FlightInfo:
        principal = self.principal(context)
        command = unpack(descriptor.command)
        if isinstance(command, _METADATA_COMMANDS):
            schema, ticket = self._metadata_schema(command), flight.Ticket(descriptor.command)
        else:
            sql, params = self._query_of(command, principal.user)
            schema = self.engine.plan(sql, params).schema
            handle = self.tickets.sign(principal.user, sql, params)
            ticket = flight.Ticket(pack(pb.TicketStatementQuery(statement_handle=handle)))
        return flight.FlightInfo(schema, descriptor, [flight.FlightEndpoint(ticket, [])], -1, -1)

    @translate_errors
    def get_schema(self, context: flight.ServerCallContext, descriptor: flight.FlightDescriptor
                   ) -> flight.SchemaResult:
        """Exactly GetFlightInfo's schema (signing the unused ticket costs one HMAC)."""
        return flight.SchemaResult(self.get_flight_info(context, descriptor).schema)

    @translate_errors
    def do_get(self, context: flight.ServerCallContext, ticket: flight.Ticket) -> flight.FlightDataStream:
        principal = self.principal(context)
        command = unpack(ticket.ticket)
        if isinstance(command, _METADATA_COMMANDS):
            return flight.RecordBatchStream(self._metadata_table(command))
        if not isinstance(command, pb.TicketStatementQuery):
            raise InvalidQuery("the ticket is not a statement ticket; call GetFlightInfo first")
        sql, params = self.tickets.verify(command.statement_handle, principal.user)
        result = self.engine.query(sql, params)
        log.info("query user=%s api_calls=%d fetch_ms=%.1f duckdb_ms=%.1f rows=%d", principal.user,
                 result.api_calls, result.fetch_ms, result.duckdb_ms, result.table.num_rows)
        return flight.RecordBatchStream(result.table)

    @translate_errors
    def do_put(self, context: flight.ServerCallContext, descriptor: flight.FlightDescriptor,
               reader: flight.MetadataRecordBatchReader, writer: flight.FlightMetadataWriter) -> None:
        principal = self.principal(context)
        command = unpack(descriptor.command)
        if not isinstance(command, pb.CommandPreparedStatementQuery):
            self._query_of(command, principal.user)  # raises the read-only error for updates
            raise InvalidQuery(f"DoPut does not accept {type(command).__name__}")
        statement = self.statements.get(command.prepared_statement_handle, principal.user)
        params = reader.read_all()
        if params.num_rows > 1:
            raise InvalidQuery(f"a query takes one row of parameters, got {params.num_rows}; execute once per row")
        statement.params = [col[0].as_py() for col in params.columns] if params.num_rows else []
        expected = len(statement.parameter_schema)
        if params.num_rows and len(statement.params) != expected:
            raise InvalidQuery(f"the statement has {expected} parameter(s) but {len(statement.params)} were bound")
        result = pb.DoPutPreparedStatementResult(prepared_statement_handle=command.prepared_statement_handle)
        writer.write(pa.py_buffer(result.SerializeToString()))

    @translate_errors
    def do_action(self, context: flight.ServerCallContext, action: flight.Action) -> Iterator[flight.Result]:
        principal = self.principal(context)
        if action.type == "CreatePreparedStatement":
            request = unpack(action.body.to_pybytes())
            assert isinstance(request, pb.ActionCreatePreparedStatementRequest)
            return iter([flight.Result(pack(self._prepare(request.query, principal)))])
        if action.type == "ClosePreparedStatement":
            request = unpack(action.body.to_pybytes())
            assert isinstance(request, pb.ActionClosePreparedStatementRequest)
            self.statements.close(request.prepared_statement_handle, principal.user)
            return iter([])
        raise InvalidQuery(f"unsupported action {action.type}; supported: CreatePreparedStatement, "
                           "ClosePreparedStatement")

    def list_actions(self, context: flight.ServerCallContext) -> list[tuple[str, str]]:
        return [("CreatePreparedStatement", "Prepare a SQL query"),
                ("ClosePreparedStatement", "Release a prepared statement")]

    def _prepare(self, sql: str, principal: Principal) -> pb.ActionCreatePreparedStatementResult:
        params_schema = parameter_schema(sql, self.engine.catalog)
        # The result schema is known before any API call; with parameters unbound, plan with NULLs.
        dataset = self.engine.plan(sql, [None] * len(params_schema)).schema
        handle = self.statements.add(PreparedStatement(principal.user, sql, params_schema))
        return pb.ActionCreatePreparedStatementResult(
            prepared_statement_handle=handle, dataset_schema=dataset.serialize().to_pybytes(),
            parameter_schema=params_schema.serialize().to_pybytes() if len(params_schema) else b"")


def _opt(message: Message, name: str) -> Any:
    return getattr(message, name) if message.HasField(name) else None
