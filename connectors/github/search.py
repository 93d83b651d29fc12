"""``github.pull_requests`` through ``GET /search/issues`` when that costs fewer calls than listing every repository:
a query that names an ``author``, a label (``list_contains(labels, 'x')``) or a ``merged_at >=`` bound (which the
listing cannot filter) becomes ``is:pr org:ORG author:LOGIN label:"x" merged:>=TIME``, one call per 100 matches
instead of one org listing plus one per repository and 100 pull requests. An author IN list is one search per login
(the search syntax has no OR for authors), up to ``SearchPath.max_fanout``.

Values never change the query's structure: a login must look like one (else that condition is not sent), a label
is sent in double quotes only when it has no quote, backslash, comma or control character (else not sent), times
are formatted here. A condition not sent only narrows less: every row is re-checked against every predicate, as
the listing's are (search is case-insensitive and rounds times to the second anyway). Search cannot give ``pr_id``
(its items carry the *issue* id), ``branch``, ``base_branch``, nor the per-row lookups, so a scan needing those
lists. GitHub's limits are kept: at most 1,000 results per search (a larger ``total_count``, fewer items than it
promised, or ``incomplete_results`` on any page, falls back to listing: never a truncated answer) and 30 searches
a minute per token (``SearchWindow``; past it, or on a search rate-limit answer, the scan lists)."""

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
from connectors.github.tables import PULL_REQUESTS, SEARCH_PATH
from core.types import Predicate, ScanRequest

__all__ = ["SEARCH", "SEARCHABLE", "SEARCH_CAP", "SearchWindow", "decode_search", "search_queries"]

SEARCH = "/search/issues"
SEARCH_CAP = SEARCH_PATH.cap  # results one search can reach
SEARCH_PER_MINUTE = 30
_LOGIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})")
_LABEL = re.compile(r'[^"\\,\x00-\x1f\x7f]{1,50}')  # label names are at most 50 characters
_REPO = re.compile(r"[A-Za-z0-9._-]{1,100}")
SEARCHABLE = SEARCH_PATH.columns
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


def search_queries(org: str, request: ScanRequest) -> tuple[str, ...] | None:
    """The ``q`` of each search this scan needs (one per author of an IN list), or None when search cannot answer
    it or would not save calls (``SearchPath.applies``, and at least one narrowing condition that can be sent)."""
    if not SEARCH_PATH.applies(request) or not _LOGIN.fullmatch(org):
        return None
    parts, authors, narrowed = ["is:pr", f"org:{org}"], None, False
    for p in request.predicates:
        if p.column == "author":
            logins = _logins(p)
            if logins is not None:
                authors = logins if authors is None else tuple(a for a in authors if a in logins)
                if "{author}" not in parts:
                    parts.append("{author}")
        elif (part := _qualifier(p, org)) is not None:
            parts.append(part)
            narrowed = narrowed or p.column in SEARCH_PATH.narrowing
    if authors is not None:  # none left: author conditions that contradict each other (the listing finds none)
        return tuple(" ".join(f"author:{a}" if x == "{author}" else x for x in parts) for a in authors) or None
    return (" ".join(parts),) if narrowed else None


def _logins(p: Predicate) -> tuple[str, ...] | None:
    """The logins to search for, or None (not sent) when a value cannot be a GitHub login. Logins are
    case-insensitive (``author:SAM-ITO`` finds sam-ito's): one search per login however it is spelled, or rows
    would come back once per spelling."""
    spellings: dict[str, str] = {}
    for v in p.values:
        spellings.setdefault(str(v).lower(), str(v))
    values = tuple(spellings.values())
    return values if p.op in ("=", "IN") and all(_LOGIN.fullmatch(v) for v in values) else None


def _qualifier(p: Predicate, org: str) -> str | None:
    """The qualifier for one predicate, or None when it is not sent (the rows are filtered by it all the same)."""
    if p.column == "status" and p.op == "=" and p.values[0] in _STATUS:
        return _STATUS[p.values[0]]
    if p.column == "repo" and p.op == "=" and _REPO.fullmatch(str(p.values[0])):
        return f"repo:{org}/{p.values[0]}"
    if p.column == "labels" and p.op == "CONTAINS" and _LABEL.fullmatch(str(p.values[0])) \
            and str(p.values[0]).strip() == str(p.values[0]):
        return f'label:"{p.values[0]}"'
    if p.column == "merged_at" and p.op in (">", ">=") and (moment := _moment(p.values[0])) is not None:
        return f"merged:>={moment}"
    return None


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
