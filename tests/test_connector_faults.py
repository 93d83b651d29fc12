"""The shared HTTP machinery under faults, through ADBC, for GitHub, Jira and Linear (Salesforce has its own in
test_salesforce.py): a 429 with ``Retry-After`` is waited out, 5xx answers are retried, a slow answer is a
SOURCE_TIMEOUT naming the app; Linear's OAuth session is refreshed after a 401; hostile values stay one JQL string.
One service of this module's own, every connector with a 1.5 s response timeout."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from typing import Any

import pytest

from connectors.http import HttpLimits
from connectors.registry import ConnectorConfig
from tests.answers import adbc_answer, assert_same_answer
from tests.conftest import own_demo
from tests.oracle import connect_oracle, oracle_answer

TIMEOUT_S = 1.5
QUERIES = {"github": ("SELECT count(*) FROM github.pull_requests WHERE repo = 'infra-tools'", 275),
           "jira": ("SELECT count(*) FROM jira.issues WHERE project = 'WEB'", 333),
           "linear": ("SELECT count(*) FROM linear.issues WHERE team_key = 'MOB'", None)}
NAMES = {"github": "GitHub", "jira": "Jira", "linear": "linear"}
HOSTILE = ["it's", 'say "hi"', "back\\slash", 'Done" OR status = "To Do', "x\ny\tz", "a AND b", "(EMPTY)",
           "'; DROP TABLE x; --", "ÄÖ ☃ 日本", "project = WEB", "\\\"", "\u2028"]


@pytest.fixture(scope="module")
def world() -> Iterator[tuple[Any, Any]]:
    with own_demo(_every_connector_timing_out, apps=None) as pair:
        yield pair


def _every_connector_timing_out(config: Any, info: dict[str, Any]) -> Any:
    """GitHub, Jira and Linear (OAuth refresh-token flow), each with a ``TIMEOUT_S`` response timeout."""
    from connectors.declarative.factory import parse
    from connectors.settings import Settings

    limits = HttpLimits(response_timeout_s=TIMEOUT_S)
    linear = info["linear"]
    oauth = parse(Settings("connectors.linear", {
        "manifest": "linear", "base_url": linear["base_url"], "client_id_env": "C", "client_secret_env": "S",
        "refresh_token_env": "R"}, {"C": linear["client_id"], "S": linear["client_secret"],
                                    "R": linear["refresh_token"]}))
    assert config.github is not None and config.jira is not None
    return dataclasses.replace(
        config, github=dataclasses.replace(config.github, limits=limits, etag_cache_bytes=0),
        jira=dataclasses.replace(config.jira, limits=limits),
        connectors=(ConnectorConfig("linear", "manifest", dataclasses.replace(oauth, limits=limits)),))


def _standin(sandbox: Any, app: str) -> Any:
    return getattr(sandbox, app)


def _statuses(sandbox: Any, app: str) -> list[int]:
    return [e["status"] for e in _standin(sandbox, app).log.snapshot() if not e["path"].startswith("/_sandbox")]


def _run(sandbox: Any, conn: Any, app: str, **faults: Any) -> Any:
    """The app's query with ``faults`` set for it (cleared after), from a clean request log."""
    _standin(sandbox, app).log.clear()
    sandbox.set_faults({app: faults})
    try:
        return adbc_answer(conn, QUERIES[app][0]).column(0)[0].as_py()
    finally:
        sandbox.set_faults({app: {"fail_next": 0, "latency_s": 0.0, "retry_after": None}})


def _expected(sandbox: Any, conn: Any, app: str) -> int:
    value = QUERIES[app][1]
    return int(value) if value is not None else _run(sandbox, conn, app)


@pytest.mark.parametrize("app", sorted(QUERIES))
def test_429_with_retry_after_is_waited_out(world: tuple[Any, Any], app: str) -> None:
    sandbox, conn = world
    expected = _expected(sandbox, conn, app)
    started = time.monotonic()
    assert _run(sandbox, conn, app, fail_next=1, fail_status=429, retry_after="1") == expected
    assert time.monotonic() - started >= 0.9
    statuses = _statuses(sandbox, app)
    assert statuses.count(429) == 1 and statuses[statuses.index(429) + 1] == 200, statuses


@pytest.mark.parametrize("app", sorted(QUERIES))
def test_5xx_is_retried(world: tuple[Any, Any], app: str) -> None:
    sandbox, conn = world
    expected = _expected(sandbox, conn, app)
    assert _run(sandbox, conn, app, fail_next=2, fail_status=503) == expected
    statuses = _statuses(sandbox, app)
    first = statuses.index(503)
    assert statuses[first:first + 3] == [503, 503, 200], statuses


@pytest.mark.parametrize("app", sorted(QUERIES))
def test_a_slow_answer_is_a_source_timeout(world: tuple[Any, Any], app: str) -> None:
    sandbox, conn = world
    started = time.monotonic()
    with pytest.raises(Exception, match="SOURCE_TIMEOUT") as caught:
        _run(sandbox, conn, app, latency_s=TIMEOUT_S * 2)
    assert NAMES[app] in str(caught.value) and time.monotonic() - started < 30
    time.sleep(TIMEOUT_S * 2)  # the stand-in finishes the slow requests before the next test reads its log


def test_linear_refreshes_its_oauth_session(world: tuple[Any, Any]) -> None:
    import httpx

    sandbox, conn = world
    expected = _expected(sandbox, conn, "linear")
    sandbox.linear.log.clear()
    httpx.post(f"{sandbox.info()['linear']['base_url']}/_sandbox/revoke_tokens").raise_for_status()
    assert adbc_answer(conn, QUERIES["linear"][0]).column(0)[0].as_py() == expected
    seen = [(e["path"], e["status"]) for e in sandbox.linear.log.snapshot() if not e["path"].startswith("/_sandbox")]
    assert seen[:3] == [("/graphql", 401), ("/oauth/token", 200), ("/graphql", 200)], seen


def _jql_shape(sandbox: Any) -> list[tuple[str, ...]]:
    """The JQL sent since the log was cleared, as token kinds with the non-string tokens' text: a value that
    changed the query's structure changes this; the strings' contents are the values."""
    from sandbox.jql import tokenize

    return [tuple(t.kind if t.kind == "string" else f"{t.kind}:{t.text}" for t in tokenize(jql))
            for jql in _sent_jql(sandbox)]


def _sent_jql(sandbox: Any) -> list[str]:
    sent = [e["query"].get("jql") or (e["body"] or {}).get("jql") for e in sandbox.jira.log.snapshot()
            if e["path"].endswith("/search/jql")]
    assert sent and all(isinstance(jql, str) for jql in sent)
    return [str(jql) for jql in sent]


def _strings(sandbox: Any) -> list[str]:
    """The JQL string literals sent, as written and as a ``~`` text reads them (Lucene escapes undone)."""
    from sandbox.jql import lucene_text, tokenize

    strings = [t.text for jql in _sent_jql(sandbox) for t in tokenize(jql) if t.kind == "string"]
    return strings + [lucene_text(s) for s in strings]


@pytest.mark.parametrize("template", [
    "SELECT issue_key FROM jira.issues WHERE project = 'WEB' AND status IN ({v}, 'Done') AND status <> {v}",
    "SELECT issue_key, branch_name FROM jira.issues WHERE branch_name IN ({v}, 'feature/x') AND customer = {v}"])
def test_hostile_values_stay_one_jql_string(world: tuple[Any, Any], template: str) -> None:
    sandbox, conn = world
    oracle = connect_oracle()

    def run(value: str) -> list[tuple[str, ...]]:
        sql = template.format(v="'" + value.replace("'", "''") + "'")
        sandbox.jira.log.clear()
        assert_same_answer(adbc_answer(conn, sql), oracle_answer(oracle, sql), False, value)
        return _jql_shape(sandbox)

    benign = run("benign")
    for value in HOSTILE:
        assert run(value) == benign, value  # the same clauses, operators and punctuation: only strings differ
        assert value in _strings(sandbox), value
