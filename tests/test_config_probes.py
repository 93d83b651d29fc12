"""``omnisql config check`` probes every kind of connector once, against the sandbox's stand-ins over HTTP (and
the MCP tracker over stdio and streamable HTTP): Salesforce's OAuth flows and one SOQL query, MCP's initialize and
tools/list, a declarative manifest (Linear) and Jira's OAuth bearer. A refused credential names the environment
variable to fix and never prints it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flight_server.config_check import Probe, check_file
from sandbox.jira_api import CLOUD_ID
from sandbox.mcp_incidents import serve_http
from tests.conftest import ROOT

MCP_TOKEN = "mcp-probe-token"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Any]:
    from sandbox.server import start_sandbox

    box = start_sandbox()
    url, server = serve_http(token=MCP_TOKEN)
    box.mcp_url = url  # type: ignore[attr-defined]
    try:
        yield box
    finally:
        server.should_exit = True
        box.stop()


def _tenant(tmp_path: Path, sandbox: Any, **sections: str) -> Path:
    path = tmp_path / "tenant.yaml"
    body = "".join(f"  {name}: {section}\n" for name, section in sections.items())
    path.write_text(f"connectors:\n{body}principals:\n  - {{user: admin, token_env: ADMIN_T}}\n")
    return path


def _env(sandbox: Any, monkeypatch: pytest.MonkeyPatch, **extra: str) -> dict[str, str]:
    info = sandbox.info()
    values = {"ADMIN_T": "admin", "SF_ID": info["salesforce"]["client_id"],
              "SF_SECRET": info["salesforce"]["client_secret"], "SF_REFRESH": info["salesforce"]["refresh_token"],
              "MCP_T": MCP_TOKEN, "LIN_KEY": info["linear"]["api_key"], "JIRA_AT": info["jira"]["api_token"],
              "WRONG": "not-a-secret-value", **extra}
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return values


def _probes(path: Path) -> dict[str, Probe]:
    return {p.connector: p for p in check_file(path).probes}


def test_salesforce_both_flows_sign_in_and_query_once(sandbox: Any, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    _env(sandbox, monkeypatch)
    url = sandbox.info()["salesforce"]["base_url"]
    path = _tenant(tmp_path, sandbox,
                   sf=f'{{type: salesforce, base_url: "{url}", client_id_env: SF_ID, client_secret_env: SF_SECRET}}',
                   sf_refresh=f'{{type: salesforce, base_url: "{url}", auth: refresh_token, client_id_env: SF_ID, '
                              'refresh_token_env: SF_REFRESH}')
    sandbox.salesforce.log.clear()
    probes = _probes(path)
    assert probes["sf"].ok and probes["sf"].message == (f"Salesforce at {url}: signed in (client_credentials), "
                                                        "API v62.0 answers SOQL"), probes["sf"]
    assert probes["sf_refresh"].ok and "signed in (refresh_token)" in probes["sf_refresh"].message
    paths = [e["path"] for e in sandbox.salesforce.log.snapshot()]
    assert paths == ["/services/oauth2/token", "/services/data/v62.0/query"] * 2  # once each: a token, a query


def test_salesforce_refusals_name_what_to_fix(sandbox: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = _env(sandbox, monkeypatch)
    url = sandbox.info()["salesforce"]["base_url"]
    path = _tenant(tmp_path, sandbox,
                   secret=f'{{type: salesforce, base_url: "{url}", client_id_env: SF_ID, client_secret_env: WRONG}}',
                   refresh=f'{{type: salesforce, base_url: "{url}", auth: refresh_token, client_id_env: SF_ID, '
                           'refresh_token_env: WRONG}',
                   version=f'{{type: salesforce, base_url: "{url}", client_id_env: SF_ID, client_secret_env: '
                           'SF_SECRET, api_version: "99.0"}',
                   host=f'{{type: salesforce, base_url: "{url}/nowhere", client_id_env: SF_ID, client_secret_env: '
                        'SF_SECRET}')
    probes = _probes(path)
    assert not any(p.ok for p in probes.values())
    assert "answered 400 invalid_grant (authentication failure): fix $SF_ID (connectors.secret.client_id_env) and " \
           "$WRONG (connectors.secret.client_secret_env)" in probes["secret"].message
    assert "the refresh token in $WRONG (connectors.refresh.refresh_token_env) was refused" in \
           probes["refresh"].message
    assert "has no REST API v99.0 (404); check connectors.version.api_version" in probes["version"].message
    assert "is not an OAuth token endpoint (404); check connectors.host.base_url" in probes["host"].message
    assert not any(env[k] in p.message for p in probes.values() for k in ("WRONG", "SF_SECRET", "SF_REFRESH"))


def test_mcp_over_stdio_and_http_initializes_and_lists_tools(sandbox: Any, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    _env(sandbox, monkeypatch)
    mcp = sandbox.info()["mcp"]
    stdio = f'{{type: mcp, command: "{mcp["command"]}", args: {mcp["args"]}, cwd: "{mcp["cwd"]}"}}'
    path = _tenant(tmp_path, sandbox, local=stdio,
                   remote=f'{{type: mcp, transport: http, url: "{sandbox.mcp_url}", token_env: MCP_T}}',
                   allowlist=f'{{type: mcp, transport: http, url: "{sandbox.mcp_url}", token_env: MCP_T, '
                             'tools: [list_incidents, close_incident]}',
                   missing='{type: mcp, command: /nonexistent/incident-mcp}')
    probes = _probes(path)
    tables = "2 tools as tables (get_incident, list_incidents)"
    assert probes["local"].ok and probes["local"].message.endswith(tables), probes["local"]
    assert probes["remote"].ok and probes["remote"].message == f"MCP server at {sandbox.mcp_url}: {tables}"
    assert not probes["allowlist"].ok and "offers no usable tool close_incident; check connectors.allowlist.tools" \
        in probes["allowlist"].message
    assert not probes["missing"].ok and "FileNotFoundError" in probes["missing"].message \
        and "check connectors.missing.command and args" in probes["missing"].message


def test_mcp_refused_token_names_the_variable(sandbox: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _env(sandbox, monkeypatch)
    path = _tenant(tmp_path, sandbox,
                   wrong=f'{{type: mcp, transport: http, url: "{sandbox.mcp_url}", token_env: WRONG}}',
                   none=f'{{type: mcp, transport: http, url: "{sandbox.mcp_url}"}}',
                   closed='{type: mcp, transport: http, url: "http://127.0.0.1:9/mcp"}')
    probes = _probes(path)
    assert probes["wrong"].message == (f"MCP server at {sandbox.mcp_url} answered 401: the token in $WRONG "
                                       "(connectors.wrong.token_env) was refused; fix $WRONG")
    assert probes["none"].message.endswith("answered 401: it wants a token; set connectors.none.token_env")
    assert probes["closed"].message == ("cannot reach http://127.0.0.1:9/mcp (ConnectError); check "
                                        "connectors.closed.url")
    assert not any(p.ok or "not-a-secret-value" in p.message for p in probes.values())


def test_a_manifest_and_jira_bearer(sandbox: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _env(sandbox, monkeypatch)
    info = sandbox.info()
    linear = f'{{type: manifest, manifest: linear, base_url: "{info["linear"]["base_url"]}"'
    gateway = f'{info["jira"]["base_url"]}/ex/jira/{CLOUD_ID}'
    path = _tenant(tmp_path, sandbox, lin=f"{linear}, api_key_env: LIN_KEY}}",
                   lin_bad=f"{linear}, api_key_env: WRONG}}",
                   jira_oauth=f'{{type: jira, base_url: "{gateway}", auth: bearer, access_token_env: JIRA_AT}}',
                   jira_bad=f'{{type: jira, base_url: "{gateway}", auth: bearer, access_token_env: WRONG}}')
    probes = _probes(path)
    assert probes["lin"].ok, probes["lin"]
    assert not probes["lin_bad"].ok and "HTTP 401" in probes["lin_bad"].message \
        and probes["lin_bad"].message.endswith("; fix $WRONG (connectors.lin_bad.api_key_env)")
    assert probes["jira_oauth"].ok and probes["jira_oauth"].message.startswith(f"Jira at {gateway}: signed in as")
    assert probes["jira_bad"].message.startswith("Jira answered 401: the OAuth access token in $WRONG "
                                                 "(connectors.jira_bad.access_token_env) was refused")


def test_the_cli_prints_each_probe(sandbox: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    env = _env(sandbox, monkeypatch)
    url = sandbox.info()["salesforce"]["base_url"]
    path = _tenant(tmp_path, sandbox,
                   sf=f'{{type: salesforce, base_url: "{url}", client_id_env: SF_ID, client_secret_env: WRONG}}',
                   remote=f'{{type: mcp, transport: http, url: "{sandbox.mcp_url}", token_env: MCP_T}}')

    done = subprocess.run([sys.executable, "-m", "clients.cli", "config", "check", str(path)], cwd=ROOT,
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "FAIL sf: Salesforce's token endpoint answered 400 invalid_grant" in done.stdout
    assert f"ok  remote: MCP server at {sandbox.mcp_url}: 2 tools" in done.stdout
    assert env["WRONG"] not in done.stdout + done.stderr
