"""``POST /v1/query``: the same principals, policy, admission, engine and cache as Flight, over HTTP + JSON.

The query runs on a worker thread (the engine is synchronous); a client that disconnects cancels it like a gRPC
cancel does (fetching and DuckDB stop). JSON answers are capped at ``max_rows`` rows: more is refused with a
pointer to Arrow (``Accept: application/vnd.apache.arrow.stream``) or Flight SQL, never silently cut."""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from core import tracing
from core.errors import InvalidQuery, ResourceExhausted, Unauthenticated
from flight_server.auth import authenticate
from flight_server.gateway.answer import arrow_stream, columns, header_json, json_rows, metadata
from flight_server.gateway.errors import HttpProblem, error_response
from flight_server.gateway.request import ARROW_STREAM, MAX_BODY_BYTES, QueryRequest, parse_body, wants_arrow
from flight_server.gateway.state import GatewayState
from flight_server.query_scope import query_scope, record_query
from flight_server.tracing import collected
from planner.engine import QueryOptions
from security.principals import Principal

__all__ = ["query_endpoint"]

TOKEN_HEADER = "x-user-token"


@dataclass
class _Answer:
    table: pa.Table
    meta: dict[str, Any]


class _Disconnect:
    """``on_cancel`` for the engine: the function to call when the client goes away."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.callbacks: list[Callable[[], object]] = []
        self.gone = False

    def register(self, callback: Callable[[], object]) -> bool:
        with self.lock:
            if self.gone:
                return False
            self.callbacks.append(callback)
            return True

    def fire(self) -> None:
        with self.lock:
            self.gone = True
            callbacks, self.callbacks = self.callbacks, []
        for callback in callbacks:
            callback()


def principal_of(state: GatewayState, request: Request) -> Principal:
    """``X-User-Token: <token>`` or ``Authorization: Bearer <token>``: the same tokens, sessions and JWTs as
    Flight."""
    token = request.headers.get(TOKEN_HEADER)
    if token is not None:
        return authenticate(state.authenticator, [("authorization", f"Bearer {token.strip()}")])
    if "authorization" not in request.headers:
        raise Unauthenticated("no credentials: send 'X-User-Token: <token>' or 'Authorization: Bearer <token>'")
    return authenticate(state.authenticator, [("authorization", request.headers["authorization"])])


async def query_endpoint(request: Request) -> Response:
    state: GatewayState = request.app.state.omnisql
    arrow = wants_arrow(request.headers.get("accept", ""))
    traceparent, tracestate = request.headers.get("traceparent"), request.headers.get("tracestate")
    try:
        raw = await read_body(request)
    except HttpProblem as exc:
        return error_response(exc)
    disconnect = _Disconnect()
    work = asyncio.ensure_future(run_in_threadpool(_serve, state, request, raw, arrow, traceparent, tracestate,
                                                   disconnect))
    watcher = asyncio.ensure_future(_watch(request, disconnect))
    try:
        return await work
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher


async def read_body(request: Request) -> bytes:
    """The body, refused as soon as it passes ``MAX_BODY_BYTES`` (declared or streamed): a query is text, and a
    client must not make the server buffer gigabytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _too_large()
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _too_large()
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large() -> HttpProblem:
    return HttpProblem(413, "RESOURCE_EXHAUSTED", f"the request body is larger than {MAX_BODY_BYTES} bytes; send "
                                                  "the SQL and its parameters only")


async def _watch(request: Request, disconnect: _Disconnect) -> None:
    while not await request.is_disconnected():
        await asyncio.sleep(0.2)
    disconnect.fire()


def _serve(state: GatewayState, request: Request, raw: bytes, arrow: bool, traceparent: str | None,
           tracestate: str | None, disconnect: _Disconnect) -> Response:
    """The whole request under one server span: a bad body or token is answered with its trace id too."""
    parent = tracing.extract_parent(traceparent, tracestate)
    with tracing.span("POST /v1/query", {"http.request.method": "POST", "http.route": "/v1/query"},
                      parent=parent, kind=SpanKind.SERVER) as span:
        trace_id = tracing.trace_id_of(span)
        try:
            principal = principal_of(state, request)
            body = parse_body(raw)
            answer = _run(state, principal, body, arrow, disconnect)
        except Exception as exc:
            response = error_response(exc, trace_id)
            span.set_attribute("http.response.status_code", response.status_code)
            return response
        span.set_attribute("http.response.status_code", 200)
    if arrow:
        return Response(arrow_stream(answer.table), media_type=ARROW_STREAM,
                        headers={"X-OmniSQL-Trace-Id": answer.meta["trace_id"],
                                 "X-OmniSQL-Metadata": header_json(answer.meta)})
    payload = {"columns": columns(answer.table.schema), "rows": json_rows(answer.table),
               "row_count": answer.table.num_rows, **answer.meta}
    return JSONResponse(payload, headers={"X-OmniSQL-Trace-Id": answer.meta["trace_id"]})


def _schema(state: GatewayState, principal: Principal, schema: str | None) -> str | None:
    """``metadata.default_schema``, checked as Flight's session option is: only a schema the principal may read
    (one it may not read is answered as one that does not exist)."""
    if schema is None:
        return None
    schemas = state.engine.visible_catalog(principal).schemas
    if schema not in schemas:
        close = difflib.get_close_matches(schema, schemas, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"schemas: {', '.join(schemas)}"
        raise InvalidQuery(f"metadata.default_schema {schema!r} is not a schema you may read; {hint}")
    return schema


def _run(state: GatewayState, principal: Principal, body: QueryRequest, arrow: bool,
         disconnect: _Disconnect) -> _Answer:
    options = QueryOptions(max_staleness_ms=body.max_staleness_ms, allow_stale=body.allow_stale,
                           default_schema=_schema(state, principal, body.default_schema))
    with query_scope(state.engine, state.admission, principal, options, transport="http",
                     on_cancel=disconnect.register) as ctx, collected(ctx.trace_id) as spans:
        root_span_id = trace.get_current_span().get_span_context().span_id or None  # the query's root span
        try:
            table = state.engine.execute(body.sql, body.params, ctx)
            if not arrow and table.num_rows > state.max_rows:
                raise ResourceExhausted(
                    f"the result has {table.num_rows} rows, more than a JSON answer holds (http_max_rows: "
                    f"{state.max_rows}, or serve --http-max-rows); add a LIMIT, ask for Arrow IPC (Accept: "
                    f"{ARROW_STREAM}), or use Flight SQL (ADBC, the omnisql CLI) for large results")
        except BaseException as exc:
            record_query(state.engine, ctx, body.sql, None, exc)
            raise
        record_query(state.engine, ctx, body.sql, table.num_rows, None)
        return _Answer(table, metadata(ctx, list(spans), root_span_id))
