"""Jira Cloud v3 connector: one JQL search, paged by ``nextPageToken`` until ``isLast``.

Composed of requester parts: Basic auth (email + API token), the 429 + ``Retry-After`` policy, the
``nextPageToken`` paginator and the ``issues`` record selector, all run by the one paging loop."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import pyarrow as pa

from connectors.decode import decode_page, map_values
from connectors.filtering import filter_batch
from connectors.http import ApiClient, HttpLimits
from connectors.jira.jql import build_jql, quote
from connectors.jira.projects import PROJECTS, scan_projects
from connectors.jira.tables import ISSUES, api_fields, issue_wire
from connectors.requester import (
    BasicAuth,
    BearerAuth,
    NextPageToken,
    PageRequest,
    RecordSelector,
    RetryAfterErrors,
    paginate,
)
from connectors.topn import TopN
from core.errors import RateLimitExhausted, SourceTimeout, UpstreamError
from core.types import Changes, ScanRequest, ScanStats, TableSpec

log = logging.getLogger("omnisql.connectors")

_SORTS = {"created_at": "created", "updated_at": "updated"}  # TableSpec.order_pushdown → JQL ORDER BY
MAX_PAGES = 500  # 50,000 issues at 100 per page
PAGE_SIZE = 100
SEARCH = "/rest/api/3/search/jql"
COUNT = "/rest/api/3/search/approximate-count"
_PAGES = NextPageToken("nextPageToken", "isLast", "nextPageToken", in_body=True)
_ISSUES = RecordSelector(("issues",))


@dataclass(frozen=True)
class JiraConfig:
    base_url: str
    email: str
    api_token: str = field(repr=False)  # never in a log line or an error
    project_teams: dict[str, str] = field(default_factory=dict)
    story_points_field: str = "customfield_10016"
    branch_field: str = "customfield_10100"
    customer_field: str = "customfield_10200"
    access_token: str = field(default="", repr=False)  # OAuth 2.0 (3LO) bearer instead of Basic; base_url is then
    # https://api.atlassian.com/ex/jira/{cloudId}
    concurrency: int = 8
    max_pages: int = MAX_PAGES
    limits: HttpLimits = field(default_factory=HttpLimits)


class JiraConnector:
    """Implements ``core.types.Connector`` for the ``jira`` schema (or the configured connector name)."""

    def __init__(self, config: JiraConfig, http: httpx.AsyncClient, name: str = "jira") -> None:
        self.name = name
        self.config = config
        self.url = config.base_url.rstrip("/") + SEARCH
        self.count_url = config.base_url.rstrip("/") + COUNT
        auth = BearerAuth(config.access_token) if config.access_token else BasicAuth(config.email, config.api_token)
        self.api = ApiClient("Jira", http, config.base_url, auth=auth, name=name,
                             errors=RetryAfterErrors(), concurrency=config.concurrency, limits=config.limits,
                             headers={"Accept": "application/json", "User-Agent": "omnisql/0.1"})
        self.wire = issue_wire(config.story_points_field, config.branch_field, config.customer_field)
        self.jql_fields = {"issue_key": ("key", "exact"), "status": ("status", "exact"),
                           "project": ("project", "exact"),
                           "story_points": (f"cf[{config.story_points_field.removeprefix('customfield_')}]",
                                            "number"),
                           "branch_name": (f"cf[{config.branch_field.removeprefix('customfield_')}]", "text"),
                           "created_at": ("created", "date"), "updated_at": ("updated", "date"),
                           "customer": (f"cf[{config.customer_field.removeprefix('customfield_')}]", "exact")}
        self.team_projects: dict[str, list[str]] = {}
        for project, team in config.project_teams.items():
            self.team_projects.setdefault(team, []).append(project)
        projects = sorted(config.project_teams)
        # The search API rejects unbounded JQL; the configured projects are the natural restriction.
        self.default_restriction = (f"project IN ({', '.join(map(quote, projects))})" if projects
                                    else "created IS NOT EMPTY")

    def tables(self) -> Sequence[TableSpec]:
        if self.name == "jira":
            return ISSUES, PROJECTS
        return tuple(dataclasses.replace(t, schema_name=self.name) for t in (ISSUES, PROJECTS))

    async def open(self) -> None:
        """Nothing to discover: the custom field ids come from the tenant config."""
        return None

    async def aclose(self) -> None:
        """The HTTP client is the process's, closed by its owner."""
        return None

    def jql_for(self, request: ScanRequest) -> str:
        jql = build_jql(request.predicates, self.jql_fields, self.team_projects, self.default_restriction)
        if request.limit is not None and request.order_by:
            column, descending = request.order_by[0]
            jql += f" ORDER BY {_SORTS[column]} {'DESC' if descending else 'ASC'}"
        return jql

    def describe_request(self, request: ScanRequest) -> str:
        """``core.types.Describing``: the search and its JQL, as EXPLAIN shows it."""
        return f"POST {SEARCH} jql={self.jql_for(request)}"

    async def count(self, request: ScanRequest, stats: ScanStats) -> int | None:
        """Jira's approximate count of the issues a request would list (one call; the planner prices with it).

        Only an optimisation: when it fails the query plans without it (None), it never fails the query."""
        if request.table != ISSUES.name:
            return None
        try:
            body = await self.api.post_json(self.count_url, stats, COUNT, {"jql": self.jql_for(request)})
        except (UpstreamError, RateLimitExhausted, SourceTimeout) as exc:
            log.warning("%s approximate count failed (%s); planning without it", self.name, exc.code)
            return None
        count = body.get("count") if isinstance(body, dict) else None
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            log.warning("%s approximate count answered without a count; planning without it", self.name)
            return None
        return count

    async def scan_changes(self, request: ScanRequest, since: float, stats: ScanStats) -> Changes | None:
        """Issues updated at or after ``since`` (``core.types.ChangeListing``): JQL ``updated >= "-Nm"`` (relative,
        so the Jira user's time zone does not matter; minutes, rounded up, plus one), narrowed only by the project
        filters, which never change: an issue whose status changed must leave a copy filtered by status."""
        if request.table != ISSUES.name or request.limit is not None:
            return None
        stable = [p for p in request.predicates
                  if p.column in ("team", "project") or (p.column == "issue_key" and p.op == "LIKE_PREFIX")]
        minutes = max(math.ceil((time.time() - since) / 60), 1) + 1
        base = build_jql(stable, self.jql_fields, self.team_projects, self.default_restriction)
        recent = f'updated >= "-{minutes}m"'
        body: dict[str, Any] = {
            "jql": f"{base} AND {recent}" if base else recent,
            "fields": api_fields(set(request.columns) | {"issue_key"} | {p.column for p in request.row_filters},
                                 self.config.story_points_field, self.config.branch_field),
            "maxResults": PAGE_SIZE}
        keys: list[pa.Array] = []
        batches: list[pa.RecordBatch] = []
        first = PageRequest("POST", self.url, body=body)
        async with contextlib.aclosing(paginate(self.api, first, _PAGES, _ISSUES, stats, SEARCH,
                                                self.config.max_pages, prefetch=True)) as pages:
            async for page in pages:
                stats.listed += len(page.records)
                if page.records:
                    keys.append(decode_page(page.records, ISSUES.schema_for(("issue_key",)), self.wire,
                                            "Jira")["issue_key"])
                    batch = self._to_batch(page.records, request)
                    stats.rows += batch.num_rows
                    batches.append(batch)
        return Changes(pa.concat_arrays(keys) if keys else pa.array([], pa.string()), tuple(batches))

    async def scan(self, request: ScanRequest, stats: ScanStats) -> AsyncIterator[pa.RecordBatch]:
        if request.table == PROJECTS.name:
            async for batch in scan_projects(self.api, self.config.base_url, request, stats,
                                             self.config.project_teams, self.team_projects, self.config.max_pages,
                                             PROJECTS):
                yield batch
            return
        body: dict[str, Any] = {
            "jql": self.jql_for(request),
            "fields": api_fields(set(request.columns) | {p.column for p in request.row_filters},
                                 self.config.story_points_field, self.config.branch_field, self.config.customer_field),
            "maxResults": min(PAGE_SIZE, request.limit + 1) if request.limit else PAGE_SIZE,
        }
        top = TopN(request.limit, request.order_by[0][0]) if request.limit is not None and request.order_by \
            else None
        emitted = 0
        first = PageRequest("POST", self.url, body=body)
        async with contextlib.aclosing(paginate(self.api, first, _PAGES, _ISSUES, stats, SEARCH, self.config.max_pages,
                                                prefetch=request.limit is None)) as pages:
            async for page in pages:
                done = False
                stats.listed += len(page.records)
                if page.records:
                    batch = self._to_batch(page.records, request)
                    if top is not None:  # sorted: keep rows tied with the N-th
                        done = top.add(batch)
                    elif request.limit is not None:
                        batch = batch.slice(0, request.limit - emitted)
                        done = emitted + batch.num_rows >= request.limit
                    emitted += batch.num_rows
                    stats.rows += batch.num_rows
                    yield batch
                if done:
                    return

    def _to_batch(self, issues: list[dict[str, Any]], request: ScanRequest) -> pa.RecordBatch:
        needed = set(request.columns) | {p.column for p in request.row_filters}
        schema = ISSUES.schema_for(needed | {"project"})
        cols = decode_page(issues, schema, self.wire, "Jira")
        cols["team"] = map_values(cols["project"], self.config.project_teams)
        batch = pa.RecordBatch.from_pydict({n: cols[n] for n in schema.names}, schema=schema)
        batch = filter_batch(batch, request.row_filters)
        out = ISSUES.schema_for(request.columns)
        return pa.RecordBatch.from_arrays([batch.column(n) for n in out.names], schema=out)
