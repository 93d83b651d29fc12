"""A small Flight SQL client over grpcio, for the CLI: every call can be cancelled from another thread (the
server sees a gRPC CANCELLED and stops the query), errors arrive as the server's own message with the
``x-omnisql-error-code`` trailer (no client debug context), and a result streams batch by batch.

pyarrow.flight cannot cancel a GetFlightInfo in flight, and its errors carry gRPC's debug context twice; ADBC
hides the call entirely. This module speaks the FlightService directly (the same protobufs the server uses) and
turns each ``FlightData`` back into Arrow IPC."""

from __future__ import annotations

import json
import secrets
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import grpc
import pyarrow as pa

from flight_server.commands import pack
from flight_server.proto import flight_pb2
from flight_server.proto import flight_sql_pb2 as pb

__all__ = ["CallCancelled", "FlightRpc", "PlanInfo", "RpcError", "TableEntry", "parse_uri"]

SERVICE = "/arrow.flight.protocol.FlightService/"
ERROR_CODE_HEADER = "x-omnisql-error-code"
TRACE_HEADER = "x-omnisql-trace-id"
PROGRESS_ACTION = "omnisql.QueryProgress"  # flight_server/progress.py
_CONTINUATION = b"\xff\xff\xff\xff"
_EOS = _CONTINUATION + b"\x00\x00\x00\x00"


class RpcError(Exception):
    """A call failed: ``status`` is the gRPC status name (``INVALID_ARGUMENT``), ``code`` OmniSQL's
    ``x-omnisql-error-code`` when the server sent one, ``message`` the server's text (or gRPC's, for transport
    failures such as a server that is not running)."""

    def __init__(self, status: str, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


class CallCancelled(Exception):
    """The call was cancelled by this client (``FlightRpc.cancel``)."""


@dataclass(frozen=True)
class PlanInfo:
    """What GetFlightInfo answered: the tickets, the result schema and OmniSQL's plan metadata (JSON in
    ``FlightInfo.app_metadata``: ``trace_id``, ``est_api_calls``, ...)."""

    tickets: tuple[bytes, ...]
    schema: pa.Schema | None
    metadata: dict[str, Any] = field(default_factory=dict)
    total_records: int = -1


@dataclass(frozen=True)
class TableEntry:
    catalog: str | None
    schema_name: str | None
    name: str
    table_type: str
    schema: pa.Schema | None

    @property
    def qualified_name(self) -> str:
        return f"{self.schema_name}.{self.name}" if self.schema_name else self.name


def parse_uri(uri: str) -> tuple[str, bool]:
    """``grpc://host:port`` → (``host:port``, False); ``grpc+tls://`` → (…, True). ValueError otherwise."""
    parts = urlsplit(uri)
    if parts.scheme not in ("grpc", "grpc+tcp", "grpc+tls") or not parts.hostname or parts.port is None:
        raise ValueError(f"{uri!r} is not a Flight URI; write it as grpc://HOST:PORT or grpc+tls://HOST:PORT")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{host}:{parts.port}", parts.scheme == "grpc+tls"


def _frame(header: bytes, body: bytes) -> bytes:
    """One encapsulated Arrow IPC message: continuation, padded metadata length, metadata, padding, body."""
    padding = -len(header) % 8
    return b"".join([_CONTINUATION, struct.pack("<i", len(header) + padding), header, b"\x00" * padding, body])


def _schema_of(data: bytes) -> pa.Schema | None:
    """The schema IPC message Flight carries in ``FlightInfo.schema`` and GetTables' ``table_schema``."""
    if not data:
        return None
    return pa.ipc.read_schema(pa.py_buffer(data))


class FlightRpc:
    """One channel to one server, with the caller's token on every call. ``cancel()`` (from any thread, e.g.
    the Ctrl-C handler) cancels whatever call is running and makes the next one fail at once."""

    def __init__(self, uri: str, token: str, tls_root_certs: bytes | None = None,
                 headers: dict[str, str] | None = None) -> None:
        target, tls = parse_uri(uri)
        options = [("grpc.max_receive_message_length", -1), ("grpc.enable_retries", 0)]
        if tls:
            creds = grpc.ssl_channel_credentials(root_certificates=tls_root_certs)
            self.channel = grpc.secure_channel(target, creds, options=options)
        else:
            self.channel = grpc.insecure_channel(target, options=options)
        self.uri = uri
        # Our calls name their trace (W3C traceparent), so the trace id of a query is known before it runs: the
        # progress line asks the server about it while DoGet is still fetching.
        self.trace_id: str | None = secrets.token_hex(16)
        self.metadata = [("authorization", f"Bearer {token}"),
                         ("traceparent", f"00-{self.trace_id}-{secrets.token_hex(8)}-01"), *(headers or {}).items()]
        self._lock = threading.Lock()
        self._call: Any = None
        self._cancelled = False

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> FlightRpc:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- cancellation ------------------------------------------------------------------------------------------
    def cancel(self) -> None:
        """Send a gRPC cancel for the running call (the server stops the query: planning, fetching, DuckDB)."""
        with self._lock:
            self._cancelled = True
            call = self._call
        if call is not None:
            call.cancel()

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def _start(self, call: Any) -> Any:
        with self._lock:
            self._call = call
            if self._cancelled:
                call.cancel()
        return call

    def _error(self, exc: grpc.RpcError) -> Exception:
        code = exc.code() if hasattr(exc, "code") else None
        if code == grpc.StatusCode.CANCELLED and self._cancelled:
            return CallCancelled("cancelled")
        trailers = dict(exc.trailing_metadata() or ()) if hasattr(exc, "trailing_metadata") else {}
        details = exc.details() if hasattr(exc, "details") else str(exc)
        omnisql_code = trailers.get(ERROR_CODE_HEADER)
        return RpcError(code.name if code is not None else "UNKNOWN", str(details or ""),
                        str(omnisql_code) if omnisql_code else None)

    def _note_headers(self, call: Any) -> None:
        try:
            for key, value in call.initial_metadata() or ():
                if key == TRACE_HEADER:
                    self.trace_id = str(value)
        except grpc.RpcError:
            pass

    # -- calls -------------------------------------------------------------------------------------------------
    def get_flight_info(self, command: bytes) -> PlanInfo:
        method = self.channel.unary_unary(SERVICE + "GetFlightInfo",
                                          request_serializer=flight_pb2.FlightDescriptor.SerializeToString,
                                          response_deserializer=flight_pb2.FlightInfo.FromString)
        descriptor = flight_pb2.FlightDescriptor(type=flight_pb2.FlightDescriptor.CMD, cmd=command)
        if self._cancelled:
            raise CallCancelled("cancelled")
        future = self._start(method.future(descriptor, metadata=self.metadata))
        try:
            info = future.result()
        except grpc.FutureCancelledError:
            raise CallCancelled("cancelled") from None
        except grpc.RpcError as exc:
            raise self._error(exc) from None
        self._note_headers(future)
        metadata: dict[str, Any] = {}
        if info.app_metadata:
            try:
                metadata = json.loads(info.app_metadata)
            except ValueError:
                metadata = {}
        return PlanInfo(tuple(e.ticket.ticket for e in info.endpoint), _schema_of(info.schema), metadata,
                        info.total_records)

    def stream(self, ticket: bytes) -> tuple[pa.Schema | None, Iterator[pa.RecordBatch]]:
        """DoGet: the stream's schema (None when the server sent no message), then its record batches as they
        arrive."""
        method = self.channel.unary_stream(SERVICE + "DoGet", request_serializer=flight_pb2.Ticket.SerializeToString,
                                           response_deserializer=flight_pb2.FlightData.FromString)
        if self._cancelled:
            raise CallCancelled("cancelled")
        call = self._start(method(flight_pb2.Ticket(ticket=ticket), metadata=self.metadata))
        messages = iter(call)
        try:
            first = next((m for m in messages if m.data_header), None)
        except grpc.RpcError as exc:
            raise self._error(exc) from None
        self._note_headers(call)
        if first is None:
            return None, iter(())
        schema_frame = _frame(first.data_header, first.data_body)
        schema = pa.ipc.open_stream(pa.py_buffer(schema_frame + _EOS)).schema
        return schema, self._batches(schema_frame, messages)

    def _batches(self, schema_frame: bytes, messages: Iterator[Any]) -> Iterator[pa.RecordBatch]:
        dictionaries: list[bytes] = []
        try:
            for message in messages:
                if not message.data_header:
                    continue
                frame = _frame(message.data_header, message.data_body)
                batches = list(pa.ipc.open_stream(pa.py_buffer(b"".join([schema_frame, *dictionaries, frame, _EOS]))))
                if not batches:
                    dictionaries.append(frame)
                    continue
                yield from batches
        except grpc.RpcError as exc:
            raise self._error(exc) from None

    def progress(self, timeout_s: float = 2.0) -> dict[str, Any]:
        """The server's ``omnisql.QueryProgress`` for our trace: ``running`` and, while it runs, ``api_calls`` per
        connector so far. Empty when the server cannot say (an older server, a failed call): progress is a nicety."""
        method = self.channel.unary_stream(SERVICE + "DoAction", request_serializer=flight_pb2.Action.SerializeToString,
                                           response_deserializer=flight_pb2.Result.FromString)
        try:
            results = list(method(flight_pb2.Action(type=PROGRESS_ACTION, body=str(self.trace_id).encode()),
                                  metadata=self.metadata, timeout=timeout_s))
            answer = json.loads(results[0].body) if results else {}
        except (grpc.RpcError, ValueError):
            return {}
        return answer if isinstance(answer, dict) else {}

    # -- Flight SQL commands -----------------------------------------------------------------------------------
    def plan(self, sql: str) -> PlanInfo:
        return self.get_flight_info(pack(pb.CommandStatementQuery(query=sql)))

    def tables(self, schema_pattern: str | None = None, table_pattern: str | None = None) -> list[TableEntry]:
        """GetTables with ``include_schema``: every table the principal may read, with its columns."""
        command = pb.CommandGetTables(include_schema=True)
        if schema_pattern is not None:
            command.db_schema_filter_pattern = schema_pattern
        if table_pattern is not None:
            command.table_name_filter_pattern = table_pattern
        info = self.get_flight_info(pack(command))
        rows: list[dict[str, Any]] = []
        for ticket in info.tickets:
            _, batches = self.stream(ticket)
            for batch in batches:
                rows += batch.to_pylist()
        return [TableEntry(r.get("catalog_name"), r.get("db_schema_name"), r["table_name"], r["table_type"],
                           _schema_of(r.get("table_schema") or b"")) for r in rows]
