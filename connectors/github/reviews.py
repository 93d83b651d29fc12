"""``github.reviews``: reviews of one pull request (``GET /repos/{owner}/{repo}/pulls/{number}/reviews``). The API
lists them per pull request only, so ``repo`` and ``number`` are required filters (``IN`` is one call per value);
a join from ``github.pull_requests`` supplies the numbers (one call per pull request, as EXPLAIN says)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import quote

import pyarrow as pa

from connectors.decode import WireField, decode_page
from connectors.github.rows import listed_rows
from connectors.http import ApiClient
from connectors.requester import PageRequest
from core.types import ColumnSpec, FilterCap, ScanRequest, ScanStats, TableSpec, ops

__all__ = ["REVIEWS", "scan_reviews"]

ROUTE = "/repos/{owner}/{repo}/pulls/{pull_number}/reviews"
REVIEWS = TableSpec(
    schema_name="github",
    name="reviews",
    description="Reviews of pull requests (GET /repos/{owner}/{repo}/pulls/{number}/reviews); needs repo and number.",
    primary_key=("review_id",),
    row_estimate=2000,
    page_size=100,
    limit_pushdown=False,
    columns=(
        ColumnSpec("review_id", pa.int64(), "Review id", nullable=False),
        ColumnSpec("repo", pa.string(), "Repository name", nullable=False,
                   filter=FilterCap(ops("=", "IN"), required=True, example="repo = 'web-frontend'")),
        ColumnSpec("number", pa.int64(), "Pull request number", nullable=False,
                   filter=FilterCap(ops("=", "IN"), required=True, example="number = 12")),
        ColumnSpec("reviewer", pa.string(), "Reviewer login"),
        ColumnSpec("state", pa.string(), "APPROVED, CHANGES_REQUESTED, COMMENTED, DISMISSED or PENDING"),
        ColumnSpec("body", pa.string(), "Review text"),
        ColumnSpec("submitted_at", pa.timestamp("us", tz="UTC"), "Submission time (UTC)"),
        ColumnSpec("team_id", pa.string(), "Team, from the tenant's repo → team mapping"),
    ),
)
_WIRE = {"review_id": WireField(("id",)), "reviewer": WireField(("user", "login")), "state": WireField(("state",)),
         "body": WireField(("body",)), "submitted_at": WireField(("submitted_at",), "timestamp")}


async def scan_reviews(api: ApiClient, base: str, org: str, repo_teams: Mapping[str, str], request: ScanRequest,
                       stats: ScanStats, max_pages: int) -> AsyncIterator[pa.RecordBatch]:
    """One listing: the planner sends one (repo, number) per request (``max_in`` 1)."""
    repo = next(str(p.values[0]) for p in request.predicates if p.column == "repo")
    number = next(p.values[0] for p in request.predicates if p.column == "number")
    if not isinstance(number, int):
        return
    first = PageRequest("GET", f"{base}/repos/{quote(org, safe='')}/{quote(repo, safe='')}/pulls/{number}/reviews",
                        {"per_page": 100})

    def columns(records: list[Any], schema: pa.Schema) -> dict[str, pa.Array]:
        return {**decode_page(records, schema, _WIRE, "GitHub"), "repo": pa.array([repo] * len(records)),
                "number": pa.array([number] * len(records), pa.int64())}

    async for batch in listed_rows(api, first, ROUTE, request, stats, max_pages, REVIEWS, repo_teams, columns):
        yield batch
