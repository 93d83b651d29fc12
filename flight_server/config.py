"""Tenant configuration: connectors (base URLs, credentials read from environment variables) and principals.
Loaded from YAML and validated up front, so a typo fails at start-up with the key that is wrong.

``connectors`` maps a name (its SQL schema) to a section with a ``type`` (``connectors.registry``); a section
named after its type may leave ``type`` out, so ``connectors: {github: {...}, jira: {...}}`` keeps working."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from connectors.github.connector import GitHubConfig
from connectors.jira.connector import JiraConfig
from connectors.ratelimit import RateLimits
from connectors.registry import ConnectorConfig, Registry, default_registry
from connectors.settings import SettingError
from flight_server import tenant_schema
from flight_server.gateway.state import DEFAULT_MAX_ROWS
from flight_server.governance import CacheSettings, GovernanceError, parse_cache, parse_rate_limits
from flight_server.limits import LimitError, ServerLimits, parse_deadline, parse_limits
from planner.engine import JOIN_STRATEGIES
from security.decision_point import decision_point_policy
from security.jwt_config import IdentityConfigError, JwtSettings, parse_identity
from security.policy import ALLOW_ALL, Policy, PolicyError, parse_policy
from security.principals import Principal

Document = tenant_schema.Document

__all__ = ["ConfigError", "TenantConfig", "check_tls_pair", "load_config", "read_document"]


class ConfigError(ValueError):
    """The tenant config file is wrong; the message names the key (and, read from a file, its line).
    ``problems``: one line per problem found (a file is checked whole, so all of them at once)."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or [message]


@dataclass(frozen=True)
class TenantConfig:
    github: GitHubConfig | None
    jira: JiraConfig | None
    principals: tuple[tuple[str, Principal], ...]
    secret: bytes | None = None
    host: str = "127.0.0.1"
    port: int = 8815
    pushdown: bool = True
    deadline_s: float = 60.0
    join_strategy: str = "auto"
    tls_cert_file: str | None = None  # PEM; with tls_key_file the server speaks grpc+tls://
    tls_key_file: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    connectors: tuple[ConnectorConfig, ...] = ()  # from the file; ``github``/``jira`` above serve code-built configs
    limits: ServerLimits = ServerLimits()  # memory, result size, API calls, concurrency, uploads (limits.py)
    policy: Policy = ALLOW_ALL  # the ``policy:`` section (security/policy.py); without one, everyone reads everything
    jwt: JwtSettings | None = None  # ``identity.jwt`` (security/jwt_config.py): bearer JWTs from the tenant's IdP
    rate_limits: RateLimits = RateLimits()  # ``rate_limits`` and ``cache`` (flight_server/governance.py)
    cache: CacheSettings = CacheSettings()
    http_port: int | None = 8001  # ``listen.http_port``: the HTTP gateway (flight_server/gateway/); None: none
    trace_exporter: str = "none"  # ``tracing.exporter`` (flight_server/tracing.py)
    http_max_rows: int = DEFAULT_MAX_ROWS  # ``http_max_rows``: the most rows one JSON answer of POST /v1/query holds
    workers: int = 1  # ``workers``: serving processes on the port (``serve --workers``; flight_server/workers.py)
    share_port: bool = False  # SO_REUSEPORT: set for the processes of ``serve --workers N`` (flight_server/workers.py)

    def connector_configs(self) -> tuple[ConnectorConfig, ...]:
        """Every connector to start: ``github``/``jira`` (unless ``connectors`` names them too), then the rest."""
        named = {c.name for c in self.connectors}
        typed = tuple(ConnectorConfig(name, name, config) for name, config in (("github", self.github),
                                                                              ("jira", self.jira))
                      if config is not None and name not in named)
        return typed + self.connectors

    def tls(self) -> tuple[bytes, bytes] | None:
        """(certificate chain, private key) PEM bytes, or None for plaintext."""
        if not self.tls_cert_file and not self.tls_key_file:
            return None
        if not (self.tls_cert_file and self.tls_key_file):
            raise ConfigError("TLS needs both a certificate and a key (--tls-cert and --tls-key, or "
                              "listen.tls_cert_file and listen.tls_key_file)")
        cert = _read_pem(self.tls_cert_file, "certificate", "--tls-cert, listen.tls_cert_file")
        key = _read_pem(self.tls_key_file, "key", "--tls-key, listen.tls_key_file")
        check_tls_pair(cert, key, str(self.tls_cert_file), str(self.tls_key_file))
        return cert, key


def _read_pem(path: str | Path, what: str, named: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the TLS {what} {path} ({named}): {exc.strerror or exc}") from exc


def check_tls_pair(cert: bytes, key: bytes, cert_name: str, key_name: str) -> None:
    """The certificate chain and key are PEM, the key is not encrypted and belongs to the first certificate: said
    here, by name, instead of gRPC's one failure for all of them ("cannot listen ...: is the port taken?")."""
    from cryptography import x509
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    try:
        chain = x509.load_pem_x509_certificates(cert)
    except ValueError:
        raise ConfigError(f"TLS certificate {cert_name} (--tls-cert, listen.tls_cert_file) is not a PEM certificate "
                          "chain (-----BEGIN CERTIFICATE-----)") from None
    try:
        private = serialization.load_pem_private_key(key, password=None)
    except TypeError:
        raise ConfigError(f"TLS key {key_name} (--tls-key, listen.tls_key_file) is encrypted; give the key "
                          "without a passphrase (e.g. openssl pkey -in KEY -out KEY.plain)") from None
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise ConfigError(f"TLS key {key_name} (--tls-key, listen.tls_key_file) is not a PEM private key "
                          f"(-----BEGIN PRIVATE KEY-----): {type(exc).__name__}") from None
    der = serialization.Encoding.DER
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    if chain[0].public_key().public_bytes(der, spki) != private.public_key().public_bytes(der, spki):
        raise ConfigError(f"TLS key {key_name} does not belong to the certificate {cert_name} (the first of its "
                          "chain): give the key the certificate was issued for")


def _env(section: str, spec: dict[str, Any], key: str) -> str:
    name = spec.get(f"{key}_env")
    if not name:
        raise ConfigError(f"{section}.{key}_env is required (the name of the environment variable that holds it)")
    value = os.environ.get(str(name))
    if not value:
        raise ConfigError(f"environment variable {name} (from {section}.{key}_env) is not set")
    return value


def _require(section: str, spec: dict[str, Any], key: str) -> Any:
    if key not in spec:
        raise ConfigError(f"{section}.{key} is required")
    return spec[key]


def _connectors(section: Any, registry: Registry) -> tuple[ConnectorConfig, ...]:
    if not isinstance(section, dict):
        raise ConfigError("connectors must be a mapping of connector name to its settings")
    try:
        return tuple(registry.parse(str(name), spec, os.environ) for name, spec in section.items())
    except SettingError as exc:
        raise ConfigError(str(exc)) from exc


def read_document(path: str | Path) -> Document:
    """The tenant YAML with its positions, checked against ``tenant.schema.json`` and for unset ``*_env``
    variables: every problem at once, each as ``FILE:LINE:COLUMN: key message`` (ConfigError.problems)."""
    try:
        doc = tenant_schema.read_document(Path(path).read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:  # a binary file, or one saved as Latin-1 / UTF-16
        text = Path(path).read_bytes()[:exc.start]
        line, column = text.count(b"\n") + 1, exc.start - (text.rfind(b"\n") + 1) + 1
        raise ConfigError(f"{path}:{line}:{column}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x}); save the "
                          "file as UTF-8") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        what = " ".join(str(part) for part in (getattr(exc, "context", None), getattr(exc, "problem", None)) if part)
        raise ConfigError(f"{where}: not valid YAML: {what or exc}") from exc
    if doc.data is None:
        doc.data = {}
    if not isinstance(doc.data, dict):
        raise ConfigError(f"{path}:1:1: the config must be a mapping of keys (tenant, connectors, principals, ...)")
    problems = tenant_schema.check(doc, os.environ)
    if problems:
        lines = [p.render(str(path)) for p in problems]
        head = f"{path}: {len(problems)} problems:\n  " if len(problems) > 1 else ""
        raise ConfigError(head + "\n  ".join(lines), lines)
    return doc


def load_config(path: str | Path) -> TenantConfig:
    """Read, check (``read_document``) and parse a tenant YAML; a section parser's error names its line too."""
    doc = read_document(path)
    try:
        return _from_raw(doc.data)
    except ConfigError as exc:
        message = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))  # a parser's terminal colours (sqlglot's highlight)
        line, column = tenant_schema.locate(doc, message)
        where = f"{path}:{line}:{column}" if line else str(path)
        raise ConfigError(f"{where}: {message}", [f"{where}: {message}"]) from exc


def _from_raw(raw: dict[str, Any]) -> TenantConfig:
    connectors = _connectors(raw.get("connectors") or {}, default_registry())
    by_name = {c.name: c for c in connectors}
    github = by_name["github"].config if "github" in by_name and by_name["github"].type == "github" else None
    jira = by_name["jira"].config if "jira" in by_name and by_name["jira"].type == "jira" else None
    principals = []
    for i, entry in enumerate(raw.get("principals") or []):
        section = f"principals[{i}]"
        principal = Principal(user=_require(section, entry, "user"), tenant=raw.get("tenant", "default"),
                              roles=tuple(entry.get("roles") or ()),
                              attributes={k: str(v) for k, v in (entry.get("attributes") or {}).items()})
        principals.append((_env(section, entry, "token"), principal))
    jwt = _identity(raw)
    if not principals and jwt is None:
        raise ConfigError("principals: at least one principal is required (or identity.jwt)")
    listen = raw.get("listen") or {}
    secret_env = raw.get("secret_env")
    secret = os.environ.get(secret_env, "").encode() or None if secret_env else None
    planner = raw.get("planner") or {}
    join_strategy = str(planner.get("join_strategy", "auto"))
    if join_strategy not in JOIN_STRATEGIES:
        raise ConfigError(f"planner.join_strategy must be one of {', '.join(JOIN_STRATEGIES)}, not {join_strategy}")
    policy = _policy(raw)
    try:
        limits, deadline_s = parse_limits(raw), parse_deadline(raw)
    except LimitError as exc:
        raise ConfigError(str(exc)) from exc
    rate_limits, cache = _governance(raw, [c.name for c in connectors])
    return TenantConfig(github=github, jira=jira, connectors=connectors, principals=tuple(principals), secret=secret,
                        policy=policy, limits=limits,
                        host=listen.get("host", "127.0.0.1"), port=int(listen.get("port", 8815)),
                        deadline_s=deadline_s,
                        pushdown=bool(planner.get("pushdown", True)), join_strategy=join_strategy,
                        tls_cert_file=listen.get("tls_cert_file"), tls_key_file=listen.get("tls_key_file"), jwt=jwt,
                        rate_limits=rate_limits, cache=cache, http_port=listen.get("http_port", 8001),
                        trace_exporter=str((raw.get("tracing") or {}).get("exporter", "none")),
                        http_max_rows=int(raw.get("http_max_rows", DEFAULT_MAX_ROWS)),
                        workers=int(raw.get("workers", 1)))


def _policy(raw: dict[str, Any]) -> Policy:
    """The ``policy:`` section: rules, or an external ``decision_point`` (security/decision_point.py); the key
    for hash/email masks comes from ``policy.mask_key_env``."""
    section = raw.get("policy")
    if section is None:
        return ALLOW_ALL
    if not isinstance(section, dict):
        raise ConfigError("policy must be a mapping (default, mask_key_env, rules or decision_point)")
    key = _env("policy", section, "mask_key").encode() if section.get("mask_key_env") else b""
    rest = {k: v for k, v in section.items() if k != "mask_key_env"}
    try:
        return decision_point_policy(rest, key) if "decision_point" in rest else parse_policy(rest, key)
    except PolicyError as exc:
        raise ConfigError(str(exc)) from exc


def _identity(raw: dict[str, Any]) -> JwtSettings | None:
    """The ``identity:`` section: how bearer JWTs from the tenant's OIDC provider are verified and mapped."""
    try:
        return parse_identity(raw.get("identity"), str(raw.get("tenant", "default")))
    except IdentityConfigError as exc:
        raise ConfigError(str(exc)) from exc


def _governance(raw: dict[str, Any], connector_names: list[str]) -> tuple[RateLimits, CacheSettings]:
    """The ``rate_limits`` and ``cache`` sections (flight_server/governance.py)."""
    try:
        return parse_rate_limits(raw.get("rate_limits"), connector_names), parse_cache(raw.get("cache"))
    except GovernanceError as exc:
        raise ConfigError(str(exc)) from exc
