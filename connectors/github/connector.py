"""GitHub REST connector: lists pull requests per repository, following ``link`` headers to the end.

Composed of requester parts: Bearer auth, GitHub's rate-limit policy (403/429 + ``x-ratelimit-*``), the
``Link`` paginator and a bare-array record selector, all run by the one paging loop."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import itertools
import logging
import math
import re
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
import pyarrow as pa
import pyarrow.compute as pc

from connectors.conditional import EtagCache, scope_of
from connectors.decode import decode_page, map_values, wire_type
from connectors.filtering import filter_batch
from connectors.github.commits import COMMITS, scan_commits
from connectors.github.issues import ISSUES, scan_issues
from connectors.github.repositories import REPOSITORIES, scan_repositories
from connectors.github.reviews import REVIEWS, scan_reviews
from connectors.github.search import SEARCH, SEARCH_CAP, SearchWindow, decode_search, search_queries
from connectors.github.tables import DETAIL_WIRE, PULL_REQUESTS, PULL_WIRE, USER_WIRE, USERS
from connectors.http import ApiClient, HttpLimits
from connectors.memo import Memo
from connectors.requester import BearerAuth, GitHubErrors, LinkHeader, PageRequest, RecordSelector, paginate
from connectors.topn import TopN
from core.errors import RateLimitExhausted, UpstreamError
from core.types import Changes, Predicate, ScanRequest, ScanStats, TableSpec

log = logging.getLogger("omnisql.connectors")
API_VERSION = "2022-11-28"  # the default; 2026-03-10 is accepted too (both response shapes decode)
API_VERSIONS = ("2022-11-28", "2026-03-10")
ETAG_CACHE_BYTES = 8 << 20
_SORTS = {"created_at": "created", "updated_at": "updated"}  # TableSpec.order_pushdown → the API's sort
_LOGIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})")  # anything else cannot be a GitHub login: no request
MAX_PAGES = 1000  # per listing; at 100 rows a page that is 100,000 pull requests per repository
_PAGES = LinkHeader()
_ARRAY = RecordSelector(())
_PULL_LISTED = PULL_REQUESTS.schema_for([c.name for c in PULL_REQUESTS.columns if c.fetch == "list"])
_PULL_RECORD = wire_type(_PULL_LISTED, PULL_WIRE)  # the only fields a listed pull request is parsed for
_ITEMS = RecordSelector(("items",))
# Route templates: what logs and error messages name (the concrete URLs carry filter values).
ORG_REPOS = "/orgs/{org}/repos"
PULLS = "/repos/{owner}/{repo}/pulls"
PULL = "/repos/{owner}/{repo}/pulls/{pull_number}"
USER = "/users/{username}"


@dataclass(frozen=True)
class GitHubConfig:
    base_url: str
    token: str = field(repr=False)  # never in a log line or an error
    org: str
    repo_teams: dict[str, str] = field(default_factory=dict)
    concurrency: int = 8
    max_pages: int = MAX_PAGES
    limits: HttpLimits = field(default_factory=HttpLimits)
    api_version: str = API_VERSION
    etag_cache_bytes: int = ETAG_CACHE_BYTES  # bodies kept for If-None-Match; 0 turns conditional requests off


class GitHubConnector:
    """Implements ``core.types.Connector`` for the ``github`` schema (or the configured connector name)."""

    def __init__(self, config: GitHubConfig, http: httpx.AsyncClient, name: str = "github") -> None:
        self.name = name
        self.config = config
        self.base = config.base_url.rstrip("/")
        etags = EtagCache(scope_of(config.token, config.api_version, self.base), config.etag_cache_bytes)
        self.api = ApiClient("GitHub", http, config.base_url, auth=BearerAuth(config.token), errors=GitHubErrors(),
                             concurrency=config.concurrency, limits=config.limits, etags=etags, name=name, headers={
                                 "Accept": "application/vnd.github+json", "X-GitHub-Api-Version": config.api_version,
                                 "User-Agent": "omnisql/0.1"})
        self.searches = SearchWindow()  # GitHub's 30 searches a minute per token

    def tables(self) -> Sequence[TableSpec]:
        repos = len(self.config.repo_teams)
        specs = (dataclasses.replace(PULL_REQUESTS, partitions=repos) if repos else PULL_REQUESTS, USERS,
                 REPOSITORIES, *(dataclasses.replace(t, partitions=repos) if repos else t for t in (ISSUES, COMMITS)),
                 REVIEWS)
        return specs if self.name == "github" else tuple(dataclasses.replace(s, schema_name=self.name) for s in specs)

    async def open(self) -> None:
        """Nothing to discover: the tables are fixed."""
        return None

    async def aclose(self) -> None:
        """The HTTP client is the process's, closed by its owner."""
        return None

    def scan(self, request: ScanRequest, stats: ScanStats) -> AsyncIterator[pa.RecordBatch]:
        if request.table == REVIEWS.name:
            return scan_reviews(self.api, self.base, self.config.org, self.config.repo_teams, request, stats,
                                self.config.max_pages)
        if request.table in (ISSUES.name, COMMITS.name):
            return self._per_repo(request, stats)
        if request.table == REPOSITORIES.name:
            return scan_repositories(self.api, self.base, self.config.org, self.config.repo_teams, request, stats,
                                     self.config.max_pages)
        return self._users(request, stats) if request.table == USERS.name else self._pulls(request, stats)

    async def _per_repo(self, request: ScanRequest, stats: ScanStats) -> AsyncIterator[pa.RecordBatch]:
        """Issues or commits: one listing per repository the repo/team_id filters leave."""
        repos = await self._repos([p for p in request.predicates if p.column in ("repo", "team_id")], stats)
        scan = scan_issues if request.table == ISSUES.name else scan_commits
        async for batch in scan(self.api, self.base, self.config.org, repos, self.config.repo_teams, request, stats,
                                self.config.max_pages):
            yield batch

    async def scan_changes(self, request: ScanRequest, since: float, stats: ScanStats) -> Changes | None:
        """Pull requests updated at or after ``since`` (``core.types.ChangeListing``): per repository the listing
        sorted by ``updated`` descending, every state (a PR that was merged must leave an ``open`` copy), read
        until the first older one — usually one page. Only the repository filters narrow it: they never change."""
        if request.table != PULL_REQUESTS.name or request.limit is not None:
            return None
        repos = await self._repos([p for p in request.predicates if p.column in ("repo", "team_id")], stats)
        params = {"state": "all", "sort": "updated", "direction": "desc", "per_page": 100}
        scan = _Scan(request, stats, Memo())
        since_us = pa.scalar(int(since * 1_000_000), type=pa.timestamp("us", tz="UTC"))
        found = await asyncio.gather(*(self._changed(repo, params, since_us, scan) for repo in repos))
        keys = [k for ks, _ in found for k in ks]
        return Changes(pa.concat_arrays(keys) if keys else pa.array([], pa.int64()),
                       tuple(b for _, bs in found for b in bs))

    async def _changed(self, repo: str, params: dict[str, Any], since: pa.Scalar, scan: _Scan
                       ) -> tuple[list[pa.Array], list[pa.RecordBatch]]:
        """One repository's changed pull requests: their ids, and those that match the request."""
        keys: list[pa.Array] = []
        batches: list[pa.RecordBatch] = []
        first = PageRequest("GET", f"{self.base}/repos/{self._repo_path(repo)}/pulls", params)
        async with contextlib.aclosing(paginate(self.api, first, _PAGES, _ARRAY, scan.stats, PULLS,
                                                self.config.max_pages, _PULL_RECORD)) as pages:
            async for page in pages:
                scan.stats.listed += len(page.records)
                if not page.records:
                    continue
                cols = decode_page(page.records, PULL_REQUESTS.schema_for(("pr_id", "updated_at")), PULL_WIRE,
                                   "GitHub")
                recent = pc.fill_null(pc.greater_equal(cols["updated_at"], since), True)
                keys.append(pc.filter(cols["pr_id"], recent))
                changed = list(itertools.compress(page.records, recent.to_pylist()))
                if changed:
                    batch = await self._to_batch(changed, scan)
                    scan.stats.rows += batch.num_rows
                    batches.append(batch)
                if len(changed) < len(page.records):  # sorted newest first: the rest is older
                    break
        return keys, batches

    async def _users(self, request: ScanRequest, stats: ScanStats) -> AsyncIterator[pa.RecordBatch]:
        """One ``GET /users/{login}`` per wanted login (the planner guarantees a login filter); 404 = no row."""
        logins = sorted({str(v) for p in request.predicates if p.column == "login" and p.op in ("=", "IN")
                         for v in p.values if _LOGIN.fullmatch(str(v))})
        bodies = await asyncio.gather(*(self._user(login, stats) for login in logins))
        found = [body for body in bodies if isinstance(body, dict)]
        stats.listed += len(found)
        schema = USERS.schema_for(USERS.arrow_schema.names)
        batch = pa.RecordBatch.from_pydict(decode_page(found, schema, USER_WIRE, "GitHub"), schema=schema)
        batch = filter_batch(batch, request.row_filters)
        stats.rows += batch.num_rows
        out = USERS.schema_for(request.columns)
        yield pa.RecordBatch.from_arrays([batch.column(n) for n in out.names], schema=out)

    async def _user(self, login: str, stats: ScanStats) -> Any:
        return await self.api.get_json(f"{self.base}/users/{quote(login, safe='')}", stats, USER, missing_ok=True)

    def describe_request(self, request: ScanRequest) -> str:
        """EXPLAIN's ``upstream``: for pull requests, the search (when it saves calls) or the listing."""
        if request.table != PULL_REQUESTS.name:
            return ""
        queries = search_queries(self.config.org, request)
        if queries is not None:
            return (f"GET {SEARCH} {_shown(queries)} (lists per repository past {SEARCH_CAP} results a search or "
                    "30 searches/min)")
        return f"GET {PULLS} per repository, state={_state_param(request.predicates)}"

    async def _search(self, queries: tuple[str, ...], request: ScanRequest, stats: ScanStats
                      ) -> list[pa.RecordBatch] | None:
        """The scan through the search API, or None (nothing yielded yet) when the listing must answer: no room
        in the 30/min window, a search over 1,000 results, one that says or shows it is incomplete (fewer items
        than its ``total_count``), or a search the API refused. Never a truncated answer."""
        if not self.searches.take(len(queries)):
            stats.access = "listing (30 searches/min spent)"
            return None
        batches: list[pa.RecordBatch] = []
        try:
            for query in queries:
                refused = await self._search_one(query, request, stats, batches)
                if refused is not None:
                    stats.access = f"listing ({refused})"
                    return None
        except (RateLimitExhausted, UpstreamError) as exc:
            log.warning("GitHub search failed (%s); listing instead", type(exc).__name__)
            stats.access = f"listing (the search failed: {type(exc).__name__})"
            return None
        stats.rows += sum(b.num_rows for b in batches)
        stats.access = f"GET {SEARCH} {_shown(queries)}"
        return batches

    async def _search_one(self, query: str, request: ScanRequest, stats: ScanStats, batches: list[pa.RecordBatch]
                          ) -> str | None:
        """One search's rows appended to ``batches``; or why the listing must answer instead."""
        needed = tuple(set(request.columns) | {p.column for p in request.predicates})
        first = PageRequest("GET", f"{self.base}{SEARCH}", {"q": query, "per_page": 100})
        total, items = 0, 0
        async with contextlib.aclosing(paginate(self.api, first, _PAGES, _ITEMS, stats, SEARCH,
                                                self.config.max_pages)) as pages:
            async for page in pages:
                body = page.reply.json()
                if not isinstance(body, dict) or body.get("incomplete_results"):
                    return "the search said its results are incomplete"
                if page.number == 1:
                    found = body.get("total_count")
                    if not isinstance(found, int) or isinstance(found, bool) or found > SEARCH_CAP:
                        return f"search found {found} results, over {SEARCH_CAP}"
                    total = found
                    if not self.searches.take(max(math.ceil(total / 100) - 1, 0)):
                        return "30 searches/min spent"
                items += len(page.records)
                stats.listed += len(page.records)
                batch = filter_batch(decode_search(page.records, needed, self.config.repo_teams), request.row_filters)
                batches.append(pa.RecordBatch.from_arrays([batch.column(n) for n in request.columns],
                                                          schema=PULL_REQUESTS.schema_for(request.columns)))
        if items < total:
            return f"the search gave {items} of the {total} results it found"
        return None

    async def _pulls(self, request: ScanRequest, stats: ScanStats) -> AsyncIterator[pa.RecordBatch]:
        out_schema = PULL_REQUESTS.schema_for(request.columns)
        queries = search_queries(self.config.org, request)
        if queries is not None:
            found = await self._search(queries, request, stats)
            if found is not None:
                for batch in found:
                    yield batch
                if not found:
                    yield pa.RecordBatch.from_pylist([], schema=out_schema)
                return
        repos = await self._repos(request.predicates, stats)
        listings = self._listings(repos, request.predicates)
        scan = _Scan(request, stats, Memo())
        emitted = 0
        if request.limit is not None and not request.order_by:  # sequential: stop paying once we have enough
            for repo, params in listings:
                async for batch in self._list(repo, params, scan):
                    batch = batch.slice(0, request.limit - emitted)
                    emitted += batch.num_rows
                    yield batch
                    if emitted >= request.limit:
                        return
            return
        collect = self._top if request.limit is not None else self._collect  # top-N: each repository's own
        results = await asyncio.gather(*(collect(repo, params, scan) for repo, params in listings))
        for batches in results:
            for batch in batches:
                yield batch
        if not listings:
            yield pa.RecordBatch.from_pylist([], schema=out_schema)

    # -- access paths ------------------------------------------------------------------------------------------
    async def _repos(self, predicates: Sequence[Predicate], stats: ScanStats) -> list[str]:
        """Repositories to list: named by ``repo``/``team_id`` predicates, or every repository of the org."""
        wanted: set[str] | None = None
        for p in predicates:
            if p.column == "repo" and p.op in ("=", "IN"):
                names = set(p.values)
            elif p.column == "team_id" and p.op in ("=", "IN"):
                names = {r for r, t in self.config.repo_teams.items() if t in p.values}
            else:
                continue
            wanted = names if wanted is None else wanted & names
        all_repos = await self._org_repos(stats)
        return [r for r in all_repos if wanted is None or r in wanted]

    async def _org_repos(self, stats: ScanStats) -> list[str]:
        names: list[str] = []
        first = PageRequest("GET", f"{self.base}/orgs/{quote(self.config.org, safe='')}/repos", {"per_page": 100})
        async for page in paginate(self.api, first, _PAGES, _ARRAY, stats, ORG_REPOS, self.config.max_pages):
            names += [r["name"] for r in page.records if isinstance(r, dict) and isinstance(r.get("name"), str)]
        return names

    def _listings(self, repos: list[str], predicates: Sequence[Predicate]) -> list[tuple[str, dict[str, Any]]]:
        """One listing per repository, or per (repository, head branch) when that costs fewer requests."""
        params: dict[str, Any] = {"state": _state_param(predicates), "per_page": 100, "sort": "created",
                                  "direction": "desc"}
        for p in predicates:
            if p.column == "base_branch" and p.op == "=":
                params["base"] = p.values[0]
        heads = next((p.values for p in predicates if p.column == "branch" and p.op in ("=", "IN")), None)
        pages_per_repo = max(math.ceil(PULL_REQUESTS.row_estimate / max(len(repos), 1) / 100), 1)
        if heads is not None and len(heads) <= 2 * pages_per_repo:
            return [(repo, {**params, "head": f"{self.config.org}:{head}"}) for repo in repos for head in heads]
        return [(repo, params) for repo in repos]

    async def _top(self, repo: str, params: dict[str, Any], scan: _Scan) -> list[pa.RecordBatch]:
        """This repository's top ``limit`` rows in the requested order (ties with the last included)."""
        request = scan.request
        assert request.limit is not None
        column, descending = request.order_by[0]
        sorted_params = {**params, "sort": _SORTS[column], "direction": "desc" if descending else "asc",
                         "per_page": min(100, request.limit + 1)}
        top = TopN(request.limit, column)
        batches = []
        async with contextlib.aclosing(self._list(repo, sorted_params, scan)) as pages:
            async for batch in pages:
                batches.append(batch)
                if top.add(batch):
                    break
        return batches

    async def _collect(self, repo: str, params: dict[str, Any], scan: _Scan) -> list[pa.RecordBatch]:
        return [batch async for batch in self._list(repo, params, scan, every_page=True)]

    async def _list(self, repo: str, params: dict[str, Any], scan: _Scan, every_page: bool = False
                    ) -> AsyncGenerator[pa.RecordBatch, None]:
        """The repository's pages as batches; ``every_page`` (nothing stops early) asks for each next page
        while this one is decoded."""
        first = PageRequest("GET", f"{self.base}/repos/{self._repo_path(repo)}/pulls", params)
        async with contextlib.aclosing(paginate(self.api, first, _PAGES, _ARRAY, scan.stats, PULLS,
                                                self.config.max_pages, _PULL_RECORD, prefetch=every_page)) as pages:
            async for page in pages:
                scan.stats.listed += len(page.records)
                if page.records:
                    batch = await self._to_batch(page.records, scan)
                    scan.stats.rows += batch.num_rows
                    yield batch

    def _repo_path(self, repo: str) -> str:
        return f"{quote(self.config.org, safe='')}/{quote(repo, safe='')}"

    # -- decoding and hydration --------------------------------------------------------------------------------
    async def _to_batch(self, items: list[dict[str, Any]], scan: _Scan) -> pa.RecordBatch:
        request, stats = scan.request, scan.stats
        cols = decode_page(items, _PULL_LISTED, PULL_WIRE, "GitHub")
        cols["status"] = pc.if_else(pc.is_valid(cols["merged_at"]), "merged", cols["status"])
        cols["team_id"] = map_values(cols["repo"], self.config.repo_teams)
        batch = pa.RecordBatch.from_pydict(cols, schema=_PULL_LISTED)
        # Drop rows the API only narrowed, rows another source's keys rule out, and rows the query's local
        # conditions reject, before per-row lookups.
        batch = filter_batch(batch, request.row_filters, request.residual)
        extra: dict[str, pa.Array] = {}
        if {"additions", "deletions"} & set(request.columns):
            extra.update(await self._details(batch, stats))
        if "author_email" in request.columns:
            extra["author_email"] = await self._emails(batch.column("author"), scan)
        out = PULL_REQUESTS.schema_for(request.columns)
        arrays = [extra[name] if name in extra else batch.column(name) for name in out.names]
        return pa.RecordBatch.from_arrays(arrays, schema=out)

    async def _details(self, batch: pa.RecordBatch, stats: ScanStats) -> dict[str, pa.Array]:
        repos, numbers = batch.column("repo").to_pylist(), batch.column("number").to_pylist()
        bodies = await asyncio.gather(*(
            self.api.get_json(f"{self.base}/repos/{self._repo_path(r)}/pulls/{n}", stats, PULL, expect=dict)
            for r, n in zip(repos, numbers, strict=True)))
        schema = PULL_REQUESTS.schema_for(("additions", "deletions"))
        return decode_page(list(bodies), schema, DETAIL_WIRE, "GitHub")

    async def _emails(self, logins: pa.Array, scan: _Scan) -> pa.Array:
        """One ``GET /users/{login}`` per distinct author per scan (shared by every page and repository)."""
        distinct = [x for x in pc.unique(logins).to_pylist() if x is not None]
        bodies = await asyncio.gather(*(scan.users.get(login, functools.partial(self._user, login, scan.stats))
                                        for login in distinct))
        emails = {login: body.get("email") if isinstance(body, dict) else None
                  for login, body in zip(distinct, bodies, strict=True)}
        return map_values(logins, emails)


@dataclass(frozen=True)
class _Scan:
    """One pull request scan's state, shared by its pages and repositories."""

    request: ScanRequest
    stats: ScanStats
    users: Memo  # login → GET /users/{login} body


def _shown(queries: tuple[str, ...]) -> str:
    """The searches as EXPLAIN shows them: ``q=...``, or one ``q=...`` per author joined by `` | ``."""
    return " | ".join(f"q={q}" for q in queries)


def _state_param(predicates: Sequence[Predicate]) -> str:
    """GitHub's ``state`` for our ``status`` predicates: open → open, closed/merged → closed, else all."""
    for p in predicates:
        if p.column == "status" and p.op in ("=", "IN"):
            states = {"open" if v == "open" else "closed" for v in p.values}
            if len(states) == 1:
                return states.pop()
        if p.column == "status" and p.op == "<>" and p.values[0] == "open":
            return "closed"
    return "all"

