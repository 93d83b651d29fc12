"""The requester parts one by one: paginators, record selector, error handlers, error summaries, and the
paging loop with ApiClient over httpx's MockTransport (no sockets; tests/hostile drives the real thing)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from connectors.http import ApiClient, HttpLimits, RetryPolicy
from connectors.requester import (
    GitHubErrors,
    GraphQLCursor,
    GraphQLErrors,
    LinkHeader,
    NextPageToken,
    Offset,
    PageNumber,
    PageRequest,
    PaginationError,
    RecordSelector,
    Reply,
    RetryAfterErrors,
    ShapeError,
    paginate,
)
from connectors.requester.paginators import parse_links
from connectors.requester.summary import summarize
from core.errors import RateLimitExhausted, UpstreamError
from core.types import ScanStats


def reply(body: Any = None, status: int = 200, headers: dict[str, str] | None = None,
          url: str = "https://api.example.test/items") -> Reply:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Reply("GET", httpx.URL(url), status, httpx.Headers(headers or {}), content)


# -- paginators ------------------------------------------------------------------------------------------------
def test_link_header_follows_next_as_given() -> None:
    first = PageRequest("GET", "https://api.example.test/repos/o/r/pulls", {"state": "all", "per_page": 100})
    links = ('<https://api.example.test/repositories/1/pulls?state=all&per_page=100&page=2>; rel="next", '
             '<https://api.example.test/repositories/1/pulls?page=5>; rel="last"')
    following = LinkHeader().next_request(first, reply([], headers={"link": links}), [])
    assert following == PageRequest("GET", "https://api.example.test/repositories/1/pulls?state=all&per_page=100"
                                           "&page=2", None, None)
    assert LinkHeader().next_request(first, reply([]), []) is None
    relative = LinkHeader().next_request(first, reply([], headers={"link": '</x?page=2>; rel="next"'}), [])
    assert relative is not None and relative.url == "https://api.example.test/x?page=2"


def test_parse_links_reads_several_rels_and_params() -> None:
    assert parse_links(['<a>; rel="prev", <b>; title="x"; rel="next last"', "<c>; rel=first"]) == {
        "prev": "a", "next": "b", "last": "b", "first": "c"}


def test_next_page_token_until_is_last() -> None:
    first = PageRequest("POST", "https://x.test/search", body={"jql": "a", "maxResults": 100})
    token = NextPageToken()
    assert token.next_request(first, reply({"issues": [], "nextPageToken": "t2"}), []) == PageRequest(
        "POST", "https://x.test/search", body={"jql": "a", "maxResults": 100, "nextPageToken": "t2"})
    assert token.next_request(first, reply({"issues": [], "nextPageToken": "t2", "isLast": True}), []) is None
    assert token.next_request(first, reply({"issues": []}), []) is None
    with pytest.raises(PaginationError, match="isLast is false but there is no nextPageToken"):
        token.next_request(first, reply({"issues": [], "isLast": False}), [])
    with pytest.raises(PaginationError, match="not a string"):
        token.next_request(first, reply({"issues": [], "nextPageToken": 7}), [])


def test_graphql_cursor_moves_after() -> None:
    first = PageRequest("POST", "https://x.test/graphql", body={"query": "q", "variables": {"first": 50}})
    cursor = GraphQLCursor(("data", "issues", "pageInfo"))
    page = {"data": {"issues": {"nodes": [], "pageInfo": {"hasNextPage": True, "endCursor": "c1"}}}}
    following = cursor.next_request(first, reply(page), [])
    assert following is not None and following.body == {"query": "q", "variables": {"first": 50, "after": "c1"}}
    page["data"]["issues"]["pageInfo"] = {"hasNextPage": False, "endCursor": None}
    assert cursor.next_request(first, reply(page), []) is None
    page["data"]["issues"]["pageInfo"] = {"hasNextPage": True, "endCursor": None}
    with pytest.raises(PaginationError, match="no endCursor"):
        cursor.next_request(first, reply(page), [])
    with pytest.raises(PaginationError, match="no pageInfo.hasNextPage"):
        cursor.next_request(first, reply({"data": None}), [])


def test_offset_and_page_number_stop_at_a_short_page() -> None:
    first = PageRequest("GET", "https://x.test/items", {"startAt": 0, "maxResults": 2})
    offset = Offset(2, "startAt", total_field=("total",))
    assert offset.next_request(first, reply({"total": 9}), [1, 2]) == PageRequest(
        "GET", "https://x.test/items", {"startAt": 2, "maxResults": 2})
    assert offset.next_request(first, reply({"total": 9}), [1]) is None
    assert offset.next_request(first, reply({"total": 2}), [1, 2]) is None
    pages = PageNumber(2)
    assert pages.next_request(PageRequest("GET", "https://x.test/i"), reply([]), [1, 2]) == PageRequest(
        "GET", "https://x.test/i", {"page": 2})
    assert pages.next_request(PageRequest("GET", "https://x.test/i", {"page": 4}), reply([]), [1, 2]) == PageRequest(
        "GET", "https://x.test/i", {"page": 5})
    assert pages.next_request(PageRequest("GET", "https://x.test/i"), reply([]), []) is None


# -- record selector -------------------------------------------------------------------------------------------
def test_record_selector_checks_the_shape() -> None:
    assert RecordSelector(("data", "issues", "nodes")).select({"data": {"issues": {"nodes": [1]}}}) == [1]
    assert RecordSelector().select([1, 2]) == [1, 2]
    with pytest.raises(ShapeError, match="a JSON object where the body should be an array"):
        RecordSelector().select({"items": []})
    with pytest.raises(ShapeError, match="an object without 'issues'"):
        RecordSelector(("issues",)).select({"errorMessages": []})
    with pytest.raises(ShapeError, match="a JSON null where 'data' should be an object"):
        RecordSelector(("data", "issues")).select({"data": None})


# -- error handlers --------------------------------------------------------------------------------------------
def test_github_rate_limits() -> None:
    errors = GitHubErrors()
    primary = reply({"message": "API rate limit exceeded"}, 403, {"x-ratelimit-remaining": "0",
                                                                   "x-ratelimit-reset": "4102444800"})
    limited = errors.limited(primary)
    assert limited is not None and limited.wait_s is not None and limited.wait_s > 1e6
    secondary = errors.limited(reply({}, 429, {"retry-after": "7"}))
    assert secondary is not None and secondary.wait_s == 7
    assert errors.limited(reply({"message": "Resource not accessible"}, 403, {"x-ratelimit-remaining": "12"})) is None
    assert errors.messages(reply({"message": "Validation Failed", "errors": [{"field": "head", "code": "invalid"}]},
                                 422)) == ["Validation Failed", "head invalid"]


def test_retry_after_rate_limits() -> None:
    errors = RetryAfterErrors()
    limited = errors.limited(reply({"errorMessages": ["Rate limit exceeded."]}, 429, {"Retry-After": "3"}))
    assert limited is not None and limited.wait_s == 3
    assert errors.limited(reply({}, 503)) is None  # a plain 503 is a server error (retried with backoff)
    assert errors.limited(reply({}, 503, {"Retry-After": "2"})) is not None
    assert errors.limited(reply({}, 403, {"Retry-After": "2"})) is None
    assert errors.messages(reply({"errorMessages": ["bad jql"], "errors": {"jql": "oops"}}, 400)) == [
        "bad jql", "jql: oops"]


def test_graphql_errors_inside_a_200() -> None:
    errors = GraphQLErrors()
    limited = reply({"data": None, "errors": [{"message": "Rate limit exceeded", "extensions": {
        "code": "RATELIMITED", "type": "ratelimited"}}]}, 200, {"retry-after": "60"})
    assert errors.limited(limited) is not None and errors.limited(limited).wait_s == 60  # type: ignore[union-attr]
    failed = reply({"data": {"issues": None}, "errors": [{"message": "Entity not found", "extensions": {
        "type": "invalid input"}}]})
    assert errors.limited(failed) is None and errors.body_error(failed) == ["Entity not found"]
    assert errors.body_error(reply({"data": {"issues": {"nodes": []}}})) == []
    assert errors.limited(reply({}, 429)) is not None


def test_summaries_are_bounded_and_scrubbed() -> None:
    text = summarize(["token s3cr3t-value sent", "url https://x.test/?q=s3cr3t-value\n\x1b[0m" + "y" * 500],
                     ["s3cr3t-value"])
    assert "s3cr3t" not in text and "\n" not in text and "\x1b" not in text
    assert len(text) == 200 and text.endswith("…")
    assert summarize(["a%2Fb is s3cr3t%2Fvalue"], ["s3cr3t/value"]) == "a%2Fb is [redacted]"


# -- the paging loop and ApiClient -----------------------------------------------------------------------------
Handler = Callable[[httpx.Request], httpx.Response]


def run(handler: Handler, work: Callable[[ApiClient, ScanStats], Any], **client: Any) -> tuple[Any, ScanStats]:
    async def go() -> tuple[Any, ScanStats]:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            api = ApiClient("Test", http, "https://api.example.test", retry=RetryPolicy(backoff_s=0.001), **client)
            stats = ScanStats()
            return await work(api, stats), stats

    return asyncio.run(go())


async def listing(api: ApiClient, stats: ScanStats, max_pages: int = 10, prefetch: bool = False) -> list[Any]:
    first = PageRequest("GET", "https://api.example.test/items", {"per_page": 2})
    return [r async for page in paginate(api, first, LinkHeader(), RecordSelector(), stats, "/items", max_pages,
                                         prefetch=prefetch)
            for r in page.records]


def three_pages(request: httpx.Request) -> httpx.Response:
    page = int(request.url.params.get("page", "1"))
    link = {"link": f'<https://api.example.test/items?per_page=2&page={page + 1}>; rel="next"'} if page < 3 else {}
    return httpx.Response(200, json=[page * 10, page * 10 + 1], headers=link)


@pytest.mark.parametrize("prefetch", [False, True])
def test_the_loop_reads_every_page_and_counts(prefetch: bool) -> None:
    records, stats = run(three_pages, lambda api, stats: listing(api, stats, prefetch=prefetch))
    assert records == [10, 11, 20, 21, 30, 31]
    assert (stats.api_calls, stats.pages) == (3, 3)


def three_token_pages(request: httpx.Request) -> httpx.Response:
    page = int(request.url.params.get("token", "1"))
    return httpx.Response(200, json={"items": [page * 10], **({"next": str(page + 1)} if page < 3 else {})})


@pytest.mark.parametrize("paging", ["link", "token"])
@pytest.mark.parametrize("prefetch", [False, True])
def test_a_next_page_is_asked_for_while_this_one_is_read_only_with_prefetch(prefetch: bool, paging: str) -> None:
    """With ``prefetch`` (a caller that reads every page), page 2 is requested while the caller still holds page
    1 — from the Link header, or from the token in the body; without it, only once page 1 is done. Stopping
    early cancels the page ahead."""
    events: list[str] = []
    paginator: Any = LinkHeader() if paging == "link" else NextPageToken("next", None, "token", in_body=False)
    selector = RecordSelector() if paging == "link" else RecordSelector(("items",))

    def handler(request: httpx.Request) -> httpx.Response:
        page = request.url.params.get("page" if paging == "link" else "token", "1")
        events.append(f"GET page {page}")
        return three_pages(request) if paging == "link" else three_token_pages(request)

    async def read(api: ApiClient, stats: ScanStats) -> None:
        first = PageRequest("GET", "https://api.example.test/items", {"per_page": 2})
        async with contextlib.aclosing(paginate(api, first, paginator, selector, stats, "/items", 10,
                                                prefetch=prefetch)) as pages:
            async for page in pages:
                await asyncio.sleep(0.05)  # decoding the page, say
                events.append(f"read page {page.number}")
                if page.number == 2:
                    break  # the caller stops: the page asked for ahead is cancelled, never read

    run(handler, read)
    if prefetch:
        assert events[:3] == ["GET page 1", "GET page 2", "read page 1"]
    else:
        assert events == ["GET page 1", "read page 1", "GET page 2", "read page 2"]


@pytest.mark.parametrize("prefetch", [False, True])
def test_the_loop_refuses_repeats_bounds_and_foreign_links(prefetch: bool) -> None:
    def same(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=[1], headers={"link": f'<{request.url}>; rel="next"'})

    with pytest.raises(UpstreamError, match="repeated a page"):
        run(same, lambda api, stats: listing(api, stats, prefetch=prefetch))

    def endless(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params.get("page", "1"))
        return httpx.Response(200, json=[1], headers={"link": f'</items?page={page + 1}>; rel="next"'})

    with pytest.raises(UpstreamError, match="did not end within 4 pages"):
        run(endless, lambda api, stats: listing(api, stats, max_pages=4, prefetch=prefetch))

    seen: list[str] = []

    def foreign(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url.host))
        return httpx.Response(200, json=[1], headers={"link": '<https://api.example.test.evil/items?page=2>; '
                                                               'rel="next"'})

    with pytest.raises(UpstreamError, match=r"to another origin \(https://api.example.test.evil:443\)"):
        run(foreign, lambda api, stats: listing(api, stats, prefetch=prefetch))
    assert seen == ["api.example.test"]  # the foreign link is refused before anything is sent there


@pytest.mark.parametrize("target", ["http://api.example.test/items", "https://api.example.test:8443/items",
                                    "https://user@api.example.test/items"])
def test_a_different_scheme_port_or_userinfo_is_another_origin(target: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=[1], headers={"link": f'<{target}>; rel="next"'})

    with pytest.raises(UpstreamError, match="another origin"):
        run(handler, listing)


def test_redirects_same_origin_only_and_bounded() -> None:
    def hop(request: httpx.Request) -> httpx.Response:
        n = int(request.url.params.get("hop", "0"))
        return httpx.Response(302, headers={"location": f"/items?hop={n + 1}"})

    with pytest.raises(UpstreamError, match="redirected /items more than 2 times"):
        run(hop, lambda api, stats: api.get_json("https://api.example.test/items", stats, "/items"),
            limits=HttpLimits(max_redirects=2))


def test_rate_limits_wait_or_fail_fast() -> None:
    calls: list[int] = []

    def limited_once(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) == 1:
            return httpx.Response(429, headers={"retry-after": "0"})
        return httpx.Response(200, json={"ok": True})

    body, stats = run(limited_once, lambda api, stats: api.get_json("https://api.example.test/x", stats, "/x"))
    assert body == {"ok": True} and stats.api_calls == 2

    def long_wait(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, headers={"retry-after": "3600"})

    with pytest.raises(RateLimitExhausted) as raised:
        run(long_wait, lambda api, stats: api.get_json("https://api.example.test/x", stats, "/x"))
    assert raised.value.retry_after_s == 3600


def test_graphql_errors_fail_the_request() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"data": None, "errors": [{"message": "Cannot query field 'x'"}]})

    with pytest.raises(UpstreamError, match="Test reported errors for POST /graphql: Cannot query field 'x'"):
        run(handler, lambda api, stats: api.post_json("https://api.example.test/graphql", stats, "/graphql",
                                                      {"query": "{ x }"}), errors=GraphQLErrors())


def test_memo_fetches_each_key_once_across_concurrent_callers() -> None:
    from connectors.memo import Memo

    calls: list[str] = []

    async def fetch(key: str) -> str:
        calls.append(key)
        await asyncio.sleep(0.01)
        if key == "bad":
            raise UpstreamError("no")
        return key.upper()

    async def go() -> tuple[list[Any], list[Any]]:
        memo = Memo()
        good = await asyncio.gather(*(memo.get(k, functools.partial(fetch, k)) for k in ["a", "b", "a", "a", "b"]))
        bad = await asyncio.gather(*(memo.get("bad", functools.partial(fetch, "bad")) for _ in range(3)),
                                   return_exceptions=True)
        return good, bad

    good, bad = asyncio.run(go())
    assert good == ["A", "B", "A", "A", "B"] and sorted(calls) == ["a", "b", "bad"]
    assert all(isinstance(e, UpstreamError) for e in bad)
