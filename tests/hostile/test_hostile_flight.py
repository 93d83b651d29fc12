"""Hostile input at the Flight layer: every malformed request gets a classified status with its
``x-omnisql-error-code`` (never INTERNAL), every limit is RESOURCE_EXHAUSTED naming its key, and an innocent
client on the same server is still served meanwhile.

Found by fuzzing each RPC (random and mutated protobufs, tickets, Arrow IPC, header bytes); each class found is a
case here. The demo server (a subprocess) takes the stateless cases; a second server in this process, with
small limits and a known secret, takes the ones that need them."""

from __future__ import annotations

import base64
import dataclasses
import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import grpc
import pyarrow as pa
import pytest
from google.protobuf import any_pb2

from demo.tenant import UNTHROTTLED, demo_config
from flight_server.app import RunningService, start_service
from flight_server.commands import pack
from flight_server.like import LikePattern
from flight_server.limits import ServerLimits
from flight_server.proto import flight_pb2 as fpb
from flight_server.proto import flight_sql_pb2 as pb
from security.principals import Principal
from security.signing import Signer
from tests.conftest import SandboxLog
from tests.hostile.innocent import Innocent
from tests.hostile.rawgrpc import raw_call

SERVICE = "/arrow.flight.protocol.FlightService/"
SQL_PREFIX = "type.googleapis.com/arrow.flight.protocol.sql."
SECRET = b"s" * 32
MiB = 1024 * 1024
CAPS = ServerLimits(max_concurrent_queries=5, max_concurrent_queries_per_principal=2,
                    max_prepared_statements_per_principal=3, max_upload_bytes=1 * MiB)
SLOW = "SELECT count(*) AS n FROM github.pull_requests"  # with the sandbox GitHub slowed down, it holds its slot


@dataclasses.dataclass
class Status:
    code: str  # the gRPC status name; "OK" for an answer
    error_code: str | None  # x-omnisql-error-code
    message: str
    responses: list[bytes] = dataclasses.field(default_factory=list)


def _identity(data: bytes) -> bytes:
    return data


def call(channel: grpc.Channel, method: str, request: bytes | Sequence[bytes], token: str | None,
         timeout_s: float = 15.0) -> Status:
    """One raw call: a unary or a server-streaming request (bytes) or a client stream (a sequence of bytes)."""
    metadata = [("authorization", f"Bearer {token}")] if token else []
    unary_answer = method in ("GetFlightInfo", "GetSchema", "PollFlightInfo")
    kinds = {(True, False): channel.unary_unary, (False, False): channel.unary_stream,
             (False, True): channel.stream_stream}
    stub = kinds[(unary_answer, not isinstance(request, bytes))](
        SERVICE + method, request_serializer=_identity, response_deserializer=_identity)
    argument = request if isinstance(request, bytes) else iter(request)
    try:
        answer = stub(argument, metadata=metadata, timeout=timeout_s)
        return Status("OK", None, "", [answer] if unary_answer else list(answer))
    except grpc.RpcError as exc:
        trailers = dict(exc.trailing_metadata() or ())  # type: ignore[attr-defined]
        return Status(exc.code().name, trailers.get("x-omnisql-error-code"), exc.details())  # type: ignore[attr-defined]


def descriptor(command: bytes) -> bytes:
    return fpb.FlightDescriptor(type=fpb.FlightDescriptor.CMD, cmd=command).SerializeToString()


def any_of(name: str, value: bytes) -> bytes:
    return any_pb2.Any(type_url=SQL_PREFIX + name, value=value).SerializeToString()


def ticket(command: bytes) -> bytes:
    return fpb.Ticket(ticket=command).SerializeToString()


def action(kind: str, body: bytes = b"") -> bytes:
    return fpb.Action(type=kind, body=body).SerializeToString()


BAD_UTF8 = b"\xff\xfe\xfd"
GARBAGE = bytes(range(255, 0, -3)) * 2  # not a protobuf of any of these messages


def _string_field(number: int, value: bytes) -> bytes:
    """A length-delimited protobuf field, for strings that are not UTF-8."""
    return bytes([number << 3 | 2, len(value)]) + value


# (name, method, request, gRPC status, x-omnisql-error-code, message pattern)
GARBAGE_CASES: list[tuple[str, str, bytes | list[bytes], str, str, str]] = [
    # request messages that are not the RPC's protobuf
    ("GetFlightInfo: not a FlightDescriptor", "GetFlightInfo", GARBAGE, "INVALID_ARGUMENT", "INVALID_QUERY",
     "not a valid FlightDescriptor protobuf"),
    ("GetSchema: not a FlightDescriptor", "GetSchema", GARBAGE, "INVALID_ARGUMENT", "INVALID_QUERY",
     "not a valid FlightDescriptor"),
    ("DoGet: not a Ticket", "DoGet", GARBAGE, "INVALID_ARGUMENT", "INVALID_QUERY", "not a valid Ticket"),
    ("DoAction: not an Action", "DoAction", GARBAGE, "INVALID_ARGUMENT", "INVALID_QUERY", "not a valid Action"),
    ("DoAction: action type not UTF-8", "DoAction", _string_field(1, BAD_UTF8), "INVALID_ARGUMENT",
     "INVALID_QUERY", "not a valid Action"),
    ("ListFlights: not Criteria", "ListFlights", GARBAGE, "INVALID_ARGUMENT", "INVALID_QUERY", "not a valid Criteria"),
    ("ListActions: not Empty", "ListActions", GARBAGE, "INVALID_ARGUMENT", "INVALID_QUERY", "not a valid Empty"),
    ("PollFlightInfo: not a FlightDescriptor", "PollFlightInfo", GARBAGE, "INVALID_ARGUMENT", "INVALID_QUERY",
     "not a valid FlightDescriptor"),
    ("DoPut: not FlightData", "DoPut", [GARBAGE], "INVALID_ARGUMENT", "INVALID_QUERY", "not a valid FlightData"),
    # malformed google.protobuf.Any commands
    ("command not an Any", "GetFlightInfo", descriptor(GARBAGE), "INVALID_ARGUMENT", "INVALID_QUERY",
     "not a protobuf Any"),
    ("Any of an unknown type", "GetFlightInfo", descriptor(any_pb2.Any(type_url="x/y").SerializeToString()),
     "UNIMPLEMENTED", "UNIMPLEMENTED", "unknown Flight SQL command"),
    ("Any whose value is garbage", "GetFlightInfo", descriptor(any_of("CommandStatementQuery", GARBAGE)),
     "INVALID_ARGUMENT", "INVALID_QUERY", "CommandStatementQuery command cannot be decoded"),
    ("Any whose type URL is not UTF-8", "GetFlightInfo", descriptor(_string_field(1, BAD_UTF8)),
     "INVALID_ARGUMENT", "INVALID_QUERY", "not a protobuf Any"),
    # invalid UTF-8 in SQL and commands
    ("SQL not UTF-8", "GetFlightInfo", descriptor(any_of("CommandStatementQuery", _string_field(1, BAD_UTF8))),
     "INVALID_ARGUMENT", "INVALID_QUERY", "strings, the SQL included, are UTF-8"),
    ("prepared SQL not UTF-8", "DoAction", action("CreatePreparedStatement", any_of(
        "ActionCreatePreparedStatementRequest", _string_field(1, BAD_UTF8))), "INVALID_ARGUMENT", "INVALID_QUERY",
     "cannot be decoded"),
    ("LIKE pattern not UTF-8", "GetFlightInfo", descriptor(any_of("CommandGetTables", _string_field(3, BAD_UTF8))),
     "INVALID_ARGUMENT", "INVALID_QUERY", "CommandGetTables command cannot be decoded"),
    # garbage tickets
    ("ticket of random bytes", "DoGet", ticket(GARBAGE), "INVALID_ARGUMENT", "INVALID_QUERY", "not a protobuf Any"),
    ("ticket with a forged handle", "DoGet", ticket(pack(pb.TicketStatementQuery(statement_handle=GARBAGE))),
     "INVALID_ARGUMENT", "INVALID_QUERY", "not one this server issued"),
    ("ticket with an empty handle", "DoGet", ticket(pack(pb.TicketStatementQuery())), "INVALID_ARGUMENT",
     "INVALID_QUERY", "not one this server issued"),
    ("ticket that is a command", "DoGet", ticket(pack(pb.CommandStatementQuery(query="SELECT 1"))),
     "INVALID_ARGUMENT", "INVALID_QUERY", "not a statement ticket"),
    # empty bodies
    ("GetFlightInfo: empty", "GetFlightInfo", b"", "INVALID_ARGUMENT", "INVALID_QUERY", "only command descriptors"),
    ("GetSchema: empty", "GetSchema", b"", "INVALID_ARGUMENT", "INVALID_QUERY", "only command descriptors"),
    ("GetFlightInfo: empty command", "GetFlightInfo", descriptor(b""), "INVALID_ARGUMENT", "INVALID_QUERY",
     "command is empty"),
    ("DoGet: empty ticket", "DoGet", b"", "INVALID_ARGUMENT", "INVALID_QUERY", "command is empty"),
    ("DoAction: empty", "DoAction", b"", "UNIMPLEMENTED", "UNIMPLEMENTED", "unknown action ''"),
    ("CreatePreparedStatement: empty body", "DoAction", action("CreatePreparedStatement"), "INVALID_ARGUMENT",
     "INVALID_QUERY", "command is empty"),
    ("ClosePreparedStatement: garbage body", "DoAction", action("ClosePreparedStatement", GARBAGE),
     "INVALID_ARGUMENT", "INVALID_QUERY", "not a protobuf Any"),
    ("SetSessionOptions: garbage body", "DoAction", action("SetSessionOptions", GARBAGE), "INVALID_ARGUMENT",
     "INVALID_QUERY", "not a SetSessionOptionsRequest"),
    ("DoPut: no message", "DoPut", [], "INVALID_ARGUMENT", "INVALID_QUERY", "first message must carry a descriptor"),
    ("SQL: empty", "GetFlightInfo", descriptor(pack(pb.CommandStatementQuery())), "INVALID_ARGUMENT",
     "INVALID_QUERY", "exactly one SQL statement"),
]


@pytest.fixture(scope="module")
def channel(demo: dict[str, Any]) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(demo["flight_uri"].removeprefix("grpc://")) as ch:
        yield ch


@pytest.mark.parametrize(("method", "request_", "status", "error_code", "message"),
                         [case[1:] for case in GARBAGE_CASES], ids=[case[0] for case in GARBAGE_CASES])
def test_garbage_is_a_classified_error(channel: grpc.Channel, admin_token: str, innocent: Innocent, method: str,
                                       request_: bytes | list[bytes], status: str, error_code: str,
                                       message: str) -> None:
    got = call(channel, method, request_, admin_token)
    assert (got.code, got.error_code) == (status, error_code), got
    assert message in got.message and got.message.startswith(error_code + ": "), got.message


# -- header bytes no Flight client sends: only a bare HTTP/2 client gets them to the server ---------------------
HEADER_CASES = [
    ("bearer, Latin-1", [(b"authorization", b"Bearer t\xe9st")]),
    ("bearer, UTF-8", [(b"authorization", "Bearer tést".encode())]),
    ("bearer, control bytes", [(b"authorization", b"Bearer \x01\x02")]),
    ("session token, non-ASCII", [(b"authorization", "Bearer oms1.é.é".encode())]),
    ("basic, non-ASCII", [(b"authorization", b"Basic \xe9\xe9")]),
]


@pytest.mark.parametrize("method", ["ListActions", "Handshake", "GetFlightInfo"])
@pytest.mark.parametrize("headers", [c[1] for c in HEADER_CASES], ids=[c[0] for c in HEADER_CASES])
def test_malformed_credentials_are_unauthenticated(demo: dict[str, Any], innocent: Innocent, method: str,
                                                   headers: list[tuple[bytes, bytes]]) -> None:
    got = raw_call(demo["flight_uri"], method, headers)
    assert (got.status, got.error_code) == (grpc.StatusCode.UNAUTHENTICATED.value[0], "UNAUTHENTICATED"), got
    assert "not printable ASCII" in got.message


def test_a_malformed_session_cookie_is_no_session(demo: dict[str, Any], admin_token: str) -> None:
    headers = [(b"authorization", f"Bearer {admin_token}".encode()), (b"cookie", b"arrow_flight_session_id=\xe9\xff")]
    assert raw_call(demo["flight_uri"], "ListActions", headers).status == 0


def test_malformed_session_tokens_are_unauthenticated(channel: grpc.Channel) -> None:
    for token in ("oms1.", "oms1.x", "oms1.e30.abc", "oms1." + "A" * 5000 + ".x"):
        got = call(channel, "ListActions", b"", token)
        assert (got.code, got.error_code) == ("UNAUTHENTICATED", "UNAUTHENTICATED"), (token[:20], got)


# -- DoPut: garbage Arrow, a mismatched schema, compression --------------------------------------------------------
def _prepare(channel: grpc.Channel, token: str, sql: str) -> bytes:
    got = call(channel, "DoAction", action("CreatePreparedStatement",
                                           pack(pb.ActionCreatePreparedStatementRequest(query=sql))), token)
    assert got.code == "OK", got
    result = pb.ActionCreatePreparedStatementResult()
    any_pb2.Any.FromString(fpb.Result.FromString(got.responses[0]).body).Unpack(result)
    return bytes(result.prepared_statement_handle)


def _ipc(table: pa.Table, compression: str | None = None) -> list[fpb.FlightData]:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema, options=pa.ipc.IpcWriteOptions(compression=compression)) as writer:
        writer.write_table(table)
    return [fpb.FlightData(data_header=m.metadata.to_pybytes(), data_body=m.body.to_pybytes() if m.body else b"")
            for m in pa.ipc.MessageReader.open_stream(sink.getvalue())]


def _upload(handle: bytes, messages: list[fpb.FlightData]) -> list[bytes]:
    """A DoPut binding ``messages`` to ``handle``: the descriptor rides on the first message."""
    first = fpb.FlightData(flight_descriptor=fpb.FlightDescriptor(
        type=fpb.FlightDescriptor.CMD, cmd=pack(pb.CommandPreparedStatementQuery(prepared_statement_handle=handle))))
    if messages:
        first.MergeFrom(messages[0])
    return [first.SerializeToString(), *(m.SerializeToString() for m in messages[1:])]


def _truncated(messages: list[fpb.FlightData]) -> list[fpb.FlightData]:
    return [messages[0], fpb.FlightData(data_header=messages[1].data_header, data_body=b"\x00")]


UPLOAD_CASES: list[tuple[str, Callable[[], list[fpb.FlightData]], str, str]] = [
    ("not Arrow IPC", lambda: [fpb.FlightData(data_header=GARBAGE, data_body=GARBAGE)], "INVALID_QUERY",
     "not a valid Arrow IPC stream"),
    ("a batch without its schema", lambda: _ipc(pa.table({"x": [1]}))[1:], "INVALID_QUERY",
     "not a valid Arrow IPC stream"),
    ("a truncated batch", lambda: _truncated(_ipc(pa.table({"x": [1, 2]}))), "INVALID_QUERY",
     "not a valid Arrow IPC stream"),
    ("more columns than parameters", lambda: _ipc(pa.table({"x": [1], "y": [2]})), "INVALID_QUERY",
     "1 parameter(s) but 2 were bound"),
    ("zstd-compressed IPC", lambda: _ipc(pa.table({"x": [0] * 1000}), "zstd"), "INVALID_QUERY",
     "compressed Arrow IPC is not accepted"),
]


@pytest.mark.parametrize(("messages", "error_code", "message"), [c[1:] for c in UPLOAD_CASES],
                         ids=[c[0] for c in UPLOAD_CASES])
def test_garbage_uploads_are_classified(channel: grpc.Channel, admin_token: str, innocent: Innocent,
                                        messages: Callable[[], list[fpb.FlightData]], error_code: str,
                                        message: str) -> None:
    handle = _prepare(channel, admin_token, "SELECT ? AS x")
    got = call(channel, "DoPut", _upload(handle, messages()), admin_token)
    assert (got.code, got.error_code) == ("INVALID_ARGUMENT", error_code), got
    assert message in got.message


def test_a_good_upload_still_binds(channel: grpc.Channel, admin_token: str) -> None:
    handle = _prepare(channel, admin_token, "SELECT ? AS x")
    assert call(channel, "DoPut", _upload(handle, _ipc(pa.table({"x": [41]}))), admin_token).code == "OK"


# -- SQL LIKE in metadata patterns: linear, whatever the pattern ----------------------------------------------------
ADVERSARIAL_PATTERNS = ["%" * 100_000 + "x", "%a" * 5_000 + "%x", "%" + "_" * 150 + "%x",
                        ("%" + "a" * 40 + "b") * 200, "%" + "a" * 199 + "b%", "_" * 100_000]


@pytest.mark.parametrize("pattern", ADVERSARIAL_PATTERNS, ids=lambda p: f"{p[:12]}..({len(p)})")
def test_like_work_is_bounded_by_the_value_not_the_pattern(pattern: str) -> None:
    value = "a" * 200
    matcher = LikePattern.compile(pattern)
    assert not matcher.matches(value)
    n = len(value)
    assert matcher.steps <= 2 * n * n + n, matcher.steps  # O(len(value)²), never exponential


@pytest.mark.parametrize(("pattern", "value", "expected"), [
    ("%", "", True), ("", "", True), ("_", "", False), ("a%", "abc", True), ("%c", "abc", True),
    ("a_c", "abc", True), ("a_c", "abbc", False), ("%b%", "abc", True), ("a%b%c", "aXbYc", True),
    ("a%b%c", "acb", False), ("ab%ab", "ab", False), ("ab%ab", "abab", True), ("a\\%", "a%", True),
    ("a\\%", "ab", False), ("a\\_", "a_", True), ("a\\", "a\\", True), ("%%a%%", "bab", True),
    ("%aa%aa", "aaa", False), ("%_%_%", "ab", True), ("%_%_%", "a", False), ("é_", "éé", True),
])
def test_like_semantics(pattern: str, value: str, expected: bool) -> None:
    assert LikePattern.compile(pattern).matches(value) is expected


def test_adversarial_metadata_patterns_answer(channel: grpc.Channel, admin_token: str, innocent: Innocent) -> None:
    for pattern in ADVERSARIAL_PATTERNS:
        command = pack(pb.CommandGetTables(table_name_filter_pattern=pattern, db_schema_filter_pattern=pattern))
        info = call(channel, "GetFlightInfo", descriptor(command), admin_token)
        assert info.code == "OK", info
        endpoint = fpb.FlightInfo.FromString(info.responses[0]).endpoint[0]
        assert call(channel, "DoGet", endpoint.ticket.SerializeToString(), admin_token).code == "OK"


# -- a server with small limits and a known secret ------------------------------------------------------------------
@dataclasses.dataclass
class Capped:
    service: RunningService
    info: dict[str, Any]  # the demo's, pointing at this server
    channel: grpc.Channel

    def running(self, user: str) -> int:
        return self.service.server.service.admission.running(Principal(user=user, tenant="demo"))

    @property
    def total(self) -> int:
        return self.service.server.service.admission.total


@pytest.fixture(scope="module")
def capped(demo: dict[str, Any]) -> Iterator[Capped]:
    config = dataclasses.replace(demo_config(demo["sandbox"], "127.0.0.1", 0, UNTHROTTLED), secret=SECRET, limits=CAPS)
    service = start_service(config)
    try:
        with grpc.insecure_channel(service.uri.removeprefix("grpc://")) as ch:
            yield Capped(service, {**demo, "flight_uri": service.uri}, ch)
    finally:
        service.stop()


@pytest.fixture()
def innocent_capped(capped: Capped) -> Iterator[Innocent]:
    with Innocent(capped.info) as client:
        yield client
    client.assert_served()


def _signed_ticket(payload: bytes) -> bytes:
    handle = Signer(SECRET).sign("ticket", payload) + payload
    return ticket(pack(pb.TicketStatementQuery(statement_handle=handle)))


def _ticket_json(**fields: Any) -> bytes:
    body = {"u": "admin", "q": "SELECT 1", "p": None, "exp": int(time.time()) + 600} | fields
    return json.dumps(body).encode()


SIGNED_CASES = [
    ("not JSON", b"{not json"),
    ("not UTF-8", b"\xff\xfe"),
    ("JSON, not an object", b"[1, 2]"),
    ("a field missing", json.dumps({"u": "admin", "p": None, "exp": 2**40}).encode()),
    ("a field of the wrong type", _ticket_json(exp="tomorrow")),
    ("parameters not base64", _ticket_json(p="!!!")),
    ("parameters not Arrow IPC", _ticket_json(p=base64.b64encode(GARBAGE).decode())),
]


@pytest.mark.parametrize("payload", [c[1] for c in SIGNED_CASES], ids=[c[0] for c in SIGNED_CASES])
def test_a_validly_signed_but_damaged_ticket_is_invalid(capped: Capped, innocent_capped: Innocent,
                                                        admin_token: str, payload: bytes) -> None:
    got = call(capped.channel, "DoGet", _signed_ticket(payload), admin_token)
    assert (got.code, got.error_code) == ("INVALID_ARGUMENT", "INVALID_QUERY"), got
    assert "the ticket is damaged" in got.message


def test_a_truncated_ticket_is_invalid(capped: Capped, admin_token: str) -> None:
    info = call(capped.channel, "GetFlightInfo", descriptor(pack(pb.CommandStatementQuery(query="SELECT 1"))),
                admin_token)
    raw = fpb.FlightInfo.FromString(info.responses[0]).endpoint[0].ticket.ticket
    for cut in (1, len(raw) // 2, len(raw) - 1):
        got = call(capped.channel, "DoGet", ticket(raw[:cut]), admin_token)
        assert (got.code, got.error_code) == ("INVALID_ARGUMENT", "INVALID_QUERY"), (cut, got)


def test_uploads_are_bounded_while_they_are_read(capped: Capped, innocent_capped: Innocent,
                                                  admin_token: str) -> None:
    handle = _prepare(capped.channel, admin_token, "SELECT ? AS x")
    schema = _ipc(pa.table({"x": pa.array([], pa.binary())}))
    many = [fpb.FlightData(data_body=b"x" * (256 * 1024)) for _ in range(64)]  # 16 MiB in 256 KiB messages
    one = [fpb.FlightData(data_body=b"x" * (CAPS.max_upload_bytes + 1))]  # under gRPC's per-message cap
    for messages in (schema + many, schema + one):
        got = call(capped.channel, "DoPut", _upload(handle, messages), admin_token)
        assert (got.code, got.error_code) == ("RESOURCE_EXHAUSTED", "RESOURCE_EXHAUSTED"), got
        assert "larger than 1 MiB (max_upload_bytes)" in got.message


# -- fairness: queries at once, prepared statements ----------------------------------------------------------------
@pytest.fixture()
def slow_github(capped: Capped, sandbox_log: SandboxLog) -> Iterator[None]:
    """Every GitHub request takes 5 s, so a query over it holds its slot until cancelled."""
    sandbox_log.faults("github", latency_s=5.0)
    yield
    sandbox_log.faults("github", latency_s=0.0)


class Holder:
    """DoGets of ``SLOW``, each holding a query slot until ``release``."""

    def __init__(self, capped: Capped, tokens: dict[str, str]) -> None:
        self.capped = capped
        self.tokens = tokens
        self.calls: list[Any] = []

    def hold(self, user: str, count: int) -> None:
        token = self.tokens[f"token_{user}"]
        info = call(self.capped.channel, "GetFlightInfo", descriptor(pack(pb.CommandStatementQuery(query=SLOW))),
                    token)
        assert info.code == "OK", info
        ticket_bytes = fpb.FlightInfo.FromString(info.responses[0]).endpoint[0].ticket.SerializeToString()
        stub = self.capped.channel.unary_stream(SERVICE + "DoGet", request_serializer=_identity,
                                                response_deserializer=_identity)
        before = self.capped.running(user)
        for _ in range(count):
            self.calls.append(stub(ticket_bytes, metadata=[("authorization", f"Bearer {token}")], timeout=30))
        _wait_for(lambda: self.capped.running(user) == before + count)

    def release(self) -> None:
        for pending in self.calls:
            pending.cancel()
        _wait_for(lambda: self.capped.total == 0)


def _wait_for(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def _statement(sql: str) -> bytes:
    return descriptor(pack(pb.CommandStatementQuery(query=sql)))


def test_a_principal_over_its_cap_is_refused_at_once(capped: Capped, demo: dict[str, Any], slow_github: None,
                                                      innocent_capped: Innocent) -> None:
    holder = Holder(capped, demo["tokens"])
    try:
        holder.hold("admin", 2)
        started = time.monotonic()
        got = call(capped.channel, "GetFlightInfo", _statement("SELECT 1"), demo["tokens"]["token_admin"])
        assert time.monotonic() - started < 2  # refused at once, never queued
        assert (got.code, got.error_code) == ("RESOURCE_EXHAUSTED", "RESOURCE_EXHAUSTED"), got
        assert "max_concurrent_queries_per_principal = 2" in got.message
        assert call(capped.channel, "GetFlightInfo", _statement("SELECT 1"), demo["tokens"]["token_qa"]).code == "OK"
    finally:
        holder.release()


def test_the_server_over_its_cap_refuses_at_once(capped: Capped, demo: dict[str, Any], slow_github: None) -> None:
    holder = Holder(capped, demo["tokens"])
    try:
        holder.hold("admin", 2)
        holder.hold("dev", 2)
        holder.hold("qa", 1)
        got = call(capped.channel, "GetFlightInfo", _statement("SELECT 1"), demo["tokens"]["token_web_dev"])
        assert (got.code, got.error_code) == ("RESOURCE_EXHAUSTED", "RESOURCE_EXHAUSTED"), got
        assert "max_concurrent_queries = 5" in got.message
    finally:
        holder.release()
    assert call(capped.channel, "GetFlightInfo", _statement("SELECT 1"), demo["tokens"]["token_web_dev"]).code == "OK"


def test_a_burst_is_answered_not_queued(capped: Capped, demo: dict[str, Any]) -> None:
    """Four principals x five at once: each call is served or refused with our status, never left waiting for a
    worker (the pool is sized so the caps bite first)."""
    results: list[Status] = []
    lock = threading.Lock()

    def one(user: str) -> None:
        got = call(capped.channel, "GetFlightInfo", _statement(
            "SELECT count(*) FROM jira.issues WHERE project = 'WEB'"), demo["tokens"][f"token_{user}"])
        with lock:
            results.append(got)

    threads = [threading.Thread(target=one, args=(user,)) for user in ("admin", "dev", "qa", "web_dev")
               for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(results) == 20
    assert {(r.code, r.error_code) for r in results} <= {("OK", None), ("RESOURCE_EXHAUSTED", "RESOURCE_EXHAUSTED")}
    assert capped.total == 0


def test_cancelling_mid_stream_frees_the_slot(capped: Capped, admin_token: str) -> None:
    sql = "SELECT repeat(title, 2000) AS t FROM github.pull_requests"  # ~40 MB: more than the stream buffers
    info = call(capped.channel, "GetFlightInfo", _statement(sql), admin_token)
    assert info.code == "OK", info
    stub = capped.channel.unary_stream(SERVICE + "DoGet", request_serializer=_identity,
                                       response_deserializer=_identity)
    stream = stub(fpb.FlightInfo.FromString(info.responses[0]).endpoint[0].ticket.SerializeToString(),
                  metadata=[("authorization", f"Bearer {admin_token}")], timeout=60)
    next(stream)  # the schema: the query ran and the result is streaming
    assert capped.running("admin") == 1
    stream.cancel()
    _wait_for(lambda: capped.total == 0)


def test_prepared_statements_are_capped_per_principal(capped: Capped, demo: dict[str, Any],
                                                      innocent_capped: Innocent) -> None:
    tokens = demo["tokens"]
    theirs = _prepare(capped.channel, tokens["token_web_dev"], "SELECT 1 AS x")
    mine = [_prepare(capped.channel, tokens["token_admin"], f"SELECT {i} AS x") for i in range(6)]

    def plan(handle: bytes, token: str) -> Status:
        command = pack(pb.CommandPreparedStatementQuery(prepared_statement_handle=handle))
        return call(capped.channel, "GetFlightInfo", descriptor(command), token)

    assert plan(theirs, tokens["token_web_dev"]).code == "OK"  # another principal's spree closed none of theirs
    assert [plan(h, tokens["token_admin"]).code for h in mine] == ["INVALID_ARGUMENT"] * 3 + ["OK"] * 3
    assert "unknown or expired prepared statement" in plan(mine[0], tokens["token_admin"]).message
    assert capped.service.server.service.statements.count("admin") == 3
