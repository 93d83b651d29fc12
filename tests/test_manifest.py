"""The manifest engine on its own: problems named with their lines, predicates → request options, and the Linear
manifest against an in-process Linear stand-in (real HTTP): OAuth refresh on 401, rate limits in Linear's body and
headers, the complexity limit, the contract's schema, and ``omnisql connector check``."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from connectors.declarative import ManifestError, load_manifest
from connectors.declarative.connector import ManifestConnector
from connectors.declarative.factory import BUILTIN_DIR, parse
from connectors.declarative.options import build_options
from connectors.settings import Settings
from core.errors import RateLimitExhausted, UpstreamError
from core.types import Predicate, ScanRequest, ScanStats
from sandbox.linear_api import LinearStandIn
from sandbox.linear_seed import build_linear_seed
from tests.conftest import SHARED

LINEAR = BUILTIN_DIR / "linear.yaml"
KEY, CLIENT, SECRET, REFRESH = "lin_api_test_key_0001", "client-1", "secret-1", "refresh-1"


# -- problems with their lines -------------------------------------------------------------------------------------
def _problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "m.yaml"
    path.write_text(text)
    with pytest.raises(ManifestError) as raised:
        load_manifest(path)
    return [p.replace(str(path), "m.yaml") for p in raised.value.problems]


HEAD = "version: 1\nname: demo\nbase_url: https://api.example.com\ntables:\n  - name: things\n"


@pytest.mark.parametrize(("text", "expected"), [
    (HEAD + "    request: {path: /t}\n    colums: []\n",
     ["m.yaml:5:5: tables[0].columns is required", "m.yaml:7:5: tables[0].colums: unknown key; did you mean "
                                                   "'columns'?"]),
    (HEAD + "    request: {path: /t}\n    columns: [{name: id, type: strng}]\n",
     ["m.yaml:7:26: tables[0].columns[0].type must be one of string, integer, number, boolean, timestamp, date, "
      "list<string>, list<integer>, list<number>, json, not 'strng'; did you mean 'string'?"]),
    (HEAD + "    request: {path: /t}\n    columns: [{name: id, type: string}]\n"
            "    filters:\n      - {column: idd, ops: ['='], query_param: id}\n",
     ["m.yaml:9:10: tables[0].filters[0].column: names unknown column 'idd'"]),
    (HEAD + "    request:\n      path: /graphql\n      graphql:\n        document: 'query Q($first: Int) { x(first: "
            "$first) { id }'\n        filter_variable: filter\n    paginator: {type: cursor, "
            "page_info: data.x.pageInfo, page_size_variable: first}\n    columns: [{name: id, type: string}]\n",
     ["m.yaml:9:9: tables[0].request.graphql.document: not valid GraphQL: Expected Name, found <EOF>."]),
    (HEAD + "    request:\n      path: /graphql\n      graphql:\n        document: 'query Q($first: Int) { x(first: "
            "$first) { id } }'\n        filter_variable: filter\n    columns: [{name: id, type: string}]\n"
            "    filters:\n      - {column: id, ops: ['='], match: '(', each: {id: '{x}'}}\n",
     ["m.yaml:9:9: tables[0].request.graphql.document: does not declare $filter, which the manifest fills",
      "m.yaml:13:34: tables[0].filters[0].match: not a valid regular expression: missing ), unterminated subpattern "
      "at position 0"]),
])
def test_every_problem_names_its_line(tmp_path: Path, text: str, expected: list[str]) -> None:
    assert _problems(tmp_path, text) == expected


def test_the_shipped_manifests_are_valid() -> None:
    for path in sorted(BUILTIN_DIR.glob("*.yaml")):
        assert load_manifest(path).tables


# -- predicates → request options ----------------------------------------------------------------------------------
def test_graphql_clauses_merge_and_fall_back_to_and() -> None:
    issues = load_manifest(LINEAR).table("issues")
    merged = build_options(issues, [Predicate("state", "IN", ("Todo", "Done")), Predicate("team_key", "=", ("MOB",)),
                                    Predicate("state", "=", ("Todo",))], {})
    assert merged.graphql_filter() == {"state": {"name": {"in": ["Todo", "Done"], "eq": "Todo"}},
                                       "team": {"key": {"eq": "MOB"}}}  # a comparator's fields are ANDed
    clash = build_options(issues, [Predicate("state", "=", ("Todo",)), Predicate("state", "=", ("Done",))], {})
    assert clash.graphql_filter() == {"and": [{"state": {"name": {"eq": "Todo"}}}, {"state": {"name": {"eq": "Done"}}}]}


def test_patterns_narrow_only_what_they_can() -> None:
    issues = load_manifest(LINEAR).table("issues")
    branch = build_options(issues, [Predicate("branch_name", "IN", ("bob-2/eng-12-fix", "feature/web-3"))], {})
    assert branch.graphql_filter() == {"or": [
        {"team": {"key": {"eq": "BOB"}}, "number": {"eq": 2}}, {"team": {"key": {"eq": "ENG"}}, "number": {"eq": 12}},
        {"team": {"key": {"eq": "WEB"}}, "number": {"eq": 3}}]}
    unmatched = build_options(issues, [Predicate("branch_name", "IN", ("feature/web-3", "main"))], {})
    assert unmatched.graphql_filter() is None and unmatched.sent == []  # "main" could be any issue's: send nothing


def test_a_scan_describes_what_it_sends() -> None:
    config = parse(Settings("connectors.linear", {"manifest": "linear", "api_key_env": "K"}, {"K": "k"}))
    connector = ManifestConnector(config, httpx.AsyncClient(), "linear")
    request = ScanRequest("issues", ("id",), (Predicate("state", "=", ("Done",)),
                                              Predicate("description", "=", ("x",))))  # not filterable: not sent
    assert connector.describe_request(request) == 'POST /graphql filter={"state": {"name": {"eq": "Done"}}}'


def test_query_language_fragments_quote_values() -> None:
    from connectors.declarative.manifest import FilterDef, RequestDef, TableDef

    table = TableDef("t", RequestDef("/s"), (), filters=(FilterDef("title", frozenset({"=", "IN"}), "fragment",
                                                                   "title {op} {value}"),))
    options = build_options(table, [Predicate("title", "=", ('a "b" \\ c',))], {"quote": '"', "escape": "\\"})
    assert options.fragments == ['title = "a \\"b\\" \\\\ c"']


# -- against the stand-in --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def stand_in() -> Iterator[tuple[LinearStandIn, str]]:
    app = LinearStandIn(build_linear_seed(), KEY, CLIENT, SECRET, REFRESH, rate_limit=1000)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    server = uvicorn.Server(uvicorn.Config(app.app, log_level="warning", access_log=False, lifespan="off"))
    server.install_signal_handlers = lambda: None  # type: ignore[attr-defined,method-assign]
    thread = threading.Thread(target=asyncio.run, args=(server.serve(sockets=[sock]),), daemon=True)
    thread.start()
    while not server.started:
        threading.Event().wait(0.02)
    yield app, f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(timeout=5)


def _scan(url: str, section: dict[str, Any], env: dict[str, str], request: ScanRequest, stats: ScanStats
          ) -> int:
    config = parse(Settings("connectors.linear", {"manifest": "linear", "base_url": url, **section}, env))

    async def run() -> int:
        async with httpx.AsyncClient() as http:
            connector = ManifestConnector(config, http, "linear")
            return sum([b.num_rows async for b in connector.scan(request, stats)])

    return asyncio.run(run())


OAUTH = ({"client_id_env": "C", "client_secret_env": "S", "refresh_token_env": "R"},
         {"C": CLIENT, "S": SECRET, "R": REFRESH})


def test_an_oauth_token_is_fetched_and_refreshed_after_a_401(stand_in: tuple[LinearStandIn, str]) -> None:
    app, url = stand_in
    config = parse(Settings("connectors.linear", {"manifest": "linear", "base_url": url, **OAUTH[0]}, OAUTH[1]))
    assert config.auth is not None and config.auth.type == "oauth2"
    teams = ScanRequest("teams", ("key",))

    async def run() -> list[int]:
        async with httpx.AsyncClient() as http:
            connector = ManifestConnector(config, http, "linear")
            first = sum([b.num_rows async for b in connector.scan(teams, ScanStats())])
            httpx.post(f"{url}/_sandbox/revoke_tokens").raise_for_status()  # the access token dies early
            second = sum([b.num_rows async for b in connector.scan(teams, ScanStats())])
            return [first, second]

    app.log.clear()
    assert asyncio.run(run()) == [3, 3]
    assert [(e["path"], e["status"]) for e in app.log.snapshot()] == [
        ("/oauth/token", 200), ("/graphql", 200), ("/graphql", 401), ("/oauth/token", 200), ("/graphql", 200)]


def test_linears_rate_limit_answer_is_rate_limit_exhausted(stand_in: tuple[LinearStandIn, str]) -> None:
    app, url = stand_in
    stats = ScanStats()
    assert _scan(url, {"api_key_env": "K"}, {"K": KEY}, ScanRequest("teams", ("key",)), stats) == 3
    assert stats.rate_limit_remaining is not None and stats.rate_limit_limit == 1000  # min of the two budgets
    used = app.budget.used["key"]
    app.budget.used["key"] = (used[0], 10_000, used[2])  # the hour's requests are spent: HTTP 400 + RATELIMITED
    try:
        with pytest.raises(RateLimitExhausted) as raised:
            _scan(url, {"api_key_env": "K"}, {"K": KEY}, ScanRequest("teams", ("key",)), ScanStats())
        assert raised.value.retry_after_s is not None and raised.value.retry_after_s > 60
    finally:
        app.budget.used.clear()


def test_graphql_errors_read_as_linears_messages(stand_in: tuple[LinearStandIn, str], tmp_path: Path) -> None:
    _, url = stand_in
    with pytest.raises(UpstreamError, match="authentication error: Authentication required, not authenticated; "
                                            "check the connector credentials"):
        _scan(url, {"api_key_env": "K"}, {"K": "lin_api_wrong"}, ScanRequest("teams", ("key",)), ScanStats())
    greedy = tmp_path / "greedy.yaml"
    greedy.write_text(LINEAR.read_text().replace("page_size: 100,\n                page_size_variable: first",
                                                 "page_size: 250,\n                page_size_variable: first"))
    with pytest.raises(UpstreamError, match="invalid input: Query too complex"):
        _scan(url, {"manifest": str(greedy), "api_key_env": "K"}, {"K": KEY}, ScanRequest("issues", ("id",)),
              ScanStats())


# -- the contract ------------------------------------------------------------------------------------------------------
CONTRACT = SHARED / "api-contracts" / "linear" / "schema-slice.pruned.graphql"
# Issue.project and Issue.cycle are in Linear's SDL (the contract lists them) but their types are not in the slice.
MISSING_FROM_SLICE = "type Project { id: ID! name: String! }\ntype Cycle { id: ID! number: Float! }\n" \
                     "extend type Issue { project: Project cycle: Cycle }\n"


@pytest.mark.skipif(not CONTRACT.exists(), reason="../shared/api-contracts is not beside this checkout")
def test_the_manifests_documents_validate_against_linears_schema() -> None:
    from graphql import build_schema, parse, validate

    from sandbox.linear_schema import SDL

    schema = build_schema(CONTRACT.read_text() + MISSING_FROM_SLICE)
    ours = build_schema(SDL)
    for table in load_manifest(LINEAR).tables:
        assert table.request.document is not None
        assert validate(schema, parse(table.request.document)) == [], table.name
        assert validate(ours, parse(table.request.document)) == [], table.name
    example = (SHARED / "api-contracts" / "linear" / "issues-query.example.graphql").read_text()
    assert validate(ours, parse(example)) == []


# -- omnisql connector check -------------------------------------------------------------------------------------------
def test_connector_check(stand_in: tuple[LinearStandIn, str], tmp_path: Path, capsys: pytest.CaptureFixture[str],
                         monkeypatch: pytest.MonkeyPatch) -> None:
    from clients.cli import main

    _, url = stand_in
    monkeypatch.setenv("LINEAR_API_KEY", KEY)
    assert main(["connector", "check", str(LINEAR), "--base-url", url, "--table", "teams", "--rows", "2"]) == 0
    out = capsys.readouterr().out
    assert "valid manifest 'linear' (3 tables" in out
    assert "  state_type      string NOT NULL                 = <> IN (exact, IN up to 10 a request)" in out
    assert "linear.teams -> " not in out and "teams -> 2 rows from 1 request(s)" in out
    monkeypatch.setenv("LINEAR_API_KEY", "wrong")
    assert main(["connector", "check", str(LINEAR), "--base-url", url]) == 1
    assert "HTTP 401" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text(HEAD + "    reqest: {path: /t}\n    columns: [{name: id, type: string}]\n")
    assert main(["connector", "check", str(bad), "--no-probe"]) == 2
    assert f"{bad}:6:5: tables[0].reqest: unknown key; did you mean 'request'?" in capsys.readouterr().err


def test_the_readmes_manifest_is_the_one_the_tests_run() -> None:
    import re

    from tests.conftest import ROOT

    section = (ROOT / "README.md").read_text().split("\n### Writing a manifest\n", 1)[1].split("\n### ", 1)[0]
    (example,) = [code for code in re.findall(r"```yaml\n(.*?)```", section, re.DOTALL)
                  if code.startswith("version: 1")]
    shipped = (ROOT / "tests" / "manifests" / "statuspage.yaml").read_text()
    assert shipped.endswith(example)  # the file adds only its leading comments


# -- delta refresh ----------------------------------------------------------------------------------------------------
def test_a_cached_linear_scan_is_refreshed_with_only_the_changes(stand_in: tuple[LinearStandIn, str]) -> None:
    import dataclasses

    import adbc_driver_flightsql.dbapi as flightsql

    from demo.tenant import UNTHROTTLED
    from flight_server.app import start_service
    from flight_server.config import TenantConfig
    from flight_server.governance import CacheSettings
    from security.principals import Principal

    app, url = stand_in
    config = parse(Settings("connectors.linear", {"manifest": "linear", "base_url": url, "api_key_env": "K"},
                            {"K": KEY}))
    from connectors.registry import ConnectorConfig

    tenant = TenantConfig(github=None, jira=None, principals=(("tok", Principal(user="ana", tenant="t")),), port=0,
                          connectors=(ConnectorConfig("linear", "manifest", config),), rate_limits=UNTHROTTLED)
    services = {name: start_service(dataclasses.replace(tenant, cache=CacheSettings(full_refresh_s=refresh)))
                for name, refresh in (("delta", 300.0), ("truth", 0.0))}
    sql = "SELECT identifier, state, title FROM linear.issues WHERE state IN ('In Review', 'In Progress')"

    def rows(name: str) -> list[tuple[Any, ...]]:
        with flightsql.connect(services[name].uri, db_kwargs={
                "adbc.flight.sql.authorization_header": "Bearer tok"}) as conn:
            cursor = conn.cursor()
            cursor.execute(sql)
            return sorted(tuple(r.values()) for r in cursor.fetch_arrow_table().to_pylist())

    try:
        before = rows("delta")
        (leaving, _, _), (renamed, renamed_state, _) = before[0], before[1]
        entering = next(i["identifier"] for i in app.issues if i["state"]["name"] == "Todo")  # > a page: delta
        httpx.post(f"{url}/_sandbox/mutate", json={"update": [
            {"identifier": leaving, "state": "Done"}, {"identifier": renamed, "title": "Renamed while cached"},
            {"identifier": entering, "state": "In Review"}]}).raise_for_status()
        app.log.clear()
        got = rows("delta")
        (sent,) = [e for e in app.log.snapshot() if e["path"] == "/graphql"]
        assert set(sent["body"]["variables"]["filter"]) == {"updatedAt"}, "only what changed, whatever its state"
        assert got == rows("truth") != before
        keys = {k for k, _, _ in got}
        assert leaving not in keys and entering in keys and (renamed, renamed_state, "Renamed while cached") in got
    finally:
        for service in services.values():
            service.stop()
