"""Opaque, signed, expiring tickets bound to the principal: a DoGet can only redeem what its own caller planned.
Parameters travel as Arrow IPC (typed, never pickle)."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pyarrow as pa

from core.errors import EntitlementDenied, InvalidQuery
from security.signing import Signer

__all__ = ["TicketSigner", "decode_params", "encode_params"]


def encode_params(params: pa.Table | None) -> str | None:
    """The bound parameter rows as base64 Arrow IPC: every value keeps its exact Arrow type."""
    if params is None:
        return None
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, params.schema) as writer:
        writer.write_table(params)
    return base64.b64encode(sink.getvalue().to_pybytes()).decode()


def decode_params(text: str | None) -> pa.Table | None:
    if text is None:
        return None
    return pa.ipc.open_stream(base64.b64decode(text)).read_all()


class TicketSigner:
    def __init__(self, secret: bytes, ttl_s: int = 600) -> None:
        self.signer = Signer(secret)
        self.ttl_s = ttl_s

    def sign(self, user: str, sql: str, params: pa.Table | None) -> bytes:
        payload = json.dumps({"u": user, "q": sql, "p": encode_params(params),
                              "exp": int(time.time()) + self.ttl_s}, separators=(",", ":")).encode()
        return self.signer.sign("ticket", payload) + payload

    def verify(self, ticket: bytes, user: str) -> tuple[str, pa.Table | None]:
        mac, payload = ticket[:32], ticket[32:]
        if not self.signer.verify("ticket", payload, mac):
            raise InvalidQuery("the ticket is not one this server issued; call GetFlightInfo again")
        body = _payload(payload)
        if body["u"] != user:
            raise EntitlementDenied("the ticket belongs to another principal; call GetFlightInfo with your own token")
        if body["exp"] < time.time():
            raise InvalidQuery("the ticket has expired; call GetFlightInfo again")
        try:
            return body["q"], decode_params(body["p"])
        except (ValueError, OSError, pa.ArrowException) as exc:  # binascii.Error is a ValueError
            raise InvalidQuery(_DAMAGED) from exc


_DAMAGED = "the ticket is damaged (its contents cannot be read); call GetFlightInfo again"


def _payload(payload: bytes) -> dict[str, Any]:
    """The signed JSON, checked for shape: a ticket we signed always has it, but a leaked or reused secret
    must not turn a malformed one into an INTERNAL error."""
    try:
        body = json.loads(payload)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise InvalidQuery(_DAMAGED) from exc
    if not (isinstance(body, dict) and isinstance(body.get("u"), str) and isinstance(body.get("q"), str)
            and isinstance(body.get("exp"), int | float) and isinstance(body.get("p"), str | None)):
        raise InvalidQuery(_DAMAGED)
    return body
