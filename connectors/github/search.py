"""``github.pull_requests`` through ``GET /search/issues`` when that costs fewer calls than listing every repository:
a query that names an ``author`` or a ``merged_at >=`` bound (which the listing cannot filter) becomes
``is:pr org:ORG author:LOGIN is:merged merged:>=TIME``, one call per 100 matches instead of one org listing plus
one per repository and 100 pull requests.

Search only narrows (case-insensitive logins, times to the second): the rows are filtered by every predicate as the
listing's are. It cannot give ``pr_id`` (search items carry the *issue* id), ``branch``, ``base_branch``, nor the
per-row lookups, so a scan that needs those lists. GitHub's limits are kept: at most 1,000 results per search (a
larger ``total_count``, or ``incomplete_results``, falls back to listing) and 30 searches a minute per token
(``SearchWindow``; past it, or on a search rate-limit answer, the scan lists)."""

from __future__ import annotations

import collections
import re
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from connectors.decode import WireField, decode_page, map_values
from connectors.github.tables import PULL_REQUESTS
from core.types import ScanRequest

__all__ = ["SEARCH", "SEARCHABLE", "SEARCH_CAP", "SearchWindow", "decode_search", "search_query"]

SEARCH = "/search/issues"
SEARCH_CAP = 1000  # results one search can reach
SEARCH_PER_MINUTE = 30
_LOGIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})")
SEARCHABLE = frozenset({"number", "repo", "title", "author", "status", "team_id", "diff_link", "labels",
                        "created_at", "updated_at", "merged_at"})
_WIRE = {"number": WireField(("number",)), "title": WireField(("title",)), "author": WireField(("user", "login")),
         "status": WireField(("state",)), "diff_link": WireField(("pull_request", "diff_url")),
         "labels": WireField(("labels",), "names"), "created_at": WireField(("created_at",), "timestamp"),
         "updated_at": WireField(("updated_at",), "timestamp"),
         "merged_at": WireField(("pull_request", "merged_at"), "timestamp")}
_STATUS = {"open": "is:open", "merged": "is:merged", "closed": "is:closed is:unmerged"}


class SearchWindow:
    """Searches this connector sent in the last minute: a search over GitHub's 30 is not sent (the scan lists)."""

    def __init__(self, per_minute: int = SEARCH_PER_MINUTE, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self.sent: collections.deque[float] = collections.deque()

    def take(self, n: int = 1) -> bool:
        """Room for ``n`` more searches this minute: taken (True) or not (False, nothing taken)."""
        now = self.clock()
        while self.sent and now - self.sent[0] >= 60:
            self.sent.popleft()
        if len(self.sent) + n > self.per_minute:
            return False
        self.sent.extend([now] * n)
        return True


def _moment(value: Any) -> str | None:
    if not isinstance(value, datetime):
        return None
    moment = value if value.tzinfo else value.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")  # floored to the second: >= only narrows


def search_query(org: str, request: ScanRequest) -> str | None:
    """The ``q`` for this scan, or None when search cannot answer it or would not save calls."""
    if request.limit is not None or request.order_by or request.residual is not None or request.prefilters \
            or not set(request.columns) <= SEARCHABLE or not _LOGIN.fullmatch(org):
        return None
    parts, selective = ["is:pr", f"org:{org}"], False
    for p in request.predicates:
        if p.column in ("repo", "team_id"):
            continue  # the rows are filtered by them
        if p.column == "status":
            if p.op == "=" and p.values[0] in _STATUS:
                parts.append(_STATUS[p.values[0]])
        elif p.column == "author" and p.op == "=" and _LOGIN.fullmatch(str(p.values[0])):
            parts.append(f"author:{p.values[0]}")
            selective = True
        elif p.column == "merged_at" and p.op in (">", ">=") and (moment := _moment(p.values[0])) is not None:
            parts.append(f"merged:>={moment}")
            selective = True
        else:
            return None
    return " ".join(parts) if selective else None


def decode_search(items: Sequence[Any], columns: Sequence[str], repo_teams: dict[str, str]) -> pa.RecordBatch:
    """Search items (pull requests only) as ``pull_requests`` rows of ``columns`` (a subset of SEARCHABLE)."""
    pulls = [i for i in items if isinstance(i, dict) and isinstance(i.get("pull_request"), dict)]
    schema = PULL_REQUESTS.schema_for(tuple(c for c in PULL_REQUESTS.arrow_schema.names if c in columns))
    wire = PULL_REQUESTS.schema_for(tuple(c for c in _WIRE if c in columns))
    cols = decode_page(pulls, wire, _WIRE, "GitHub") if wire.names else {}
    if "status" in cols:
        merged = decode_page(pulls, PULL_REQUESTS.schema_for(("merged_at",)), _WIRE, "GitHub")["merged_at"]
        cols["status"] = pc.if_else(pc.is_valid(merged), "merged", cols["status"])
    if {"repo", "team_id"} & set(columns):
        repos = pa.array([str(i.get("repository_url", "")).rstrip("/").rpartition("/")[2] or None for i in pulls],
                         pa.string())
        cols["repo"] = repos
        cols["team_id"] = map_values(repos, repo_teams)
    return pa.RecordBatch.from_arrays([cols[n] for n in schema.names], schema=schema)
