"""ETags and ``304 Not Modified`` for the GitHub stand-in, as GitHub does them (CONTRACT.md, Conditional requests):
every 200 GET carries a quoted ``etag`` and ``cache-control: private, max-age=60, s-maxage=60``; a request whose
``If-None-Match`` names the current tag gets a 304 with no body, and that 304 is not counted against the rate limit.

The tag digests the body *and* the ``link`` header: a page whose items stay the same while the listing grows
(a new ``next``) must not be answered 304, or a client would reuse a stale ``link`` and miss pages."""

from __future__ import annotations

import hashlib

from starlette.requests import Request
from starlette.responses import Response

__all__ = ["etag_of", "matches", "revalidate"]

CACHE_CONTROL = "private, max-age=60, s-maxage=60"


def etag_of(body: bytes, link: str) -> str:
    return 'W/"' + hashlib.sha256(body + b"\n" + link.encode()).hexdigest()[:40] + '"'


def matches(if_none_match: str, etag: str) -> bool:
    """RFC 9110 weak comparison against a comma-separated list (or ``*``)."""
    wanted = etag.removeprefix("W/")
    tags = [t.strip() for t in if_none_match.split(",")]
    return any(t == "*" or t.removeprefix("W/") == wanted for t in tags)


def revalidate(request: Request, response: Response, refund: object) -> Response:
    """Tag a 200 GET; answer 304 when the client already has this version (``refund()`` un-counts it and returns
    the rate-limit headers to send)."""
    if request.method != "GET" or response.status_code != 200:
        return response
    etag = etag_of(bytes(response.body), response.headers.get("link", ""))
    asked = request.headers.get("if-none-match")
    if asked is None or not matches(asked, etag):
        response.headers["etag"] = etag
        response.headers["cache-control"] = CACHE_CONTROL
        return response
    headers = {"etag": etag, "cache-control": CACHE_CONTROL}
    if "link" in response.headers:
        headers["link"] = response.headers["link"]
    if callable(refund):
        headers.update(refund())
    return Response(status_code=304, headers=headers)
