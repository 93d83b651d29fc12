"""How Salesforce says "slow down" and where its error text lives.

Errors are a JSON array of ``{message, errorCode}``. ``403 REQUEST_LIMIT_EXCEEDED`` is the org's rolling 24-hour
limit: waiting seconds will not help, so it is a rate limit with a long wait (the query fails at once with
RATE_LIMIT_EXHAUSTED). A 429 or 503 with ``Retry-After`` (what a proxy or a burst limit sends) is waited out.
``Sforce-Limit-Info: api-usage=used/limit`` on every answer is the daily budget."""

from __future__ import annotations

import re
from dataclasses import dataclass

from connectors.requester.errors import Limited, retry_after_s
from connectors.requester.reply import Reply

__all__ = ["DAILY_LIMIT_WAIT_S", "SalesforceErrors", "api_usage"]

DAILY_LIMIT_WAIT_S = 3600.0  # the limit is a rolling 24 h total; an hour is a fair "retry after"
_USAGE = re.compile(r"api-usage=(\d+)/(\d+)")


def api_usage(reply: Reply) -> tuple[int, int] | None:
    """``(used, limit)`` from ``Sforce-Limit-Info``, or None."""
    match = _USAGE.search(reply.headers.get("sforce-limit-info", ""))
    return (int(match.group(1)), int(match.group(2))) if match else None


def _codes(reply: Reply) -> list[tuple[str, str]]:
    if not reply.is_json:
        return []
    try:
        body = reply.json()
    except ValueError:
        return []
    items = body if isinstance(body, list) else [body] if isinstance(body, dict) else []
    return [(str(i.get("errorCode", "")), str(i.get("message", ""))) for i in items if isinstance(i, dict)]


@dataclass(frozen=True)
class SalesforceErrors:
    def limited(self, reply: Reply) -> Limited | None:
        if reply.status == 429 or (reply.status == 503 and "retry-after" in reply.headers):
            return Limited(retry_after_s(reply))
        if reply.status == 403 and any(code == "REQUEST_LIMIT_EXCEEDED" for code, _ in _codes(reply)):
            return Limited(retry_after_s(reply) or DAILY_LIMIT_WAIT_S)
        return None

    def body_error(self, reply: Reply) -> list[str]:
        return []

    def messages(self, reply: Reply) -> list[str]:
        return [f"{code}: {message}" if code else message for code, message in _codes(reply)]
