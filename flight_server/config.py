"""Tenant configuration: connectors (base URLs, credentials read from environment variables) and principals.
Loaded from YAML and validated up front, so a typo fails at start-up with the key that is wrong."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from connectors.github.connector import GitHubConfig
from connectors.jira.connector import JiraConfig
from planner.binding import JOIN_STRATEGIES
from security.principals import Principal

__all__ = ["ConfigError", "TenantConfig", "load_config"]


class ConfigError(ValueError):
    """The tenant config file is wrong; the message names the key."""


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

    def tls(self) -> tuple[bytes, bytes] | None:
        """(certificate chain, private key) PEM bytes, or None for plaintext."""
        if not self.tls_cert_file and not self.tls_key_file:
            return None
        if not (self.tls_cert_file and self.tls_key_file):
            raise ConfigError("TLS needs both a certificate and a key (listen.tls_cert_file and listen.tls_key_file)")
        try:
            return Path(self.tls_cert_file).read_bytes(), Path(self.tls_key_file).read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read the TLS certificate or key: {exc}") from exc


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


def load_config(path: str | Path) -> TenantConfig:
    try:
        raw = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from exc
    connectors = raw.get("connectors") or {}
    unknown = set(connectors) - {"github", "jira"}
    if unknown:
        raise ConfigError(f"connectors.{sorted(unknown)[0]} is not a known connector (github, jira)")
    github = jira = None
    if "github" in connectors:
        spec = connectors["github"]
        github = GitHubConfig(base_url=spec.get("base_url", "https://api.github.com"),
                              token=_env("connectors.github", spec, "token"),
                              org=_require("connectors.github", spec, "org"),
                              repo_teams=dict(spec.get("repo_teams") or {}))
    if "jira" in connectors:
        spec = connectors["jira"]
        jira = JiraConfig(base_url=_require("connectors.jira", spec, "base_url"),
                          email=_env("connectors.jira", spec, "email"),
                          api_token=_env("connectors.jira", spec, "api_token"),
                          project_teams=dict(spec.get("project_teams") or {}),
                          story_points_field=spec.get("story_points_field", "customfield_10016"),
                          branch_field=spec.get("branch_field", "customfield_10100"))
    principals = []
    for i, entry in enumerate(raw.get("principals") or []):
        section = f"principals[{i}]"
        principal = Principal(user=_require(section, entry, "user"), tenant=raw.get("tenant", "default"),
                              roles=tuple(entry.get("roles") or ()),
                              attributes={k: str(v) for k, v in (entry.get("attributes") or {}).items()})
        principals.append((_env(section, entry, "token"), principal))
    if not principals:
        raise ConfigError("principals: at least one principal is required")
    listen = raw.get("listen") or {}
    secret_env = raw.get("secret_env")
    secret = os.environ.get(secret_env, "").encode() or None if secret_env else None
    planner = raw.get("planner") or {}
    join_strategy = str(planner.get("join_strategy", "auto"))
    if join_strategy not in JOIN_STRATEGIES:
        raise ConfigError(f"planner.join_strategy must be one of {', '.join(JOIN_STRATEGIES)}, not {join_strategy}")
    return TenantConfig(github=github, jira=jira, principals=tuple(principals), secret=secret,
                        host=listen.get("host", "127.0.0.1"), port=int(listen.get("port", 8815)),
                        deadline_s=float(raw.get("query_deadline_s", 60.0)),
                        pushdown=bool(planner.get("pushdown", True)), join_strategy=join_strategy,
                        tls_cert_file=listen.get("tls_cert_file"), tls_key_file=listen.get("tls_key_file"))
