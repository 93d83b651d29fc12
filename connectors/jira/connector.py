"""Jira Cloud v3 connector: one JQL search, paged by ``nextPageToken`` until ``isLast``."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import pyarrow as pa

from connectors.decode import decode_page, map_values
from connectors.filtering import filter_batch
from connectors.http import ApiClient
from connectors.jira.jql import build_jql, quote
from connectors.jira.tables import ISSUES, api_fields, issue_wire
from connectors.topn import TopN
from core.errors import UpstreamError
from core.types import ScanRequest, ScanStats, TableSpec

_SORTS = {"created_at": "created", "updated_at": "updated"}  # TableSpec.order_pushdown → JQL ORDER BY
MAX_PAGES = 500  # 50,000 issues at 100 per page
PAGE_SIZE = 100


@dataclass(frozen=True)
class JiraConfig:
    base_url: str
    email: str
    api_token: str
    project_teams: dict[str, str] = field(default_factory=dict)
    story_points_field: str = "customfield_10016"
    branch_field: str = "customfield_10100"
    concurrency: int = 8


class JiraConnector:
    """Implements ``core.types.Connector`` for the ``jira`` schema."""

    name = "jira"

    def __init__(self, config: JiraConfig, http: httpx.AsyncClient) -> None:
        self.config = config
        self.url = config.base_url.rstrip("/") + "/rest/api/3/search/jql"
        self.count_url = config.base_url.rstrip("/") + "/rest/api/3/search/approximate-count"
        basic = base64.b64encode(f"{config.email}:{config.api_token}".encode()).decode()
        self.api = ApiClient("Jira", http, concurrency=config.concurrency, headers={
            "Authorization": f"Basic {basic}", "Accept": "application/json", "User-Agent": "omnisql/0.1"})
        self.wire = issue_wire(config.story_points_field, config.branch_field)
        self.jql_fields = {"issue_key": ("key", "exact"), "status": ("status", "exact"),
                           "project": ("project", "exact"),
                           "story_points": (f"cf[{config.story_points_field.removeprefix('customfield_')}]",
                                            "number"),
                           "branch_name": (f"cf[{config.branch_field.removeprefix('customfield_')}]", "text"),
                           "created_at": ("created", "date"), "updated_at": ("updated", "date")}
        self.team_projects: dict[str, list[str]] = {}
        for project, team in config.project_teams.items():
            self.team_projects.setdefault(team, []).append(project)
        projects = sorted(config.project_teams)
        # The search API rejects unbounded JQL; the configured projects are the natural restriction.
        self.default_restriction = (f"project IN ({', '.join(map(quote, projects))})" if projects
                                    else "created IS NOT EMPTY")

    def tables(self) -> Sequence[TableSpec]:
        return (ISSUES,)

    async def aclose(self) -> None:
        return None

    def jql_for(self, request: ScanRequest) -> str:
        jql = build_jql(request.predicates, self.jql_fields, self.team_projects, self.default_restriction)
        if request.limit is not None and request.order_by:
            column, descending = request.order_by[0]
            jql += f" ORDER BY {_SORTS[column]} {'DESC' if descending else 'ASC'}"
        return jql

    async def count(self, request: ScanRequest, stats: ScanStats) -> int | None:
        """Jira's approximate count of the issues a request would list (one call; the planner prices with it)."""
        body, _ = await self.api.post_json(self.count_url, stats, {"jql": self.jql_for(request)})
        count = body.get("count") if isinstance(body, dict) else None
        return count if isinstance(count, int) and count >= 0 else None

    async def scan(self, request: ScanRequest, stats: ScanStats) -> AsyncIterator[pa.RecordBatch]:
        body: dict[str, Any] = {
            "jql": self.jql_for(request),
            "fields": api_fields(set(request.columns) | {p.column for p in request.row_filters},
                                 self.config.story_points_field, self.config.branch_field),
            "maxResults": min(PAGE_SIZE, request.limit + 1) if request.limit else PAGE_SIZE,
        }
        top = TopN(request.limit, request.order_by[0][0]) if request.limit is not None and request.order_by \
            else None
        emitted = 0
        for _ in range(MAX_PAGES):
            page, _response = await self.api.post_json(self.url, stats, body)
            stats.pages += 1
            if not isinstance(page, dict) or not isinstance(page.get("issues"), list):
                raise UpstreamError("Jira search returned a body without an 'issues' list; retry later")
            done = False
            stats.listed += len(page["issues"])
            if page["issues"]:
                batch = self._to_batch(page["issues"], request)
                if top is not None:  # sorted: keep rows tied with the N-th
                    done = top.add(batch)
                elif request.limit is not None:
                    batch = batch.slice(0, request.limit - emitted)
                    done = emitted + batch.num_rows >= request.limit
                emitted += batch.num_rows
                stats.rows += batch.num_rows
                yield batch
            token = page.get("nextPageToken")
            if page.get("isLast", token is None) or not token or done:
                return
            body = {**body, "nextPageToken": token}
        raise UpstreamError(f"Jira search did not end within {MAX_PAGES} pages; narrow the query")

    def _to_batch(self, issues: list[dict[str, Any]], request: ScanRequest) -> pa.RecordBatch:
        needed = set(request.columns) | {p.column for p in request.row_filters}
        schema = ISSUES.schema_for(needed | {"project"})
        cols = decode_page(issues, schema, self.wire, "Jira")
        cols["team"] = map_values(cols["project"], self.config.project_teams)
        batch = pa.RecordBatch.from_pydict({n: cols[n] for n in schema.names}, schema=schema)
        batch = filter_batch(batch, request.row_filters)
        out = ISSUES.schema_for(request.columns)
        return pa.RecordBatch.from_arrays([batch.column(n) for n in out.names], schema=out)
