"""``github.commits``: the default branch's commits of the org's repositories (``GET /repos/{owner}/{repo}/commits``,
Link paging). Pushed: ``repo``/``team_id`` (which repositories), ``committed_at`` ranges (``since``/``until``,
widened to whole seconds), ``author = login`` (``author``, which also matches e-mails, so it only narrows). Every
row is re-checked."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pyarrow as pa

from connectors.decode import WireField, decode_page
from connectors.github.rows import listed_rows
from connectors.http import ApiClient
from connectors.requester import PageRequest
from core.types import ColumnSpec, FilterCap, Predicate, ScanRequest, ScanStats, TableSpec, ops

__all__ = ["COMMITS", "scan_commits"]

ROUTE = "/repos/{owner}/{repo}/commits"
TS = pa.timestamp("us", tz="UTC")
COMMITS = TableSpec(
    schema_name="github",
    name="commits",
    description="Commits of the default branch of the org's repositories (GET /repos/{owner}/{repo}/commits).",
    primary_key=("repo", "sha"),
    row_estimate=700,
    page_size=100,
    limit_pushdown=False,
    partition_column="repo",
    columns=(
        ColumnSpec("sha", pa.string(), "Commit SHA", nullable=False),
        ColumnSpec("repo", pa.string(), "Repository name", nullable=False,
                   filter=FilterCap(ops("=", "IN"), max_in=20, example="repo = 'web-frontend'")),
        ColumnSpec("message", pa.string(), "Commit message"),
        ColumnSpec("author", pa.string(), "Author's GitHub login (null when the e-mail matches no account)",
                   filter=FilterCap(ops("="), example="author = 'ana-silva'")),
        ColumnSpec("author_name", pa.string(), "Author name (git)"),
        ColumnSpec("author_email", pa.string(), "Author e-mail (git)"),
        ColumnSpec("committed_at", TS, "Author date (UTC)",
                   filter=FilterCap(ops("<", "<=", ">", ">=", "BETWEEN"),
                                    example="committed_at >= TIMESTAMP '2026-03-01'")),
        ColumnSpec("team_id", pa.string(), "Team, from the tenant's repo → team mapping",
                   filter=FilterCap(ops("=", "IN"), max_in=10, example="team_id = 'web'")),
    ),
)
_WIRE = {"sha": WireField(("sha",)), "message": WireField(("commit", "message")),
         "author": WireField(("author", "login")), "author_name": WireField(("commit", "author", "name")),
         "author_email": WireField(("commit", "author", "email")),
         "committed_at": WireField(("commit", "author", "date"), "timestamp")}


def _iso(value: datetime, up: bool) -> str:
    moment = (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
    whole = moment.replace(microsecond=0)
    if up and whole != moment:
        whole += timedelta(seconds=1)
    return whole.strftime("%Y-%m-%dT%H:%M:%SZ")


def _params(predicates: Sequence[Predicate]) -> dict[str, Any]:
    params: dict[str, Any] = {"per_page": 100}
    for p in predicates:
        if p.column == "author" and p.op == "=":
            params["author"] = p.values[0]
        elif p.column == "committed_at" and isinstance(p.values[0], datetime):
            if p.op in (">", ">=", "BETWEEN"):
                params["since"] = _iso(p.values[0], up=False)
            if p.op in ("<", "<=") or (p.op == "BETWEEN" and isinstance(p.values[1], datetime)):
                params["until"] = _iso(p.values[-1], up=True)
    return params


async def scan_commits(api: ApiClient, base: str, org: str, repos: list[str], repo_teams: Mapping[str, str],
                       request: ScanRequest, stats: ScanStats, max_pages: int) -> AsyncIterator[pa.RecordBatch]:
    params = _params(request.predicates)
    for repo in repos:
        first = PageRequest("GET", f"{base}/repos/{quote(org, safe='')}/{quote(repo, safe='')}/commits", params)

        def columns(records: list[Any], schema: pa.Schema, repo: str = repo) -> dict[str, pa.Array]:
            return {**decode_page(records, schema, _WIRE, "GitHub"), "repo": pa.array([repo] * len(records))}

        async for batch in listed_rows(api, first, ROUTE, request, stats, max_pages, COMMITS, repo_teams, columns):
            yield batch
