"""``jira.projects``: the projects the account can browse (``GET /rest/api/3/project/search``, paged by
``startAt`` until ``isLast``). ``project_key = / IN`` goes to the API as ``keys`` (exact); ``team`` becomes the
keys of the tenant's project → team mapping; ``issue_count`` asks for ``expand=insight`` only when selected."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pyarrow as pa

from connectors.decode import WireField, decode_page, map_values
from connectors.filtering import filter_batch
from connectors.http import ApiClient
from connectors.requester import Offset, PageRequest, RecordSelector, paginate
from core.types import ColumnSpec, FilterCap, ScanRequest, ScanStats, TableSpec, ops

__all__ = ["PROJECTS", "scan_projects"]

ROUTE = "/rest/api/3/project/search"
PAGE_SIZE = 50  # the API's maximum
PROJECTS = TableSpec(
    schema_name="jira",
    name="projects",
    description="Projects the account can browse (GET /rest/api/3/project/search).",
    primary_key=("project_key",),
    row_estimate=20,
    page_size=PAGE_SIZE,
    limit_pushdown=False,
    columns=(
        ColumnSpec("project_key", pa.string(), "Project key, e.g. WEB", nullable=False,
                   filter=FilterCap(ops("=", "IN"), exact=True, max_in=50, example="project_key = 'WEB'")),
        ColumnSpec("project_id", pa.string(), "Project id", nullable=False),
        ColumnSpec("name", pa.string(), "Project name"),
        ColumnSpec("style", pa.string(), "classic (company-managed) or next-gen (team-managed)"),
        ColumnSpec("simplified", pa.bool_(), "Team-managed project"),
        ColumnSpec("category", pa.string(), "Project category name"),
        ColumnSpec("team", pa.string(), "Team, from the tenant's project → team mapping",
                   filter=FilterCap(ops("=", "IN"), exact=True, max_in=10, example="team = 'web'")),
        ColumnSpec("issue_count", pa.int64(), "Issues in the project (expand=insight)"),
    ),
)
_WIRE = {"project_key": WireField(("key",)), "project_id": WireField(("id",)), "name": WireField(("name",)),
         "style": WireField(("style",)), "simplified": WireField(("simplified",)),
         "category": WireField(("projectCategory", "name")), "issue_count": WireField(("insight", "totalIssueCount"))}


def _keys(request: ScanRequest, team_projects: Mapping[str, list[str]]) -> list[str] | None:
    """The ``keys`` the predicates allow (None: no restriction)."""
    keys: set[str] | None = None
    for p in request.predicates:
        if p.op not in ("=", "IN"):
            continue
        if p.column == "project_key":
            allowed = {str(v) for v in p.values}
        elif p.column == "team":
            allowed = {k for team in p.values for k in team_projects.get(str(team), ())}
        else:
            continue
        keys = allowed if keys is None else keys & allowed
    return sorted(keys) if keys is not None else None


async def scan_projects(api: ApiClient, base_url: str, request: ScanRequest, stats: ScanStats,
                        project_teams: Mapping[str, str], team_projects: Mapping[str, list[str]], max_pages: int,
                        schema: TableSpec) -> AsyncIterator[pa.RecordBatch]:
    keys = _keys(request, team_projects)
    if keys == []:
        return
    params: dict[str, Any] = {"startAt": 0, "maxResults": PAGE_SIZE, "orderBy": "key"}
    if keys:
        params["keys"] = keys
    if "issue_count" in request.columns:
        params["expand"] = "insight"
    first = PageRequest("GET", base_url.rstrip("/") + ROUTE, params)
    paginator = Offset(PAGE_SIZE, offset_param="startAt", total_field=("total",))
    needed = set(request.columns) | {p.column for p in request.row_filters} | {"project_key"}
    full = schema.schema_for(needed)
    async with contextlib.aclosing(paginate(api, first, paginator, RecordSelector(("values",)), stats, ROUTE,
                                            max_pages)) as pages:
        async for page in pages:
            stats.listed += len(page.records)
            if not page.records:
                continue
            cols = decode_page(page.records, full, _WIRE, "Jira")
            if "team" in full.names:
                cols["team"] = map_values(cols["project_key"], project_teams)
            batch = filter_batch(pa.RecordBatch.from_pydict({n: cols[n] for n in full.names}, schema=full),
                                 request.row_filters)
            out = schema.schema_for(request.columns)
            batch = pa.RecordBatch.from_arrays([batch.column(n) for n in out.names], schema=out)
            stats.rows += batch.num_rows
            yield batch
