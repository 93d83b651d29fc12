"""Authenticators as httpx.Auth flows, over httpx's MockTransport: the headers they send, and the OAuth2 flow
(client credentials or refresh token; refreshed before expiry and once on 401; rotation; one refresh for
many concurrent requests; token endpoint failures as UPSTREAM_ERROR)."""

from __future__ import annotations

import asyncio
import base64
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from connectors.requester import ApiKeyAuth, BasicAuth, BearerAuth, OAuth2Grant, OAuth2Refresh
from core.errors import UpstreamError

TOKEN_URL = "https://login.example.test/oauth2/token"
API = "https://api.example.test/data"


def test_static_authenticators_send_their_header() -> None:
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization") or request.headers.get("x-api-key"))
        return httpx.Response(200)

    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        client.get(API, auth=BearerAuth("t0k"))
        client.get(API, auth=BasicAuth("me@x.test", "pw"))
        client.get(API, auth=ApiKeyAuth("lin_api_key"))
        client.get(API, auth=ApiKeyAuth("k", header="X-Api-Key"))
    assert seen == ["Bearer t0k", "Basic " + base64.b64encode(b"me@x.test:pw").decode(), "lin_api_key", "k"]
    assert BasicAuth("me", "pw").secrets() == ("pw", base64.b64encode(b"me:pw").decode())


class FakeOAuth:
    """A token endpoint and an API that accepts only the latest access token."""

    def __init__(self, expires_in: int | None = 3600, rotate: bool = False) -> None:
        self.issued = 0
        self.current = ""
        self.expires_in = expires_in
        self.rotate = rotate
        self.forms: list[dict[str, list[str]]] = []
        self.api_auth: list[str | None] = []
        self.fail_token: httpx.Response | None = None

    def handler(self, request: httpx.Request) -> httpx.Response:
        if str(request.url) == TOKEN_URL:
            self.forms.append(parse_qs(request.content.decode()))
            if self.fail_token is not None:
                return self.fail_token
            self.issued += 1
            self.current = f"access-{self.issued}"
            body: dict[str, Any] = {"access_token": self.current, "token_type": "Bearer",
                                    "instance_url": "https://acme.my.example.test"}
            if self.expires_in is not None:
                body["expires_in"] = self.expires_in
            if self.rotate:
                body["refresh_token"] = f"refresh-{self.issued}"
            return httpx.Response(200, json=body)
        self.api_auth.append(request.headers.get("authorization"))
        if request.headers.get("authorization") != f"Bearer {self.current}":
            return httpx.Response(401, json=[{"errorCode": "INVALID_SESSION_ID"}])
        return httpx.Response(200, json={"ok": True})


async def get(fake: FakeOAuth, auth: OAuth2Refresh, n: int = 1) -> list[int]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake.handler)) as client:
        responses = await asyncio.gather(*(client.get(API, auth=auth) for _ in range(n)))
        return [r.status_code for r in responses]


def test_client_credentials_token_is_fetched_once_and_reused() -> None:
    fake = FakeOAuth()
    auth = OAuth2Refresh(OAuth2Grant(TOKEN_URL, "cid", "csecret", scope="read"))
    assert asyncio.run(get(fake, auth, n=5)) == [200] * 5
    assert fake.issued == 1, "concurrent first requests share one token request"
    assert fake.forms[0] == {"grant_type": ["client_credentials"], "scope": ["read"], "client_id": ["cid"],
                             "client_secret": ["csecret"]}
    assert auth.token_fields["instance_url"] == "https://acme.my.example.test"
    assert "csecret" in auth.secrets() and "access-1" in auth.secrets()


def test_a_401_refreshes_once_and_retries() -> None:
    fake = FakeOAuth(expires_in=None, rotate=True)
    auth = OAuth2Refresh(OAuth2Grant(TOKEN_URL, "cid", "csecret", grant_type="refresh_token",
                                     refresh_token="refresh-0"))
    assert asyncio.run(get(fake, auth)) == [200]
    fake.current = "revoked"  # the API no longer accepts access-1
    assert asyncio.run(get(fake, auth, n=3)) == [200] * 3
    assert fake.issued == 2, "one refresh for three requests that saw the same stale token"
    assert [f["refresh_token"] for f in fake.forms] == [["refresh-0"], ["refresh-1"]], "the rotated token is used"


def test_a_token_that_keeps_failing_is_a_401_not_a_loop() -> None:
    fake = FakeOAuth()
    auth = OAuth2Refresh(OAuth2Grant(TOKEN_URL, "cid", "csecret"))

    def reject_all(request: httpx.Request) -> httpx.Response:
        response = fake.handler(request)
        return httpx.Response(401, json={"message": "no"}) if str(request.url) == API else response

    async def go() -> int:
        async with httpx.AsyncClient(transport=httpx.MockTransport(reject_all)) as client:
            return (await client.get(API, auth=auth)).status_code

    assert asyncio.run(go()) == 401
    assert fake.issued == 2  # the first token, one refresh, then the 401 stands


def test_expiry_refreshes_before_the_request() -> None:
    now = [0.0]
    fake = FakeOAuth(expires_in=60)
    auth = OAuth2Refresh(OAuth2Grant(TOKEN_URL, "cid", "csecret"), clock=lambda: now[0])
    asyncio.run(get(fake, auth))
    now[0] = 31.0  # 60 s token, refreshed 30 s early
    asyncio.run(get(fake, auth))
    assert fake.issued == 2 and fake.api_auth == ["Bearer access-1", "Bearer access-2"]


def test_basic_client_authentication() -> None:
    fake = FakeOAuth()
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if str(request.url) == TOKEN_URL:
            seen.append(request.headers.get("authorization"))
        return fake.handler(request)

    auth = OAuth2Refresh(OAuth2Grant(TOKEN_URL, "cid", "csecret", client_auth="basic"))
    with httpx.Client(transport=httpx.MockTransport(handler)) as client:  # the sync flow too
        assert client.get(API, auth=auth).status_code == 200
    assert seen == ["Basic " + base64.b64encode(b"cid:csecret").decode()]
    assert "client_secret" not in fake.forms[0]


@pytest.mark.parametrize(("response", "message"), [
    (httpx.Response(400, json={"error": "invalid_grant", "error_description": "expired csecret"}),
     r"answered HTTP 400 \(invalid_grant; expired \[redacted\]\)"),
    (httpx.Response(200, json={"token_type": "Bearer"}), "without an access_token"),
    (httpx.Response(200, text="<html>"), "without an access_token"),
])
def test_token_endpoint_failures_are_upstream_errors(response: httpx.Response, message: str) -> None:
    fake = FakeOAuth()
    fake.fail_token = response
    with pytest.raises(UpstreamError, match=message):
        asyncio.run(get(fake, OAuth2Refresh(OAuth2Grant(TOKEN_URL, "cid", "csecret"))))
