"""Arrow IPC ↔ Flight's ``FlightData`` framing.

A FlightData carries one IPC message: its flatbuffer header in ``data_header`` and its body buffers in
``data_body``. We encode the protobuf by hand so a batch body is copied once (into the gRPC message) instead of
twice through generated classes; decoding (DoPut parameters, a few bytes) uses the generated class.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator

import pyarrow as pa

from flight_server.proto import flight_pb2

__all__ = ["encode_flight_data", "flight_data_stream", "read_flight_data", "MAX_MESSAGE_BYTES"]

# Batches are re-chunked to roughly this size: under gRPC's common 4 MiB receive limit with room for the header.
MAX_MESSAGE_BYTES = 2 * 1024 * 1024
_CONTINUATION = b"\xff\xff\xff\xff"
_TAG_HEADER = b"\x12"  # field 2, length-delimited
_TAG_APP_METADATA = b"\x1a"  # field 3, length-delimited
_TAG_BODY = b"\xc2\x3e"  # field 1000, length-delimited


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(tag: bytes, data: bytes | memoryview) -> list[bytes | memoryview]:
    return [tag, _varint(len(data)), data] if len(data) else []


def encode_flight_data(header: pa.Buffer | bytes, body: pa.Buffer | bytes | None = None,
                       app_metadata: bytes = b"") -> bytes:
    """Serialized ``FlightData`` (proto3 wire format; empty fields omitted, as protobuf does)."""
    parts = _field(_TAG_HEADER, memoryview(header))
    parts += _field(_TAG_APP_METADATA, app_metadata)
    if body is not None:
        parts += _field(_TAG_BODY, memoryview(body))
    return b"".join(parts)


def _rows_per_chunk(table: pa.Table) -> int:
    if table.num_rows == 0:
        return 1
    row_bytes = max(1, table.nbytes // table.num_rows)
    return max(1, MAX_MESSAGE_BYTES // row_bytes)


def flight_data_stream(table: pa.Table) -> Iterator[bytes]:
    """The schema message, then dictionary and record batch messages, each as a serialized FlightData."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=_rows_per_chunk(table))
    for message in pa.ipc.MessageReader.open_stream(sink.getvalue()):
        yield encode_flight_data(message.metadata, message.body)


def _frame(header: bytes, body: bytes) -> bytes:
    """One encapsulated IPC message: continuation, padded metadata length, metadata, padding, body."""
    padding = -len(header) % 8
    return b"".join([_CONTINUATION, struct.pack("<i", len(header) + padding), header, b"\x00" * padding, body])


def read_flight_data(messages: Iterable[flight_pb2.FlightData]) -> pa.Table | None:
    """The table a client uploaded (DoPut), or None when it sent no schema."""
    frames = [_frame(m.data_header, m.data_body) for m in messages if m.data_header]
    if not frames:
        return None
    return pa.ipc.open_stream(pa.py_buffer(b"".join(frames))).read_all()
