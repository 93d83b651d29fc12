"""Flight SQL commands travel as ``google.protobuf.Any``; unpack them into our generated message classes."""

from __future__ import annotations

from google.protobuf import any_pb2
from google.protobuf.message import DecodeError, Message

from connectors.errors import InvalidQuery
from flight_server.proto import flight_sql_pb2 as pb

__all__ = ["pack", "unpack"]

PREFIX = "type.googleapis.com/arrow.flight.protocol.sql."
_MESSAGES: dict[str, type[Message]] = {
    name: getattr(pb, name) for name in pb.DESCRIPTOR.message_types_by_name
}


def unpack(data: bytes) -> Message:
    wrapper = any_pb2.Any()
    try:
        wrapper.ParseFromString(data)
    except DecodeError as exc:
        raise InvalidQuery("the Flight command is not a protobuf Any; use a Flight SQL client") from exc
    name = wrapper.type_url.removeprefix(PREFIX)
    cls = _MESSAGES.get(name)
    if cls is None or not wrapper.type_url.startswith(PREFIX):
        raise InvalidQuery(f"unsupported Flight SQL command {wrapper.type_url or '<empty>'}")
    message = cls()
    message.ParseFromString(wrapper.value)
    return message


def pack(message: Message) -> bytes:
    wrapper = any_pb2.Any()
    wrapper.Pack(message, type_url_prefix="type.googleapis.com/")
    return wrapper.SerializeToString()
