"""Our gRPC transport: FlightData framing (unit) and status codes, messages and trailers as a raw gRPC client
sees them (the real demo server)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pyarrow as pa
import pytest

from flight_server.commands import pack
from flight_server.errors import status_of
from flight_server.ipc import MAX_MESSAGE_BYTES, encode_flight_data, flight_data_stream, read_flight_data
from flight_server.proto import flight_pb2 as fpb
from flight_server.proto import flight_sql_pb2 as pb
from sandbox.seed import build_seed
from tests.conftest import SandboxLog

SERVICE = "/arrow.flight.protocol.FlightService/"


@pytest.mark.parametrize("sizes", [(0, 0, 0), (5, 3, 7), (200, 0, 130_000), (1, 17, 2_000_000)])
def test_flight_data_encoding_matches_protobuf(sizes: tuple[int, int, int]) -> None:
    header, app_metadata, body = (bytes([i % 251 for i in range(n)]) for n in sizes)
    ours = encode_flight_data(pa.py_buffer(header), pa.py_buffer(body), app_metadata)
    assert ours == fpb.FlightData(data_header=header, app_metadata=app_metadata, data_body=body).SerializeToString()


def _round_trip(table: pa.Table) -> tuple[pa.Table | None, list[bytes]]:
    messages = list(flight_data_stream(table.schema, table.to_batches()))
    return read_flight_data(fpb.FlightData.FromString(m) for m in messages), messages


def test_stream_round_trips_every_type() -> None:
    table = pa.table({
        "i": pa.array([1, None, 3], pa.int64()),
        "s": pa.array(["a", "é'\"", None]),
        "l": pa.array([["x"], [], None], pa.list_(pa.string())),
        "t": pa.array([0, 1, None], pa.timestamp("us", tz="UTC")),
        "d": pa.array(["open", "merged", "open"]).dictionary_encode(),
    })
    back, _ = _round_trip(table)
    assert back is not None and back.equals(table)


def test_large_results_are_chunked_under_the_message_cap() -> None:
    table = pa.table({"s": pa.array(["x" * 100] * 100_000)})
    back, messages = _round_trip(table)
    assert back is not None and back.equals(table)
    assert len(messages) > 4
    assert max(len(m) for m in messages) < MAX_MESSAGE_BYTES + 64 * 1024


def test_empty_result_is_schema_only() -> None:
    table = pa.table({"n": pa.array([], pa.int32())})
    back, messages = _round_trip(table)
    assert len(messages) == 1 and back is not None and back.schema == table.schema and back.num_rows == 0
    assert read_flight_data(iter([])) is None


def test_unexpected_errors_hide_their_text() -> None:
    code, message, trailers = status_of(RuntimeError("secret row content"), "DoGet")
    assert code == grpc.StatusCode.INTERNAL and "incident" in message and "secret" not in message
    assert trailers == []


@pytest.fixture()
def channel(demo: dict[str, Any]) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(demo["flight_uri"].removeprefix("grpc://")) as ch:
        yield ch


def _auth(token: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {token}")]


def _flight_info(channel: grpc.Channel, command: Any, metadata: list[tuple[str, str]]) -> fpb.FlightInfo:
    call = channel.unary_unary(SERVICE + "GetFlightInfo", request_serializer=fpb.FlightDescriptor.SerializeToString,
                               response_deserializer=fpb.FlightInfo.FromString)
    descriptor = fpb.FlightDescriptor(type=fpb.FlightDescriptor.CMD, cmd=pack(command))
    return call(descriptor, metadata=metadata, timeout=30)


def test_invalid_query_status_is_exactly_our_message(channel: grpc.Channel, admin_token: str) -> None:
    with pytest.raises(grpc.RpcError) as excinfo:
        _flight_info(channel, pb.CommandStatementQuery(query="SELECT nope FROM jira.issues"), _auth(admin_token))
    error: Any = excinfo.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith("INVALID_QUERY: Column 'nope' could not be resolved")
    assert "Traceback" not in error.details() and "Python" not in error.details()
    assert ("x-omnisql-error-code", "INVALID_QUERY") in tuple(error.trailing_metadata())


def test_missing_and_wrong_credentials(channel: grpc.Channel) -> None:
    for metadata in ([], _auth("nope"), [("authorization", "Basic YWRtaW46eA")]):
        with pytest.raises(grpc.RpcError) as excinfo:
            _flight_info(channel, pb.CommandGetCatalogs(), metadata)
        assert excinfo.value.code() == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]


def test_statement_round_trip_over_raw_grpc(channel: grpc.Channel, admin_token: str) -> None:
    info = _flight_info(channel, pb.CommandStatementQuery(query="SELECT count(*) AS n FROM jira.issues"),
                        _auth(admin_token))
    do_get = channel.unary_stream(SERVICE + "DoGet", request_serializer=fpb.Ticket.SerializeToString,
                                  response_deserializer=fpb.FlightData.FromString)
    table = read_flight_data(do_get(info.endpoint[0].ticket, metadata=_auth(admin_token), timeout=30))
    assert table is not None and table.to_pylist() == [{"n": len(build_seed().issues)}]
    assert pa.ipc.read_schema(pa.py_buffer(info.schema)) == table.schema


def test_unserved_rpcs_say_so(channel: grpc.Channel, admin_token: str) -> None:
    path = channel.unary_unary(SERVICE + "GetSchema", request_serializer=fpb.FlightDescriptor.SerializeToString,
                               response_deserializer=fpb.SchemaResult.FromString)
    with pytest.raises(grpc.RpcError) as excinfo:
        path(fpb.FlightDescriptor(type=fpb.FlightDescriptor.PATH, path=["x"]), metadata=_auth(admin_token))
    assert excinfo.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    exchange = channel.stream_stream(SERVICE + "DoExchange", request_serializer=fpb.FlightData.SerializeToString,
                                     response_deserializer=fpb.FlightData.FromString)
    with pytest.raises(grpc.RpcError) as excinfo:
        list(exchange(iter([fpb.FlightData()]), metadata=_auth(admin_token), timeout=30))
    assert excinfo.value.code() == grpc.StatusCode.UNIMPLEMENTED  # type: ignore[attr-defined]


def test_abandoned_query_stops_spending_api_calls(demo: dict[str, Any], admin_token: str,
                                                  sandbox_log: SandboxLog) -> None:
    """A client deadline cancels the fetch: no new upstream requests once the call is gone."""
    import pyarrow.flight as flight

    from clients.flight_client import statement_descriptor

    client = flight.FlightClient(demo["flight_uri"])
    headers = [(b"authorization", f"Bearer {admin_token}".encode())]
    # additions costs one GET /pulls/{n} per pull request: 1,100 slow lookups, far longer than the deadline.
    info = client.get_flight_info(statement_descriptor("SELECT sum(additions) FROM github.pull_requests"),
                                  flight.FlightCallOptions(headers=headers))
    sandbox_log.faults("github", latency_s=0.3)
    try:
        with pytest.raises(flight.FlightTimedOutError):
            client.do_get(info.endpoints[0].ticket, flight.FlightCallOptions(headers=headers, timeout=1.5)).read_all()
        def lookups() -> int:  # this query's own per-row lookups (other tests' servers may list repositories)
            return len([r for r in sandbox_log.requests("github") if re.fullmatch(r".*/pulls/\d+", r["path"])])

        settled = _settled(lookups)  # requests in flight finish (0.3 s each)
        time.sleep(1.5)
        assert lookups() == settled, "the server kept fetching for a client that left"
        assert 0 < settled < 100
    finally:
        sandbox_log.faults("github", latency_s=0)
        client.close()


def _settled(count: Callable[[], int], quiet_s: float = 0.6, limit_s: float = 6.0) -> int:
    """The count once it has stopped changing for ``quiet_s`` (requests the server had already sent finish; a
    loaded machine makes that slower), bounded by ``limit_s``."""
    deadline = time.monotonic() + limit_s
    last = count()
    while time.monotonic() < deadline:
        time.sleep(quiet_s)
        now = count()
        if now == last:
            return now
        last = now
    return last
