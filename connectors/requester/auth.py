"""Authenticators: ``httpx.Auth`` flows that also name their secrets, so error summaries can scrub them.

- ``BearerAuth``: ``Authorization: Bearer <token>`` (GitHub, OAuth access tokens);
- ``BasicAuth``: ``Authorization: Basic base64(user:password)`` (Jira email + API token);
- ``ApiKeyAuth``: a raw key in a header of the API's choosing (Linear: ``Authorization: <key>``, no scheme);
- ``OAuth2Refresh``: a Bearer token fetched from a token endpoint (client-credentials or refresh-token grant),
  refreshed before it expires and once more when the API answers 401 (Salesforce, Linear OAuth).

The ApiClient checks every URL against the connector's origin before a flow runs, so these never see a
request to a foreign host."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncGenerator, Generator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import httpx

from connectors.requester.summary import summarize
from core.errors import UpstreamError

__all__ = ["ApiKeyAuth", "Authenticator", "BasicAuth", "BearerAuth", "OAuth2Grant", "OAuth2Refresh"]

# Reading a body is unbounded inside an httpx auth flow: only small declared bodies are read there.
MAX_TOKEN_BODY = 1 << 20
MAX_RETRY_BODY = 64 << 10


class Authenticator(Protocol):
    """An ``httpx.Auth`` that can list the secret strings it sends."""

    def secrets(self) -> tuple[str, ...]: ...


class BearerAuth(httpx.Auth):
    def __init__(self, token: str) -> None:
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token}"
        yield request

    def secrets(self) -> tuple[str, ...]:
        return (self._token,)


class BasicAuth(httpx.Auth):
    def __init__(self, username: str, password: str) -> None:
        self._password = password
        self._encoded = base64.b64encode(f"{username}:{password}".encode()).decode()

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Basic {self._encoded}"
        yield request

    def secrets(self) -> tuple[str, ...]:
        return (self._password, self._encoded)


class ApiKeyAuth(httpx.Auth):
    def __init__(self, key: str, header: str = "Authorization", prefix: str = "") -> None:
        self._key, self._header, self._prefix = key, header, prefix

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers[self._header] = f"{self._prefix}{self._key}"
        yield request

    def secrets(self) -> tuple[str, ...]:
        return (self._key,)


@dataclass(frozen=True)
class OAuth2Grant:
    """How to obtain an access token. ``client_auth``: credentials in the form body, or as HTTP Basic."""

    token_url: str
    client_id: str
    client_secret: str = ""
    grant_type: Literal["client_credentials", "refresh_token"] = "client_credentials"
    refresh_token: str = ""
    scope: str = ""
    client_auth: Literal["body", "basic"] = "body"


class OAuth2Refresh(httpx.Auth):
    """Bearer tokens from an OAuth2 token endpoint. A rotated refresh token (sent back with the access token)
    replaces the old one; ``token_fields`` keeps the last response's other fields (Salesforce ``instance_url``)."""

    requires_response_body = True
    EARLY_S = 30.0  # refresh this long before ``expires_in`` runs out

    def __init__(self, grant: OAuth2Grant, clock: Any = time.monotonic) -> None:
        self.grant = grant
        self._refresh_token = grant.refresh_token
        self._access_token: str | None = None
        self._expires_at: float | None = None
        self._clock = clock
        self._lock = asyncio.Lock()
        self.token_fields: Mapping[str, Any] = {}

    def secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self.grant.client_secret, self._refresh_token, self._access_token) if s)

    # -- the flows (sync for httpx.Client, async with one refresh at a time for httpx.AsyncClient) -------------
    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self._needs_token():
            self._store((yield self._token_request()))
        used = self._authorize(request)
        response = yield request
        if self._retry_after(response):
            if self._access_token == used:
                self._store((yield self._token_request()))
            self._authorize(request)
            yield request

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        if self._needs_token():
            async with self._lock:
                if self._needs_token():
                    response = yield self._token_request()
                    await self._read(response)
                    self._store(response)
        used = self._authorize(request)
        response = yield request
        if self._retry_after(response):
            async with self._lock:
                if self._access_token == used:  # else another request refreshed it already
                    refreshed = yield self._token_request()
                    await self._read(refreshed)
                    self._store(refreshed)
            self._authorize(request)
            yield request

    # -- helpers -----------------------------------------------------------------------------------------------
    def _needs_token(self) -> bool:
        return self._access_token is None or (self._expires_at is not None and self._clock() >= self._expires_at)

    def _authorize(self, request: httpx.Request) -> str | None:
        request.headers["Authorization"] = f"Bearer {self._access_token}"
        return self._access_token

    @staticmethod
    def _retry_after(response: httpx.Response) -> bool:
        """Refresh and retry once on 401, unless the 401 declares a large body (httpx buffers it before the
        retry, unbounded)."""
        declared = response.headers.get("content-length", "0")
        return response.status_code == 401 and declared.isdigit() and int(declared) <= MAX_RETRY_BODY

    def _token_request(self) -> httpx.Request:
        grant = self.grant
        form: dict[str, str] = {"grant_type": grant.grant_type}
        if grant.grant_type == "refresh_token":
            form["refresh_token"] = self._refresh_token
        if grant.scope:
            form["scope"] = grant.scope
        headers = {"Accept": "application/json"}
        if grant.client_auth == "basic":
            pair = base64.b64encode(f"{grant.client_id}:{grant.client_secret}".encode()).decode()
            headers["Authorization"] = f"Basic {pair}"
        else:
            form["client_id"] = grant.client_id
            if grant.client_secret:
                form["client_secret"] = grant.client_secret
        return httpx.Request("POST", grant.token_url, data=form, headers=headers)

    @staticmethod
    async def _read(response: httpx.Response) -> None:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_TOKEN_BODY:
            raise UpstreamError(f"the OAuth2 token endpoint sent a {declared}-byte body; check the token_url")
        await response.aread()

    def _store(self, response: httpx.Response) -> None:
        if not response.is_success:
            raise UpstreamError(f"the OAuth2 token endpoint answered HTTP {response.status_code} "
                                f"({self._error_text(response)}); check the client credentials and the token_url")
        try:
            body = response.json()
        except ValueError:
            body = None
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise UpstreamError("the OAuth2 token endpoint answered without an access_token; check the token_url")
        assert isinstance(body, dict)
        self._access_token = token
        expires_in = body.get("expires_in")
        self._expires_at = (self._clock() + max(float(expires_in) - self.EARLY_S, 0.0)
                            if isinstance(expires_in, int | float) and not isinstance(expires_in, bool) else None)
        if isinstance(body.get("refresh_token"), str) and body["refresh_token"]:
            self._refresh_token = body["refresh_token"]
        self.token_fields = {k: v for k, v in body.items() if k not in ("access_token", "refresh_token")}

    def _error_text(self, response: httpx.Response) -> str:
        try:
            body = response.json()
        except ValueError:
            return f"a non-JSON body of {len(response.content)} bytes"
        if not isinstance(body, dict):
            return "no error field"
        texts = [str(body[k]) for k in ("error", "error_description") if isinstance(body.get(k), str)]
        return summarize(texts, self.secrets() + (self.grant.client_id,)) or "no error field"
