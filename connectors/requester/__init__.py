"""Requester parts in the manner of Airbyte's low-code manifests, each typed and tested on its own:
paginators, authenticators, error handlers, a record selector, and the one paging loop that composes them
with ``connectors.http.ApiClient``. A connector is a choice of these parts plus its URLs and table specs."""

from __future__ import annotations

from connectors.requester.auth import ApiKeyAuth, Authenticator, BasicAuth, BearerAuth, OAuth2Grant, OAuth2Refresh
from connectors.requester.errors import ErrorHandler, GitHubErrors, GraphQLErrors, Limited, RetryAfterErrors
from connectors.requester.pager import Page, paginate
from connectors.requester.paginators import (
    GraphQLCursor,
    LinkHeader,
    NextPageToken,
    Offset,
    PageNumber,
    PaginationError,
    Paginator,
)
from connectors.requester.reply import Origin, PageRequest, Reply
from connectors.requester.selector import RecordSelector, ShapeError

__all__ = [
    "ApiKeyAuth",
    "Authenticator",
    "BasicAuth",
    "BearerAuth",
    "ErrorHandler",
    "GitHubErrors",
    "GraphQLCursor",
    "GraphQLErrors",
    "Limited",
    "LinkHeader",
    "NextPageToken",
    "OAuth2Grant",
    "OAuth2Refresh",
    "Offset",
    "Origin",
    "Page",
    "PageNumber",
    "PageRequest",
    "PaginationError",
    "Paginator",
    "RecordSelector",
    "Reply",
    "RetryAfterErrors",
    "ShapeError",
    "paginate",
]
