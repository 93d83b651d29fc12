"""``omnisql config check``'s probes of Salesforce and MCP connectors: the sign-in and one call, each failure
saying which setting or environment variable to fix (never a secret's value).

Salesforce: the OAuth token request the connector would send (client credentials or refresh token), then one
``SELECT Id FROM Account LIMIT 1`` with that token, which proves the base URL, the API version and the session.
MCP: for streamable HTTP, one unauthenticated-or-not ``ping`` POST that shows a refused token as the HTTP 401 it
is (the MCP client reports it only as "Server returned an error response"); then, for either transport, the
connector's own ``initialize`` and ``tools/list`` (the tables a query would see)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import httpx

from connectors.mcp.connector import McpConfig, McpConnector
from connectors.salesforce.connector import SalesforceConfig
from core.errors import OmniSQLError

__all__ = ["mcp_probe", "salesforce_probe"]

USER_AGENT = "omnisql-config-check"
_CLIENT_ERRORS = ("invalid_client_id", "invalid_client", "unauthorized_client")


def _var(env: Mapping[str, str], key: str, name: str) -> str:
    """``$VAR (connectors.NAME.key)``: where a credential comes from, never what it is."""
    return f"{env.get(key, 'the variable')} (connectors.{name}.{key})"


def _oauth_error(reply: httpx.Response) -> tuple[str, str]:
    try:
        body = reply.json()
    except ValueError:
        return "", ""
    if not isinstance(body, dict):
        return "", ""
    return str(body.get("error") or ""), str(body.get("error_description") or "")[:120]


def salesforce_probe(name: str, config: SalesforceConfig, http: httpx.Client, env: Mapping[str, str]
                     ) -> tuple[bool, str]:
    base = config.base_url.rstrip("/")
    token_url = config.token_url or f"{base}/services/oauth2/token"
    form = {"grant_type": config.grant, "client_id": config.client_id}
    if config.client_secret:
        form["client_secret"] = config.client_secret
    if config.grant == "refresh_token":
        form["refresh_token"] = config.refresh_token
    reply = http.post(token_url, data=form, headers={"Accept": "application/json", "User-Agent": USER_AGENT})
    if 300 <= reply.status_code < 400:
        return False, (f"{token_url} redirects ({reply.status_code}); set connectors.{name}.base_url (or token_url) "
                       "to the org's My Domain URL, e.g. https://acme.my.salesforce.com")
    if reply.status_code != 200:
        return False, _token_refused(name, config, token_url, reply, env)
    try:
        token = reply.json().get("access_token")
        instance = reply.json().get("instance_url")
    except (ValueError, AttributeError):
        token = instance = None
    if not isinstance(token, str) or not token:
        return False, (f"{token_url} answered 200 without an access_token: is it Salesforce's OAuth token "
                       f"endpoint? check connectors.{name}.base_url and token_url")
    data = f"{base}/services/data/v{config.api_version}"
    query = http.get(f"{data}/query", params={"q": "SELECT Id FROM Account LIMIT 1"},
                     headers={"Authorization": f"Bearer {token}", "Accept": "application/json",
                              "User-Agent": USER_AGENT})
    return _query_answer(name, config, base, instance, query)


def _token_refused(name: str, config: SalesforceConfig, token_url: str, reply: httpx.Response,
                   env: Mapping[str, str]) -> str:
    error, description = _oauth_error(reply)
    said = f"Salesforce's token endpoint answered {reply.status_code} {error or 'without an OAuth error'}" + \
        (f" ({description})" if description else "")
    client = f"{_var(env, 'client_id_env', name)}"
    if config.client_secret:
        client += f" and {_var(env, 'client_secret_env', name)}"
    if error == "unsupported_grant_type":
        return f"{said}: the connected app does not allow the {config.grant} flow; check connectors.{name}.auth"
    if error in _CLIENT_ERRORS:
        return f"{said}: the connected app's credentials were refused; fix {client}"
    if error == "invalid_grant" and config.grant == "refresh_token":
        return (f"{said}: the refresh token in {_var(env, 'refresh_token_env', name)} was refused (expired, revoked "
                f"or for another app); fix {env.get('refresh_token_env', 'it')}, or {client}")
    if error == "invalid_grant":
        return (f"{said}: fix {client} (the client-credentials flow also needs a run-as user on the connected "
                "app)")
    if reply.status_code == 404:
        return (f"{token_url} is not an OAuth token endpoint (404); check connectors.{name}.base_url (the org's My "
                f"Domain URL) or connectors.{name}.token_url")
    return f"{said}; check {client} and connectors.{name}.base_url"


def _query_answer(name: str, config: SalesforceConfig, base: str, instance: Any, reply: httpx.Response
                  ) -> tuple[bool, str]:
    status = reply.status_code
    if status == 401:
        where = f" (the token endpoint names {instance})" if isinstance(instance, str) and instance else ""
        return False, (f"{base} refused the new session (401): connectors.{name}.base_url must be the org's "
                       f"instance URL{where}")
    if status in (404, 410):
        return False, (f"{base} has no REST API v{config.api_version} ({status}); check connectors.{name}."
                       "api_version (GET /services/data/ lists the org's versions) and base_url")
    if status != 200:
        return False, f"{base} answered {status} to one SOQL query; check connectors.{name}.base_url"
    where = f"; the token endpoint's instance_url is {instance}" \
        if isinstance(instance, str) and instance and instance.rstrip("/") != base else ""
    return True, f"Salesforce at {base}: signed in ({config.grant}), API v{config.api_version} answers SOQL{where}"


def mcp_probe(name: str, config: McpConfig, env: Mapping[str, str], timeout_s: float) -> tuple[bool, str]:
    where = config.url if config.transport == "http" else " ".join((config.command, *config.args))
    if config.transport == "http":
        refused = _http_refused(name, config, env, timeout_s)
        if refused is not None:
            return False, refused
    connector = McpConnector(config, name=name)

    async def listed() -> list[str]:
        try:
            async with asyncio.timeout(timeout_s + 5):
                await connector.open()
            return sorted(spec.name for spec in connector.tables())
        finally:
            await connector.aclose()

    try:
        tables = asyncio.run(listed())
    except (OmniSQLError, TimeoutError) as exc:
        setting = "url" if config.transport == "http" else "command and args"
        return False, (f"MCP server at {where} failed initialize or tools/list ({_leaf(exc)}); check "
                       f"connectors.{name}.{setting}")
    missing = sorted(set(config.tools) - set(tables))
    if missing:
        return False, (f"MCP server at {where} offers no usable tool {', '.join(missing)}; check "
                       f"connectors.{name}.tools")
    if not tables:
        return False, f"MCP server at {where} lists no tool that can be a table"
    return True, f"MCP server at {where}: {len(tables)} tools as tables ({', '.join(tables)})"


def _http_refused(name: str, config: McpConfig, env: Mapping[str, str], timeout_s: float) -> str | None:
    """Why the server refuses us at the HTTP level (a 401/403, a redirect, no connection), or None."""
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json",
               "User-Agent": USER_AGENT}
    if config.token:
        headers["Authorization"] = f"Bearer {config.token}"
    try:
        with httpx.Client(timeout=timeout_s, follow_redirects=False) as http:
            reply = http.post(config.url, json={"jsonrpc": "2.0", "id": 0, "method": "ping"}, headers=headers)
    except httpx.HTTPError as exc:
        return f"cannot reach {config.url} ({type(exc).__name__}); check connectors.{name}.url"
    if reply.status_code in (401, 403):
        if not config.token:
            return (f"MCP server at {config.url} answered {reply.status_code}: it wants a token; set "
                    f"connectors.{name}.token_env")
        return (f"MCP server at {config.url} answered {reply.status_code}: the token in "
                f"{_var(env, 'token_env', name)} was refused; fix {env.get('token_env', 'it')}")
    if 300 <= reply.status_code < 400:
        return (f"{config.url} redirects ({reply.status_code}) to {reply.headers.get('location', '?')}; set "
                f"connectors.{name}.url to the MCP endpoint itself")
    return None


def _leaf(exc: BaseException) -> str:
    """The innermost cause, through exception groups: what actually went wrong (a missing program, a refused
    connection, a closed stream)."""
    seen = 0
    while seen < 10:
        seen += 1
        if isinstance(exc, BaseExceptionGroup) and exc.exceptions:
            exc = exc.exceptions[0]
        elif exc.__cause__ is not None:
            exc = exc.__cause__
        else:
            break
    return f"{type(exc).__name__}: {str(exc)[:120]}" if str(exc) else type(exc).__name__
