"""Opaque, signed, expiring tickets bound to the principal: a DoGet can only redeem what its own caller planned.
Parameters travel type-tagged in JSON (never pickle)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from connectors.errors import InvalidQuery, Unauthenticated

__all__ = ["TicketSigner"]


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"$dt": value.isoformat()}
    if isinstance(value, date):
        return {"$d": value.isoformat()}
    if isinstance(value, Decimal):
        return {"$dec": str(value)}
    if isinstance(value, bytes):
        return {"$b": base64.b64encode(value).decode()}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if "$dt" in value:
            return datetime.fromisoformat(value["$dt"])
        if "$d" in value:
            return date.fromisoformat(value["$d"])
        if "$dec" in value:
            return Decimal(value["$dec"])
        if "$b" in value:
            return base64.b64decode(value["$b"])
    return value


class TicketSigner:
    def __init__(self, secret: bytes, ttl_s: int = 600) -> None:
        self.secret = secret
        self.ttl_s = ttl_s

    def sign(self, user: str, sql: str, params: list[Any]) -> bytes:
        payload = json.dumps({"u": user, "q": sql, "p": [_encode(v) for v in params],
                              "exp": int(time.time()) + self.ttl_s}, separators=(",", ":")).encode()
        mac = hmac.new(self.secret, payload, hashlib.sha256).digest()
        return mac + payload

    def verify(self, ticket: bytes, user: str) -> tuple[str, list[Any]]:
        mac, payload = ticket[:32], ticket[32:]
        if not hmac.compare_digest(mac, hmac.new(self.secret, payload, hashlib.sha256).digest()):
            raise InvalidQuery("the ticket is not one this server issued; call GetFlightInfo again")
        body = json.loads(payload)
        if body["u"] != user:
            raise Unauthenticated("the ticket belongs to another user; call GetFlightInfo with your own token")
        if body["exp"] < time.time():
            raise InvalidQuery("the ticket has expired; call GetFlightInfo again")
        return body["q"], [_decode(v) for v in body["p"]]
