"""A pooled connection the server closed (read or protocol error before any answer) is retried on a fresh one,
a bounded number of times; then it is UPSTREAM_ERROR. A unit test of ApiClient's exchange with a transport
double (the only one here)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from connectors.http import CONNECTION_RETRIES, ApiClient
from core.errors import UpstreamError
from core.types import ScanStats


def _client(failures: int) -> tuple[ApiClient, list[int]]:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) <= failures:
            raise httpx.ReadError("connection closed by the server", request=request)
        return httpx.Response(200, json={"ok": True})

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return ApiClient("Jira", http, "http://127.0.0.1:1"), calls


def test_a_broken_pooled_connection_is_retried() -> None:
    api, calls = _client(failures=1)
    reply = asyncio.run(api._exchange("GET", "http://127.0.0.1:1/x", None, None, ScanStats(), "/x"))
    assert reply.status == 200 and len(calls) == 2


def test_retries_are_bounded() -> None:
    api, calls = _client(failures=100)
    with pytest.raises(UpstreamError, match="Jira is unreachable \\(ReadError\\)"):
        asyncio.run(api._exchange("GET", "http://127.0.0.1:1/x", None, None, ScanStats(), "/x"))
    assert len(calls) == CONNECTION_RETRIES + 1
