"""``github.pull_requests`` search by label and by several authors, with hostile values, the 1,000-result cap kept
honestly and EXPLAIN's estimate for the search path: through the connector against the stand-in over HTTP (the
rows equal the listing's), and through ADBC against the oracle (DuckDB over the seed). A sandbox of this module's
own: searches spend the stand-in's 30 a minute, and this module sends fewer than that."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pyarrow as pa
import pytest
from sqlglot import parse_one

from connectors.github.connector import GitHubConfig, GitHubConnector
from connectors.github.search import SearchWindow, search_queries
from connectors.github.tables import PULL_REQUESTS, USERS
from core.types import Predicate, ScanRequest, ScanStats
from tests.answers import adbc_answer, assert_same_answer
from tests.oracle import connect_oracle, oracle_answer

COLUMNS = ("number", "repo", "title", "author", "status", "labels", "merged_at")
REPO_TEAMS = {"mobile-app": "mobile", "web-frontend": "web", "platform-api": "platform", "infra-tools": "platform"}
# Label values that must not change the query's structure: quoted when they can be, else not sent at all.
QUOTED = ("in progress", "bug OR feature", "x author:someone", "is:open", "it's")
REFUSED = ('bug" author:x', "bug,feature", "a\\", "a\nb", " bug", "x" * 51)



def _authors(box: Any, n: int) -> list[str]:
    return sorted({p.author for p in box.github.seed.pulls})[:n]


class _Tamper(httpx.AsyncBaseTransport):
    """Forwards to the stand-in and alters its search answers: ``drop_links`` loses the pages after the first,
    ``incomplete`` marks page 2 as ``incomplete_results``."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.url.path != "/search/issues":
            return response
        body = await response.aread()
        headers = [(k, v) for k, v in response.headers.items() if k.lower() not in ("content-length", "link")
                   or (k.lower() == "link" and self.mode != "drop_links")]
        if self.mode == "incomplete" and request.url.params.get("page") == "2":
            body = body.replace(b'"incomplete_results": false', b'"incomplete_results": true')
        return httpx.Response(response.status_code, headers=headers, content=body)

    async def aclose(self) -> None:
        await self.inner.aclose()


def _scan(box: Any, predicates: tuple[Predicate, ...], window: SearchWindow | None = None,
          transport: httpx.AsyncBaseTransport | None = None) -> tuple[pa.Table, ScanStats]:
    info = box.info()["github"]

    async def run() -> tuple[pa.Table, ScanStats]:
        async with httpx.AsyncClient(transport=transport, timeout=15) as http:
            connector = GitHubConnector(GitHubConfig(base_url=info["base_url"], token=info["token"], org=info["org"],
                                                     repo_teams=REPO_TEAMS, etag_cache_bytes=0), http)
            if window is not None:
                connector.searches = window
            stats = ScanStats()
            batches = [b async for b in connector.scan(ScanRequest("pull_requests", COLUMNS, predicates), stats)]
            table = pa.Table.from_batches(batches, schema=PULL_REQUESTS.schema_for(COLUMNS))
            return table.sort_by([("repo", "ascending"), ("number", "ascending")]), stats

    return asyncio.run(run())


def _searched_q(box: Any) -> list[str]:
    """The ``q`` of each search sent (its first page)."""
    return [e["query"]["q"] for e in box.github.log.snapshot()
            if e["path"] == "/search/issues" and e["query"].get("page", "1") == "1"]


def test_labels_and_author_lists_search_for_the_listings_rows(sandbox: Any) -> None:
    a, b = _authors(sandbox, 2)
    cases = [((Predicate("labels", "CONTAINS", ("bug",)),), ['label:"bug"']),
             ((Predicate("labels", "CONTAINS", ("bug",)), Predicate("labels", "CONTAINS", ("ux",)),
               Predicate("status", "=", ("merged",))), ['label:"bug" label:"ux" is:merged']),
             ((Predicate("author", "IN", (a, b)), Predicate("labels", "CONTAINS", ("security",))),
              [f'author:{a} label:"security"', f'author:{b} label:"security"'])]
    for predicates, qualifiers in cases:
        sandbox.github.log.clear()
        searched, s1 = _scan(sandbox, predicates)
        sent = _searched_q(sandbox)
        listed, s2 = _scan(sandbox, predicates, window=SearchWindow(per_minute=0))
        assert sent == [f"is:pr org:acme-corp {q}" for q in qualifiers], sent
        assert s1.access == "GET /search/issues " + " | ".join(f"q={q}" for q in sent)
        assert searched.equals(listed) and searched.num_rows > 0, predicates
        assert s1.api_calls < s2.api_calls


def test_hostile_labels_never_change_the_query(sandbox: Any) -> None:
    who = _authors(sandbox, 1)[0]
    for value in QUOTED + REFUSED:
        request = ScanRequest("pull_requests", COLUMNS, (Predicate("author", "=", (who,)),
                                                         Predicate("labels", "CONTAINS", (value,))))
        queries = search_queries("acme-corp", request)
        label = [f'label:"{value}"'] if value in QUOTED else []
        assert queries == (" ".join(["is:pr", "org:acme-corp", f"author:{who}", *label]),), value
        alone = ScanRequest("pull_requests", COLUMNS, (Predicate("labels", "CONTAINS", (value,)),))
        assert (search_queries("acme-corp", alone) is None) == (value in REFUSED)  # nothing left to narrow by
    for value in ("in progress", 'bug" author:x', "bug OR feature"):  # the stand-in agrees: same rows as listing
        predicates = (Predicate("author", "=", (who,)), Predicate("labels", "CONTAINS", (value,)))
        searched, stats = _scan(sandbox, predicates)
        listed, _ = _scan(sandbox, predicates, window=SearchWindow(per_minute=0))
        assert stats.access.startswith("GET /search/issues") and searched.equals(listed) and not searched.num_rows


def test_author_lists_fan_out_only_so_far() -> None:
    six = tuple(f"user{i}" for i in range(6))
    assert search_queries("acme-corp", ScanRequest("pull_requests", COLUMNS, (Predicate("author", "IN", six),))) \
        is None  # six searches cost more than they save: the scan lists
    both = (Predicate("author", "IN", ("ana", "bo", "cy")), Predicate("author", "=", ("bo",)))
    assert search_queries("acme-corp", ScanRequest("pull_requests", COLUMNS, both)) == (
        "is:pr org:acme-corp author:bo",)
    hostile = (Predicate("author", "IN", ("ana", "bo repo:x/y")), Predicate("labels", "CONTAINS", ("bug",)))
    assert search_queries("acme-corp", ScanRequest("pull_requests", COLUMNS, hostile)) == (
        'is:pr org:acme-corp label:"bug"',)  # a value that cannot be a login: the author is not sent at all
    spelled = (Predicate("author", "IN", ("ana", "ANA", "bo", "Ana")),)  # logins are case-insensitive
    assert search_queries("acme-corp", ScanRequest("pull_requests", COLUMNS, spelled)) == (
        "is:pr org:acme-corp author:ana", "is:pr org:acme-corp author:bo")  # ana's rows once, not three times


@pytest.mark.parametrize("mode", ["drop_links", "incomplete"])
def test_a_search_that_cannot_give_every_result_lists(sandbox: Any, mode: str) -> None:
    predicates = (Predicate("merged_at", ">=", (datetime(2000, 1, 1, tzinfo=UTC),)),)
    table, stats = _scan(sandbox, predicates, transport=_Tamper(mode))
    listed, _ = _scan(sandbox, predicates, window=SearchWindow(per_minute=0))
    assert 100 < table.num_rows <= 1000 and table.equals(listed)
    why = "gave 100 of the" if mode == "drop_links" else "said its results are incomplete"
    assert stats.access.startswith("listing (") and why in stats.access, stats.access


def test_the_estimate_prices_the_path_taken() -> None:
    from planner.catalog import Catalog
    from planner.duck import Duck
    from planner.estimates import Estimator
    from planner.planner import Planner
    from planner.predicates import to_predicate

    estimator = Estimator()

    def calls(where: str, columns: str = "number, title") -> int:
        planner = Planner(Catalog([PULL_REQUESTS, USERS]), Duck(), estimator=estimator)
        return planner.plan(f"SELECT {columns} FROM github.pull_requests WHERE {where}").steps[0].est_calls

    listing = calls("title = 'x'")  # the org listing plus one per repository
    assert listing >= 5
    assert calls("author = 'ana'") == 1  # one page of one search
    assert calls("author IN ('ana', 'bo', 'cy')") == 3  # one search per login
    assert calls("author IN ('a', 'b', 'c', 'd', 'e', 'f')") == listing  # past the fan-out: the listing
    assert calls("list_contains(labels, 'bug')") == 1
    assert calls("author = 'ana'", "number, branch") == listing  # search items have no branch
    since = "merged_at >= TIMESTAMP '2000-01-01'"
    assert calls(since) == 2  # 400 rows x 0.3 in pages of 100
    pushed = to_predicate(parse_one(since, dialect="duckdb"), PULL_REQUESTS)
    assert pushed is not None
    estimator.statistics.record(PULL_REQUESTS, [pushed], 5000)  # a search found 5,000 last time: over the cap
    assert calls(since) == 1 + 1 + 50  # its wasted first page, the org listing, 50 pages


@pytest.fixture(scope="module")
def conn(sandbox: Any) -> Iterator[Any]:
    import adbc_driver_flightsql.dbapi as flightsql

    from demo.tenant import UNTHROTTLED, demo_config, demo_tokens
    from flight_server.app import start_service

    service = start_service(dataclasses.replace(demo_config(sandbox.info(), "127.0.0.1", 0, UNTHROTTLED)))
    try:
        with flightsql.connect(service.uri, db_kwargs={
                "adbc.flight.sql.authorization_header": f"Bearer {demo_tokens()['token_admin']}"}) as connection:
            yield connection
    finally:
        service.stop()


def test_through_adbc_like_the_oracle(sandbox: Any, conn: Any) -> None:
    a, b = _authors(sandbox, 2)
    oracle = connect_oracle()
    select = "SELECT number, repo, author, labels, status FROM github.pull_requests WHERE "
    for where in ("list_contains(labels, 'perf') AND status = 'merged'", f"author IN ('{a}', '{b}')",
                  f"author = '{a.upper()}'", "list_contains(labels, 'bug\" author:x') OR number < 0",
                  "list_contains(labels, 'x'' OR label:bug')"):
        assert_same_answer(adbc_answer(conn, select + where), oracle_answer(oracle, select + where), False, where)


def test_explain_shows_the_search_and_its_estimate(sandbox: Any, conn: Any) -> None:
    who = _authors(sandbox, 1)[0]
    sql = f"SELECT number, title FROM github.pull_requests WHERE author = '{who}' AND list_contains(labels, 'ux')"
    planned = adbc_answer(conn, f"EXPLAIN {sql}").to_pylist()[0]
    ran = adbc_answer(conn, f"EXPLAIN ANALYZE {sql}").to_pylist()[0]
    q = f'q=is:pr org:acme-corp author:{who} label:"ux"'
    assert planned["upstream"].startswith(f"GET /search/issues {q} (lists"), planned["upstream"]
    assert planned["pushed_inexact"] == f"author = '{who}'; list_contains(labels, 'ux')"
    assert ran["upstream"] == f"GET /search/issues {q}"
    assert planned["est_api_calls"] == ran["api_calls"] == 1


def test_a_bind_join_on_author_searches(sandbox: Any, conn: Any) -> None:
    """Logins from github.users bind pull_requests.author: two searches instead of listing every repository (the
    bound scan keeps no delta key, which search could not return)."""
    a, b = _authors(sandbox, 2)
    sql = ("SELECT gh.number, gh.repo, u.login FROM github.users u JOIN github.pull_requests gh ON gh.author = u.login "
           f"WHERE u.login IN ('{a}', '{b}')")
    plan = {r["alias"]: r for r in adbc_answer(conn, f"EXPLAIN ANALYZE {sql}").to_pylist()}
    assert plan["gh"]["strategy"] == "bind join" and plan["gh"]["binding"].startswith("author IN (keys of [0] u.login)")
    assert plan["gh"]["upstream"] == f"GET /search/issues q=is:pr org:acme-corp author:{a} | q=is:pr org:acme-corp " \
                                     f"author:{b}"
    assert plan["gh"]["est_api_calls"] == 2 <= plan["gh"]["api_calls"] <= 4
    assert_same_answer(adbc_answer(conn, sql), oracle_answer(connect_oracle(), sql), False, sql)
