"""The one paging loop. Every listing of every connector runs through it, so its guarantees hold everywhere:

- at most ``max_pages`` pages; a listing that would go on is UPSTREAM_ERROR, never a truncated answer;
- a next request that was already sent (a self-referencing link, a repeating token) is UPSTREAM_ERROR, never
  a duplicated answer or an endless loop;
- a next link to another origin is refused before anything (credentials included) is sent there;
- every page counts in ``ScanStats.pages``; records are shape-checked by the selector;
- with ``prefetch`` (for a caller that reads every page) the next page is requested before the caller decodes
  this one — from the headers (Link) before the body is even parsed, else from the parsed body (a token, a
  cursor, the records' count) — so decoding overlaps the network.

Rows (``listed``/``rows``) are counted by the caller, which alone knows which listings are table rows."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from connectors.requester.paginators import PaginationError, Paginator, from_headers
from connectors.requester.reply import PageRequest, Reply
from connectors.requester.selector import RecordSelector, ShapeError
from core.errors import UpstreamError
from core.types import ScanStats

if TYPE_CHECKING:  # connectors.http imports this package; the loop only needs its send()
    from connectors.http import ApiClient

__all__ = ["Page", "paginate"]


@dataclass(frozen=True)
class Page:
    records: list[Any]
    reply: Reply
    number: int  # 1-based


async def paginate(api: ApiClient, first: PageRequest, paginator: Paginator, selector: RecordSelector,
                   stats: ScanStats, route: str, max_pages: int, record_type: pa.DataType | None = None,
                   prefetch: bool = False) -> AsyncGenerator[Page, None]:
    """Pages of one listing, in order. ``route`` is the endpoint's template (logs and messages name it, never
    the filter values in the concrete URL). Close it (``contextlib.aclosing``) when stopping early. ``record_type``:
    the records' wire type, when the paginator reads no body field — then each record keeps only its fields.
    ``prefetch``: the caller reads every page (no early stop), so the next one may be asked for early."""
    seen = {first.key()}
    request = first
    reply = await api.send(request, stats, route)
    ahead: asyncio.Task[Reply] | None = None
    try:
        for number in range(1, max_pages + 1):
            stats.pages += 1
            following: PageRequest | None = None
            known = False  # whether ``following`` is decided yet
            if prefetch and from_headers(paginator):  # before the body is even parsed
                following, known = _next(api, paginator, request, reply, [], route, seen, number), True
                ahead = _ask_ahead(api, following, stats, route, number, max_pages)
            body = api.json(reply, route, records=(selector.path, record_type) if record_type is not None else None)
            try:
                records = selector.select(body)
            except ShapeError as exc:
                raise UpstreamError(f"{api.source} returned {exc} for {route}; retry later, or report it if it "
                                    "persists") from exc
            if prefetch and not known:  # from the body (a token, a cursor, the records' count): before decoding
                following, known = _next(api, paginator, request, reply, records, route, seen, number), True
                ahead = _ask_ahead(api, following, stats, route, number, max_pages)
            yield Page(records, reply, number)
            if not known:
                following = _next(api, paginator, request, reply, records, route, seen, number)
            if following is None:
                return
            if number == max_pages:
                break
            request = following
            reply = await ahead if ahead is not None else await api.send(request, stats, route)
            ahead = None
    finally:
        if ahead is not None:  # the caller stopped (or a page failed): the page asked for early is not wanted
            ahead.cancel()
            if ahead.done() and not ahead.cancelled():
                ahead.exception()  # its failure, if any, is moot: retrieved so asyncio does not log it
    raise UpstreamError(f"{api.source} listing {route} did not end within {max_pages} pages; the answer would be "
                        "incomplete. Narrow the query (e.g. filter on a column the API can filter), or raise the "
                        "connector's max_pages")


def _ask_ahead(api: ApiClient, following: PageRequest | None, stats: ScanStats, route: str, number: int,
               max_pages: int) -> asyncio.Task[Reply] | None:
    """The next page's request, sent now while the caller decodes this one (never past ``max_pages``)."""
    if following is None or number >= max_pages:
        return None
    return asyncio.ensure_future(api.send(following, stats, route))


def _next(api: ApiClient, paginator: Paginator, request: PageRequest, reply: Reply, records: list[Any], route: str,
          seen: set[str], number: int) -> PageRequest | None:
    """The next page's request, checked before anything is sent: same origin, never one already sent."""
    try:
        following = paginator.next_request(request, reply, records)
    except PaginationError as exc:
        raise UpstreamError(f"{api.source} paging of {route} is broken ({exc}); the listing cannot be "
                            "completed. Retry later, or report it if it persists") from exc
    if following is None:
        return None
    api.check_origin(following.url, route, "a next-page link")
    if following.key() in seen:
        raise UpstreamError(f"{api.source} paging of {route} repeated a page it already sent (page {number + 1} "
                            "is an earlier one); the listing cannot be completed. Retry later, or report it if "
                            "it persists")
    seen.add(following.key())
    return following
