"""``github.pull_requests`` declared as data: columns, types, what the REST API can filter, and costs."""

from __future__ import annotations

import pyarrow as pa

from connectors.decode import WireField
from core.types import ColumnSpec, FilterCap, SearchPath, TableSpec, ops

TS = pa.timestamp("us", tz="UTC")
EQ_IN = ops("=", "IN")
# GET /search/issues (connectors/github/search.py): what a search item carries, which conditions it takes (or the
# rows are filtered by), and which make it cheaper than listing every repository.
SEARCH_PATH = SearchPath(
    columns=frozenset({"number", "repo", "title", "author", "status", "team_id", "diff_link", "labels",
                       "created_at", "updated_at", "merged_at"}),
    filters=frozenset({"repo", "team_id", "status", "author", "labels", "merged_at"}),
    narrowing=frozenset({"author", "labels", "merged_at"}), max_fanout=5)

PULL_REQUESTS = TableSpec(
    schema_name="github",
    name="pull_requests",
    description="Pull requests of every repository in the organisation (GET /repos/{owner}/{repo}/pulls).",
    primary_key=("pr_id",),
    row_estimate=400,
    page_size=100,
    order_pushdown=("created_at", "updated_at"),  # sort=created|updated, direction=asc|desc, per repository
    request_overhead=1,  # GET /orgs/{org}/repos, then one listing per repository
    partitions=4,
    partition_column="repo",  # repositories; the connector replaces this with the configured count
    delta_refresh=True,  # sort=updated&direction=desc lists what changed since a time (scan_changes)
    keyless_filters=SEARCH_PATH.narrowing,  # GET /search/issues has no pull request id
    search=SEARCH_PATH,
    columns=(
        ColumnSpec("pr_id", pa.int64(), "GitHub's pull request id", nullable=False, distinct_estimate=400),
        ColumnSpec("number", pa.int64(), "Pull request number within its repository", nullable=False),
        ColumnSpec("repo", pa.string(), "Repository name (without the org)", nullable=False,
                   filter=FilterCap(EQ_IN, exact=True, max_in=50, example="repo = 'web-frontend'")),
        ColumnSpec("title", pa.string(), "Title"),
        # Only the search path sends it (author:LOGIN, case-insensitive: inexact; one search per login of an IN
        # list, up to SEARCH_PATH.max_fanout); the listing filters rows. A long IN list stays one request (one
        # listing), never a listing per batch.
        ColumnSpec("author", pa.string(), "Login of the author", distinct_estimate=25,
                   filter=FilterCap(EQ_IN, exact=False, max_in=1000, example="author = 'octocat'")),
        ColumnSpec("author_email", pa.string(), "Public email of the author (null when hidden); one "
                   "GET /users/{login} per distinct author", fetch="user"),
        # state=open is exact; 'closed' and 'merged' both map to state=closed, so the API only narrows;
        # <> 'open' is state=closed, other <> cannot narrow.
        ColumnSpec("status", pa.string(), "'open', 'closed' (not merged) or 'merged'", nullable=False,
                   filter=FilterCap(ops("=", "IN", "<>"), exact=False, max_in=3,
                                    example="status = 'merged'")),
        ColumnSpec("branch", pa.string(), "Head branch name", distinct_estimate=350,
                   filter=FilterCap(ops("="), exact=True, max_in=1, example="branch = 'feature/x'")),
        ColumnSpec("base_branch", pa.string(), "Base branch name",
                   filter=FilterCap(ops("="), exact=True, max_in=1, example="base_branch = 'main'")),
        ColumnSpec("team_id", pa.string(), "Owning team, from the tenant's repo → team mapping",
                   filter=FilterCap(EQ_IN, exact=True, max_in=10, example="team_id = 'web'")),
        ColumnSpec("additions", pa.int64(), "Lines added; one GET /pulls/{n} per row", fetch="detail"),
        ColumnSpec("deletions", pa.int64(), "Lines deleted; one GET /pulls/{n} per row", fetch="detail"),
        ColumnSpec("diff_link", pa.string(), "URL of the diff"),
        # Only the search path sends it (label:"NAME", case-insensitive: inexact); the listing filters rows.
        ColumnSpec("labels", pa.list_(pa.string()), "Label names",
                   filter=FilterCap(ops("CONTAINS"), exact=False, example="list_contains(labels, 'bug')")),
        ColumnSpec("created_at", TS, "Creation time (UTC)"),
        ColumnSpec("updated_at", TS, "Last update (UTC)"),
        ColumnSpec("merged_at", TS, "Merge time (UTC); null when not merged",  # only narrows: GET /search/issues
                   filter=FilterCap(ops(">", ">="), exact=False, example="merged_at >= TIMESTAMP '2026-03-01'")),
    ),
    fetch_costs={"detail": "one request per row", "user": "one request per distinct author"},
)

PULL_WIRE: dict[str, WireField] = {
    "pr_id": WireField(("id",)),
    "number": WireField(("number",)),
    "repo": WireField(("base", "repo", "name")),
    "title": WireField(("title",)),
    "author": WireField(("user", "login")),
    "status": WireField(("state",)),  # refined with merged_at after decoding
    "branch": WireField(("head", "ref")),
    "base_branch": WireField(("base", "ref")),
    "diff_link": WireField(("diff_url",)),
    "labels": WireField(("labels",), "names"),
    "created_at": WireField(("created_at",), "timestamp"),
    "updated_at": WireField(("updated_at",), "timestamp"),
    "merged_at": WireField(("merged_at",), "timestamp"),
}

DETAIL_WIRE: dict[str, WireField] = {  # GET /repos/{owner}/{repo}/pulls/{number}
    "additions": WireField(("additions",)),
    "deletions": WireField(("deletions",)),
}


USERS = TableSpec(
    schema_name="github",
    name="users",
    description="GitHub users by login (GET /users/{login}); join it to pull_requests.author for names and emails.",
    primary_key=("login",),
    row_estimate=100_000_000,  # every account on GitHub: listing them is not an option, hence the required login
    page_size=1,
    columns=(
        ColumnSpec("login", pa.string(), "Login", nullable=False, distinct_estimate=100_000_000,
                   filter=FilterCap(EQ_IN, exact=True, required=True, max_in=1,
                                    example="login = 'octocat' (or join: ON u.login = gh.author)")),
        ColumnSpec("user_id", pa.int64(), "GitHub's user id"),
        ColumnSpec("name", pa.string(), "Display name"),
        ColumnSpec("email", pa.string(), "Public email; null when hidden"),
        ColumnSpec("company", pa.string(), "Company"),
        ColumnSpec("location", pa.string(), "Location"),
        ColumnSpec("type", pa.string(), "'User' or 'Organization'"),
        ColumnSpec("created_at", TS, "Account creation time (UTC)"),
    ),
)

USER_WIRE: dict[str, WireField] = {
    "login": WireField(("login",)),
    "user_id": WireField(("id",)),
    "name": WireField(("name",)),
    "email": WireField(("email",)),
    "company": WireField(("company",)),
    "location": WireField(("location",)),
    "type": WireField(("type",)),
    "created_at": WireField(("created_at",), "timestamp"),
}
