"""Error handlers: how one API says "slow down" and where it puts its error text. The retry loop itself is
shared (connectors/http.py); a handler only reads a reply.

- GitHub: 403 or 429 with ``x-ratelimit-remaining: 0`` (wait until ``x-ratelimit-reset``) or ``retry-after``
  (secondary limits); text in ``message``.
- Jira (and most REST APIs): 429, or a 503 that carries ``Retry-After``; text in ``errorMessages``/``errors``.
- GraphQL: errors arrive inside an HTTP 200 (``errors[]``); ``extensions.code == "RATELIMITED"`` or
  ``extensions.type == "ratelimited"`` is a rate limit, anything else fails the request (a partial ``data``
  with errors is not an answer we may return as complete)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

from connectors.requester.reply import Reply

__all__ = ["ErrorHandler", "GitHubErrors", "GraphQLErrors", "Limited", "RetryAfterErrors", "retry_after_s"]


@dataclass(frozen=True)
class Limited:
    """A rate-limit answer; ``wait_s`` is what the API asked for (None: it did not say, back off)."""

    wait_s: float | None


class ErrorHandler(Protocol):
    def limited(self, reply: Reply) -> Limited | None:
        """A rate-limit answer (any status), or None."""
        ...

    def body_error(self, reply: Reply) -> list[str]:
        """Error messages inside a successful (2xx) answer; empty when it is a real answer."""
        ...

    def messages(self, reply: Reply) -> list[str]:
        """The API's own error texts in a failed answer (raw: the caller summarizes and scrubs them)."""
        ...


def retry_after_s(reply: Reply) -> float | None:
    """``Retry-After`` as seconds (delta-seconds or an HTTP date), or None."""
    value = reply.headers.get("retry-after", "").strip()
    if value.isdigit():
        return float(value)
    if value:
        try:
            return max(parsedate_to_datetime(value).timestamp() - time.time(), 0.0)
        except (TypeError, ValueError):
            return None
    return None


def _body(reply: Reply) -> Any:
    return reply.json() if reply.is_json else None


def _strings(values: Any) -> list[str]:
    return [str(v) for v in values if isinstance(v, str | int | float)] if isinstance(values, list) else []


@dataclass(frozen=True)
class GitHubErrors:
    def limited(self, reply: Reply) -> Limited | None:
        remaining = reply.headers.get("x-ratelimit-remaining")
        if reply.status == 429 or (reply.status == 403 and (remaining == "0" or "retry-after" in reply.headers)):
            wait = retry_after_s(reply)
            reset = reply.headers.get("x-ratelimit-reset", "")
            if wait is None and remaining == "0" and reset.isdigit():
                wait = max(float(reset) - time.time(), 0.0)
            return Limited(wait)
        return None

    def body_error(self, reply: Reply) -> list[str]:
        return []

    def messages(self, reply: Reply) -> list[str]:
        body = _body(reply)
        if not isinstance(body, dict):
            return []
        texts = [str(body["message"])] if isinstance(body.get("message"), str) else []
        for item in body.get("errors") or []:  # 422 validation errors: [{resource, field, code, message?}]
            if isinstance(item, dict):
                texts.append(" ".join(str(item[k]) for k in ("field", "code", "message") if isinstance(
                    item.get(k), str)))
        return texts


@dataclass(frozen=True)
class RetryAfterErrors:
    def limited(self, reply: Reply) -> Limited | None:
        if reply.status == 429 or (reply.status == 503 and "retry-after" in reply.headers):
            return Limited(retry_after_s(reply))
        return None

    def body_error(self, reply: Reply) -> list[str]:
        return []

    def messages(self, reply: Reply) -> list[str]:
        body = _body(reply)
        if not isinstance(body, dict):
            return []
        texts = _strings(body.get("errorMessages"))
        errors = body.get("errors")
        if isinstance(errors, dict):
            texts += [f"{k}: {v}" for k, v in errors.items() if isinstance(v, str)]
        if not texts and isinstance(body.get("message"), str):
            texts.append(body["message"])
        return texts


@dataclass(frozen=True)
class GraphQLErrors:
    def limited(self, reply: Reply) -> Limited | None:
        if reply.status == 429 or any(_is_rate_limit(e) for e in self._errors(reply)):
            return Limited(retry_after_s(reply))
        return None

    def body_error(self, reply: Reply) -> list[str]:
        errors = self._errors(reply)
        return [_error_text(e) for e in errors] or (["an error without a message"] if self._has_errors(reply)
                                                     else [])

    def messages(self, reply: Reply) -> list[str]:
        return [_error_text(e) for e in self._errors(reply)]

    @staticmethod
    def _has_errors(reply: Reply) -> bool:
        body = _body(reply)
        return isinstance(body, dict) and bool(body.get("errors"))

    @staticmethod
    def _errors(reply: Reply) -> list[Any]:
        body = _body(reply)
        errors = body.get("errors") if isinstance(body, dict) else None
        return errors if isinstance(errors, list) else []


def _extensions(error: Any) -> dict[str, Any]:
    extensions = error.get("extensions") if isinstance(error, dict) else None
    return extensions if isinstance(extensions, dict) else {}


def _is_rate_limit(error: Any) -> bool:
    ext = _extensions(error)
    return ext.get("code") == "RATELIMITED" or ext.get("type") == "ratelimited"


def _error_text(error: Any) -> str:
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return error["message"]
    return "an error without a message"
