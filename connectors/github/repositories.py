"""``github.repositories``: the organization's repositories (``GET /orgs/{org}/repos``, Link-header paging), with
``team_id`` from the tenant's repo → team mapping. The listing has no filters worth pushing (one page holds 100
repositories), so conditions are left to the engine."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import quote

import pyarrow as pa

from connectors.decode import WireField, decode_page
from connectors.github.rows import listed_rows
from connectors.http import ApiClient
from connectors.requester import PageRequest
from core.types import ColumnSpec, ScanRequest, ScanStats, TableSpec

__all__ = ["REPOSITORIES", "scan_repositories"]

ROUTE = "/orgs/{org}/repos"
REPOSITORIES = TableSpec(
    schema_name="github",
    name="repositories",
    description="Repositories of the organization (GET /orgs/{org}/repos).",
    primary_key=("repo",),
    row_estimate=50,
    page_size=100,
    limit_pushdown=False,
    columns=(
        ColumnSpec("repo", pa.string(), "Repository name, e.g. web-frontend", nullable=False),
        ColumnSpec("repo_id", pa.int64(), "Repository id", nullable=False),
        ColumnSpec("full_name", pa.string(), "owner/name"),
        ColumnSpec("private", pa.bool_(), "Private repository"),
        ColumnSpec("visibility", pa.string(), "public, private or internal"),
        ColumnSpec("default_branch", pa.string(), "Default branch"),
        ColumnSpec("fork", pa.bool_(), "A fork"),
        ColumnSpec("description", pa.string(), "Description"),
        ColumnSpec("html_url", pa.string(), "Web page"),
        ColumnSpec("team_id", pa.string(), "Team, from the tenant's repo → team mapping"),
    ),
)
_WIRE = {"repo": WireField(("name",)), "repo_id": WireField(("id",)), "full_name": WireField(("full_name",)),
         "private": WireField(("private",)), "visibility": WireField(("visibility",)),
         "default_branch": WireField(("default_branch",)), "fork": WireField(("fork",)),
         "description": WireField(("description",)), "html_url": WireField(("html_url",))}


async def scan_repositories(api: ApiClient, base: str, org: str, repo_teams: Mapping[str, str], request: ScanRequest,
                            stats: ScanStats, max_pages: int) -> AsyncIterator[pa.RecordBatch]:
    first = PageRequest("GET", f"{base}/orgs/{quote(org, safe='')}/repos", {"per_page": 100})

    def columns(records: list[Any], schema: pa.Schema) -> dict[str, pa.Array]:
        return decode_page(records, schema, _WIRE, "GitHub")

    async for batch in listed_rows(api, first, ROUTE, request, stats, max_pages, REPOSITORIES, repo_teams, columns):
        yield batch
