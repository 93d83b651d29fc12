"""Issue #11, "operators see upstream trouble": an upstream 401 (or 403), a spent rate limit and every retry are
logged at WARNING on ``omnisql.connectors``, naming the app, the method and the route template — never a filter
value, a full URL or a credential. A unit test of ApiClient's exchange with a transport double."""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest

from connectors.http import ApiClient, PageRequest, RetryPolicy
from core.errors import RateLimitExhausted, UpstreamError
from core.types import ScanStats

SECRET_VALUE = "acme-secret-repo"
ROUTE = "/repos/{owner}/{repo}/pulls"
URL = f"http://127.0.0.1:1/repos/acme/{SECRET_VALUE}/pulls"


def _send(status: int, headers: dict[str, str] | None = None) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, headers=headers or {}, json={"message": "no"})

    api = ApiClient("GitHub", httpx.AsyncClient(transport=httpx.MockTransport(handler)), "http://127.0.0.1:1",
                    headers={"Authorization": "Bearer tok-123"}, retry=RetryPolicy(max_attempts=2, backoff_s=0.0))
    asyncio.run(api.send(PageRequest("GET", URL, {"state": SECRET_VALUE}), ScanStats(), ROUTE))


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and r.name == "omnisql.connectors"]
    for line in lines:
        assert SECRET_VALUE not in line and "tok-123" not in line and "127.0.0.1" not in line, line
    return lines


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_credential_is_a_warning(status: int, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, "omnisql.connectors"), pytest.raises(UpstreamError):
        _send(status)
    assert any(f"GitHub GET {ROUTE} answered HTTP {status}" in line and "credentials" in line
               for line in _warnings(caplog)), caplog.text


def test_a_spent_rate_limit_is_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, "omnisql.connectors"), pytest.raises(RateLimitExhausted):
        _send(429, {"retry-after": "3600"})
    assert any(f"GitHub GET {ROUTE}" in line and "rate limit is exhausted" in line
               for line in _warnings(caplog)), caplog.text


def test_retries_are_warnings(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, "omnisql.connectors"), pytest.raises(UpstreamError):
        _send(503)
    assert any(f"GitHub GET {ROUTE} answered HTTP 503; retrying" in line for line in _warnings(caplog)), caplog.text
