"""Who is calling: every call needs ``authorization: Bearer``; the Handshake also takes Basic (padded or not, as
Go's ADBC driver sends it unpadded) and answers with an issued ``authorization: Bearer`` header."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable

from core.errors import Unauthenticated
from security.principals import Principal, TokenAuthenticator

__all__ = ["authenticate", "authenticate_handshake"]

_HOW = "send 'authorization: Bearer <token>' (or Basic credentials in the Flight handshake)"


def _authorization(metadata: Iterable[tuple[str, str | bytes]]) -> tuple[str, str]:
    for key, value in metadata:
        if key.lower() == "authorization":
            text = value.decode(errors="replace") if isinstance(value, bytes) else value
            if not _printable_ascii(text):
                raise Unauthenticated(f"the authorization header holds bytes that are not printable ASCII; {_HOW}")
            scheme, _, credential = text.partition(" ")
            return scheme.lower(), credential.strip()
    raise Unauthenticated(f"no credentials: {_HOW}")


def _printable_ascii(text: str) -> bool:
    """Tokens and base64 are printable ASCII; anything else (gRPC hands undecodable bytes over as Latin-1) is
    refused here, before any comparison or decoding meets it."""
    return text.isascii() and text.isprintable()


def authenticate(authenticator: TokenAuthenticator, metadata: Iterable[tuple[str, str | bytes]]) -> Principal:
    scheme, credential = _authorization(metadata)
    if scheme != "bearer" or not credential:
        raise Unauthenticated(f"only Bearer tokens are accepted outside the handshake: {_HOW}")
    return authenticator.from_bearer(credential)


def authenticate_handshake(authenticator: TokenAuthenticator, metadata: Iterable[tuple[str, str | bytes]]
                           ) -> tuple[Principal, str | None]:
    """The principal, and for Basic credentials a freshly issued session token to send back."""
    scheme, credential = _authorization(metadata)
    if scheme == "bearer" and credential:
        return authenticator.from_bearer(credential), None
    if scheme == "basic" and credential:
        principal = authenticator.from_basic(*_decode_basic(credential))
        return principal, authenticator.issue_session(principal)
    raise Unauthenticated(f"unsupported credentials: {_HOW}")


def _decode_basic(credential: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(credential + "=" * (-len(credential) % 4), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise Unauthenticated("the Basic credentials are not valid base64 of 'user:password'") from exc
    username, sep, password = decoded.partition(":")
    if not sep:
        raise Unauthenticated("the Basic credentials must be 'user:password'")
    return username, password
