"""Flight SQL commands travel as ``google.protobuf.Any``; unpack them into our generated message classes.

A command of a feature OmniSQL does not offer (updates, bulk ingestion, Substrait) and any command we do not
know answer UNIMPLEMENTED, with what to use instead; bytes that are no ``Any`` at all are INVALID_ARGUMENT."""

from __future__ import annotations

from google.protobuf import any_pb2
from google.protobuf.message import DecodeError, Message

from core.errors import InvalidQuery, Unsupported
from flight_server.proto import flight_sql_pb2 as pb

__all__ = ["UNSUPPORTED_COMMANDS", "pack", "unpack"]

PREFIX = "type.googleapis.com/arrow.flight.protocol.sql."
_MESSAGES: dict[str, type[Message]] = {
    name: getattr(pb, name) for name in pb.DESCRIPTOR.message_types_by_name
}
_READ_ONLY = ("OmniSQL is read-only: {what} is not supported; run SELECT queries (CommandStatementQuery, or "
              "CreatePreparedStatement for parameters)")
UNSUPPORTED_COMMANDS: dict[type[Message], str] = {
    pb.CommandStatementUpdate: _READ_ONLY.format(what="CommandStatementUpdate (execute update)"),
    pb.CommandPreparedStatementUpdate: _READ_ONLY.format(what="CommandPreparedStatementUpdate (execute update)"),
    pb.CommandStatementIngest: _READ_ONLY.format(what="bulk ingestion (CommandStatementIngest)"),
    pb.CommandStatementSubstraitPlan: "Substrait plans are not supported (FLIGHT_SQL_SERVER_SUBSTRAIT is false); "
                                      "send SQL as CommandStatementQuery or CreatePreparedStatement",
}


def unpack(data: bytes) -> Message:
    wrapper = any_pb2.Any()
    try:
        wrapper.ParseFromString(data)
    except DecodeError as exc:
        raise InvalidQuery("the Flight command is not a protobuf Any; use a Flight SQL client") from exc
    if not wrapper.type_url:
        raise InvalidQuery("the Flight command is empty (no type URL); use a Flight SQL client")
    cls = _MESSAGES.get(wrapper.type_url.removeprefix(PREFIX)) if wrapper.type_url.startswith(PREFIX) else None
    if cls is None:
        raise Unsupported(f"unknown Flight SQL command {wrapper.type_url}; OmniSQL serves queries "
                          "(CommandStatementQuery, prepared statements) and the catalog metadata commands")
    if cls in UNSUPPORTED_COMMANDS:
        raise Unsupported(UNSUPPORTED_COMMANDS[cls])
    message = cls()
    try:
        message.ParseFromString(wrapper.value)
    except DecodeError as exc:
        raise InvalidQuery(f"the {cls.__name__} command cannot be decoded (a protobuf whose strings, the SQL "
                           "included, are UTF-8); use a Flight SQL client") from exc
    return message


def pack(message: Message) -> bytes:
    wrapper = any_pb2.Any()
    wrapper.Pack(message, type_url_prefix="type.googleapis.com/")
    return wrapper.SerializeToString()
