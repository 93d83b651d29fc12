"""``omnisql config check``: what ``serve`` would refuse at start-up, found without starting — the file checked
whole (``config.read_document``: schema, unset variables, every problem with its line), the sections parsed, the
policy checked against the connectors' tables — and then one request per connector to its base URL with its
credentials, so a wrong URL or a token the API refuses is named before the first query.

A probe never prints a credential: only the environment variable that holds it, and the key that names it."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from connectors.github.connector import GitHubConfig
from connectors.jira.connector import JiraConfig
from connectors.mcp.connector import McpConfig
from connectors.registry import ConnectorConfig, default_registry
from connectors.salesforce.connector import SalesforceConfig
from core.types import TableSpec
from flight_server import tenant_schema
from flight_server.app_probes import mcp_probe, salesforce_probe
from flight_server.config import ConfigError, TenantConfig, load_config, read_document
from flight_server.connector_check import ManifestConfig, probe_manifest
from security.decision_point import DecisionPointError, DecisionPointPolicy
from security.policy import PolicyError
from security.principals import Principal

__all__ = ["CheckReport", "Probe", "check_file", "probe"]

TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Probe:
    connector: str
    ok: bool
    message: str


@dataclass
class CheckReport:
    config: TenantConfig
    probes: list[Probe]
    notes: list[str]


def check_file(path: str | Path, probe_upstream: bool = True) -> CheckReport:
    """Raises ConfigError (every problem of the file, with lines) or returns the probes' results."""
    config = load_config(path)
    doc = read_document(path)
    raw: Mapping[str, Any] = doc.data
    try:
        config.tls()  # the files exist, are PEM and belong together: what serve would refuse, said now
    except ConfigError as exc:
        line, column = tenant_schema.locate(doc, str(exc))
        where = f"{path}:{line}:{column}" if line else str(path)
        raise ConfigError(f"{where}: {exc}", [f"{where}: {exc}"]) from exc
    specs = _check_policy(config)
    notes = []
    secret_env = raw.get("secret_env")
    if not secret_env:
        notes.append("secret_env is not set: tickets and session tokens are signed with a random key per start, "
                     "so replicas cannot redeem each other's tickets")
    probes = [probe(entry, _env_names(raw, entry.name)) for entry in config.connector_configs()] \
        if probe_upstream else []
    if probe_upstream and isinstance(config.policy, DecisionPointPolicy):
        probes.append(_decision_point(config, config.policy, specs))
    return CheckReport(config, probes, notes)


def _decision_point(config: TenantConfig, policy: DecisionPointPolicy, specs: list[TableSpec]) -> Probe:
    """One question to the external decision point, as a query would ask it (the file's first principal, the
    first table): every query depends on its answers, so an unreachable or misbehaving one is named now."""
    name, shown = "policy.decision_point", policy.point.settings.shown
    principal = config.principals[0][1] if config.principals else Principal("omnisql-config-check")
    if not specs:
        return Probe(name, True, f"{shown}: not asked (no table is known without starting the connectors)")
    try:
        decision = policy.decide(principal, specs[0])
    except DecisionPointError as exc:
        return Probe(name, False, f"{exc} ({exc.detail}); check policy.decision_point.url and token_env")
    finally:
        policy.close()
    verdict = "allows" if decision.allowed else "denies"
    return Probe(name, True, f"{shown} answered: it {verdict} {specs[0].qualified_name} to {principal.user}")


def _check_policy(config: TenantConfig) -> list[TableSpec]:
    """The start-up check of the policy against every table (row filters and masks name real columns); returns
    the tables known without starting the connectors."""

    async def specs() -> list[Any]:
        async with httpx.AsyncClient() as http:  # building a connector sends nothing
            registry = default_registry()
            return [spec for entry in config.connector_configs() for spec in registry.build(entry, http).tables()]

    known = asyncio.run(specs())
    try:
        config.policy.validate(known)  # the system tables are outside the policy
    except PolicyError as exc:
        raise ConfigError(str(exc)) from exc
    return known


def _env_names(raw: Mapping[str, Any], name: str) -> dict[str, str]:
    section = (raw.get("connectors") or {}).get(name) or {}
    return {key: f"${value}" for key, value in section.items() if key.endswith("_env") and isinstance(value, str)}


def probe(entry: ConnectorConfig, env: Mapping[str, str], timeout_s: float = TIMEOUT_S) -> Probe:
    """One request to the connector's API with its credentials."""
    config = entry.config
    if isinstance(config, ManifestConfig):  # one row of its first table, through the connector itself
        return _manifest(entry.name, config, env)
    if isinstance(config, McpConfig):  # initialize + tools/list, through the connector itself
        return Probe(entry.name, *mcp_probe(entry.name, config, env, timeout_s))
    try:
        with httpx.Client(timeout=timeout_s, follow_redirects=False) as http:
            if isinstance(config, GitHubConfig):
                return _github(entry.name, config, http, env)
            if isinstance(config, JiraConfig):
                return _jira(entry.name, config, http, env)
            if isinstance(config, SalesforceConfig):
                return Probe(entry.name, *salesforce_probe(entry.name, config, http, env))
    except httpx.HTTPError as exc:
        base = getattr(config, "base_url", "?")
        return Probe(entry.name, False, f"cannot reach {base} ({type(exc).__name__}: {str(exc)[:120]}); check "
                                        f"connectors.{entry.name}.base_url")
    return Probe(entry.name, True, f"no probe for connector type {entry.type}; not checked")


def _manifest(name: str, config: ManifestConfig, env: Mapping[str, str]) -> Probe:
    """A refused credential (HTTP 401/403) names the variables that hold this connector's secrets."""
    ok, message = probe_manifest(config, name)
    if not ok and ("HTTP 401" in message or "HTTP 403" in message):
        held = [f"{var} (connectors.{name}.{key})" for key, var in sorted(env.items())]
        if held:
            message += f"; fix {' or '.join(held)}"
    return Probe(name, ok, message)


def _redirect(name: str, base: str, reply: httpx.Response) -> Probe:
    return Probe(name, False, f"{base} redirects ({reply.status_code}) to {reply.headers.get('location', '?')}; set "
                              f"connectors.{name}.base_url to the API's own URL (redirects elsewhere are refused)")


def _github(name: str, config: GitHubConfig, http: httpx.Client, env: Mapping[str, str]) -> Probe:
    base = config.base_url.rstrip("/")
    token_var = env.get("token_env", "the token")
    token_in = f"{token_var} (connectors.{name}.token_env)"
    reply = http.get(f"{base}/orgs/{config.org}/repos", params={"per_page": 1}, headers={
        "Authorization": f"Bearer {config.token}", "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": config.api_version, "User-Agent": "omnisql-config-check"})
    status = reply.status_code
    if 300 <= status < 400:
        return _redirect(name, base, reply)
    if status == 401:
        return Probe(name, False, f"GitHub answered 401 Unauthorized: the token in {token_in} is not valid (expired, "
                                  f"revoked or mistyped); fix {token_var}")
    if status == 403 and reply.headers.get("x-ratelimit-remaining") == "0":
        return Probe(name, False, "GitHub answered 403: this token's rate limit is spent until "
                                  f"{reply.headers.get('x-ratelimit-reset', '?')} (epoch seconds); try later")
    if status == 403:
        return Probe(name, False, f"GitHub answered 403 Forbidden for org {config.org}: the token in {token_var} "
                                  "may not read it (an org with SAML SSO needs the token authorized for it; a "
                                  "fine-grained token needs the org as its resource owner)")
    if status == 404:
        return Probe(name, False, f"GitHub answered 404 for org {config.org}: no such organization, or the token in "
                                  f"{token_var} cannot see it; check connectors.{name}.org and "
                                  f"connectors.{name}.base_url (GitHub Enterprise: https://HOST/api/v3)")
    if status != 200 or not _json_list(reply):
        return Probe(name, False, f"{base} answered {status} without GitHub's JSON: is it the GitHub REST API? "
                                  f"check connectors.{name}.base_url (github.com: https://api.github.com; GitHub "
                                  "Enterprise Server: https://HOST/api/v3)")
    scopes = reply.headers.get("x-oauth-scopes")
    note = ""
    if scopes is not None and not {"repo", "public_repo"} & {s.strip() for s in scopes.split(",")}:
        note = f"; this classic token has scopes [{scopes}]: add repo (private repositories) or public_repo"
    return Probe(name, True, f"GitHub at {base}: the token in {token_var} lists org {config.org}'s repositories{note}")


def _json_list(reply: httpx.Response) -> bool:
    try:
        return isinstance(reply.json(), list)
    except ValueError:
        return False


def _jira(name: str, config: JiraConfig, http: httpx.Client, env: Mapping[str, str]) -> Probe:
    base = config.base_url.rstrip("/")
    email_var = env.get("email_env", "the e-mail")
    token_var = env.get("api_token_env", "the API token")
    headers = {"Accept": "application/json", "User-Agent": "omnisql-config-check"}
    if config.access_token:  # OAuth 2.0 (3LO) at https://api.atlassian.com/ex/jira/{cloudId}
        reply = http.get(f"{base}/rest/api/3/myself", headers={**headers,
                                                               "Authorization": f"Bearer {config.access_token}"})
    else:
        reply = http.get(f"{base}/rest/api/3/myself", auth=(config.email, config.api_token), headers=headers)
    status = reply.status_code
    if 300 <= status < 400:
        return _redirect(name, base, reply)
    if status in (401, 403) and config.access_token:
        bearer_var = env.get("access_token_env", "the access token")
        return Probe(name, False, f"Jira answered {status}: the OAuth access token in {bearer_var} "
                                  f"(connectors.{name}.access_token_env) was refused (expired, revoked or for "
                                  f"another site); fix {bearer_var}, and check that connectors.{name}.base_url is "
                                  "https://api.atlassian.com/ex/jira/{cloudId}")
    if status in (401, 403):
        return Probe(name, False, f"Jira answered {status}: the e-mail in {email_var} (connectors.{name}.email_env) "
                                  f"and the API token in {token_var} (connectors.{name}.api_token_env) were refused; "
                                  f"fix {token_var} (an Atlassian API token of that account) or {email_var}")
    if status == 404:
        return Probe(name, False, f"{base} has no Jira Cloud REST API v3 (404 for /rest/api/3/myself); check "
                                  f"connectors.{name}.base_url (e.g. https://acme.atlassian.net)")
    try:
        who = reply.json() if status == 200 else None
    except ValueError:
        who = None
    if not isinstance(who, dict):
        return Probe(name, False, f"{base} answered {status} without Jira's JSON; check connectors.{name}.base_url")
    return Probe(name, True, f"Jira at {base}: signed in as {who.get('displayName') or who.get('emailAddress') or '?'}")
