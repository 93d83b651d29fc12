"""The ``identity:`` section of the tenant config: how bearer JWTs from the tenant's OIDC provider are verified
and how their claims become a Principal. Validated where it is read, with errors naming the key, so a typo
fails at start-up instead of locking users out later.

    identity:
      jwt:
        jwks_url: https://idp.example.com/.well-known/jwks.json   # or jwks_file: /etc/omnisql/jwks.json
        issuer: https://idp.example.com/
        audience: omnisql                                        # or a list
        leeway_s: 30
        claims: {user: sub, roles: roles, attributes: {team: team}}
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

__all__ = ["ALGORITHMS", "ClaimMap", "IdentityConfigError", "JwtSettings", "is_loopback_host", "parse_identity"]

ALGORITHMS = ("RS256", "ES256")  # asymmetric only: never none, never HS* (a public key must not be a secret)
MAX_LEEWAY_S = 300.0
_JWT = "identity.jwt"


class IdentityConfigError(ValueError):
    """The ``identity`` section is wrong; the message names the key."""


@dataclass(frozen=True)
class ClaimMap:
    """Which claim (a name, or a dotted path into nested objects such as ``realm_access.roles``) fills which part
    of the Principal. ``roles`` may be a list or a space-separated string (like ``scope``). When ``tenant`` names
    a claim, its value must equal the configured tenant, or the token is refused; the Principal's tenant is always
    the configured one, never taken from a token."""

    user: str = "sub"
    roles: str | None = None
    tenant: str | None = None
    attributes: tuple[tuple[str, str], ...] = ()  # (attribute name, claim)


@dataclass(frozen=True)
class JwtSettings:
    issuer: str
    audience: tuple[str, ...]
    jwks_file: str | None = None
    jwks_url: str | None = None
    tenant: str = "default"
    leeway_s: float = 30.0
    algorithms: tuple[str, ...] = ALGORITHMS
    claims: ClaimMap = field(default_factory=ClaimMap)
    jwks_refresh_min_interval_s: float = 60.0  # unknown kids refresh the JWKS at most this often
    jwks_max_age_s: float = 3600.0  # known keys are re-read this often (a key removed upstream stops working)
    jwks_timeout_s: float = 5.0
    jwks_max_bytes: int = 1 << 20

    def __post_init__(self) -> None:
        if not self.issuer:
            raise IdentityConfigError(f"{_JWT}.issuer is required")
        if not self.audience or not all(self.audience):
            raise IdentityConfigError(f"{_JWT}.audience is required (a string or a list of strings)")
        if (self.jwks_file is None) == (self.jwks_url is None):
            raise IdentityConfigError(f"{_JWT} needs exactly one of jwks_file and jwks_url")
        if self.jwks_url is not None:
            _check_url(self.jwks_url)
        if not 0 <= self.leeway_s <= MAX_LEEWAY_S:
            raise IdentityConfigError(f"{_JWT}.leeway_s must be between 0 and {MAX_LEEWAY_S:g} seconds")
        if not self.algorithms or set(self.algorithms) - set(ALGORITHMS):
            raise IdentityConfigError(f"{_JWT}.algorithms must be a non-empty subset of {', '.join(ALGORITHMS)}")
        for key in ("jwks_refresh_min_interval_s", "jwks_max_age_s", "jwks_timeout_s", "jwks_max_bytes"):
            if not getattr(self, key) > 0:
                raise IdentityConfigError(f"{_JWT}.{key} must be a positive number")


def _check_url(url: str) -> None:
    """https, or http to a loopback host only: keys fetched in the clear could be swapped by anyone on the path,
    and whoever supplies the keys can sign in as anyone."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname and is_loopback_host(parts.hostname):
        return
    raise IdentityConfigError(f"{_JWT}.jwks_url must be an https:// URL (http:// only for a loopback host)")


def is_loopback_host(host: str) -> bool:
    """localhost or a loopback address: the one place plain http may carry keys or decisions."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_JWT_KEYS = {"jwks_file", "jwks_url", "issuer", "audience", "leeway_s", "algorithms", "claims",
             "jwks_refresh_min_interval_s", "jwks_max_age_s", "jwks_timeout_s", "jwks_max_bytes"}
_CLAIM_KEYS = {"user", "roles", "tenant", "attributes"}


def parse_identity(section: Any, tenant: str = "default") -> JwtSettings | None:
    """The JWT settings of an ``identity`` section (None when there is none)."""
    if section is None:
        return None
    _mapping("identity", section, {"jwt"})
    spec = section.get("jwt")
    if spec is None:
        return None
    _mapping(_JWT, spec, _JWT_KEYS)
    jwks_file = _text(spec, "jwks_file", optional=True)
    if jwks_file is not None and not Path(jwks_file).is_file():
        raise IdentityConfigError(f"{_JWT}.jwks_file: {jwks_file} is not a readable file")
    audience = spec.get("audience")
    audiences = (audience,) if isinstance(audience, str) else audience
    if not isinstance(audiences, list | tuple) or not all(isinstance(a, str) and a for a in audiences):
        raise IdentityConfigError(f"{_JWT}.audience is required (a string or a list of strings)")
    algorithms = spec.get("algorithms", list(ALGORITHMS))
    if not isinstance(algorithms, list) or not all(isinstance(a, str) for a in algorithms):
        raise IdentityConfigError(f"{_JWT}.algorithms must be a list, a subset of {', '.join(ALGORITHMS)}")
    numbers = {key: _number(spec, key) for key in ("leeway_s", "jwks_refresh_min_interval_s", "jwks_max_age_s",
                                                   "jwks_timeout_s") if key in spec}
    if "jwks_max_bytes" in spec:
        numbers["jwks_max_bytes"] = int(_number(spec, "jwks_max_bytes"))
    return JwtSettings(issuer=_text(spec, "issuer") or "", audience=tuple(audiences), jwks_file=jwks_file,
                       jwks_url=_text(spec, "jwks_url", optional=True), tenant=tenant,
                       algorithms=tuple(algorithms), claims=_claims(spec.get("claims")), **numbers)  # type: ignore


def _claims(spec: Any) -> ClaimMap:
    if spec is None:
        return ClaimMap()
    section = f"{_JWT}.claims"
    _mapping(section, spec, _CLAIM_KEYS)
    attributes = spec.get("attributes") or {}
    _mapping(f"{section}.attributes", attributes, None)
    for name, claim in attributes.items():
        if not isinstance(name, str) or not isinstance(claim, str) or not claim:
            raise IdentityConfigError(f"{section}.attributes.{name} must name a claim (a string)")
    return ClaimMap(user=_text(spec, "user", section=section, optional=True) or "sub",
                    roles=_text(spec, "roles", section=section, optional=True),
                    tenant=_text(spec, "tenant", section=section, optional=True),
                    attributes=tuple(sorted(attributes.items())))


def _mapping(section: str, value: Any, known: set[str] | None) -> None:
    if not isinstance(value, Mapping):
        raise IdentityConfigError(f"{section} must be a mapping")
    unknown = sorted(str(k) for k in value if known is not None and k not in known)
    if unknown:
        known_keys = ", ".join(sorted(known or ()))
        raise IdentityConfigError(f"{section}.{unknown[0]} is not a known key (known: {known_keys})")


def _text(spec: Mapping[str, Any], key: str, section: str = _JWT, optional: bool = False) -> str | None:
    value = spec.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value:
        raise IdentityConfigError(f"{section}.{key} must be a non-empty string")
    return value


def _number(spec: Mapping[str, Any], key: str) -> float:
    value = spec[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise IdentityConfigError(f"{_JWT}.{key} must be a number")
    return float(value)
