"""Principals and the demo identity provider: static API tokens, plus short-lived session tokens issued by the
Basic → Bearer handshake (HMAC-signed, so any replica with the same secret can verify them), plus, when the tenant
configures one, bearer JWTs from its OIDC provider (``security.jwt_identity``)."""

from __future__ import annotations

import base64
import hmac
import json
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from core.errors import Unauthenticated
from security.signing import Signer

__all__ = ["BearerVerifier", "Principal", "TokenAuthenticator"]

SESSION_PREFIX = "oms1."


@dataclass(frozen=True)
class Principal:
    user: str
    tenant: str = "default"
    roles: tuple[str, ...] = ()
    attributes: Mapping[str, str] = field(default_factory=dict)


class BearerVerifier(Protocol):
    """Another kind of bearer token (a JWT): ``verify`` returns its principal or raises Unauthenticated."""

    def verify(self, token: str) -> Principal: ...


class TokenAuthenticator:
    """Verifies static tokens (constant-time) and issues/verifies signed session tokens; with ``jwt``, a bearer
    token that is neither (shaped like a JWT) goes to that verifier."""

    def __init__(self, principals: Iterable[tuple[str, Principal]], secret: bytes | None = None,
                 session_ttl_s: int = 12 * 3600, jwt: BearerVerifier | None = None) -> None:
        self.by_token = dict(principals)
        self.by_user = {p.user: p for p in self.by_token.values()}
        self.tokens_of: dict[str, list[str]] = {}
        for token, principal in self.by_token.items():
            self.tokens_of.setdefault(principal.user, []).append(token)
        self.signer = Signer(secret or secrets.token_bytes(32))
        self.session_ttl_s = session_ttl_s
        self.jwt = jwt

    def from_bearer(self, token: str) -> Principal:
        if token.startswith(SESSION_PREFIX):
            return self._verify_session(token)
        for known, principal in self.by_token.items():
            if hmac.compare_digest(known.encode(), token.encode()):
                return principal
        if self.jwt is not None and token.count(".") == 2:
            return self._from_jwt(token)
        raise Unauthenticated("the bearer token is not valid; use a token from your OmniSQL admin (the demo "
                              "prints them) or authenticate with username and password")

    def _from_jwt(self, token: str) -> Principal:
        principal = self.jwt.verify(token) if self.jwt is not None else None
        if principal is None or principal.user in self.by_user:
            # An identity-provider subject named like a static principal would share its tickets, sessions and
            # any policy written for that name: refuse rather than guess which one is meant.
            raise Unauthenticated("the bearer token is not valid")
        return principal

    def from_basic(self, username: str, password: str) -> Principal:
        """Basic auth: the username names a principal and the password is that principal's token."""
        principal = self.by_user.get(username)
        expected = next((t for t, p in self.by_token.items() if p is principal), None)
        if principal is None or expected is None or not hmac.compare_digest(expected.encode(), password.encode()):
            raise Unauthenticated("username or password is wrong; the password is the user's OmniSQL token")
        return principal

    def issue_session(self, principal: Principal) -> str:
        payload = json.dumps({"u": principal.user, "exp": int(time.time()) + self.session_ttl_s},
                             separators=(",", ":")).encode()
        body = base64.urlsafe_b64encode(payload).decode().rstrip("=")
        return f"{SESSION_PREFIX}{body}.{self._sign(body, principal.user)}"

    def _verify_session(self, token: str) -> Principal:
        """The signature covers the user's tokens as configured now: rotating (or removing) a user's token ends
        the sessions it opened, on every replica, without waiting for them to expire."""
        try:
            body, signature = token[len(SESSION_PREFIX):].rsplit(".", 1)
            payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
            user = payload["u"] if isinstance(payload, dict) and isinstance(payload.get("u"), str) else ""
            if not hmac.compare_digest(signature.encode(), self._sign(body, user).encode()):  # str: ASCII only
                raise ValueError("signature")
        except (ValueError, json.JSONDecodeError) as exc:
            raise Unauthenticated("the session token is not valid; authenticate again") from exc
        if payload["exp"] < time.time():
            raise Unauthenticated("the session token has expired; authenticate again")
        principal = self.by_user.get(user)
        if principal is None:
            raise Unauthenticated("the session token names an unknown user; authenticate again")
        return principal

    def _sign(self, body: str, user: str) -> str:
        credentials = "\n".join(sorted(self.tokens_of.get(user, ())))
        return self.signer.sign("session-token", f"{body}\n{credentials}".encode()).hex()[:32]
