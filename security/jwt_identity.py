"""OIDC identity: a bearer JWT from the tenant's identity provider, verified against its JWKS, becomes a Principal.

What a token must be: three base64url parts (at most 16 KiB, ASCII), signed RS256 or ES256 with a key from the
JWKS named by its ``kid`` (a token without one is refused: we never try every key), ``iss`` equal to the
configured issuer, ``aud`` containing a configured audience, ``exp`` present, ``exp``/``nbf``/``iat`` within the
configured leeway, and no ``crit`` header (RFC 7515: extensions we do not understand must be refused). The
algorithm is the key's, not the token's: the header's ``alg`` only has to agree with it.

Every refusal is UNAUTHENTICATED with one of three messages (not valid / expired / not valid yet); which check
failed is logged server-side as a fixed category, never with the token, its claims or its key id.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

import jwt

from core.errors import Unauthenticated
from security.jwks import JwksCache, file_source, url_source
from security.jwt_config import JwtSettings
from security.principals import Principal

__all__ = ["JwtVerifier", "looks_like_jwt", "principal_from_claims"]

log = logging.getLogger("omnisql.identity")

MAX_TOKEN_CHARS = 16 * 1024
MAX_NAME_CHARS = 256
MAX_ROLES = 256
INVALID = "the bearer token is not valid"
EXPIRED = "the bearer token has expired; get a new one from your identity provider"
NOT_YET = "the bearer token is not valid yet; check the client's clock"
_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
_MISSING = object()


def looks_like_jwt(token: str) -> bool:
    """Shaped like a compact JWS (three base64url parts): worth handing to the JWT verifier at all."""
    return len(token) <= MAX_TOKEN_CHARS and token.isascii() and _COMPACT_JWS.fullmatch(token) is not None


def _refuse(category: str, message: str = INVALID) -> NoReturn:
    log.info("bearer JWT refused: %s", category)
    raise Unauthenticated(message)


class JwtVerifier:
    """Verifies tokens for one tenant; keys come from ``settings``' JWKS unless ``source`` is given (tests)."""

    def __init__(self, settings: JwtSettings, source: Callable[[], bytes] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        if source is None:
            source = (file_source(settings.jwks_file, settings.jwks_max_bytes) if settings.jwks_file else
                      url_source(str(settings.jwks_url), settings.jwks_timeout_s, settings.jwks_max_bytes))
        self.keys = JwksCache(source, settings.algorithms, settings.jwks_refresh_min_interval_s,
                              settings.jwks_max_age_s, clock)

    def verify(self, token: str) -> Principal:
        return principal_from_claims(self.claims(token), self.settings)

    def claims(self, token: str) -> dict[str, Any]:
        """The verified claims of ``token``, or Unauthenticated."""
        if not looks_like_jwt(token):
            _refuse("not a compact JWS")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            _refuse("unreadable header")
        algorithm, kid = header.get("alg"), header.get("kid")
        if algorithm not in self.settings.algorithms:
            _refuse("algorithm not allowed")
        if not isinstance(kid, str) or not kid:
            _refuse("no kid")
        if "crit" in header:
            _refuse("critical header extensions")
        key = self.keys.key(kid, algorithm)
        if key is None:
            _refuse("unknown kid")
        try:
            claims = jwt.decode(token, key.key, algorithms=[key.algorithm], audience=list(self.settings.audience),
                                issuer=self.settings.issuer, leeway=self.settings.leeway_s,
                                options={"require": ["exp", "iss", "aud"], "strict_aud": False})
        except jwt.ExpiredSignatureError:
            _refuse("expired", EXPIRED)
        except jwt.ImmatureSignatureError:
            _refuse("not yet valid", NOT_YET)
        except jwt.InvalidTokenError as exc:
            _refuse(type(exc).__name__)
        if claims.get("iss") != self.settings.issuer:  # exact, whatever the library's notion of a match
            _refuse("issuer")
        return claims


def principal_from_claims(claims: Mapping[str, Any], settings: JwtSettings) -> Principal:
    """The Principal the configured claim map makes of verified claims. A mapped attribute whose claim is absent
    is left out of ``attributes`` (policies must treat a missing attribute as no match)."""
    mapping = settings.claims
    user = _claim(claims, mapping.user)
    if not _is_name(user):
        _refuse("user claim missing or not a plain string")
    if mapping.tenant is not None and _claim(claims, mapping.tenant) != settings.tenant:
        _refuse("tenant claim does not name this tenant")
    roles: tuple[str, ...] = ()
    if mapping.roles is not None:
        roles = _roles(_claim(claims, mapping.roles))
    attributes: dict[str, str] = {}
    for name, path in mapping.attributes:
        value = _claim(claims, path)
        if value is _MISSING:
            continue
        if isinstance(value, bool | int | float):
            value = str(value).lower() if isinstance(value, bool) else str(value)
        if not _is_name(value):
            _refuse(f"attribute {name} is not a plain string")
        attributes[name] = value
    return Principal(user=user, tenant=settings.tenant, roles=roles, attributes=attributes)


def _claim(claims: Mapping[str, Any], path: str) -> Any:
    """A top-level claim by its full name (namespaced claims such as ``https://x.io/roles`` hold dots), else a
    dotted path into nested objects."""
    if path in claims:
        return claims[path]
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _roles(value: Any) -> tuple[str, ...]:
    if value is _MISSING or value is None:
        return ()
    if isinstance(value, str):
        value = value.split()
    if not isinstance(value, list) or len(value) > MAX_ROLES or not all(_is_name(r) for r in value):
        _refuse("roles claim is not a list of plain strings")
    return tuple(value)


def _is_name(value: Any) -> bool:
    """A non-empty string of printable characters, not too long: it will be logged and compared in policies."""
    return isinstance(value, str) and 0 < len(value) <= MAX_NAME_CHARS and value.isprintable()
