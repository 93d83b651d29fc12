"""The Flight SQL service: dispatches commands to metadata answers, the planner and the executor."""

from __future__ import annotations

import logging
import secrets
from typing import Any

import pyarrow as pa
from google.protobuf.message import Message

from connectors.errors import InvalidQuery
from flight_server import metadata
from flight_server.commands import pack, unpack
from flight_server.proto import flight_sql_pb2 as pb
from flight_server.sql_info import SQL_INFO_SCHEMA, sql_info_table
from flight_server.statements import PreparedStatement, StatementStore, parameter_schema
from flight_server.tickets import TicketSigner
from planner.engine import Engine
from planner.execute import OnCancel
from security.principals import Principal

__all__ = ["FlightSqlService"]

log = logging.getLogger("omnisql.flight")
_METADATA_COMMANDS = (pb.CommandGetSqlInfo, pb.CommandGetCatalogs, pb.CommandGetDbSchemas, pb.CommandGetTables,
                      pb.CommandGetTableTypes, pb.CommandGetXdbcTypeInfo, pb.CommandGetPrimaryKeys,
                      pb.CommandGetExportedKeys, pb.CommandGetImportedKeys, pb.CommandGetCrossReference)


class FlightSqlService:
    """Flight SQL semantics over plain values (command bytes in; schemas, tables and ticket bytes out).
    The gRPC transport (``flight_server/transport.py``) authenticates and frames; this class decides."""

    ACTIONS = (("CreatePreparedStatement", "Prepare a SQL query (returns its dataset and parameter schemas)"),
               ("ClosePreparedStatement", "Release a prepared statement"))

    def __init__(self, engine: Engine, secret: bytes | None = None) -> None:
        self.engine = engine
        self.tickets = TicketSigner(secret or secrets.token_bytes(32))
        self.statements = StatementStore()

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
    def flight_info(self, principal: Principal, command_bytes: bytes) -> tuple[pa.Schema, bytes]:
        """GetFlightInfo: the result schema (planned, no API calls) and a ticket redeemable by this principal."""
        command = unpack(command_bytes)
        if isinstance(command, _METADATA_COMMANDS):
            return self._metadata_schema(command), command_bytes
        sql, params = self._query_of(command, principal.user)
        schema = self.engine.plan(sql, params).schema
        handle = self.tickets.sign(principal.user, sql, params)
        return schema, pack(pb.TicketStatementQuery(statement_handle=handle))

    def stream(self, principal: Principal, ticket: bytes, on_cancel: OnCancel | None = None) -> pa.Table:
        """DoGet: run what the ticket names (``on_cancel``: see ``Executor.execute``)."""
        command = unpack(ticket)
        if isinstance(command, _METADATA_COMMANDS):
            return self._metadata_table(command)
        if not isinstance(command, pb.TicketStatementQuery):
            raise InvalidQuery("the ticket is not a statement ticket; call GetFlightInfo first")
        sql, params = self.tickets.verify(command.statement_handle, principal.user)
        result = self.engine.query(sql, params, on_cancel)
        log.info("query user=%s api_calls=%d fetch_ms=%.1f duckdb_ms=%.1f rows=%d", principal.user,
                 result.api_calls, result.fetch_ms, result.duckdb_ms, result.table.num_rows)
        return result.table

    def put(self, principal: Principal, command_bytes: bytes, params: pa.Table | None) -> bytes:
        """DoPut: bind one row of parameters to a prepared statement; returns the PutResult metadata."""
        command = unpack(command_bytes)
        if not isinstance(command, pb.CommandPreparedStatementQuery):
            self._query_of(command, principal.user)  # raises the read-only error for updates
            raise InvalidQuery(f"DoPut does not accept {type(command).__name__}")
        statement = self.statements.get(command.prepared_statement_handle, principal.user)
        if params is not None and params.num_rows > 1:
            raise InvalidQuery(f"a query takes one row of parameters, got {params.num_rows}; execute once per row")
        statement.params = [col[0].as_py() for col in params.columns] if params and params.num_rows else []
        expected = len(statement.parameter_schema)
        if statement.params and len(statement.params) != expected:
            raise InvalidQuery(f"the statement has {expected} parameter(s) but {len(statement.params)} were bound")
        result = pb.DoPutPreparedStatementResult(prepared_statement_handle=command.prepared_statement_handle)
        return result.SerializeToString()

    def action(self, principal: Principal, action_type: str, body: bytes) -> list[bytes]:
        """DoAction: prepared statement lifecycle; returns the result bodies."""
        if action_type == "CreatePreparedStatement":
            request = unpack(body)
            if not isinstance(request, pb.ActionCreatePreparedStatementRequest):
                raise InvalidQuery("CreatePreparedStatement needs an ActionCreatePreparedStatementRequest body")
            return [pack(self._prepare(request.query, principal))]
        if action_type == "ClosePreparedStatement":
            request = unpack(body)
            if not isinstance(request, pb.ActionClosePreparedStatementRequest):
                raise InvalidQuery("ClosePreparedStatement needs an ActionClosePreparedStatementRequest body")
            self.statements.close(request.prepared_statement_handle, principal.user)
            return []
        supported = ", ".join(name for name, _ in self.ACTIONS)
        raise InvalidQuery(f"unsupported action {action_type!r}; supported: {supported}")

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
