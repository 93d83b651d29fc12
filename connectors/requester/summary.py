"""Upstream error text, summarized before it reaches a client or a log: the API's own message fields only
(never a whole body), our credentials and our request scrubbed out, control characters gone, length bounded.
An upstream that echoes our ``Authorization`` header or our JQL back must not make us relay it."""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import quote

from connectors.requester.reply import Reply, json_kind

__all__ = ["MAX_SUMMARY", "describe_body", "summarize"]

MAX_SUMMARY = 200
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_SPACES = re.compile(r"\s+")
_MIN_SECRET = 4  # shorter strings would scrub ordinary words


def summarize(texts: Iterable[str], redact: Iterable[str] = (), limit: int = MAX_SUMMARY) -> str:
    """``texts`` joined, every ``redact`` string (and its URL-encoded form) replaced, then bounded."""
    text = "; ".join(t for t in texts if t)
    secrets = {s for s in redact if len(s) >= _MIN_SECRET}
    for secret in sorted(secrets | {quote(s, safe='') for s in secrets}, key=len, reverse=True):
        text = text.replace(secret, "[redacted]")
    text = _SPACES.sub(" ", _UNPRINTABLE.sub(" ", text)).strip()
    return text if len(text) <= limit else text[:limit - 1] + "…"


def describe_body(reply: Reply, messages: list[str], redact: Iterable[str] = ()) -> str:
    """The upstream's own error messages, summarized; or what the body was, when it carries none."""
    if messages:
        return summarize(messages, redact) or "an empty error message"
    if not reply.content:
        return "an empty body"
    if not reply.is_json:
        return f"a non-JSON body of {len(reply.content)} bytes"
    return f"a JSON {json_kind(reply.json())} without an error message"
