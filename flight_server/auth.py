"""Auth middleware: every call needs ``authorization: Bearer``; Handshake also takes Basic (padded or not,
as Go's ADBC driver sends it unpadded) and answers with an issued ``authorization: Bearer`` header."""

from __future__ import annotations

import base64
import binascii

import pyarrow.flight as flight

from connectors.errors import Unauthenticated
from security.principals import Principal, TokenAuthenticator

MIDDLEWARE_KEY = "auth"


class AuthMiddleware(flight.ServerMiddleware):
    def __init__(self, principal: Principal, issued: str | None = None) -> None:
        self.principal = principal
        self.issued = issued

    def sending_headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.issued}"} if self.issued else {}


class AuthMiddlewareFactory(flight.ServerMiddlewareFactory):
    def __init__(self, authenticator: TokenAuthenticator) -> None:
        self.authenticator = authenticator

    def start_call(self, info: flight.CallInfo, headers: dict[str, list[str]]) -> AuthMiddleware:
        values = headers.get("authorization") or headers.get("Authorization") or []
        scheme, _, credential = (values[0] if values else "").partition(" ")
        try:
            if scheme.lower() == "bearer" and credential:
                return AuthMiddleware(self.authenticator.from_bearer(credential.strip()))
            if scheme.lower() == "basic" and info.method == flight.FlightMethod.HANDSHAKE:
                username, password = _decode_basic(credential.strip())
                principal = self.authenticator.from_basic(username, password)
                return AuthMiddleware(principal, issued=self.authenticator.issue_session(principal))
        except Unauthenticated as exc:
            raise flight.FlightUnauthenticatedError(str(exc)) from None
        raise flight.FlightUnauthenticatedError(
            "UNAUTHENTICATED: send 'authorization: Bearer <token>' (or Basic credentials in the handshake)")


def _decode_basic(credential: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(credential + "=" * (-len(credential) % 4), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise Unauthenticated("the Basic credentials are not valid base64 of 'user:password'") from exc
    username, sep, password = decoded.partition(":")
    if not sep:
        raise Unauthenticated("the Basic credentials must be 'user:password'")
    return username, password


class HandshakeHandler(flight.ServerAuthHandler):
    """Lets the Handshake RPC through: the middleware has already checked Basic/Bearer and attaches the
    issued ``authorization`` header. ``is_valid`` accepts every call because the middleware rejects bad ones."""

    def authenticate(self, outgoing: flight.ServerAuthSender, incoming: flight.ServerAuthReader) -> None:
        return None

    def is_valid(self, token: bytes) -> bytes:
        return b""
