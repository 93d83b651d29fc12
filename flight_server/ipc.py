"""Arrow IPC ↔ Flight's ``FlightData`` framing.

A FlightData carries one IPC message: its flatbuffer header in ``data_header`` and its body buffers in
``data_body``. We encode the protobuf by hand so a batch body is copied once (into the gRPC message) instead of
twice through generated classes; decoding (DoPut parameters, a few bytes) uses the generated class.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator

import pyarrow as pa

from core.errors import InvalidQuery, ResourceExhausted
from core.sizes import format_size
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


def _rows_per_chunk(batch: pa.RecordBatch) -> int:
    if batch.num_rows == 0:
        return 1
    row_bytes = max(1, batch.nbytes // batch.num_rows)
    return max(1, MAX_MESSAGE_BYTES // row_bytes)


def flight_data_stream(schema: pa.Schema, batches: Iterable[pa.RecordBatch]) -> Iterator[bytes]:
    """The schema message, then one record batch message per chunk of at most ``MAX_MESSAGE_BYTES``, each as a
    serialized FlightData, as the batches come: a batch is encoded while the next is computed, and nothing holds
    the whole result. (Dictionary-encoded columns need their dictionaries first: those go through Arrow's
    stream writer, batch by batch.)"""
    if any(pa.types.is_dictionary(f.type) for f in schema):
        yield from _written(schema, batches)
        return
    yield encode_flight_data(pa.ipc.read_message(schema.serialize()).metadata)
    for batch in batches:
        for chunk in _chunks(batch):
            message = pa.ipc.read_message(chunk.serialize())
            yield encode_flight_data(message.metadata, message.body)


def _chunks(batch: pa.RecordBatch) -> Iterator[pa.RecordBatch]:
    rows = _rows_per_chunk(batch)
    for offset in range(0, batch.num_rows, rows):
        yield batch.slice(offset, rows)


def _written(schema: pa.Schema, batches: Iterable[pa.RecordBatch]) -> Iterator[bytes]:
    """Through Arrow's IPC stream writer (dictionaries, deltas), its messages passed on after every batch."""
    sink = _Collected()
    writer = pa.ipc.new_stream(pa.PythonFile(sink, mode="w"), schema)

    def flush() -> Iterator[bytes]:
        reader = pa.BufferReader(sink.take())
        while reader.tell() < reader.size():
            try:
                message = pa.ipc.read_message(reader)
            except EOFError:  # the end-of-stream marker: Flight ends the stream by ending the call
                return
            yield encode_flight_data(message.metadata, message.body)

    yield from flush()

    for batch in batches:
        for chunk in _chunks(batch):
            writer.write_batch(pa.RecordBatch.from_arrays(chunk.columns, schema=schema))
            yield from flush()
    writer.close()
    yield from flush()


class _Collected:
    """A write-only file that keeps what was written until ``take``."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        return None

    def take(self) -> bytes:
        data, self.parts = b"".join(self.parts), []
        return data


def _frame(header: bytes, body: bytes) -> bytes:
    """One encapsulated IPC message: continuation, padded metadata length, metadata, padding, body."""
    padding = -len(header) % 8
    return b"".join([_CONTINUATION, struct.pack("<i", len(header) + padding), header, b"\x00" * padding, body])


def read_flight_data(messages: Iterable[flight_pb2.FlightData], max_bytes: int | None = None) -> pa.Table | None:
    """The table a client uploaded (DoPut), or None when it sent no schema. Refused as soon as the messages
    read pass ``max_bytes`` (``max_upload_bytes``), before the rest is buffered; data that is not an
    uncompressed Arrow IPC stream is INVALID_QUERY."""
    frames, size = [], 0
    for message in messages:
        size += len(message.data_header) + len(message.data_body) + len(message.app_metadata)
        if max_bytes is not None and size > max_bytes:
            raise ResourceExhausted(f"the upload is larger than {format_size(max_bytes)} (max_upload_bytes); bind "
                                    "fewer parameter rows per call")
        if message.data_header:
            if _compressed(message.data_header):
                raise InvalidQuery("compressed Arrow IPC is not accepted (its size is only known once "
                                   "decompressed); send the parameters uncompressed")
            frames.append(_frame(message.data_header, message.data_body))
    if not frames:
        return None
    try:
        return pa.ipc.open_stream(pa.py_buffer(b"".join(frames))).read_all()
    except (pa.ArrowException, OSError) as exc:  # Arrow raises a plain OSError for a bad flatbuffer
        raise InvalidQuery(f"the uploaded data is not a valid Arrow IPC stream ({str(exc)[:200]}); send the "
                           "parameters as Arrow record batches, as Flight SQL clients do") from exc


# Arrow's Message flatbuffer (format/Message.fbs): Message.header_type is field 1 and Message.header field 2;
# RecordBatch.compression is field 3; DictionaryBatch.data (a RecordBatch) is field 1.
_RECORD_BATCH, _DICTIONARY_BATCH = 3, 2


def _compressed(header: bytes) -> bool:
    """Whether an IPC message's body is compressed (LZ4/ZSTD): a few compressed bytes may claim gigabytes.
    A header we cannot walk is left to Arrow, which verifies it and refuses it."""
    try:
        message = _table(header, struct.unpack_from("<I", header, 0)[0])
        kind = _scalar(header, message, 1, "<B")
        batch = _child(header, message, 2)
        if kind == _DICTIONARY_BATCH and batch is not None:
            batch = _child(header, batch, 1)
        return kind in (_RECORD_BATCH, _DICTIONARY_BATCH) and batch is not None and _child(header, batch, 3) is not None
    except (struct.error, IndexError):
        return False


def _table(buf: bytes, position: int) -> int:
    if not 0 <= position <= len(buf) - 4:
        raise IndexError(position)
    return position


def _fb_field(buf: bytes, table: int, index: int) -> int | None:
    """The absolute position of field ``index`` of the flatbuffer table at ``table``, or None when absent."""
    vtable = table - struct.unpack_from("<i", buf, table)[0]
    vtable_size = struct.unpack_from("<H", buf, vtable)[0]
    slot = 4 + 2 * index
    offset = struct.unpack_from("<H", buf, vtable + slot)[0] if slot + 2 <= vtable_size else 0
    return table + offset if offset else None


def _scalar(buf: bytes, table: int, index: int, fmt: str) -> int | None:
    position = _fb_field(buf, table, index)
    return None if position is None else int(struct.unpack_from(fmt, buf, position)[0])


def _child(buf: bytes, table: int, index: int) -> int | None:
    """The table a field of ``table`` refers to (a table or a union value), or None when absent."""
    position = _fb_field(buf, table, index)
    return None if position is None else _table(buf, position + struct.unpack_from("<I", buf, position)[0])
