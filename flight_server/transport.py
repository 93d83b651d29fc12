"""Arrow Flight over gRPC, served with grpcio.

We serve the FlightService ourselves instead of through pyarrow's ``FlightServerBase`` because pyarrow turns
every Python exception that maps to INVALID_ARGUMENT into a status whose message carries the Python traceback
(apache/arrow#34251). Owning the transport, each status is exactly our message and code. Batches still travel
as Arrow IPC, framed by ``flight_server/ipc.py``; the Flight SQL semantics live in ``flight_server/server.py``.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
from google.protobuf.message import DecodeError, Message

from core.errors import InvalidQuery, Unsupported
from flight_server.auth import authenticate, authenticate_handshake
from flight_server.call import Call
from flight_server.errors import GrpcError, status_of
from flight_server.ipc import flight_data_stream, read_flight_data
from flight_server.limits import ServerLimits
from flight_server.proto import flight_pb2 as fpb
from flight_server.server import FlightSqlService
from flight_server.sessions import ACTION_TYPES as SESSION_ACTIONS
from flight_server.sessions import session_id_from_metadata
from security.principals import Principal, TokenAuthenticator

__all__ = ["FlightGrpcServer"]

log = logging.getLogger("omnisql.flight")
SERVICE_NAME = "arrow.flight.protocol.FlightService"
T = TypeVar("T")


def _abort(context: grpc.ServicerContext, method: str, exc: BaseException) -> None:
    code, message, trailers = status_of(exc, method)
    if trailers:
        context.set_trailing_metadata(tuple(trailers))
    context.abort(code, message)


@dataclass(frozen=True)
class _Undecodable:
    """A request message that is not the protobuf its RPC takes. gRPC's own deserializer would fail the call
    with INTERNAL; ours hands this to the handler, which refuses it as INVALID_QUERY."""

    message: str

    def refuse(self) -> InvalidQuery:
        return InvalidQuery(f"the request is not a valid {self.message} protobuf; use a Flight client")


def _decoder(cls: type[Message]) -> Callable[[bytes], Any]:
    def decode(data: bytes) -> Any:
        try:
            return cls.FromString(data)
        except (DecodeError, ValueError):  # invalid UTF-8 in a string field is a DecodeError; be safe
            return _Undecodable(cls.__name__)

    return decode


def _decoded(request: Any) -> Any:
    """The request, or the refusal of an undecodable one; a request stream is checked message by message."""
    if isinstance(request, _Undecodable):
        raise request.refuse()
    if isinstance(request, Message):
        return request
    return _checked(request)


def _checked(messages: Iterator[Any]) -> Iterator[Any]:
    for message in messages:
        if isinstance(message, _Undecodable):
            raise message.refuse()
        yield message


def _unary(method: str, fn: Callable[[Any, grpc.ServicerContext], T]) -> Callable[[Any, grpc.ServicerContext], T]:
    @functools.wraps(fn)
    def handler(request: Any, context: grpc.ServicerContext) -> T:
        try:
            return fn(_decoded(request), context)
        except Exception as exc:
            _abort(context, method, exc)
            raise  # unreachable: abort raises

    return handler


def _streaming(method: str, fn: Callable[[Any, grpc.ServicerContext], Iterator[T]]
               ) -> Callable[[Any, grpc.ServicerContext], Iterator[T]]:
    @functools.wraps(fn)
    def handler(request: Any, context: grpc.ServicerContext) -> Iterator[T]:
        try:
            yield from fn(_decoded(request), context)
        except Exception as exc:
            _abort(context, method, exc)

    return handler


class FlightGrpcServer:
    """A started gRPC server answering the FlightService on ``host:port`` (``port`` 0 picks a free one), over TLS
    when given ``tls=(certificate chain PEM, private key PEM)``.

    The worker pool is sized from ``limits`` so the query caps (``flight_server/admission.py``) bite before the
    workers run out, and gRPC refuses a call beyond the pool (RESOURCE_EXHAUSTED) instead of queueing it."""

    def __init__(self, service: FlightSqlService, authenticator: TokenAuthenticator, host: str, port: int,
                 tls: tuple[bytes, bytes] | None = None, limits: ServerLimits | None = None,
                 share_port: bool = False) -> None:
        self.service = service
        self.authenticator = authenticator
        self.limits = limits or service.limits
        workers = self.limits.grpc_workers
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="omnisql-grpc"),
            maximum_concurrent_rpcs=workers,
            # A taken port is an error, never a silently shared one — except among the processes of one
            # ``serve --workers N``, which share it on purpose (flight_server/workers.py).
            options=[("grpc.so_reuseport", 1 if share_port else 0),
                     ("grpc.max_receive_message_length", self.limits.max_receive_message_bytes),
                     ("grpc.max_send_message_length", -1)])
        self.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME, self._handlers()),))
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        try:
            if tls is None:
                self.port = self.server.add_insecure_port(address)
            else:
                cert_chain, private_key = tls
                credentials = grpc.ssl_server_credentials([(private_key, cert_chain)])
                self.port = self.server.add_secure_port(address, credentials)
        except RuntimeError as exc:
            raise OSError(f"cannot listen on {address}: is the port taken? ({exc})") from None
        if self.port == 0:
            raise OSError(f"cannot listen on {address}: is the port taken?")
        self.server.start()

    def stop(self, grace_s: float = 1.0) -> None:
        self.server.stop(grace_s).wait()

    def _principal(self, context: grpc.ServicerContext) -> Principal:
        return authenticate(self.authenticator, context.invocation_metadata())

    def _call(self, context: grpc.ServicerContext, principal: Principal | None = None) -> Call:
        """The call as the service sees it (authenticated here unless ``principal`` already is)."""
        def send_header(name: str, value: str) -> None:
            with contextlib.suppress(ValueError, RuntimeError):  # already sent, or the call has ended
                context.send_initial_metadata(((name, value),))

        return Call(principal or self._principal(context), _session(context), context.add_callback,
                    _headers(context), send_header)

    def _handlers(self) -> dict[str, grpc.RpcMethodHandler]:
        g = grpc
        return {
            "Handshake": g.stream_stream_rpc_method_handler(
                _streaming("Handshake", self.handshake), _decoder(fpb.HandshakeRequest),
                fpb.HandshakeResponse.SerializeToString),
            "ListFlights": g.unary_stream_rpc_method_handler(
                _streaming("ListFlights", self.list_flights), _decoder(fpb.Criteria),
                fpb.FlightInfo.SerializeToString),
            "GetFlightInfo": g.unary_unary_rpc_method_handler(
                _unary("GetFlightInfo", self.get_flight_info), _decoder(fpb.FlightDescriptor),
                fpb.FlightInfo.SerializeToString),
            "GetSchema": g.unary_unary_rpc_method_handler(
                _unary("GetSchema", self.get_schema), _decoder(fpb.FlightDescriptor),
                fpb.SchemaResult.SerializeToString),
            "DoGet": g.unary_stream_rpc_method_handler(
                _streaming("DoGet", self.do_get), _decoder(fpb.Ticket), None),  # already serialized FlightData
            "DoPut": g.stream_stream_rpc_method_handler(
                _streaming("DoPut", self.do_put), _decoder(fpb.FlightData), fpb.PutResult.SerializeToString),
            "PollFlightInfo": g.unary_unary_rpc_method_handler(
                _unary("PollFlightInfo", self.poll_flight_info), _decoder(fpb.FlightDescriptor), None),
            "DoExchange": g.stream_stream_rpc_method_handler(
                _streaming("DoExchange", self.do_exchange), _decoder(fpb.FlightData), None),
            "DoAction": g.unary_stream_rpc_method_handler(
                _streaming("DoAction", self.do_action), _decoder(fpb.Action), fpb.Result.SerializeToString),
            "ListActions": g.unary_stream_rpc_method_handler(
                _streaming("ListActions", self.list_actions), _decoder(fpb.Empty),
                fpb.ActionType.SerializeToString),
        }

    # -- the RPCs ----------------------------------------------------------------------------------------------
    def handshake(self, requests: Iterator[fpb.HandshakeRequest], context: grpc.ServicerContext
                  ) -> Iterator[fpb.HandshakeResponse]:
        """Basic → Bearer: the issued token goes back as an ``authorization`` header. We answer without reading
        the client's messages: Go's Flight client waits for our answer before it half-closes."""
        _, issued = authenticate_handshake(self.authenticator, context.invocation_metadata())
        if issued:
            context.send_initial_metadata((("authorization", f"Bearer {issued}"),))
        return iter(())

    def list_flights(self, criteria: fpb.Criteria, context: grpc.ServicerContext) -> Iterator[fpb.FlightInfo]:
        self._principal(context)
        return iter(())  # queries are commands, not named flights

    def get_flight_info(self, descriptor: fpb.FlightDescriptor, context: grpc.ServicerContext) -> fpb.FlightInfo:
        schema, ticket, app_metadata = self.service.flight_info(self._call(context), _command(descriptor))
        endpoint = fpb.FlightEndpoint(ticket=fpb.Ticket(ticket=ticket))
        return fpb.FlightInfo(schema=schema.serialize().to_pybytes(), flight_descriptor=descriptor,
                              endpoint=[endpoint], total_records=-1, total_bytes=-1, app_metadata=app_metadata)

    def get_schema(self, descriptor: fpb.FlightDescriptor, context: grpc.ServicerContext) -> fpb.SchemaResult:
        schema, _, _ = self.service.flight_info(self._call(context), _command(descriptor))
        return fpb.SchemaResult(schema=schema.serialize().to_pybytes())

    def do_get(self, ticket: fpb.Ticket, context: grpc.ServicerContext) -> Iterator[bytes]:
        with self.service.result(self._call(context), ticket.ticket) as result:
            yield from flight_data_stream(result.schema, result.batches)

    def do_put(self, messages: Iterator[fpb.FlightData], context: grpc.ServicerContext) -> Iterator[fpb.PutResult]:
        principal = self._principal(context)
        first = next(messages, None)
        if first is None or not first.HasField("flight_descriptor"):
            raise GrpcError(grpc.StatusCode.INVALID_ARGUMENT, "DoPut: the first message must carry a descriptor "
                            "(the prepared statement to bind); use a Flight SQL client")
        params = read_flight_data(_chain(first, messages), max_bytes=self.limits.max_upload_bytes)
        yield fpb.PutResult(app_metadata=self.service.put(principal, _command(first.flight_descriptor), params))

    def do_exchange(self, messages: Iterator[fpb.FlightData], context: grpc.ServicerContext) -> Iterator[bytes]:
        self._principal(context)
        raise Unsupported("DoExchange is not supported; use Flight SQL commands (GetFlightInfo, then DoGet)")

    def poll_flight_info(self, descriptor: fpb.FlightDescriptor, context: grpc.ServicerContext) -> bytes:
        self._principal(context)
        raise Unsupported("PollFlightInfo is not supported; call GetFlightInfo (it answers once the query is "
                          "planned, before any API call) and DoGet the ticket")

    def do_action(self, action: fpb.Action, context: grpc.ServicerContext) -> Iterator[fpb.Result]:
        principal = self._principal(context)
        if action.type in SESSION_ACTIONS:
            session_id = session_id_from_metadata(context.invocation_metadata())
            reply = self.service.session_action(principal, action.type, action.body, session_id)
            if reply.set_cookie:
                context.send_initial_metadata((("set-cookie", reply.set_cookie),))
            bodies = reply.bodies
        else:
            bodies = self.service.action(self._call(context, principal), action.type, action.body)
        for body in bodies:
            yield fpb.Result(body=body)

    def list_actions(self, empty: fpb.Empty, context: grpc.ServicerContext) -> Iterator[fpb.ActionType]:
        self._principal(context)
        for name, description in self.service.ACTIONS:
            yield fpb.ActionType(type=name, description=description)


def _headers(context: grpc.ServicerContext) -> dict[str, str]:
    """The call's ``x-omnisql-*`` request headers and W3C trace context (text only; binary ``-bin`` headers are
    not ours)."""
    return {key.lower(): value for key, value in context.invocation_metadata()
            if (key.lower().startswith("x-omnisql-") or key.lower() in ("traceparent", "tracestate"))
            and isinstance(value, str)}


def _session(context: grpc.ServicerContext) -> str | None:
    """The Flight SQL session the call belongs to (its ``arrow_flight_session_id`` cookie), if any."""
    return session_id_from_metadata(context.invocation_metadata())


def _command(descriptor: fpb.FlightDescriptor) -> bytes:
    if descriptor.type != fpb.FlightDescriptor.CMD:
        raise GrpcError(grpc.StatusCode.INVALID_ARGUMENT,
                        "only command descriptors are served (Flight SQL); path descriptors name nothing here")
    return descriptor.cmd


def _chain(first: T, rest: Iterator[T]) -> Iterator[T]:
    yield first
    yield from rest
