"""Connector registry and lifecycle: the tenant config's ``connectors: {name: {type: ...}}`` (and the older
``connectors: {github: ..., jira: ...}``), per-connector bounds, names as schemas, and ``open()``/``aclose()``
plus the shared HTTP client's close, called by the app at start and shutdown."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import httpx
import pytest

import flight_server.app as app
from connectors.github.connector import GitHubConfig, GitHubConnector
from connectors.http import HttpLimits
from connectors.jira.connector import JiraConfig, JiraConnector
from connectors.registry import ConnectorFactory, Registry, default_registry
from connectors.settings import SettingError, Settings
from flight_server.config import ConfigError, TenantConfig, load_config
from security.principals import Principal

PRINCIPALS = "principals: [{user: a, token_env: T}]\n"


@pytest.fixture()
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("T", "GH", "JE", "JT"):
        monkeypatch.setenv(name, f"value-of-{name}")


def load(tmp_path: Path, connectors: str) -> TenantConfig:
    path = tmp_path / "tenant.yaml"
    path.write_text(f"connectors:\n{connectors}\n{PRINCIPALS}")
    return load_config(path)


def test_typed_connectors_with_names(tmp_path: Path, env: None) -> None:
    config = load(tmp_path, """
  gh_oss: {type: github, org: oss, token_env: GH, max_pages: 50, max_body_bytes: 1000000, response_timeout_s: 5}
  github: {type: github, org: acme, token_env: GH}
  tickets: {type: jira, base_url: https://acme.atlassian.net, email_env: JE, api_token_env: JT}""")
    assert [(c.name, c.type) for c in config.connector_configs()] == [
        ("gh_oss", "github"), ("github", "github"), ("tickets", "jira")]
    oss = config.connectors[0].config
    assert isinstance(oss, GitHubConfig) and oss.token == "value-of-GH" and oss.max_pages == 50
    assert oss.limits == HttpLimits(max_body_bytes=1_000_000, response_timeout_s=5.0)
    assert config.github is not None and config.github.org == "acme"  # the name 'github' still fills the field
    assert config.jira is None


def test_names_that_are_types_need_no_type(tmp_path: Path, env: None) -> None:
    config = load(tmp_path, """
  github: {org: acme, token_env: GH}
  jira: {base_url: https://acme.atlassian.net, email_env: JE, api_token_env: JT}""")
    assert [(c.name, c.type) for c in config.connector_configs()] == [("github", "github"), ("jira", "jira")]
    assert isinstance(config.jira, JiraConfig) and config.jira.api_token == "value-of-JT"


@pytest.mark.parametrize(("section", "message"), [
    ("  gh: {org: acme, token_env: GH}", r"connectors.gh.type is required \(github, jira, manifest, mcp, salesforce\)"),
    ("  gh: {type: gitlab}", r"connectors.gh.type: unknown connector type 'gitlab' \(known: github, jira, "
                                         r"manifest, mcp, salesforce\)"),
    ("  Bad-Name: {type: github}", "a connector name is its SQL schema"),
    ("  omnisql: {type: github}", "not a reserved schema name"),
    ("  github: {token_env: GH}", r"connectors.github.org is required"),
    ("  github: {org: a, token_env: GH, max_body_bytes: -1}", r"connectors.github.max_body_bytes must be at least 1"),
    ("  github: {org: a, token_env: GH, max_pages: lots}", r"connectors.github.max_pages must be an integer"),
    ("  github: {org: a, token_env: GH, repo_teams: [a]}", r"connectors.github.repo_teams must be a mapping"),
    ("  jira: {base_url: https://x.test, email_env: NOT_SET_ANYWHERE, api_token_env: JT}",
     "environment variable NOT_SET_ANYWHERE"),
    ("  - github", "connectors must be a mapping"),
])
def test_config_errors_name_the_key(tmp_path: Path, env: None, section: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(tmp_path, section)


def test_a_name_is_the_schema(env: None) -> None:
    registry = default_registry()
    entry = registry.parse("gh_oss", {"type": "github", "org": "oss", "token_env": "GH"}, {"GH": "x"})
    connector = registry.build(entry, httpx.AsyncClient())
    assert connector.name == "gh_oss"
    assert {s.qualified_name for s in connector.tables()} == {"gh_oss.pull_requests", "gh_oss.users",
                                                                "gh_oss.repositories", "gh_oss.issues",
                                                                "gh_oss.commits", "gh_oss.reviews"}
    plain = registry.build(registry.parse("jira", {"base_url": "https://x.test", "email_env": "E", "api_token_env":
                                                  "A"}, {"E": "e", "A": "a"}), httpx.AsyncClient())
    assert [s.qualified_name for s in plain.tables()] == ["jira.issues", "jira.projects"]


def test_registering_a_type() -> None:
    registry = Registry()
    built: list[tuple[str, Any]] = []

    def build(name: str, config: Any, http: httpx.AsyncClient) -> Any:
        built.append((name, config))
        return object()

    registry.register(ConnectorFactory("linear", lambda s: {"key": s.secret("api_key")}, build))
    with pytest.raises(ValueError, match="already registered"):
        registry.register(ConnectorFactory("linear", lambda s: None, build))
    entry = registry.parse("linear", {"api_key_env": "K"}, {"K": "lin_1"})
    registry.build(entry, httpx.AsyncClient())
    assert built == [("linear", {"key": "lin_1"})]
    with pytest.raises(SettingError, match="unknown connector type 'mcp'"):
        registry.factory("mcp")
    with pytest.raises(SettingError, match="x.api_key_env is required"):
        Settings("x", {}).secret("api_key")


def _config(**overrides: Any) -> TenantConfig:
    return TenantConfig(
        github=GitHubConfig(base_url="http://127.0.0.1:9", token="t", org="acme"),
        jira=JiraConfig(base_url="http://127.0.0.1:9", email="e", api_token="t"),
        principals=(("tok", Principal(user="a")),), port=0, **overrides)


def test_the_app_opens_and_closes_connectors_and_the_http_client(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    async def opened(self: Any) -> None:
        calls.append(f"open {self.name}")

    async def closed(self: Any) -> None:
        calls.append(f"close {self.name}")

    for cls in (GitHubConnector, JiraConnector):
        monkeypatch.setattr(cls, "open", opened)
        monkeypatch.setattr(cls, "aclose", closed)
    service = app.start_service(_config())
    try:
        assert sorted(calls) == ["open github", "open jira"]
        assert service.http is not None and not service.http.is_closed
        assert sorted(service.engine.connectors) == ["github", "information_schema", "jira", "omnisql"]
    finally:
        service.stop()
    assert sorted(calls) == ["close github", "close jira", "open github", "open jira"]
    assert service.http.is_closed


def test_a_failed_start_closes_what_it_opened(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clients: list[httpx.AsyncClient] = []
    real = app.new_http_client

    def tracked() -> httpx.AsyncClient:
        clients.append(real())
        return clients[-1]

    monkeypatch.setattr(app, "new_http_client", tracked)
    with pytest.raises(ConfigError, match="both a certificate and a key"):
        app.start_service(_config(tls_cert_file=str(tmp_path / "cert.pem")))
    assert len(clients) == 1 and clients[0].is_closed


def test_the_catalog_version_changes_with_the_set_of_tables() -> None:
    from connectors.github.tables import PULL_REQUESTS, USERS
    from connectors.jira.tables import ISSUES
    from planner.catalog import Catalog

    both = Catalog([PULL_REQUESTS, ISSUES]).version
    assert both == Catalog([ISSUES, PULL_REQUESTS]).version, "order does not matter"
    assert both != Catalog([PULL_REQUESTS, ISSUES, USERS]).version
    assert both != Catalog([PULL_REQUESTS]).version
    renamed = dataclasses.replace(ISSUES, schema_name="tickets")
    assert both != Catalog([PULL_REQUESTS, renamed]).version
    assert 0 <= both < 2**63
