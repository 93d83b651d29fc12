"""One gRPC call over a bare HTTP/2 connection (h2), with header bytes exactly as given.

grpcio (and every Flight client) refuses to send a header value that is not printable ASCII, so those values
can only reach the server this way. The answer is the status, message and every header and trailer."""

from __future__ import annotations

import socket
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import unquote

import h2.config
import h2.connection
import h2.events

__all__ = ["RawAnswer", "raw_call"]


@dataclass
class RawAnswer:
    status: int | None = None  # the grpc-status number
    message: str = ""
    headers: dict[str, str] = field(default_factory=dict)  # headers and trailers together

    @property
    def error_code(self) -> str | None:
        return self.headers.get("x-omnisql-error-code")


def raw_call(uri: str, method: str, headers: Sequence[tuple[bytes, bytes]], messages: Sequence[bytes] = (b"",),
             timeout_s: float = 10.0) -> RawAnswer:
    """Call ``/arrow.flight.protocol.FlightService/<method>`` on ``grpc://host:port`` with these extra headers
    and length-prefixed request messages."""
    host, port = uri.removeprefix("grpc://").rsplit(":", 1)
    config = h2.config.H2Configuration(client_side=True, header_encoding=None, validate_outbound_headers=False,
                                       normalize_outbound_headers=False)
    connection = h2.connection.H2Connection(config)
    answer = RawAnswer()
    with socket.create_connection((host, int(port)), timeout=timeout_s) as sock:
        connection.initiate_connection()
        stream = connection.get_next_available_stream_id()
        connection.send_headers(stream, [
            (b":method", b"POST"), (b":scheme", b"http"), (b":path", f"/arrow.flight.protocol.FlightService/"
                                                                     f"{method}".encode()),
            (b":authority", f"{host}:{port}".encode()), (b"content-type", b"application/grpc"),
            (b"te", b"trailers"), *headers])
        body = b"".join(b"\x00" + struct.pack(">I", len(m)) + m for m in messages)
        connection.send_data(stream, body, end_stream=True)
        sock.sendall(connection.data_to_send())
        for _ in range(10_000):  # bounded: a call is a few frames
            data = sock.recv(65536)
            if not data:
                break
            if _receive(connection, data, answer):
                break
            sock.sendall(connection.data_to_send())
    answer.status = int(answer.headers["grpc-status"]) if "grpc-status" in answer.headers else None
    answer.message = unquote(answer.headers.get("grpc-message", ""))  # percent-encoded on the wire
    return answer


def _receive(connection: h2.connection.H2Connection, data: bytes, answer: RawAnswer) -> bool:
    """Feed ``data``; True once the stream has ended."""
    for event in connection.receive_data(data):
        if isinstance(event, h2.events.ResponseReceived | h2.events.TrailersReceived):
            answer.headers.update({k.decode(): v.decode("latin-1") for k, v in event.headers})
        elif isinstance(event, h2.events.DataReceived):
            connection.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, h2.events.StreamEnded | h2.events.StreamReset):
            return True
    return False
