"""Tenant config loading: env-var credentials and errors that name the wrong key."""

from __future__ import annotations

from pathlib import Path

import pytest

from flight_server.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parent.parent


def test_example_config_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GITHUB_TOKEN", "JIRA_EMAIL", "JIRA_API_TOKEN", "OMNISQL_TOKEN_ADMIN", "OMNISQL_SECRET"):
        monkeypatch.setenv(name, f"value-of-{name}")
    config = load_config(ROOT / "tenant.example.yaml")
    assert config.github and config.github.token == "value-of-GITHUB_TOKEN"
    assert config.jira and config.jira.project_teams["WEB"] == "web"
    assert config.principals[0][0] == "value-of-OMNISQL_TOKEN_ADMIN"


def test_missing_env_var_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOPE_TOKEN", raising=False)
    path = tmp_path / "t.yaml"
    path.write_text("connectors: {github: {org: x, token_env: NOPE_TOKEN}}\nprincipals: []\n")
    with pytest.raises(ConfigError, match="NOPE_TOKEN"):
        load_config(path)


def test_tls_needs_both_files_that_exist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("T", "token")
    path = tmp_path / "t.yaml"
    base = "principals: [{user: a, token_env: T}]\n"
    path.write_text(base)
    assert load_config(path).tls() is None
    path.write_text(base + f"listen: {{tls_cert_file: {tmp_path / 'c.pem'}}}\n")
    with pytest.raises(ConfigError, match="both a certificate and a key"):
        load_config(path).tls()
    path.write_text(base + f"listen: {{tls_cert_file: {tmp_path / 'c.pem'}, tls_key_file: {tmp_path / 'k.pem'}}}\n")
    with pytest.raises(ConfigError, match="cannot read the TLS certificate"):
        load_config(path).tls()
