"""The manifest's ``paginator`` as one of the shared paginators (``connectors.requester``), plus the two shapes
they do not cover: no paging at all, and a continuation token somewhere inside the body (``meta.next_cursor``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from connectors.declarative.manifest import PagingDef
from connectors.requester import (
    GraphQLCursor,
    LinkHeader,
    Offset,
    PageNumber,
    PageRequest,
    PaginationError,
    Paginator,
    Reply,
)
from connectors.requester.reply import json_kind

__all__ = ["NoPaging", "TokenAtPath", "paginator_for"]


@dataclass(frozen=True)
class NoPaging:
    def next_request(self, current: PageRequest, reply: Reply, records: Sequence[Any]) -> PageRequest | None:
        return None


def _dig(body: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(body, dict):
            return None
        body = body.get(key)
    return body


@dataclass(frozen=True)
class TokenAtPath:
    """An opaque continuation token at ``token_path``, sent back as ``param`` (query string, or JSON body); it ends
    when the token is missing/empty, or when ``last_path`` is true."""

    token_path: tuple[str, ...]
    param: str
    last_path: tuple[str, ...] = ()
    in_body: bool = False

    def next_request(self, current: PageRequest, reply: Reply, records: Sequence[Any]) -> PageRequest | None:
        body = reply.json()
        if self.last_path and _dig(body, self.last_path) is True:
            return None
        token = _dig(body, self.token_path)
        if token is None or token == "" or token is False:
            if self.last_path and _dig(body, self.last_path) is False:
                raise PaginationError(f"{'.'.join(self.last_path)} is false but there is no token")
            return None
        if not isinstance(token, str | int):
            raise PaginationError(f"{'.'.join(self.token_path)} is a JSON {json_kind(token)}, not a token")
        if self.in_body:
            return replace(current, body={**(current.body or {}), self.param: token})
        return replace(current, params={**(current.params or {}), self.param: token})


def paginator_for(paging: PagingDef, page_size: int) -> Paginator:
    """The paginator of one scan (``page_size`` is what this scan asked for: a short page ends offset paging)."""
    kind = paging.type
    if kind == "link_header":
        return LinkHeader(paging.rel)
    if kind == "cursor":
        return GraphQLCursor(paging.page_info, paging.cursor_variable)
    if kind == "next_token":
        return TokenAtPath(paging.token_path, paging.token_param, paging.last_path, paging.in_body)
    if kind == "offset":
        return Offset(page_size, paging.param, paging.in_body, paging.total_path or None)
    if kind == "page_number":
        return PageNumber(page_size, paging.param, paging.start, paging.in_body)
    return NoPaging()
