"""Linear GraphQL stand-in, faithful to ../shared/api-contracts/linear/CONTRACT.md, executed by graphql-core.

``POST /graphql`` with ``{query, variables, operationName}``: a raw API key (``Authorization: <key>``) or an OAuth
access token (``Bearer``) from ``POST /oauth/token`` (refresh-token grant, rotating refresh tokens). Relay
connections with opaque cursors (``first`` defaults to 50, at most 250), ``IssueFilter`` and friends evaluated by
``linear_filter``. Every answer carries the requests and complexity budgets in Linear's headers
(``x-ratelimit-requests-*``, ``x-ratelimit-complexity-*``, ``x-complexity``); a query above the complexity limit
is refused, and a spent budget answers ``RATELIMITED`` with ``retry-after``. Errors come in ``errors[]`` with
``extensions.type`` as the SDK reads them."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from graphql import (
    FieldNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    SelectionSetNode,
    build_schema,
    execute_sync,
    parse,
    validate,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.common import Faults, RequestLog, control_routes
from sandbox.linear_filter import ISSUE, TEAM, USER, FilterError, matches
from sandbox.linear_schema import SDL
from sandbox.linear_seed import LinearSeed

__all__ = ["LinearStandIn"]

MAX_FIRST = 250
DEFAULT_FIRST = 50
CONNECTIONS = frozenset({"issues", "teams", "users", "labels"})


@dataclass
class Budget:
    """Requests and complexity points per credential over a window (a leaky bucket in Linear; a window here)."""

    requests: int
    complexity: int
    window_s: float = 3600.0
    used: dict[str, tuple[float, int, float]] = field(default_factory=dict)  # credential → (start, requests, points)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, credential: str, points: float) -> tuple[int, float, float]:
        """(requests left, points left, reset epoch seconds) after this request; negative: refused."""
        with self.lock:
            now = time.time()
            start, count, spent = self.used.get(credential, (now, 0, 0.0))
            if now - start >= self.window_s:
                start, count, spent = now, 0, 0.0
            count, spent = count + 1, spent + points
            self.used[credential] = (start, count, spent)
            return self.requests - count, self.complexity - spent, start + self.window_s


def complexity(document: Any, variables: dict[str, Any]) -> float:
    """Third parties' rule (the contract's): 0.1 a field, 1 an object, a connection multiplies by ``first``."""

    def first_of(node: FieldNode) -> int:
        for argument in node.arguments or ():
            if argument.name.value == "first":
                value = argument.value
                if value.kind == "variable":
                    found = variables.get(value.name.value)  # type: ignore[attr-defined]
                    return int(found) if isinstance(found, int) else DEFAULT_FIRST
                return int(value.value)  # type: ignore[attr-defined]
        return DEFAULT_FIRST

    def cost(selection: SelectionSetNode | None) -> float:
        total = 0.0
        for node in selection.selections if selection else ():
            if not isinstance(node, FieldNode):
                continue
            if node.selection_set is None:
                total += 0.1
            elif node.name.value in CONNECTIONS:
                total += first_of(node) * (1 + cost(node.selection_set))
            else:
                total += 1 + cost(node.selection_set)
        return total

    return sum(cost(d.selection_set) for d in document.definitions if isinstance(d, OperationDefinitionNode))


def _cursor(record: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(f"c:{record['id']}".encode()).decode()


def connection(records: list[dict[str, Any]], first: int | None, after: str | None) -> dict[str, Any]:
    if first is not None and (first < 0 or first > MAX_FIRST):
        raise GraphQLError(f"first must be between 0 and {MAX_FIRST}",
                           extensions={"type": "invalid input", "code": "INPUT_ERROR", "userError": True})
    size = DEFAULT_FIRST if first is None else first
    start = 0
    if after:
        ids = [_cursor(r) for r in records]
        if after not in ids:
            raise GraphQLError("Invalid cursor", extensions={"type": "invalid input", "code": "INPUT_ERROR"})
        start = ids.index(after) + 1
    page = records[start:start + size]
    return {"nodes": page, "edges": [{"cursor": _cursor(r), "node": r} for r in page],
            "pageInfo": {"hasNextPage": start + size < len(records), "hasPreviousPage": start > 0,
                         "startCursor": _cursor(page[0]) if page else None,
                         "endCursor": _cursor(page[-1]) if page else None}}


def error_body(message: str, kind: str, code: str) -> dict[str, Any]:
    return {"data": None, "errors": [{"message": message, "extensions": {
        "type": kind, "code": code, "userError": True, "userPresentableMessage": message}}]}


class LinearStandIn:
    """State and handlers of the Linear stand-in; ``app`` is the Starlette application."""

    def __init__(self, seed: LinearSeed, api_key: str, client_id: str, client_secret: str, refresh_token: str,
                 rate_limit: int = 5000, complexity_limit: int = 3_000_000, max_complexity: int = 10_000) -> None:
        self.seed = seed
        self.api_key = api_key
        self.client_id, self.client_secret = client_id, client_secret
        self.refresh_tokens = {refresh_token}
        self.access_tokens: dict[str, float] = {}  # token → expiry (epoch s)
        self.token_lifetime_s = 86_399
        self.budget = Budget(rate_limit, complexity_limit)
        self.max_complexity = max_complexity
        self.log = RequestLog()
        self.faults = Faults()
        self.schema: GraphQLSchema = build_schema(SDL)
        self.issues = sorted((dict(i) for i in seed.issues), key=lambda i: (i["createdAt"], i["id"]))  # mutable copies
        self.app = Starlette(routes=[Route("/graphql", self.graphql, methods=["POST"]),
                                     Route("/oauth/token", self.token, methods=["POST"]),
                                     Route("/_sandbox/revoke_tokens", self.revoke, methods=["POST"]),
                                     Route("/_sandbox/mutate", self.mutate, methods=["POST"]),
                                     *control_routes(self.log, self.faults)])

    # -- auth --------------------------------------------------------------------------------------------------
    def _credential(self, request: Request) -> str | None:
        header = request.headers.get("authorization", "")
        if header == self.api_key:
            return "key"
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and self.access_tokens.get(token, 0) > time.time():
            return "oauth"
        return None

    async def token(self, request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode(errors="replace")).items()}
        ok = (form.get("grant_type") == "refresh_token" and form.get("client_id") == self.client_id
              and form.get("client_secret") == self.client_secret and form.get("refresh_token") in self.refresh_tokens)
        self.log.record(request, 200 if ok else 400, {"grant_type": str(form.get("grant_type"))})
        if not ok:
            return JSONResponse({"error": "invalid_grant", "error_description": "The refresh token is invalid"}, 400)
        self.refresh_tokens.discard(str(form.get("refresh_token")))
        access, refresh = f"lin_oauth_{secrets.token_hex(16)}", f"lin_refresh_{secrets.token_hex(16)}"
        self.refresh_tokens.add(refresh)
        self.access_tokens[access] = time.time() + self.token_lifetime_s
        return JSONResponse({"access_token": access, "token_type": "Bearer", "expires_in": self.token_lifetime_s,
                             "refresh_token": refresh, "scope": "read"})

    async def revoke(self, request: Request) -> Response:
        """Test hook: every access token stops working (as when one expires early), refresh tokens stay."""
        self.access_tokens.clear()
        return JSONResponse({"revoked": True})

    async def mutate(self, request: Request) -> Response:
        """Test hook: ``{"update": [{"identifier": "MOB-1", "state": "Done", "title": "..."}], "delete": [...]}``;
        an update stamps ``updatedAt`` now, as Linear does."""
        body = await request.json()
        now = time.time()
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z"
        by_identifier = {i["identifier"]: i for i in self.issues}
        for change in body.get("update", []):
            issue = by_identifier[change["identifier"]]
            if "state" in change:
                issue["state"] = next(s for (team, name), s in self.seed.states.items()
                                      if team == issue["team"]["key"] and name == change["state"])
            if "title" in change:
                issue["title"] = change["title"]
            issue["updatedAt"] = stamp
        gone = set(body.get("delete", []))
        self.issues = [i for i in self.issues if i["identifier"] not in gone]
        return JSONResponse({"updated": len(body.get("update", [])), "deleted": len(gone)})

    # -- the endpoint ------------------------------------------------------------------------------------------
    async def graphql(self, request: Request) -> Response:
        try:
            body = json.loads(await request.body() or b"{}")
        except json.JSONDecodeError:
            body = None
        response = await self._answer(request, body)
        self.log.record(request, response.status_code, body if isinstance(body, dict) else None)
        return response

    async def _answer(self, request: Request, body: Any) -> Response:
        if self.faults.latency_s:
            await asyncio.sleep(self.faults.latency_s)
        credential = self._credential(request)
        if credential is None:
            message = "Authentication required, not authenticated"
            return JSONResponse(error_body(message, "authentication error", "AUTHENTICATION_ERROR"), 401)
        if self.faults.fail_next > 0:
            self.faults.fail_next -= 1
            headers = {"retry-after": self.faults.retry_after} if self.faults.retry_after else {}
            if self.faults.fail_status == 429:
                return JSONResponse(error_body("Rate limit exceeded", "ratelimited", "RATELIMITED"), 429, headers)
            return JSONResponse(error_body("Internal server error", "internal error", "INTERNAL_SERVER_ERROR"),
                                self.faults.fail_status, headers)
        if not isinstance(body, dict) or not isinstance(body.get("query"), str):
            return JSONResponse(error_body("Must provide query string.", "graphql error", "GRAPHQL_PARSE_FAILED"), 400)
        variables = body.get("variables") or {}
        try:
            document = parse(body["query"])
        except GraphQLError as exc:
            return JSONResponse(error_body(exc.message, "graphql error", "GRAPHQL_PARSE_FAILED"), 400)
        problems = validate(self.schema, document)
        if problems:
            return JSONResponse({"data": None, "errors": [
                {**p.formatted, "extensions": {"type": "graphql error", "code": "GRAPHQL_VALIDATION_FAILED"}}
                for p in problems]}, 400)
        points = complexity(document, variables if isinstance(variables, dict) else {})
        if points > self.max_complexity:
            return JSONResponse(error_body(f"Query too complex: {points:.0f} points, the limit is "
                                           f"{self.max_complexity}", "invalid input", "QUERY_TOO_COMPLEX"), 400,
                                {"x-complexity": f"{points:.0f}"})
        requests_left, points_left, reset = self.budget.take(credential, points)
        headers = {"x-ratelimit-requests-limit": str(self.budget.requests),
                   "x-ratelimit-requests-remaining": str(max(requests_left, 0)),
                   "x-ratelimit-requests-reset": str(int(reset * 1000)),
                   "x-ratelimit-complexity-limit": str(self.budget.complexity),
                   "x-ratelimit-complexity-remaining": str(max(int(points_left), 0)),
                   "x-ratelimit-complexity-reset": str(int(reset * 1000)), "x-complexity": f"{points:.0f}"}
        if requests_left < 0 or points_left < 0:
            headers["retry-after"] = str(max(int(reset - time.time()), 1))
            return JSONResponse(error_body("Rate limit exceeded", "ratelimited", "RATELIMITED"), 400, headers)
        result = execute_sync(self.schema, document, root_value=self._root(), variable_values=variables,
                         operation_name=body.get("operationName"))
        out: dict[str, Any] = {"data": result.data}
        if result.errors:
            out["errors"] = [{**e.formatted, "extensions": e.extensions or {"type": "invalid input"}}
                             for e in result.errors]
        return JSONResponse(out, 200, headers)

    # -- resolvers (graphql-core's default resolver calls these with the field's arguments) --------------------
    def _root(self) -> dict[str, Any]:
        def issues(info: Any, filter: Any = None, first: int | None = None, after: str | None = None,
                   **_: Any) -> dict[str, Any]:
            try:
                rows = [self._issue(i) for i in self.issues if matches(i, filter, ISSUE)]
            except FilterError as exc:
                raise GraphQLError(str(exc), extensions={"type": "invalid input", "code": "INPUT_ERROR"}) from exc
            return connection(rows, first, after)

        def teams(info: Any, filter: Any = None, first: int | None = None, after: str | None = None,
                  **_: Any) -> dict[str, Any]:
            return connection([t for t in self.seed.teams if matches(t, filter, TEAM)], first, after)

        def users(info: Any, filter: Any = None, first: int | None = None, after: str | None = None,
                  includeDisabled: bool | None = None, **_: Any) -> dict[str, Any]:  # noqa: N803 (Linear's name)
            people = [u for u in self.seed.users if u["active"] or includeDisabled]
            return connection([self.seed.user_by_id(u["id"]) or u for u in people if matches(u, filter, USER)],
                              first, after)

        def issue(info: Any, id: str) -> dict[str, Any]:  # noqa: A002 (the argument is called id)
            for record in self.issues:
                if id in (record["id"], record["identifier"]):
                    return self._issue(record)
            raise GraphQLError("Entity not found: Issue", extensions={"type": "invalid input",
                                                                      "code": "INPUT_ERROR"})

        viewer = self.seed.user_by_id(self.seed.users[0]["id"])
        return {"issues": issues, "teams": teams, "users": users, "issue": issue, "viewer": viewer}

    @staticmethod
    def _issue(record: dict[str, Any]) -> dict[str, Any]:
        labels = record["labels"]

        def label_connection(info: Any, first: int | None = None, after: str | None = None,
                             **_: Any) -> dict[str, Any]:
            return connection(labels, first, after)

        return {**record, "labels": label_connection, "labelIds": [label["id"] for label in labels]}
