"""Paginators: given the request just sent and its reply, the next request or None. One per paging style:

- ``LinkHeader``: GitHub's ``Link: <url>; rel="next"`` (follow the URL, never build it);
- ``NextPageToken``: Jira's ``nextPageToken`` until ``isLast`` (or any opaque continuation token);
- ``GraphQLCursor``: Relay ``pageInfo { hasNextPage endCursor }`` into the ``after`` variable;
- ``Offset``: ``offset``/``startAt`` advanced by the records received;
- ``PageNumber``: ``page=1, 2, ...``.

They only compute; the one paging loop (pager.py) bounds pages, refuses repeats and foreign origins. A
paginator that cannot tell where the next page is raises ``PaginationError`` rather than guess: a guess
would return a truncated listing as if it were complete."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from connectors.requester.reply import PageRequest, Reply, json_kind

__all__ = ["GraphQLCursor", "LinkHeader", "NextPageToken", "Offset", "PageNumber", "PaginationError", "Paginator",
           "parse_links"]


class PaginationError(ValueError):
    """The reply says there is more but not (sensibly) where."""


class Paginator(Protocol):
    def next_request(self, current: PageRequest, reply: Reply, records: Sequence[Any]) -> PageRequest | None: ...


def from_headers(paginator: Paginator) -> bool:
    """Whether the next page is known from a reply's headers alone (before its body is read)."""
    return bool(getattr(paginator, "FROM_HEADERS", False))


_LINK = re.compile(r'<([^>]*)>((?:\s*;\s*[^;,]+)*)')
_PARAM = re.compile(r'\s*;\s*([^=;\s]+)\s*=\s*"?([^";]*)"?')


def parse_links(values: Sequence[str]) -> dict[str, str]:
    """RFC 8288 ``Link`` header values → {rel: url} (first wins; a rel may list several names)."""
    links: dict[str, str] = {}
    for value in values:
        for match in _LINK.finditer(value):
            for name, param in _PARAM.findall(match.group(2)):
                if name.lower() == "rel":
                    for rel in param.lower().split():
                        links.setdefault(rel, match.group(1).strip())
    return links


def _get(current: PageRequest, name: str, in_body: bool) -> Any:
    source = current.body if in_body else current.params
    return (source or {}).get(name)


def _with(current: PageRequest, values: Mapping[str, Any], in_body: bool) -> PageRequest:
    if in_body:
        return replace(current, body={**(current.body or {}), **values})
    return replace(current, params={**(current.params or {}), **values})


def _dig(body: Any, path: Sequence[str]) -> Any:
    for key in path:
        if not isinstance(body, dict):
            return None
        body = body.get(key)
    return body


@dataclass(frozen=True)
class LinkHeader:
    rel: str = "next"

    FROM_HEADERS = True  # the next page is in the Link header: it can be asked for while this one is decoded

    def next_request(self, current: PageRequest, reply: Reply, records: Sequence[Any]) -> PageRequest | None:
        target = parse_links(reply.headers.get_list("link")).get(self.rel)
        if target is None:
            return None
        if not target:
            raise PaginationError(f'an empty rel="{self.rel}" link')
        # The link carries every query parameter (per_page included): send it as given.
        return PageRequest(current.method, str(reply.url.join(target)), None, current.body)


@dataclass(frozen=True)
class NextPageToken:
    token_field: str = "nextPageToken"
    last_field: str | None = "isLast"
    param: str = "nextPageToken"
    in_body: bool = True

    def next_request(self, current: PageRequest, reply: Reply, records: Sequence[Any]) -> PageRequest | None:
        body = reply.json()
        if not isinstance(body, dict):
            raise PaginationError(f"a JSON {json_kind(body)} where an object with {self.token_field!r} belongs")
        token, last = body.get(self.token_field), body.get(self.last_field) if self.last_field else None
        if last is True:
            return None
        if token is None or token == "":
            if last is False:
                raise PaginationError(f"{self.last_field} is false but there is no {self.token_field}")
            return None
        if not isinstance(token, str):
            raise PaginationError(f"{self.token_field} is a JSON {json_kind(token)}, not a string")
        return _with(current, {self.param: token}, self.in_body)


@dataclass(frozen=True)
class GraphQLCursor:
    page_info: tuple[str, ...]  # e.g. ("data", "issues", "pageInfo")
    variable: str = "after"

    def next_request(self, current: PageRequest, reply: Reply, records: Sequence[Any]) -> PageRequest | None:
        info = _dig(reply.json(), self.page_info)
        if not isinstance(info, dict) or not isinstance(info.get("hasNextPage"), bool):
            raise PaginationError(f"no pageInfo.hasNextPage at {'.'.join(self.page_info)!r}")
        if not info["hasNextPage"]:
            return None
        cursor = info.get("endCursor")
        if not isinstance(cursor, str) or not cursor:
            raise PaginationError("hasNextPage is true but there is no endCursor")
        variables = (current.body or {}).get("variables") or {}
        return replace(current, body={**(current.body or {}), "variables": {**variables, self.variable: cursor}})


@dataclass(frozen=True)
class Offset:
    """``offset`` advances by the records received; a short page is the last (so is ``total``, when sent)."""

    page_size: int
    offset_param: str = "offset"
    in_body: bool = False
    total_field: tuple[str, ...] | None = None  # e.g. ("total",) for Jira's PageBean

    def next_request(self, current: PageRequest, reply: Reply, records: Sequence[Any]) -> PageRequest | None:
        if len(records) < self.page_size or not records:
            return None
        offset = int(_get(current, self.offset_param, self.in_body) or 0) + len(records)
        if self.total_field is not None:
            total = _dig(reply.json(), self.total_field)
            if isinstance(total, int) and offset >= total:
                return None
        return _with(current, {self.offset_param: offset}, self.in_body)


@dataclass(frozen=True)
class PageNumber:
    page_size: int
    page_param: str = "page"
    start: int = 1
    in_body: bool = False

    def next_request(self, current: PageRequest, reply: Reply, records: Sequence[Any]) -> PageRequest | None:
        if len(records) < self.page_size or not records:
            return None
        page = int(_get(current, self.page_param, self.in_body) or self.start) + 1
        return _with(current, {self.page_param: page}, self.in_body)
