"""``github.issues``: issues of the org's repositories (``GET /repos/{owner}/{repo}/issues``, Link paging).

GitHub lists pull requests there too (items with a ``pull_request`` key): they are dropped, ``github.pull_requests``
has them. ``assignee`` is the singular ``assignee`` (2022-11-28) or the first of ``assignees`` (2026-03-10 removed
the singular). Pushed: ``repo``/``team_id`` (which repositories), ``state`` (``state=open|closed``), ``updated_at >=``
/ ``>`` (``since``, which only narrows). Every row is re-checked, so each pushed condition is exact."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import pyarrow as pa
import pyarrow.compute as pc

from connectors.decode import WireField, decode_page
from connectors.github.rows import listed_rows
from connectors.github.versions import first_logins
from connectors.http import ApiClient
from connectors.requester import PageRequest
from core.types import ColumnSpec, FilterCap, Predicate, ScanRequest, ScanStats, TableSpec, ops

__all__ = ["ISSUES", "scan_issues"]

ROUTE = "/repos/{owner}/{repo}/issues"
TS = pa.timestamp("us", tz="UTC")
ISSUES = TableSpec(
    schema_name="github",
    name="issues",
    description="Issues (not pull requests) of the org's repositories (GET /repos/{owner}/{repo}/issues).",
    primary_key=("issue_id",),
    row_estimate=300,
    page_size=100,
    limit_pushdown=False,
    partition_column="repo",
    columns=(
        ColumnSpec("issue_id", pa.int64(), "Issue id", nullable=False),
        ColumnSpec("repo", pa.string(), "Repository name", nullable=False,
                   filter=FilterCap(ops("=", "IN"), max_in=20, example="repo = 'web-frontend'")),
        ColumnSpec("number", pa.int64(), "Issue number in its repository", nullable=False),
        ColumnSpec("title", pa.string(), "Title"),
        ColumnSpec("state", pa.string(), "open or closed", nullable=False,
                   filter=FilterCap(ops("="), example="state = 'open'")),
        ColumnSpec("author", pa.string(), "Author login"),
        ColumnSpec("assignee", pa.string(), "Assignee login"),
        ColumnSpec("labels", pa.list_(pa.string()), "Label names"),
        ColumnSpec("comments", pa.int64(), "Number of comments"),
        ColumnSpec("team_id", pa.string(), "Team, from the tenant's repo → team mapping",
                   filter=FilterCap(ops("=", "IN"), max_in=10, example="team_id = 'web'")),
        ColumnSpec("created_at", TS, "Creation time (UTC)"),
        ColumnSpec("updated_at", TS, "Last update (UTC)",
                   filter=FilterCap(ops(">", ">="), example="updated_at >= TIMESTAMP '2026-03-01'")),
        ColumnSpec("closed_at", TS, "Close time (UTC)"),
    ),
)
_WIRE = {"issue_id": WireField(("id",)), "number": WireField(("number",)), "title": WireField(("title",)),
         "state": WireField(("state",)), "author": WireField(("user", "login")),
         "assignee": WireField(("assignee", "login")), "labels": WireField(("labels",), "names"),
         "comments": WireField(("comments",)), "created_at": WireField(("created_at",), "timestamp"),
         "updated_at": WireField(("updated_at",), "timestamp"), "closed_at": WireField(("closed_at",), "timestamp")}


def _params(predicates: Sequence[Predicate]) -> dict[str, Any] | None:
    """The listing's query; None when no issue can match (``state`` neither open nor closed)."""
    params: dict[str, Any] = {"state": "all", "per_page": 100, "sort": "created", "direction": "desc"}
    for p in predicates:
        if p.column == "state" and p.op == "=":
            if p.values[0] not in ("open", "closed"):
                return None
            params["state"] = p.values[0]
        elif p.column == "updated_at" and p.op in (">", ">=") and isinstance(p.values[0], datetime):
            moment = p.values[0] if p.values[0].tzinfo else p.values[0].replace(tzinfo=UTC)
            params["since"] = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")  # seconds: it only narrows
    return params


async def scan_issues(api: ApiClient, base: str, org: str, repos: list[str], repo_teams: Mapping[str, str],
                      request: ScanRequest, stats: ScanStats, max_pages: int) -> AsyncIterator[pa.RecordBatch]:
    params = _params(request.predicates)
    if params is None:
        return
    for repo in repos:
        first = PageRequest("GET", f"{base}/repos/{quote(org, safe='')}/{quote(repo, safe='')}/issues", params)

        def columns(records: list[Any], schema: pa.Schema, repo: str = repo) -> dict[str, pa.Array] | None:
            issues = [r for r in records if isinstance(r, dict) and "pull_request" not in r]
            if not issues:
                return None
            cols = decode_page(issues, schema, _WIRE, "GitHub")
            if "assignee" in cols:  # 2026-03-10 has no singular ``assignee``: the first of ``assignees``
                cols["assignee"] = pc.coalesce(cols["assignee"], first_logins(issues, "assignees"))
            cols["repo"] = pa.array([repo] * len(issues), pa.string())
            return cols

        async for batch in listed_rows(api, first, ROUTE, request, stats, max_pages, ISSUES, repo_teams, columns):
            yield batch
