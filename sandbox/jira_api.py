"""Jira Cloud v3 stand-in, faithful to ../shared/api-contracts/jira/CONTRACT.md.

``GET|POST /rest/api/3/search/jql`` with a real JQL parser (400 + ErrorCollection on bad JQL), default
``fields=id``, opaque ``nextPageToken``, ``isLast``, no ``total``; the legacy ``/rest/api/3/search`` answers 410.
Basic auth on the site host and Bearer on ``/ex/jira/{cloudId}``; 429 + ``Retry-After`` once the budget is spent.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from sandbox.common import Faults, RateBudget, RequestLog, control_routes
from sandbox.jql import JqlError, compile_jql, default_fields
from sandbox.seed import (
    BRANCH_FIELD,
    CUSTOMER_FIELD,
    CUSTOMERS,
    JIRA_STATUSES,
    PROJECTS,
    STORY_POINTS_FIELD,
    JiraIssue,
    Seed,
)

CLOUD_ID = "1324a887-45db-1bf4-1e99-ef0ff456d421"
REMOVED_BODY = {"errorMessages": ["The requested API has been removed. Please migrate to the /rest/api/3/search/jql "
                                  "API. A full migration guideline is available at "
                                  "https://developer.atlassian.com/changelog/#CHANGE-2046"], "errors": {}}
SEARCH_BODY_KEYS = {"jql", "nextPageToken", "maxResults", "fields", "expand", "properties", "fieldsByKeys",
                    "reconcileIssues"}
# What project/search says of each project: category (None: uncategorized) and style.
PROJECT_DETAILS = {"MOB": ("Product", "classic"), "WEB": ("Product", "classic"), "PLAT": (None, "next-gen")}
_NAVIGABLE = ("summary", "status", "assignee", "project", "labels", "created", "updated", STORY_POINTS_FIELD,
              BRANCH_FIELD, CUSTOMER_FIELD)


def _ts(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"


class JiraStandIn:
    """State and handlers of the Jira stand-in; ``app`` is the Starlette application."""

    def __init__(self, seed: Seed, email: str, api_token: str, rate_limit: int = 10_000) -> None:
        self.seed = seed
        self.basic = base64.b64encode(f"{email}:{api_token}".encode()).decode()
        self.bearer = api_token
        self.budget = RateBudget(limit=rate_limit, window_s=60)
        self.log = RequestLog()
        self.faults = Faults()
        self.fields = default_fields(STORY_POINTS_FIELD, BRANCH_FIELD, CUSTOMER_FIELD)
        users = {u.login: u for u in seed.users}
        self.rows = [self._row(i, users) for i in seed.issues]
        api = [
            Route("/rest/api/3/search/jql", self._guard(self.search), methods=["GET", "POST"]),
            Route("/rest/api/3/search/approximate-count", self._guard(self.approximate_count), methods=["POST"]),
            Route("/rest/api/3/search", self._guard(self.legacy_search), methods=["GET", "POST"]),
            Route("/rest/api/3/field", self._guard(self.field_list)),
            Route("/rest/api/3/myself", self._guard(self.myself)),
            Route("/rest/api/3/project/search", self._guard(self.project_search)),
        ]
        self.app = Starlette(routes=[*api, Mount(f"/ex/jira/{CLOUD_ID}", routes=api),
                                     *control_routes(self.log, self.faults),
                                     Route("/_sandbox/mutate", self.mutate, methods=["POST"])])

    async def mutate(self, request: Request) -> Response:
        """Tests change the data as users would: ``{"update": [{"key": "WEB-1", "status": "Done", "summary":
        ...}], "delete": ["WEB-2"]}``; an update stamps ``updated`` now (what ``updated >= -5m`` sees)."""
        body = await request.json()
        now = datetime.now(UTC)
        changes = {str(u["key"]): u for u in body.get("update", [])}
        gone = {str(k) for k in body.get("delete", [])}
        self.rows = [row for row in self.rows if row["key"] not in gone]
        for row in self.rows:
            wanted = changes.get(row["key"])
            if wanted is not None:
                row.update({k: wanted[k] for k in ("status", "summary") if k in wanted})
                row.update(updated=now, updated_text=_ts(now))
        return json_response({"updated": len(changes), "deleted": len(gone)})

    # -- plumbing ----------------------------------------------------------------------------------------------
    def _guard(self, handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            body = None
            if request.method == "POST":
                try:
                    body = json.loads(await request.body() or b"{}")
                except json.JSONDecodeError:
                    body = "<invalid json>"
            response = await self._check(request) or await handler(request)
            self.log.record(request, response.status_code, body if isinstance(body, dict) else None)
            return response

        return endpoint

    async def _check(self, request: Request) -> Response | None:
        if self.faults.latency_s:
            await asyncio.sleep(self.faults.latency_s)
        scheme, _, credential = request.headers.get("authorization", "").partition(" ")
        via_gateway = request.url.path.startswith("/ex/jira/")
        ok = (scheme.lower() == "basic" and credential == self.basic) or (
            via_gateway and scheme.lower() == "bearer" and credential == self.bearer)
        if not ok:
            return error(401, "You are not authenticated. Authentication required to perform this operation.")
        if self.faults.fail_next > 0:
            self.faults.fail_next -= 1
            headers = {"Retry-After": self.faults.retry_after} if self.faults.retry_after else {}
            return error(self.faults.fail_status, "Service unavailable" if self.faults.fail_status >= 500
                         else "Rate limit exceeded.", headers)
        remaining, _, reset = self.budget.take(credential)
        request.state.rate = max(remaining, 0)
        if remaining < 0:
            wait = max(reset - int(datetime.now().timestamp()), 1)
            return error(429, "Rate limit exceeded.", {"Retry-After": str(wait),
                                                       "X-RateLimit-Limit": str(self.budget.limit),
                                                       "X-RateLimit-Remaining": "0"})
        return None

    # -- endpoints ---------------------------------------------------------------------------------------------
    async def legacy_search(self, request: Request) -> Response:
        return json_response(REMOVED_BODY, 410)

    async def project_search(self, request: Request) -> Response:
        """``GET /project/search``: a PageBean of projects (``startAt``, ``maxResults`` up to 50, ``keys``,
        ``orderBy=key``, ``expand=insight`` adds the issue count)."""
        q = request.query_params
        try:
            start, size = int(q.get("startAt", "0")), min(max(int(q.get("maxResults", "50")), 1), 50)
        except ValueError:
            return error(400, "startAt and maxResults must be integers.")
        keys = {k for v in q.getlist("keys") for k in v.split(",") if k}
        projects = sorted((p for p in PROJECTS if not keys or p[0] in keys), key=lambda p: p[0])
        base = str(request.base_url).rstrip("/")
        insight = "insight" in q.get("expand", "").split(",")
        values = [self._project_json(base, p, insight) for p in projects[start:start + size]]
        body: dict[str, Any] = {"self": str(request.url), "maxResults": size, "startAt": start,
                                "total": len(projects), "isLast": start + size >= len(projects), "values": values}
        if not body["isLast"]:
            body["nextPage"] = str(request.url.include_query_params(startAt=start + size, maxResults=size))
        return json_response(body)

    def _project_json(self, base: str, project: tuple[str, str, str], insight: bool) -> dict[str, Any]:
        key, name, _ = project
        pid = str(10000 + PROJECTS.index(project))
        category, style = PROJECT_DETAILS[key]
        out: dict[str, Any] = {
            "avatarUrls": {size: f"{base}/secure/projectavatar?size=small&pid={pid}" for size in ("16x16", "48x48")},
            "id": pid, "key": key, "name": name, "self": f"{base}/rest/api/3/project/{key}",
            "simplified": style == "next-gen", "style": style,
            "projectCategory": None if category is None else {
                "description": f"{category} projects", "id": str(10000 + len(category)), "name": category,
                "self": f"{base}/rest/api/3/projectCategory/{10000 + len(category)}"}}
        if out["projectCategory"] is None:
            del out["projectCategory"]
        if insight:
            issues = [r for r in self.rows if r["project"] == key]
            out["insight"] = {"totalIssueCount": len(issues), "lastIssueUpdateTime": max(
                (r["updated_text"] for r in issues), default=None)}
        return out

    async def myself(self, request: Request) -> Response:
        return json_response({"accountId": "5b10a2844c20165700ede000", "accountType": "app",
                              "displayName": "OmniSQL bot", "active": True})

    async def field_list(self, request: Request) -> Response:
        fields: list[dict[str, Any]] = [
            {"id": f, "key": f, "name": f.title(), "custom": False, "orderable": True, "navigable": True,
             "searchable": True, "clauseNames": [f], "schema": {"type": "string", "system": f}}
                  for f in ("summary", "status", "assignee", "project", "labels", "created", "updated")]
        fields += [
            {"id": STORY_POINTS_FIELD, "key": STORY_POINTS_FIELD, "name": "Story Points", "custom": True,
             "orderable": True, "navigable": True, "searchable": True,
             "clauseNames": [f"cf[{STORY_POINTS_FIELD[12:]}]", "Story Points"],
             "schema": {"type": "number", "custom": "com.atlassian.jira.plugin.system.customfieldtypes:float",
                        "customId": int(STORY_POINTS_FIELD[12:])}},
            {"id": BRANCH_FIELD, "key": BRANCH_FIELD, "name": "Branch", "custom": True, "orderable": True,
             "navigable": True, "searchable": True, "clauseNames": [f"cf[{BRANCH_FIELD[12:]}]", "Branch"],
             "schema": {"type": "string", "custom": "com.atlassian.jira.plugin.system.customfieldtypes:textfield",
                        "customId": int(BRANCH_FIELD[12:])}},
            {"id": CUSTOMER_FIELD, "key": CUSTOMER_FIELD, "name": "Customer", "custom": True, "orderable": True,
             "navigable": True, "searchable": True, "clauseNames": [f"cf[{CUSTOMER_FIELD[12:]}]", "Customer"],
             "schema": {"type": "option", "custom": "com.atlassian.jira.plugin.system.customfieldtypes:select",
                        "customId": int(CUSTOMER_FIELD[12:])}},
        ]
        return json_response(fields)

    async def search(self, request: Request) -> Response:
        params = await self._search_params(request)
        if isinstance(params, Response):
            return params
        jql, token, max_results, fields = params
        try:
            matcher, order = compile_jql(jql, self.fields)
        except JqlError as exc:
            return json_response({"errorMessages": [str(exc)], "errors": {}, "warningMessages": []}, 400)
        digest = hashlib.sha256(jql.encode()).hexdigest()[:16]
        offset = 0
        if token:
            try:
                decoded = json.loads(base64.urlsafe_b64decode(token.encode()))
                offset, token_digest = int(decoded["o"]), decoded["q"]
            except (ValueError, KeyError, TypeError):
                return json_response({"errorMessages": ["The provided next page token is invalid or expired."],
                                      "errors": {}}, 400)
            if token_digest != digest:
                return json_response({"errorMessages": ["The provided next page token is invalid or expired."],
                                      "errors": {}}, 400)
        hits = [row for row in self.rows if matcher(row)]
        hits.sort(key=lambda r: r["created"], reverse=True)
        for key, descending in reversed(order):
            hits.sort(key=_sort_key(key), reverse=descending)
        only_ids = set(fields) <= {"id", "key"}
        cap = 5000 if only_ids else 100
        size = min(max(max_results, 1), cap)
        page = hits[offset:offset + size]
        base = str(request.base_url).rstrip("/")
        body: dict[str, Any] = {"issues": [self._issue_json(base, row, fields) for row in page]}
        if offset + size < len(hits):
            body["nextPageToken"] = base64.urlsafe_b64encode(
                json.dumps({"o": offset + size, "q": digest}).encode()).decode()
            body["isLast"] = False
        else:
            body["isLast"] = True
        return json_response(body, headers={"X-RateLimit-Limit": str(self.budget.limit),
                                            "X-RateLimit-Remaining": str(request.state.rate)})

    async def approximate_count(self, request: Request) -> Response:
        """``POST /search/approximate-count`` ``{"jql": ...}`` → ``{"count": n}`` (bounded JQL required)."""
        try:
            body = json.loads(await request.body() or b"{}")
        except json.JSONDecodeError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("jql", ""), str) or set(body) - {"jql"}:
            return json_response({"errorMessages": ["Invalid request payload. Refer to the REST API documentation "
                                                    "and try again."], "errors": {}}, 400)
        try:
            matcher, _ = compile_jql(body.get("jql", ""), self.fields)
        except JqlError as exc:
            return json_response({"errorMessages": [str(exc)], "errors": {}, "warningMessages": []}, 400)
        count = sum(1 for row in self.rows if matcher(row))
        return json_response({"count": count}, headers={"X-RateLimit-Limit": str(self.budget.limit),
                                                        "X-RateLimit-Remaining": str(request.state.rate)})

    async def _search_params(self, request: Request) -> tuple[str, str | None, int, list[str]] | Response:
        if request.method == "POST":
            try:
                body = json.loads(await request.body() or b"{}")
            except json.JSONDecodeError:
                return json_response({"errorMessages": ["Invalid request payload. Refer to the REST API "
                                                        "documentation and try again."], "errors": {}}, 400)
            if not isinstance(body, dict) or set(body) - SEARCH_BODY_KEYS:
                extra = sorted(set(body) - SEARCH_BODY_KEYS) if isinstance(body, dict) else []
                return json_response({"errorMessages": [f"Unrecognized field(s) {extra} in the request body."],
                                      "errors": {}}, 400)
            jql, token = body.get("jql", ""), body.get("nextPageToken")
            raw_max, fields = body.get("maxResults", 50), list(body.get("fields") or ["id"])
        else:
            q = request.query_params
            jql, token, raw_max = q.get("jql", ""), q.get("nextPageToken"), q.get("maxResults", "50")
            fields = [f for v in q.getlist("fields") for f in v.split(",") if f] or ["id"]
        try:
            max_results = int(raw_max)
        except (TypeError, ValueError):
            return json_response({"errorMessages": ["maxResults must be an integer."], "errors": {}}, 400)
        return str(jql), token, max_results, fields

    # -- JSON shapes -------------------------------------------------------------------------------------------
    def _row(self, issue: JiraIssue, users: dict[str, Any]) -> dict[str, Any]:
        user = users.get(issue.assignee) if issue.assignee else None
        return {"id": issue.id, "key": issue.key, "project": issue.project, "summary": issue.summary,
                "status": issue.status, "story_points": issue.story_points, "labels": list(issue.labels),
                "branch": issue.branch, "created": issue.created, "updated": issue.updated,
                "assignee_account": user.account_id if user else None, "user": user,
                "created_text": _ts(issue.created), "updated_text": _ts(issue.updated),  # formatted once
                "customer": issue.customer}

    def _issue_json(self, base: str, row: dict[str, Any], fields: list[str]) -> dict[str, Any]:
        wanted = set(_NAVIGABLE) if {"*all", "*navigable"} & set(fields) else set(fields)
        wanted -= {f[1:] for f in fields if f.startswith("-")}
        project = next(p for p in PROJECTS if p[0] == row["project"])
        status_id, category = next((str(10000 + i), c) for i, (s, c, _) in enumerate(JIRA_STATUSES)
                                   if s == row["status"])
        user = row["user"]
        values: dict[str, Any] = {
            "summary": row["summary"],
            "status": {"self": f"{base}/rest/api/3/status/{status_id}", "description": "", "iconUrl": "",
                       "name": row["status"], "id": status_id,
                       "statusCategory": {"self": f"{base}/rest/api/3/statuscategory/1", "id": 1,
                                          "key": category, "colorName": "yellow", "name": row["status"]}},
            "assignee": None if user is None else {
                "self": f"{base}/rest/api/3/user?accountId={user.account_id}", "accountId": user.account_id,
                "accountType": "atlassian", "displayName": user.name, "active": True, "timeZone": "UTC",
                "avatarUrls": {}, **({"emailAddress": user.email} if user.email else {})},
            "project": {"self": f"{base}/rest/api/3/project/{project[0]}", "id": str(10000 + PROJECTS.index(project)),
                        "key": project[0], "name": project[1], "avatarUrls": {}, "simplified": False},
            "labels": row["labels"], "created": row["created_text"], "updated": row["updated_text"],
            STORY_POINTS_FIELD: row["story_points"], BRANCH_FIELD: row["branch"],
            CUSTOMER_FIELD: None if row["customer"] is None else {  # a select field's option
                "self": f"{base}/rest/api/3/customFieldOption/{20000 + CUSTOMERS.index(row['customer'])}",
                "value": row["customer"], "id": str(20000 + CUSTOMERS.index(row["customer"]))},
        }
        return {"expand": "", "id": str(row["id"]), "self": f"{base}/rest/api/3/issue/{row['id']}",
                "key": row["key"], "fields": {k: v for k, v in values.items() if k in wanted}}


def _sort_key(key: str) -> Callable[[dict[str, Any]], tuple[bool, Any]]:
    """ORDER BY one field, empty values last (as Jira sorts them)."""
    return lambda row: (row[key] is None, row[key] if row[key] is not None else 0)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body), status_code=status, headers=headers, media_type="application/json")


def error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return json_response({"errorMessages": [message], "errors": {}}, status, headers)
