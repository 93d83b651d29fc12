"""The Flight SQL service: dispatches commands to metadata answers, the planner and the executor."""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

import pyarrow as pa
from google.protobuf.message import Message

from core.errors import InvalidQuery, QueryCancelled, Unsupported
from flight_server import metadata, progress, sessions
from flight_server.admission import Admission
from flight_server.call import TRACE_HEADER, Call
from flight_server.column_metadata import annotate_result_schema
from flight_server.commands import pack, unpack
from flight_server.limits import ServerLimits
from flight_server.proto import flight_sql_pb2 as pb
from flight_server.query_scope import query_scope, record_query
from flight_server.sql_info import SQL_INFO_SCHEMA, sql_info_table
from flight_server.statements import PreparedStatement, StatementStore
from flight_server.tickets import TicketSigner
from planner.catalog import CATALOG_NAME
from planner.engine import Engine, QueryContext, QueryOptions
from security.principals import Principal

__all__ = ["FlightSqlService"]

log = logging.getLogger("omnisql.flight")
_METADATA_COMMANDS = (pb.CommandGetSqlInfo, pb.CommandGetCatalogs, pb.CommandGetDbSchemas, pb.CommandGetTables,
                      pb.CommandGetTableTypes, pb.CommandGetXdbcTypeInfo, pb.CommandGetPrimaryKeys,
                      pb.CommandGetExportedKeys, pb.CommandGetImportedKeys, pb.CommandGetCrossReference)
_NO_TRANSACTIONS = ("OmniSQL is read-only and runs every query on its own: {what} are not supported "
                    "(GetSqlInfo FLIGHT_SQL_SERVER_TRANSACTION is NONE); run queries without a transaction")
_NO_CANCEL_ACTION = ("{what} is not supported; to stop a query, cancel its DoGet call (a gRPC cancel or deadline "
                     "stops the query and its API calls at once)")
# Flight and Flight SQL actions OmniSQL does not offer, with what to do instead (UNIMPLEMENTED).
UNSUPPORTED_ACTIONS = {
    "BeginTransaction": _NO_TRANSACTIONS.format(what="transactions (BeginTransaction)"),
    "EndTransaction": _NO_TRANSACTIONS.format(what="transactions (EndTransaction)"),
    "BeginSavepoint": _NO_TRANSACTIONS.format(what="savepoints (BeginSavepoint)"),
    "EndSavepoint": _NO_TRANSACTIONS.format(what="savepoints (EndSavepoint)"),
    "CreatePreparedSubstraitPlan": "Substrait plans are not supported (FLIGHT_SQL_SERVER_SUBSTRAIT is false); "
                                   "prepare SQL with CreatePreparedStatement",
    "CancelFlightInfo": _NO_CANCEL_ACTION.format(what="CancelFlightInfo"),
    "CancelQuery": _NO_CANCEL_ACTION.format(what="CancelQuery"),
    "RenewFlightEndpoint": "RenewFlightEndpoint is not supported; a ticket is valid for 10 minutes: call "
                           "GetFlightInfo again for a fresh one",
}


class FlightSqlService:
    """Flight SQL semantics over plain values (command bytes in; schemas, tables and ticket bytes out).
    The gRPC transport (``flight_server/transport.py``) authenticates and frames; this class decides."""

    ACTIONS = (("CreatePreparedStatement", "Prepare a SQL query (returns its dataset and parameter schemas)"),
               ("ClosePreparedStatement", "Release a prepared statement"),
               ("SetSessionOptions", "Set session options: catalog, schema, max_staleness_ms (starts a session, "
                                     "named by the arrow_flight_session_id cookie)"),
               ("GetSessionOptions", "The session's options (catalog, schema, max_staleness_ms)"),
               ("CloseSession", "End the session"),
               (progress.ACTION, progress.DESCRIPTION))

    def __init__(self, engine: Engine, secret: bytes | None = None, limits: ServerLimits | None = None) -> None:
        self.engine = engine
        self.limits = limits or ServerLimits()
        self.tickets = TicketSigner(secret or secrets.token_bytes(32))
        self.statements = StatementStore(max_per_user=self.limits.max_prepared_statements_per_principal)
        self.admission = Admission(self.limits.max_concurrent_queries, self.limits.max_concurrent_queries_per_principal)
        self.session_store = sessions.SessionStore()  # Flight SQL sessions (flight_server/sessions.py)

    def _metadata_table(self, command: Message, principal: Principal) -> pa.Table:
        """Metadata answers show each principal only what it may read (denied tables and columns left out,
        masked columns in their masked type)."""
        catalog = self.engine.visible_catalog(principal)
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

    def _metadata_schema(self, command: Message, principal: Principal) -> pa.Schema:
        if isinstance(command, pb.CommandGetSqlInfo):
            return SQL_INFO_SCHEMA
        if isinstance(command, pb.CommandGetTables) and command.include_schema:
            return metadata.SCHEMAS["tables_with_schema"]
        return self._metadata_table(command, principal).schema

    def _query_of(self, command: Message, user: str) -> tuple[str, pa.Table | None]:
        """The SQL and its bound parameter rows (None when nothing is bound)."""
        if isinstance(command, pb.CommandStatementQuery):
            return command.query, None
        if isinstance(command, pb.CommandPreparedStatementQuery):
            statement = self.statements.get(command.prepared_statement_handle, user)
            return statement.sql, statement.params
        if isinstance(command, pb.CommandStatementUpdate | pb.CommandPreparedStatementUpdate):
            raise InvalidQuery("OmniSQL is read-only: updates are not supported")
        raise InvalidQuery(f"unsupported command {type(command).__name__} for this call")

    # -- Flight RPCs -------------------------------------------------------------------------------------------
    def flight_info(self, call: Call, command_bytes: bytes) -> tuple[pa.Schema, bytes, bytes]:
        """GetFlightInfo: the result schema (planned, no API calls), a ticket redeemable by this principal, and
        the plan's metadata as JSON for ``FlightInfo.app_metadata``."""
        principal = call.principal
        command = unpack(command_bytes)
        if isinstance(command, _METADATA_COMMANDS):
            return self._metadata_schema(command, principal), command_bytes, b""
        sql, params = self._query_of(command, principal.user)
        with self._query(call, "plan") as ctx:
            try:
                schema = self.engine.schema(sql, params, ctx)
            except BaseException as exc:  # a refused query is audited too (denials above all)
                self._audit(ctx, sql, None, exc)
                raise
        handle = self.tickets.sign(principal.user, sql, params)
        return annotate_result_schema(schema), pack(pb.TicketStatementQuery(statement_handle=handle)), _plan_info(ctx)

    @contextmanager
    def result(self, call: Call, ticket: bytes) -> Iterator[Result]:
        """DoGet: run what the ticket names; the block sends the result. A query holds its slot (``admission``)
        until the block ends, so a client that reads slowly holds one of its own slots, not a free worker. A
        client that goes away (``on_cancel``) or the tenant's ``query_deadline_s`` stops the query wherever it
        is: planning, fetching or DuckDB."""
        principal = call.principal
        command = unpack(ticket)
        if isinstance(command, _METADATA_COMMANDS):
            table = self._metadata_table(command, principal)
            yield Result(table.schema, table.to_batches())
            return
        if not isinstance(command, pb.TicketStatementQuery):
            raise InvalidQuery("the ticket is not a statement ticket; call GetFlightInfo first")
        sql, params = self.tickets.verify(command.statement_handle, principal.user)
        with self._query(call, "execute") as ctx:
            try:
                reader = self.engine.stream(sql, params, ctx)
                yield Result(annotate_result_schema(reader.schema), reader)  # sent while DuckDB makes the rest
            except GeneratorExit:  # the client stopped reading: the rest of the result is never made
                self._audit(ctx, sql, ctx.counters.rows, QueryCancelled("the client stopped reading the result"))
                raise
            except BaseException as exc:
                self._audit(ctx, sql, None, exc)
                raise
            self._audit(ctx, sql, ctx.counters.rows, None)
            log.info("query %s", ctx.summary())

    def _audit(self, ctx: QueryContext, sql: str, rows: int | None, error: BaseException | None) -> None:
        """One audit line and one ``omnisql.query_log`` row (flight_server/query_scope.py, shared with HTTP)."""
        record_query(self.engine, ctx, sql, rows, error)

    @contextmanager
    def _query(self, call: Call, stage: str) -> Iterator[QueryContext]:
        """A slot, the root span (a caller's ``traceparent`` header continues its trace) and the context, as for
        an HTTP query (flight_server/query_scope.py). The trace id goes back as ``x-omnisql-trace-id``."""
        with query_scope(self.engine, self.admission, call.principal, self._options(call), transport="flight",
                         stage=stage, traceparent=call.headers.get("traceparent"),
                         tracestate=call.headers.get("tracestate"), on_cancel=call.on_cancel) as ctx:
            call.reply(TRACE_HEADER, ctx.trace_id)
            yield ctx

    def _options(self, call: Call) -> QueryOptions:
        """The query's options: from the call's headers, else its Flight SQL session (``schema`` resolves
        unqualified table names; ``max_staleness_ms``), else the tenant's defaults. A session that expired or
        was closed only loses its options."""
        principal = call.principal
        try:
            values = self.session_store.get(call.session_id, principal.user)
        except sessions.SessionNotFound:
            values = self.session_store.get(None, principal.user)
        schema, staleness = values.get("schema"), values.get("max_staleness_ms")
        header_staleness, allow_stale = call.max_staleness_ms(), call.allow_stale()
        if header_staleness is not None:
            staleness = header_staleness
        return QueryOptions(default_schema=schema if isinstance(schema, str) else None,
                            max_staleness_ms=int(staleness) if isinstance(staleness, int | float) else None,
                            allow_stale=bool(allow_stale))

    def put(self, principal: Principal, command_bytes: bytes, params: pa.Table | None) -> bytes:
        """DoPut: bind parameter rows to a prepared statement (each row is one execution); returns the
        PutResult metadata."""
        command = unpack(command_bytes)
        if not isinstance(command, pb.CommandPreparedStatementQuery):
            self._query_of(command, principal.user)  # raises the read-only error for updates
            raise InvalidQuery(f"DoPut does not accept {type(command).__name__}")
        statement = self.statements.get(command.prepared_statement_handle, principal.user)
        bound = params if params is not None and params.num_rows and params.num_columns else None
        expected = len(statement.parameter_schema)
        if bound is not None and bound.num_columns != expected:
            raise InvalidQuery(f"the statement has {expected} parameter(s) but {bound.num_columns} were bound")
        self.statements.bind(command.prepared_statement_handle, principal.user, bound,
                             self.limits.max_bound_bytes_per_principal)
        result = pb.DoPutPreparedStatementResult(prepared_statement_handle=command.prepared_statement_handle)
        return result.SerializeToString()

    def action(self, call: Call, action_type: str, body: bytes) -> list[bytes]:
        """DoAction: prepared statement lifecycle; returns the result bodies. Session actions need the call's
        session cookie and go through ``session_action``."""
        if action_type == "CreatePreparedStatement":
            request = unpack(body)
            if not isinstance(request, pb.ActionCreatePreparedStatementRequest):
                raise InvalidQuery("CreatePreparedStatement needs an ActionCreatePreparedStatementRequest body")
            return [pack(self._prepare(request.query, call))]
        if action_type == "ClosePreparedStatement":
            request = unpack(body)
            if not isinstance(request, pb.ActionClosePreparedStatementRequest):
                raise InvalidQuery("ClosePreparedStatement needs an ActionClosePreparedStatementRequest body")
            self.statements.close(request.prepared_statement_handle, call.principal.user)
            return []
        if action_type == progress.ACTION:
            return [progress.answer(call.principal, body)]
        if action_type in UNSUPPORTED_ACTIONS:
            raise Unsupported(UNSUPPORTED_ACTIONS[action_type])
        if action_type in sessions.ACTION_TYPES:
            raise RuntimeError(f"{action_type} must go through session_action (it needs the session cookie)")
        supported = ", ".join(name for name, _ in self.ACTIONS)
        raise Unsupported(f"unknown action {action_type!r}; supported: {supported}")

    def session_action(self, principal: Principal, action_type: str, body: bytes, session_id: str | None
                       ) -> sessions.SessionReply:
        """DoAction for SetSessionOptions / GetSessionOptions / CloseSession; ``session_id`` is the one the call
        carries (``sessions.session_id_from_metadata``). The transport sends ``reply.set_cookie`` as a header."""
        schemas = self.engine.visible_catalog(principal).schemas
        return sessions.handle_action(self.session_store, CATALOG_NAME, schemas, principal.user, action_type, body,
                                      session_id)

    def _prepare(self, sql: str, call: Call) -> pb.ActionCreatePreparedStatementResult:
        principal = call.principal
        with self._query(call, "plan") as ctx:
            try:
                prepared = self.engine.prepare(sql, ctx)
            except BaseException as exc:
                self._audit(ctx, sql, None, exc)
                raise
        params_schema = prepared.parameter_schema
        handle = self.statements.add(PreparedStatement(principal.user, sql, params_schema))
        return pb.ActionCreatePreparedStatementResult(
            prepared_statement_handle=handle,
            dataset_schema=annotate_result_schema(prepared.dataset_schema).serialize().to_pybytes(),
            parameter_schema=params_schema.serialize().to_pybytes() if len(params_schema) else b"")


class Result(NamedTuple):
    """A DoGet answer: the schema to announce (with column metadata), then the batches as they are made."""

    schema: pa.Schema
    batches: Iterable[pa.RecordBatch]


def _plan_info(ctx: QueryContext) -> bytes:
    """What is known once the query is planned (it has not run yet; ``omnisql.query_log`` has the rest)."""
    return json.dumps({"trace_id": ctx.trace_id, "planning_ms": round(ctx.counters.planning_ms, 3),
                       "est_api_calls": ctx.counters.est_api_calls, "max_staleness_ms": ctx.freshness.max_staleness_ms,
                       "tables": ctx.tables, "policy": ctx.decisions, "rate_limit_status": ctx.rate_limits},
                      separators=(",", ":")).encode()


def _opt(message: Message, name: str) -> Any:
    return getattr(message, name) if message.HasField(name) else None
