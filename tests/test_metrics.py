"""``GET /metrics`` against the demo: the seed's metric names are there, their values move with the queries that
ran (HTTP and Flight alike, a query counted once however many RPCs it took), and no label ever carries user input
(SQL, values, user names): every label value is from a closed set."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from core import errors
from tests.test_http_api import ADMIN

NAMES = {"omnisql_queries", "omnisql_query_latency_seconds", "omnisql_upstream_requests",
         "omnisql_upstream_latency_seconds", "omnisql_rate_limit_remaining", "omnisql_cache_hits",
         "omnisql_cache_misses", "omnisql_cache_bytes", "omnisql_inflight_queries"}


def scrape(demo: dict[str, Any]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = httpx.get(f"{demo['http_url']}/metrics", timeout=30)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return samples_of(response.text)


def samples_of(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def post(demo: dict[str, Any], sql: str, **metadata: Any) -> dict[str, Any]:
    response = httpx.post(f"{demo['http_url']}/v1/query", json={"sql": sql, "metadata": metadata}, headers=ADMIN,
                          timeout=60)
    return dict(response.json())


def test_the_seed_metric_names_are_exposed(demo: dict[str, Any]) -> None:
    post(demo, "SELECT count(*) FROM jira.issues WHERE project = 'WEB'")
    families = {f.name for f in text_string_to_metric_families(httpx.get(f"{demo['http_url']}/metrics").text)}
    assert families >= NAMES, NAMES - families
    assert {"process_resident_memory_bytes", "process_cpu_seconds", "python_info"} <= families


def test_values_move_with_queries(demo: dict[str, Any], adbc_conn: Any) -> None:
    before = scrape(demo)
    answers = [post(demo, "SELECT issue_key FROM jira.issues WHERE project = 'MOB' AND status = 'Done'")
               for _ in range(3)]
    post(demo, "SELEC nothing")
    cursor = adbc_conn.cursor()
    cursor.execute("SELECT count(*) FROM jira.issues WHERE project = 'PLAT' AND status = 'Open'")
    cursor.fetch_arrow_table()  # CreatePreparedStatement + GetFlightInfo + DoGet: one query
    cached = [post(demo, "SELECT issue_key FROM jira.issues WHERE project = 'WEB' AND status = 'Done'",
                   max_staleness_ms=60_000) for _ in range(2)]
    after = scrape(demo)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("omnisql_queries_total", status="ok", transport="http") == 5
    assert delta("omnisql_queries_total", status="INVALID_QUERY", transport="http") == 1
    assert delta("omnisql_queries_total", status="ok", transport="flight") == 1
    assert delta("omnisql_query_latency_seconds_count", transport="http") == 6
    assert delta("omnisql_query_latency_seconds_sum", transport="http") > 0
    upstream = sum(a["api_calls"] for a in answers + cached)
    assert upstream > 0 and delta("omnisql_upstream_requests_total", connector="jira", status="200") >= upstream
    assert delta("omnisql_upstream_latency_seconds_count", connector="jira") >= upstream
    assert cached[1]["from_cache"] and delta("omnisql_cache_hits_total") >= 1
    assert delta("omnisql_cache_misses_total") >= 1 and value(after, "omnisql_cache_bytes") > 0
    assert value(after, "omnisql_inflight_queries") == 0
    assert value(after, "omnisql_rate_limit_remaining", connector="jira") > 0


def test_labels_never_carry_user_input(demo: dict[str, Any]) -> None:
    marker = "zq_marker_7731"
    post(demo, f"SELECT '{marker}' AS {marker} FROM jira.issues WHERE summary = '{marker}' LIMIT 1")
    post(demo, f"SELEC '{marker}'")
    httpx.get(f"{demo['http_url']}/{marker}")
    text = httpx.get(f"{demo['http_url']}/metrics").text
    assert marker not in text and "admin" not in text
    codes = {"ok", "other", "INTERNAL", "SESSION_NOT_FOUND"} | {getattr(errors, n).code for n in errors.__all__
                                                                if hasattr(getattr(errors, n), "code")}
    connectors = {"github", "jira", "salesforce", "linear", "statuspage", "other"}
    closed: dict[str, Callable[[str], bool]] = {
        "status": lambda v: v in codes or re.fullmatch(r"[1-5]\d\d|error", v) is not None,
        "transport": lambda v: v in ("http", "flight", "other"), "connector": connectors.__contains__,
        "le": lambda v: re.fullmatch(r"[0-9.e+-]+|\+Inf", v) is not None}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            for name, label in sample.labels.items():
                assert re.fullmatch(r"[A-Za-z0-9_.+-]{0,40}", label), (sample.name, name, label)
                if sample.name.startswith("omnisql_"):  # each label from its own closed set
                    assert name in closed and closed[name](label), (sample.name, name, label)


def test_upstream_metrics_are_labelled_by_the_connectors_own_name(demo: dict[str, Any], tmp_path: Any,
                                                                    monkeypatch: Any) -> None:
    """Two connectors of one type (``github`` and ``gh_oss``) are told apart: the ``connector`` label is the name
    the tenant config gives, not the app's."""
    from prometheus_client import generate_latest

    from flight_server.app import start_service
    from flight_server.config import load_config
    from flight_server.metrics import PROCESS

    github = demo["sandbox"]["github"]
    monkeypatch.setenv("GH", github["token"])
    monkeypatch.setenv("T", "a-token-for-the-test")
    path = tmp_path / "tenant.yaml"
    path.write_text(f"connectors:\n  gh_oss: {{type: github, org: {github['org']}, token_env: GH, "
                    f"base_url: '{github['base_url']}'}}\nprincipals: [{{user: a, token_env: T}}]\n")
    service = start_service(load_config(path))
    try:
        before = samples_of(generate_latest(PROCESS).decode())
        service.engine.query("SELECT number FROM gh_oss.pull_requests WHERE repo = 'infra-tools'")
        after = samples_of(generate_latest(PROCESS).decode())
    finally:
        service.stop()
    key = ("omnisql_upstream_requests_total", (("connector", "gh_oss"), ("status", "200")))
    assert after.get(key, 0.0) - before.get(key, 0.0) >= 1
