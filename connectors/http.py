"""The HTTP machinery every connector shares: one ``httpx.AsyncClient``, a concurrency cap per connector,
retries with backoff that honour ``Retry-After``/``x-ratelimit-reset``, and translation of transport and HTTP
failures into the error vocabulary. Connectors own only URLs and paging; this owns everything that can fail."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import httpx

from core.errors import RateLimitExhausted, SourceTimeout, UpstreamError
from core.types import ScanStats

__all__ = ["ApiClient", "RetryPolicy", "new_http_client"]


def new_http_client(timeout_s: float = 15.0) -> httpx.AsyncClient:
    """The process-wide client: pooled keep-alive connections, timeouts on by default."""
    return httpx.AsyncClient(timeout=httpx.Timeout(timeout_s, connect=5.0),
                             limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
                             follow_redirects=True)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 4
    backoff_s: float = 0.2
    max_wait_s: float = 10.0  # a longer Retry-After fails the query with RATE_LIMIT_EXHAUSTED instead


class ApiClient:
    """Requests against one app, counted into the scan's ``ScanStats``."""

    def __init__(self, source: str, http: httpx.AsyncClient, headers: dict[str, str],
                 auth: httpx.Auth | None = None, concurrency: int = 8, retry: RetryPolicy | None = None) -> None:
        self.source = source
        self.http = http
        self.headers = headers
        self.auth = auth
        self.slots = asyncio.Semaphore(concurrency)
        self.retry = retry or RetryPolicy()

    async def get_json(self, url: str, stats: ScanStats, params: dict[str, Any] | None = None,
                       missing_ok: bool = False, expect: type | None = None) -> tuple[Any, httpx.Response]:
        """The JSON body (of type ``expect`` when given); with ``missing_ok`` a 404 is an answer (``None``: no
        such object), not an error."""
        response = await self.request("GET", url, stats, params=params, missing_ok=missing_ok)
        if missing_ok and response.status_code == 404:
            return None, response
        return self._json(response, expect), response

    async def post_json(self, url: str, stats: ScanStats, body: dict[str, Any], expect: type | None = None
                        ) -> tuple[Any, httpx.Response]:
        response = await self.request("POST", url, stats, json=body)
        return self._json(response, expect), response

    async def request(self, method: str, url: str, stats: ScanStats, missing_ok: bool = False,
                      **kwargs: Any) -> httpx.Response:
        for attempt in range(1, self.retry.max_attempts + 1):
            response = await self._send(method, url, stats, **kwargs)
            if response.is_success or (missing_ok and response.status_code == 404):
                return response
            wait = self._retry_wait(response, attempt)
            if wait is None or attempt == self.retry.max_attempts:
                raise self._error(response)
            await asyncio.sleep(wait)
        raise AssertionError("unreachable")  # the loop always returns or raises

    async def _send(self, method: str, url: str, stats: ScanStats, **kwargs: Any) -> httpx.Response:
        async with self.slots:
            try:
                response = await self.http.request(method, url, headers=self.headers, auth=self.auth or
                                                   httpx.USE_CLIENT_DEFAULT, **kwargs)
            except httpx.TimeoutException as exc:
                raise SourceTimeout(f"{self.source} did not answer {method} {_path(url)} in time; retry later or "
                                    "narrow the query") from exc
            except httpx.TransportError as exc:
                raise UpstreamError(f"{self.source} is unreachable ({type(exc).__name__}: {exc}); check the "
                                    "connector's base_url") from exc
        stats.api_calls += 1
        self._note_budget(response, stats)
        return response

    def _note_budget(self, response: httpx.Response, stats: ScanStats) -> None:
        headers = response.headers
        remaining = headers.get("x-ratelimit-remaining")
        limit = headers.get("x-ratelimit-limit")
        if remaining is not None and remaining.isdigit():
            stats.rate_limit_remaining = int(remaining)
        if limit is not None and limit.isdigit():
            stats.rate_limit_limit = int(limit)

    def _retry_wait(self, response: httpx.Response, attempt: int) -> float | None:
        """Seconds to wait before retrying, or None when retrying cannot help."""
        status = response.status_code
        limited = status == 429 or (status == 403 and (
            response.headers.get("x-ratelimit-remaining") == "0" or "retry-after" in response.headers))
        if limited:
            wait = _rate_limit_wait(response)
            if wait is None:
                wait = self.retry.backoff_s * 2 ** attempt
            if wait > self.retry.max_wait_s:
                raise RateLimitExhausted(
                    f"{self.source} rate limit is exhausted; it refills in {wait:.0f} s. Retry after that, or use "
                    "cached data with a larger max_staleness_ms", retry_after_s=wait)
            return wait
        if status >= 500:
            return self.retry.backoff_s * 2 ** (attempt - 1)
        return None

    def _error(self, response: httpx.Response) -> Exception:
        if response.status_code == 429 or (response.status_code == 403 and
                                           response.headers.get("x-ratelimit-remaining") == "0"):
            return RateLimitExhausted(f"{self.source} rate limit is exhausted after retries; retry later",
                                      retry_after_s=_rate_limit_wait(response))
        detail = _message(response)
        hint = {401: "check the connector credentials", 403: "check the credentials' permissions",
                404: "check names in the query (repository, project)"}.get(response.status_code,
                                                                            "retry later")
        return UpstreamError(f"{self.source} answered HTTP {response.status_code} to {response.request.method} "
                             f"{_path(str(response.request.url))}: {detail}; {hint}")

    def _json(self, response: httpx.Response, expect: type | None = None) -> Any:
        try:
            body = response.json()
        except ValueError as exc:
            raise UpstreamError(f"{self.source} returned a body that is not JSON for "
                                f"{_path(str(response.request.url))}; retry later") from exc
        if expect is not None and not isinstance(body, expect):
            raise UpstreamError(f"{self.source} returned a JSON {type(body).__name__} where its API returns a "
                                f"{'list' if expect is list else 'object'} for {_path(str(response.request.url))}; "
                                "retry later, or report it if it persists")
        return body


def _path(url: str) -> str:
    return httpx.URL(url).path


def _rate_limit_wait(response: httpx.Response) -> float | None:
    retry_after = response.headers.get("retry-after")
    if retry_after and retry_after.strip().isdigit():
        return float(retry_after)
    reset = response.headers.get("x-ratelimit-reset")
    if reset and reset.isdigit():
        return max(float(reset) - time.time(), 0.0)
    return None


def _message(response: httpx.Response) -> str:
    """The upstream's own error text (GitHub ``message``, Jira ``errorMessages``), truncated."""
    try:
        body = response.json()
    except ValueError:
        return f"non-JSON body of {len(response.content)} bytes"
    if isinstance(body, dict):
        if "message" in body:
            return str(body["message"])[:300]
        messages = list(body.get("errorMessages") or []) + [f"{k}: {v}" for k, v in (body.get("errors") or {}).items()]
        if messages:
            return "; ".join(map(str, messages))[:300]
    return str(body)[:300]
