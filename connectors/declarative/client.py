"""The requester parts a manifest chooses, built on the shared machinery (``connectors.http.ApiClient`` and
``connectors.requester``): its authenticator, its error handler, and an ApiClient that reads the API's own
rate-limit header names (Linear reports two budgets, requests and query complexity) into the credential's bucket."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from connectors.declarative.manifest import AuthDef, ErrorDef, RateHeaders
from connectors.http import ApiClient, reset_in_s
from connectors.requester import ApiKeyAuth, BasicAuth, BearerAuth, Limited, OAuth2Grant, OAuth2Refresh, Reply
from connectors.requester.errors import retry_after_s
from core.types import ScanStats

__all__ = ["ManifestApiClient", "ManifestErrors", "build_auth"]


def build_auth(auth: AuthDef, secrets: Mapping[str, str], base_url: str, token_url: str | None = None
               ) -> httpx.Auth:
    """The authenticator for ``auth`` with the tenant's secret values (by secret name). A relative
    ``token_url`` is resolved against the base URL (so a stand-in serves its own token endpoint)."""
    s = auth.settings
    if auth.type == "bearer":
        return BearerAuth(secrets[s["token"]])
    if auth.type == "api_key":
        return ApiKeyAuth(secrets[s["key"]], header=s.get("header", "Authorization"), prefix=s.get("prefix", ""))
    if auth.type == "basic":
        return BasicAuth(secrets[s["username"]], secrets[s["password"]])
    url = str(httpx.URL(base_url + "/").join(token_url or s["token_url"]))
    refresh = s.get("grant_type") == "refresh_token"
    return OAuth2Refresh(OAuth2Grant(
        token_url=url, client_id=secrets[s["client_id"]],
        client_secret=secrets.get(s.get("client_secret", ""), ""),
        grant_type="refresh_token" if refresh else "client_credentials",
        refresh_token=secrets.get(s.get("refresh_token", ""), ""), scope=s.get("scope", ""),
        client_auth="basic" if s.get("client_auth") == "basic" else "body"))


def _dig(node: Any, path: tuple[str, ...]) -> list[Any]:
    """Values at ``path``; a list on the way fans out (``errors.message`` reads every error's message)."""
    nodes = [node]
    for key in path:
        nxt: list[Any] = []
        for item in nodes:
            for each in item if isinstance(item, list) else [item]:
                if isinstance(each, dict) and key in each:
                    nxt.append(each[key])
        nodes = nxt
    return [n for item in nodes for n in (item if isinstance(item, list) else [item])]


DEFAULT_MESSAGES = (("message",), ("error",), ("error", "message"), ("errors", "message"), ("errorMessages",),
                    ("detail",), ("title",))


@dataclass(frozen=True)
class ManifestErrors:
    """``ErrorHandler`` from the manifest's ``errors`` block. GraphQL APIs answer errors inside HTTP 200: with
    ``graphql: true`` an ``errors`` array fails the request, and a rate-limit code in it (``extensions.code`` or
    ``extensions.type``) is a rate limit like HTTP 429. Messages carry the error's ``extensions.type`` so an
    authentication error reads as one."""

    spec: ErrorDef

    def limited(self, reply: Reply) -> Limited | None:
        if reply.status in self.spec.rate_limited_status:
            return Limited(retry_after_s(reply))
        if self.spec.graphql and reply.is_json:
            codes = {str(c) for c in _dig(reply.json(), ("errors", "extensions", "code"))}
            codes |= {str(c) for c in _dig(reply.json(), ("errors", "extensions", "type"))}
            if codes & set(self.spec.rate_limited_codes):
                return Limited(retry_after_s(reply))
        return None

    def body_error(self, reply: Reply) -> list[str]:
        if not self.spec.graphql or not reply.is_json:
            return []
        body = reply.json()
        if not isinstance(body, dict) or not body.get("errors"):
            return []
        return self._graphql_messages(body) or ["an error without a message"]

    def messages(self, reply: Reply) -> list[str]:
        if not reply.is_json:
            return []
        body = reply.json()
        if self.spec.graphql and isinstance(body, dict) and body.get("errors"):
            return self._graphql_messages(body)
        for path in self.spec.message_paths or DEFAULT_MESSAGES:
            texts = [str(v) for v in _dig(body, path) if isinstance(v, str | int | float) and not isinstance(v, bool)]
            if texts:
                return texts
        return []

    @staticmethod
    def _graphql_messages(body: dict[str, Any]) -> list[str]:
        out = []
        for error in body.get("errors") or []:
            if not isinstance(error, dict):
                continue
            extensions = error.get("extensions") if isinstance(error.get("extensions"), dict) else {}
            kind = extensions.get("type") if isinstance(extensions, dict) else None
            text = str(error.get("message") or "an error without a message")
            out.append(f"{kind}: {text}" if isinstance(kind, str) and kind else text)
        return out


class ManifestApiClient(ApiClient):
    """An ApiClient whose rate-limit headers are the manifest's. Of several budgets, the tightest decides: the
    requests left are ``min(remaining / cost)``, and an exhausted budget blocks the bucket until its reset."""

    def __init__(self, *args: Any, budgets: tuple[RateHeaders, ...] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.budgets = budgets

    def _read_budgets(self, reply: Reply) -> tuple[int | None, int | None, float | None]:
        """(requests left, the first budget's limit, seconds until an exhausted budget resets)."""
        left: int | None = None
        limit: int | None = None
        blocked: float | None = None
        for budget in self.budgets:
            remaining = _number(reply.headers.get(budget.remaining))
            if remaining is None:
                continue
            cost = _number(reply.headers.get(budget.cost)) if budget.cost else None
            requests = int(remaining // max(cost, 1)) if cost else int(remaining)
            left = requests if left is None else min(left, requests)
            if limit is None and budget.limit:
                limit_value = _number(reply.headers.get(budget.limit))
                limit = int(limit_value) if limit_value is not None else None
            if requests <= 0 and budget.reset:
                wait = reset_in_s(reply.headers.get(budget.reset, ""))
                blocked = wait if blocked is None or (wait is not None and wait > blocked) else blocked
        return left, limit, blocked

    def _note_budget(self, reply: Reply, stats: ScanStats) -> None:  # type: ignore[override]
        if not self.budgets:
            ApiClient._note_budget(reply, stats)
            return
        left, limit, _ = self._read_budgets(reply)
        if left is not None:
            stats.rate_limit_remaining = left
        if limit is not None:
            stats.rate_limit_limit = limit

    async def _adapt(self, reply: Reply, stats: ScanStats, limited_s: float | None) -> None:  # type: ignore[override]
        if not self.budgets:
            await ApiClient._adapt(reply, stats, limited_s)
            return
        if stats.gate is None:
            return
        left, _, blocked = self._read_budgets(reply)
        await stats.gate.observe(left, limited_s if limited_s is not None else blocked)


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return float(text.strip())
    except ValueError:
        return None
