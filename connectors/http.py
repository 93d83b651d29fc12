"""The HTTP machinery every connector shares: one ``httpx.AsyncClient``, a concurrency cap per connector, and
``ApiClient``, which owns everything about one exchange that can go wrong:

- credentials go only to the connector's origin (scheme, host, port of its ``base_url``): any other URL, be
  it a next-page link or a redirect, is refused before a request is built;
- redirects are followed here, not by httpx: same origin only, at most ``max_redirects``, loops refused;
- bodies are read as a stream under ``max_body_bytes`` (decoded size, so a gzip bomb stops too) and within
  ``response_timeout_s`` (a body that drips forever is a timeout, not a hang);
- retries with backoff honour the API's rate-limit signals (an ``ErrorHandler`` per API says which);
- failures become the error vocabulary with the API's own message summarized, never its body verbatim;
- every request sent counts in ``ScanStats.api_calls`` (redirect hops and retries included); logs name
  route templates, never filter values;
- every request first takes a token from its credential's rate-limit bucket (``ScanStats.gate``,
  ``connectors/ratelimit.py``): it waits at most ``max_wait_ms`` and never past the deadline, else the query fails
  with RATE_LIMIT_EXHAUSTED and nothing is sent or counted; the API's rate-limit headers adapt the bucket;
- with an ``EtagCache`` (``connectors/conditional.py``) a GET carries ``If-None-Match`` for the body last seen at
  its URL, and a ``304 Not Modified`` is answered from that body (headers refreshed by the 304's): it counts in
  ``ScanStats.not_modified`` and its rate-limit token is given back (the API does not count it either)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pyarrow as pa
from opentelemetry.trace import SpanKind

from connectors.conditional import EtagCache, Stored
from connectors.requester.errors import ErrorHandler, RetryAfterErrors
from connectors.requester.reply import Origin, PageRequest, Reply, json_kind
from connectors.requester.summary import describe_body, summarize
from core import tracing
from core.errors import RateLimitExhausted, SourceTimeout, UpstreamError
from core.types import ScanStats

__all__ = ["ApiClient", "HttpLimits", "RetryPolicy", "new_http_client", "reset_in_s"]

log = logging.getLogger("omnisql.connectors")
# httpx logs every request's full URL at INFO ("HTTP Request: GET .../users/ana-silva", a search's q=, a SOQL
# query's literals) and httpcore every response's headers at DEBUG: filter values, row values and upstream
# cookies. Our own lines name route templates; theirs stay quiet below WARNING whatever OMNISQL_LOG_LEVEL says.
for _library in ("httpx", "httpcore"):
    logging.getLogger(_library).setLevel(logging.WARNING)

REDIRECTS = frozenset({301, 302, 303, 307, 308})
_MIN_ECHO = 8  # request values at least this long are scrubbed from upstream messages (JQL, logins, ...)


def reset_in_s(value: str, now: float | None = None) -> float | None:
    """Seconds until an ``x-ratelimit-reset``: epoch seconds (GitHub), epoch milliseconds, or an ISO 8601 time
    (Jira: ``2026-01-01T10:00Z``); None when unreadable."""
    value = value.strip()
    now = time.time() if now is None else now
    if value.isdigit():
        at = float(value)
        return max((at / 1000 if at > 1e11 else at) - now, 0.0)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(moment.timestamp() - now, 0.0)


def new_http_client(timeout_s: float = 15.0) -> httpx.AsyncClient:
    """The process-wide client: pooled keep-alive connections, timeouts on by default, and no redirect
    following (``ApiClient`` follows them itself, within the connector's origin only)."""
    return httpx.AsyncClient(timeout=httpx.Timeout(timeout_s, connect=5.0),
                             limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
                             follow_redirects=False)


CONNECTION_RETRIES = 2  # fresh connections tried after one broke before an answer


def _core(reply: Reply) -> bool:
    """Whether the reply's rate-limit headers are about the credential's main budget (the bucket's): GitHub names
    others in ``x-ratelimit-resource`` (``search``, 30/min), which must not drain or block it."""
    return reply.headers.get("x-ratelimit-resource", "core").strip().lower() in ("core", "")


class _BrokenConnection(Exception):
    """The connection failed before an answer arrived (connect, read or protocol error): safe to retry."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 4
    backoff_s: float = 0.2
    max_wait_s: float = 10.0  # a longer Retry-After fails the query with RATE_LIMIT_EXHAUSTED instead


@dataclass(frozen=True)
class HttpLimits:
    """Per-response bounds against an upstream that misbehaves (configurable per connector)."""

    max_body_bytes: int = 32 << 20
    response_timeout_s: float = 30.0  # headers and the whole body
    max_redirects: int = 5

    def __post_init__(self) -> None:
        if self.max_body_bytes < 1 or self.response_timeout_s <= 0 or self.max_redirects < 0:
            raise ValueError("max_body_bytes and response_timeout_s must be positive, max_redirects >= 0")


class ApiClient:
    """Requests against one app, counted into the scan's ``ScanStats``."""

    def __init__(self, source: str, http: httpx.AsyncClient, base_url: str, *, auth: httpx.Auth | None = None,
                 headers: Mapping[str, str] | None = None, errors: ErrorHandler | None = None,
                 concurrency: int = 8, retry: RetryPolicy | None = None, limits: HttpLimits | None = None,
                 etags: EtagCache | None = None, name: str | None = None) -> None:
        self.source = source  # the app, as messages name it ("GitHub returned ...")
        self.name = name or source.lower()  # the connector as configured (gh_oss): the label of metrics and progress
        self.http = http
        self.origin = Origin.of(base_url)
        self.auth = auth
        self.headers = dict(headers or {})
        self.errors: ErrorHandler = errors or RetryAfterErrors()
        self.slots = asyncio.Semaphore(concurrency)
        self.retry = retry or RetryPolicy()
        self.limits = limits or HttpLimits()
        self.etags = etags if etags is not None and etags.max_bytes > 0 else None

    # -- convenience -------------------------------------------------------------------------------------------
    async def get_json(self, url: str, stats: ScanStats, route: str, params: Mapping[str, Any] | None = None,
                       missing_ok: bool = False, expect: type | None = None) -> Any:
        """The JSON body (of type ``expect`` when given); with ``missing_ok`` a 404 is an answer (``None``: no
        such object), not an error."""
        reply = await self.send(PageRequest("GET", url, params), stats, route, missing_ok=missing_ok)
        if missing_ok and reply.status == 404:
            return None
        return self.json(reply, route, expect)

    async def post_json(self, url: str, stats: ScanStats, route: str, body: Mapping[str, Any],
                        expect: type | None = None) -> Any:
        return self.json(await self.send(PageRequest("POST", url, body=body), stats, route), route, expect)

    def json(self, reply: Reply, route: str, expect: type | None = None,
             records: tuple[tuple[str, ...], pa.DataType] | None = None) -> Any:
        """The reply's JSON body; with ``records`` (a path and the records' wire type) the array there keeps only
        the fields that type reads."""
        try:
            body = reply.pruned_json(*records) if records is not None else reply.json()
        except ValueError as exc:
            raise UpstreamError(f"{self.source} returned a body that is not JSON for {route}; retry later") from exc
        if expect is not None and not isinstance(body, expect):
            raise UpstreamError(f"{self.source} returned a JSON {json_kind(body)} where its API returns "
                                f"{'an array' if expect is list else 'an object'} for {route}; retry later, or "
                                "report it if it persists")
        return body

    def check_origin(self, url: str | httpx.URL, route: str, what: str) -> None:
        """Refuse any URL outside the connector's origin: our credentials would go with it."""
        try:
            target = httpx.URL(str(url))
            origin = Origin.of(target)
        except (httpx.InvalidURL, TypeError, ValueError) as exc:
            raise UpstreamError(f"{self.source} sent {what} for {route} that is not a valid URL; refused") from exc
        if origin != self.origin or target.userinfo:
            raise UpstreamError(f"{self.source} sent {what} for {route} to another origin ({origin}); credentials "
                                f"are only sent to {self.origin}, the connector's base_url, so it was refused. "
                                "Check base_url, or report it if it persists")

    # -- the exchange ------------------------------------------------------------------------------------------
    async def send(self, request: PageRequest, stats: ScanStats, route: str, missing_ok: bool = False) -> Reply:
        """One logical request: redirects followed, rate limits waited out, 5xx retried, failures raised."""
        for attempt in range(1, self.retry.max_attempts + 1):
            reply = await self._follow(request, stats, route)
            limited = self.errors.limited(reply)
            wait = None if limited is None else limited.wait_s if limited.wait_s is not None else \
                self.retry.backoff_s * 2 ** attempt
            await self._adapt(reply, stats, wait)
            if limited is not None and wait is not None:
                if wait > self.retry.max_wait_s or attempt == self.retry.max_attempts:
                    log.warning("%s %s %s: the rate limit is exhausted (HTTP %d; it refills in %.0f s); the query "
                                "fails with RATE_LIMIT_EXHAUSTED", self.source, request.method, route, reply.status,
                                wait)
                if wait > self.retry.max_wait_s:
                    raise RateLimitExhausted(
                        f"{self.source} rate limit is exhausted; it refills in {wait:.0f} s. Retry after that, or "
                        "use cached data with a larger max_staleness_ms", retry_after_s=wait)
                if attempt == self.retry.max_attempts:
                    raise RateLimitExhausted(f"{self.source} rate limit is exhausted after retries; retry later",
                                             retry_after_s=limited.wait_s)
                log.warning("%s %s %s is rate limited (HTTP %d); retrying in %.1f s", self.source, request.method,
                            route, reply.status, wait)
                if stats.gate is None or not _core(reply):  # with a gate, the retry's token waits (bounded)
                    await asyncio.sleep(wait)  # until the API allows it; another budget's wait is ours to keep
                continue
            if reply.ok:
                problems = self.errors.body_error(reply)
                if problems:
                    raise UpstreamError(f"{self.source} reported errors for {request.method} {route}: "
                                        f"{summarize(problems, self._redactions(request))}; check the query, or "
                                        "retry later")
                return reply
            if missing_ok and reply.status == 404:
                return reply
            if reply.status >= 500 and attempt < self.retry.max_attempts:
                wait = self.retry.backoff_s * 2 ** (attempt - 1)
                log.warning("%s %s %s answered HTTP %d; retrying in %.1f s", self.source, request.method, route,
                            reply.status, wait)
                await asyncio.sleep(wait)
                continue
            raise self._failure(reply, request, route)
        raise AssertionError("unreachable")  # the loop always returns or raises

    async def _follow(self, request: PageRequest, stats: ScanStats, route: str) -> Reply:
        """Send, following same-origin redirects (307/308 keep method and body; a GET follows any)."""
        method, url, params, body = request.method, request.url, request.params, request.body
        visited: set[str] = set()
        for _ in range(self.limits.max_redirects + 1):
            self.check_origin(url, route, "a request")
            reply = await self._exchange(method, url, params, body, stats, route)
            if reply.status not in REDIRECTS or "location" not in reply.headers:
                return reply
            visited.add(str(reply.url))
            try:
                target = reply.url.join(reply.headers["location"])
            except httpx.InvalidURL as exc:
                raise UpstreamError(f"{self.source} redirected {route} to an invalid URL; refused") from exc
            self.check_origin(target, route, "a redirect")
            if str(target) in visited:
                raise UpstreamError(f"{self.source} redirected {route} in a loop; check the connector's base_url")
            if method not in ("GET", "HEAD") and reply.status not in (307, 308):
                raise UpstreamError(f"{self.source} redirected {method} {route} with HTTP {reply.status}, which "
                                    "would drop the request body; check the connector's base_url")
            url, params = str(target), None
        raise UpstreamError(f"{self.source} redirected {route} more than {self.limits.max_redirects} times; check "
                            "the connector's base_url")

    async def _exchange(self, method: str, url: str, params: Mapping[str, Any] | None,
                        body: Mapping[str, Any] | None, stats: ScanStats, route: str) -> Reply:
        """One HTTP exchange. A connection that breaks before an answer (typically a pooled keep-alive
        connection the server just closed) is retried on a fresh one, at most ``CONNECTION_RETRIES`` times:
        nothing was answered, so nothing is counted twice in the answer."""
        for attempt in range(CONNECTION_RETRIES + 1):
            try:
                return await self._exchange_once(method, url, params, body, stats, route)
            except _BrokenConnection as broken:
                if attempt == CONNECTION_RETRIES:
                    raise UpstreamError(f"{self.source} is unreachable ({broken.kind}); check the connector's "
                                        "base_url") from broken.__cause__
                log.warning("%s %s %s: the connection broke (%s); retrying on a new one", self.source, method,
                            route, broken.kind)
        raise AssertionError("unreachable")

    async def _exchange_once(self, method: str, url: str, params: Mapping[str, Any] | None,
                             body: Mapping[str, Any] | None, stats: ScanStats, route: str) -> Reply:
        if stats.gate is not None:  # before a slot: a request refused here holds nothing and sends nothing
            await stats.gate.acquire()
        started = time.perf_counter()
        encoding = ""
        stored: Stored | None = None
        attributes = {"omnisql.connector": self.name, "http.request.method": method, "url.template": route,
                      "server.address": self.origin.host}
        with tracing.span("omnisql.upstream", attributes, kind=SpanKind.CLIENT) as span:  # never the URL: values
            async with self.slots:
                try:
                    async with asyncio.timeout(self.limits.response_timeout_s):
                        built = self.http.build_request(method, url, params=dict(params) if params else None,
                                                        json=body, headers=self.headers)
                        stored = self._conditional(built)
                        stats.spend()  # counts the call; the query's call budget refuses it when spent
                        response = await self.http.send(built, auth=self.auth or httpx.USE_CLIENT_DEFAULT,
                                                        stream=True, follow_redirects=False)
                        encoding = response.headers.get("content-encoding", "")
                        try:
                            content = await self._read(response, route)
                        finally:
                            await response.aclose()
                except (TimeoutError, httpx.TimeoutException) as exc:
                    raise SourceTimeout(f"{self.source} did not answer {method} {route} in time; retry later or "
                                        "narrow the query") from exc
                except httpx.DecodingError as exc:
                    raise UpstreamError(f"{self.source} sent a body for {route} that cannot be decoded "
                                        f"(content-encoding {encoding[:40] or 'none'}); retry later, or report it if "
                                        "it persists") from exc
                except (httpx.NetworkError, httpx.RemoteProtocolError) as exc:
                    raise _BrokenConnection(type(exc).__name__) from exc
                except httpx.RequestError as exc:
                    raise UpstreamError(f"{self.source} is unreachable ({type(exc).__name__}); check the connector's "
                                        "base_url") from exc
            reply = Reply(method, response.url, response.status_code, response.headers, content)
            log.info("%s %s %s -> HTTP %d, %d bytes in %.0f ms", self.source, method, route, reply.status,
                     len(content), (time.perf_counter() - started) * 1000)
            reply = await self._revalidated(reply, stored, stats)
            self._note_budget(reply, stats)
            span.set_attribute("http.response.status_code", reply.status)
            remaining = reply.headers.get("x-ratelimit-remaining", "")
            if remaining.isdigit():
                span.set_attribute("omnisql.rate_limit.remaining", int(remaining))
            return reply

    def _conditional(self, built: httpx.Request) -> Stored | None:
        """The stored body for this GET's URL, if any, announced with ``If-None-Match``."""
        if self.etags is None or built.method != "GET":
            return None
        stored = self.etags.get(str(built.url))
        if stored is not None:
            built.headers["If-None-Match"] = stored.etag
        return stored

    async def _revalidated(self, reply: Reply, stored: Stored | None, stats: ScanStats) -> Reply:
        """A 304 to our ``If-None-Match`` becomes the stored 200 (no token spent); a new 200 with an ETag is
        stored for next time."""
        if self.etags is None or reply.method != "GET":
            return reply
        if reply.status == 304 and stored is not None:
            stats.not_modified += 1
            release = getattr(stats.gate, "release", None)  # a gate that cannot refund simply keeps the token
            if release is not None:
                await release()
            return Reply(reply.method, reply.url, 200, stored.refreshed(reply.headers), stored.content)
        etag = reply.headers.get("etag")
        if reply.status == 200 and etag and reply.is_json:  # a body we could not use is never replayed
            self.etags.put(str(reply.url), etag, reply.headers, reply.content)
        return reply

    async def _read(self, response: httpx.Response, route: str) -> bytes:
        """The decoded body, refused as soon as it passes ``max_body_bytes`` (declared or streamed)."""
        cap = self.limits.max_body_bytes
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap:
            raise self._too_large(route)
        chunks, size = [], 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > cap:
                raise self._too_large(route)
            chunks.append(chunk)
        return b"".join(chunks)

    def _too_large(self, route: str) -> UpstreamError:
        return UpstreamError(f"{self.source} sent more than {self.limits.max_body_bytes} bytes for {route}; refused "
                             "(raise the connector's max_body_bytes if such pages are expected)")

    @staticmethod
    def _note_budget(reply: Reply, stats: ScanStats) -> None:
        if not _core(reply):
            return
        remaining = reply.headers.get("x-ratelimit-remaining")
        limit = reply.headers.get("x-ratelimit-limit")
        if remaining is not None and remaining.isdigit():
            stats.rate_limit_remaining = int(remaining)
        if limit is not None and limit.isdigit():
            stats.rate_limit_limit = int(limit)

    @staticmethod
    async def _adapt(reply: Reply, stats: ScanStats, limited_s: float | None) -> None:
        """Tell the credential's bucket what the API said: requests left (``x-ratelimit-remaining``), and how long it
        refuses requests (a rate-limit answer's wait, or until ``x-ratelimit-reset`` once nothing is left)."""
        if stats.gate is None:
            return
        if not _core(reply):
            return  # another budget of the API (GitHub's search, 30/min): the caller handles it, not the bucket
        text = reply.headers.get("x-ratelimit-remaining", "").strip()
        remaining = int(text) if text.isdigit() else None
        blocked = limited_s
        if blocked is None and remaining == 0:
            blocked = reset_in_s(reply.headers.get("x-ratelimit-reset", ""))
        await stats.gate.observe(remaining, blocked)

    # -- failures ----------------------------------------------------------------------------------------------
    def _failure(self, reply: Reply, request: PageRequest, route: str) -> UpstreamError:
        if reply.status in REDIRECTS:
            detail = "a redirect without a Location"
        else:
            detail = describe_body(reply, self.errors.messages(reply), self._redactions(request))
        hint = {401: "check the connector credentials", 403: "check the credentials' permissions",
                404: "check names in the query (repository, project)"}.get(reply.status, "retry later")
        if reply.status in (401, 403):  # an operator's problem (a revoked or narrowed token), not the query's
            log.warning("%s %s %s answered HTTP %d: %s", self.source, request.method, route, reply.status, hint)
        return UpstreamError(f"{self.source} answered HTTP {reply.status} to {request.method} {route}: {detail}; "
                             f"{hint}")

    def _redactions(self, request: PageRequest) -> list[str]:
        """Strings an upstream message must not carry back: our secrets and our request."""
        secrets = getattr(self.auth, "secrets", None)
        out = list(secrets()) if callable(secrets) else []
        out += [value for key, value in self.headers.items() if key.lower() == "authorization"]
        full = httpx.URL(request.url, params=dict(request.params)) if request.params else httpx.URL(request.url)
        out += [str(full), full.raw_path.decode("ascii", "replace")]
        if request.body is not None:
            out.append(json.dumps(request.body))
        for values in (request.params or {}, request.body or {}):
            out += [str(v) for v in values.values() if isinstance(v, str | int) and len(str(v)) >= _MIN_ECHO]
        return out
