"""``POST /v1/query`` over real HTTP against the demo (``omnisql serve --demo``, one process with Flight): the
README's curl example as written, JSON and Arrow IPC answers equal to Flight's, the metadata every answer carries,
the same principals and policy as Flight, and every refusal the gateway decides itself, with its HTTP code and
JSON body (never a traceback)."""

from __future__ import annotations

import json
import os
import re
import subprocess
from typing import Any

import httpx
import pyarrow as pa
import pytest

from tests.conftest import ROOT

ADMIN = {"X-User-Token": "omni-demo-admin-token"}
ARROW = "application/vnd.apache.arrow.stream"
README_HTTP = "http://127.0.0.1:8001"


def post(demo: dict[str, Any], body: Any, headers: dict[str, str] | None = None, **kwargs: Any) -> httpx.Response:
    return httpx.post(f"{demo['http_url']}/v1/query", json=body, headers=ADMIN if headers is None else headers,
                      timeout=60, **kwargs)


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == code and error["message"] and "Traceback" not in response.text
    assert re.fullmatch(r"[0-9a-f]{32}", error.get("trace_id", "")), error
    return dict(error)


def readme_http_blocks() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n### HTTP API\n", 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
    return re.findall(r"```sh\n(.*?)```", section, re.DOTALL)


def test_the_readme_curl_example_runs_as_written(demo: dict[str, Any]) -> None:
    blocks = readme_http_blocks()
    assert blocks and all(README_HTTP in block for block in blocks)
    for block in blocks:
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", block.replace(README_HTTP, demo["http_url"])],
                              cwd=ROOT, capture_output=True, text=True, timeout=120, env=dict(os.environ))
        assert done.returncode == 0, f"{block}\n--- stderr:\n{done.stderr}"
        answer = json.loads(done.stdout)
        assert answer["rows"] and answer["columns"] and re.fullmatch(r"[0-9a-f]{32}", answer["trace_id"])


def test_a_json_answer_has_rows_columns_and_metadata(demo: dict[str, Any], adbc_conn: Any) -> None:
    sql = "SELECT repo, count(*) AS n FROM github.pull_requests WHERE status = ? GROUP BY repo ORDER BY repo"
    response = post(demo, {"sql": sql, "params": ["merged"], "metadata": {"max_staleness_ms": 0}})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["columns"] == [{"name": "repo", "type": "VARCHAR"}, {"name": "n", "type": "BIGINT"}]
    cursor = adbc_conn.cursor()
    cursor.execute(sql, ("merged",))
    assert answer["rows"] == cursor.fetch_arrow_table().to_pylist()  # the same answer as Flight's
    assert answer["row_count"] == len(answer["rows"]) == 4
    assert answer["api_calls"] >= 1 and answer["from_cache"] is False and answer["freshness_ms"] >= 0
    assert set(answer["timing"]) == {"total_ms", "planning_ms", "fetch_ms", "security_ms", "duckdb_ms"}
    assert answer["timing"]["total_ms"] >= answer["timing"]["fetch_ms"] > 0
    assert answer["rate_limit_status"]["github"]["remaining"] is not None
    assert [s["table"] for s in answer["sources"]] == ["github.pull_requests"]
    assert [s["name"] for s in answer["steps"]] == ["plan", "fetch github.pull_requests AS pull_requests", "duckdb"]
    assert response.headers["x-omnisql-trace-id"] == answer["trace_id"]


def test_accepted_staleness_answers_from_the_cache(demo: dict[str, Any]) -> None:
    body = {"sql": "SELECT issue_key FROM jira.issues WHERE project = 'PLAT'", "metadata": {"max_staleness_ms": 60000}}
    first, second = post(demo, body).json(), post(demo, body).json()
    assert second["from_cache"] is True and second["api_calls"] == 0 and second["rows"] == first["rows"]
    assert second["sources"][0]["cache_hits"] == 1


def test_an_arrow_answer_is_an_ipc_stream_with_metadata_headers(demo: dict[str, Any], adbc_conn: Any) -> None:
    sql = "SELECT issue_key, story_points, created_at FROM jira.issues ORDER BY issue_key"
    response = post(demo, {"sql": sql}, headers={**ADMIN, "Accept": ARROW})
    assert response.status_code == 200 and response.headers["content-type"] == ARROW
    table = pa.ipc.open_stream(response.content).read_all()
    cursor = adbc_conn.cursor()
    cursor.execute(sql)
    expected = cursor.fetch_arrow_table()
    assert table.equals(expected.cast(table.schema)) and table.num_rows == 1000
    assert table.schema.field("created_at").type == pa.timestamp("us", tz="UTC")
    meta = json.loads(response.headers["x-omnisql-metadata"])
    assert meta["trace_id"] == response.headers["x-omnisql-trace-id"] and "timing" in meta


def test_json_values_are_plain_json(demo: dict[str, Any]) -> None:
    sql = ("SELECT TIMESTAMPTZ '2026-01-02 03:04:05+00' AS ts, DATE '2026-01-02' AS d, 1.5::DECIMAL(4,2) AS dec, "
           "'nan'::DOUBLE AS nan, [1, 2] AS list, 'x' AS a, 'y' AS a")
    row = post(demo, {"sql": sql}).json()["rows"][0]
    assert row == {"ts": "2026-01-02T03:04:05+00:00", "d": "2026-01-02", "dec": "1.50", "nan": None,
                   "list": [1, 2], "a": "x", "a_2": "y"}


def test_the_json_row_cap_points_at_arrow(demo: dict[str, Any]) -> None:
    sql = "SELECT a.issue_key FROM jira.issues a CROSS JOIN jira.issues b LIMIT 10001"
    error = assert_error(post(demo, {"sql": sql}), 413, "RESOURCE_EXHAUSTED")
    assert "10001 rows" in error["message"] and ARROW in error["message"] and "Flight" in error["message"]
    response = post(demo, {"sql": sql}, headers={**ADMIN, "Accept": ARROW})
    assert response.status_code == 200 and pa.ipc.open_stream(response.content).read_all().num_rows == 10001


def test_the_same_principals_and_policy_as_flight(demo: dict[str, Any]) -> None:
    sql = {"sql": "SELECT DISTINCT team_id, author FROM github.pull_requests ORDER BY ALL"}
    qa = post(demo, sql, headers={"Authorization": "Bearer omni-demo-qa-token"}).json()["rows"]
    assert {r["team_id"] for r in qa} == {"mobile"} and {r["author"] for r in qa} == {"[HIDDEN]"}
    web = post(demo, sql, headers={"X-User-Token": "omni-demo-web-dev-token"}).json()["rows"]
    assert {r["team_id"] for r in web} == {"web"}
    denied = post(demo, {"sql": "SELECT diff_link FROM github.pull_requests"},
                  headers={"X-User-Token": "omni-demo-qa-token"})
    assert "diff_link" in assert_error(denied, 403, "ENTITLEMENT_DENIED")["message"]


@pytest.mark.parametrize("headers", [{}, {"X-User-Token": "wrong"}, {"Authorization": "Bearer wrong"},
                                     {"Authorization": "Basic YWRtaW46eA=="}, {"X-User-Token": "caf\u00e9"}])
def test_missing_or_wrong_credentials_are_401(demo: dict[str, Any], headers: dict[str, str]) -> None:
    raw = [(k.encode(), v.encode()) for k, v in headers.items()]
    response = httpx.post(f"{demo['http_url']}/v1/query", json={"sql": "SELECT 1"}, headers=raw, timeout=30)
    assert_error(response, 401, "UNAUTHENTICATED")
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(("body", "fragment"), [
    (b"not json", "must be JSON"),
    (b"[1, 2]", "JSON object"),
    (b'{"query": "SELECT 1"}', "unknown key(s) in the request body: query"),
    (b'{"sql": ""}', '"sql" is required'),
    (b'{"sql": "SELECT 1", "params": "x"}', '"params" must be an array'),
    (b'{"sql": "SELECT ?", "params": [{"a": 1}]}', "parameter $1 must be a string, number, boolean or null"),
    (b'{"sql": "SELECT ?", "params": [99999999999999999999999]}', "out of range"),
    (b'{"sql": "SELECT 1", "metadata": {"max_staleness_ms": -1}}', "max_staleness_ms"),
    (b'{"sql": "SELECT 1", "metadata": {"allow_stale": "yes"}}', "allow_stale"),
    (b'{"sql": "SELECT 1", "metadata": {"default_schema": 3}}', "metadata.default_schema must be a string"),
    (b'{"sql": "SELECT 1", "metadata": {"default_schema": "jria"}}',
     "metadata.default_schema 'jria' is not a schema you may read; did you mean 'jira'?"),
    (b'{"sql": "SELECT 1", "metadata": {"schema": "jira"}}', "unknown key(s) in metadata: schema; expected "
                                                            "max_staleness_ms, allow_stale, default_schema"),
    (b'{"sql": "SELEC 1"}', "syntax"),
    (b'{"sql": "SELECT \'abc"}', "every quote and comment is closed"),
    (b'{"sql": "SELECT nope FROM jira.issues"}', "nope"),
    (b'{"sql": "DELETE FROM jira.issues"}', "read-only"),
])
def test_a_bad_request_is_400_saying_what_is_wrong(demo: dict[str, Any], body: bytes, fragment: str) -> None:
    response = httpx.post(f"{demo['http_url']}/v1/query", content=body, headers=ADMIN, timeout=30)
    assert fragment in assert_error(response, 400, "INVALID_QUERY")["message"]


def test_a_huge_body_is_refused_before_it_is_read(demo: dict[str, Any]) -> None:
    body = b'{"sql": "SELECT 1", "params": ["' + b"x" * (2 << 20) + b'"]}'
    response = httpx.post(f"{demo['http_url']}/v1/query", content=body, headers=ADMIN, timeout=30)
    assert "larger than 1048576 bytes" in assert_error(response, 413, "RESOURCE_EXHAUSTED")["message"]

    def chunks() -> Any:  # no content-length: counted while it streams
        yield b'{"sql": "SELECT 1", "params": ["'
        for _ in range(40):
            yield b"x" * 65536
        yield b'"]}'

    streamed = httpx.post(f"{demo['http_url']}/v1/query", content=chunks(), headers=ADMIN, timeout=30)
    assert_error(streamed, 413, "RESOURCE_EXHAUSTED")


def test_a_default_schema_resolves_unqualified_names_like_the_session_option(demo: dict[str, Any]) -> None:
    """Flight clients set the session option ``schema``; an HTTP caller says ``metadata.default_schema``."""
    for schema in ("jira", "github"):  # both have a table named issues
        qualified = post(demo, {"sql": f"SELECT count(*) AS n FROM {schema}.issues"}).json()["rows"]
        for spelled in (schema, schema.upper()):
            answer = post(demo, {"sql": "SELECT count(*) AS n FROM issues", "metadata": {"default_schema": spelled}})
            assert answer.json()["rows"] == qualified, answer.text
    unset = post(demo, {"sql": "SELECT count(*) AS n FROM pull_requests", "metadata": {"default_schema": None}})
    assert unset.status_code == 200, unset.text  # unique names need no schema; null (or "") sets none


def test_parameters_bind_like_flight(demo: dict[str, Any]) -> None:
    sql = "SELECT count(*) AS n FROM jira.issues WHERE project = $1 AND story_points >= $2 LIMIT $3"
    answer = post(demo, {"sql": sql, "params": ["MOB", 3, 1]}).json()
    assert answer["rows"][0]["n"] > 0


def test_unknown_paths_and_methods_answer_json(demo: dict[str, Any]) -> None:
    assert "/nope" in assert_error(httpx.get(f"{demo['http_url']}/nope"), 404, "NOT_FOUND")["message"]
    assert_error(httpx.get(f"{demo['http_url']}/v1/query"), 405, "METHOD_NOT_ALLOWED")


def test_explain_answers_the_plan(demo: dict[str, Any]) -> None:
    answer = post(demo, {"sql": "EXPLAIN SELECT * FROM github.pull_requests WHERE repo = 'web-frontend'"}).json()
    assert answer["rows"][0]["source_table"] == "github.pull_requests" and answer["api_calls"] == 0
    assert answer["rows"][-1]["strategy"] == "arrow"  # a plain filter of one source: Arrow compute, not DuckDB
    joined = post(demo, {"sql": "EXPLAIN SELECT count(*) FROM github.pull_requests WHERE repo = 'web-frontend'"})
    assert joined.json()["rows"][-1]["strategy"] == "duckdb"


def test_health_and_readiness(demo: dict[str, Any]) -> None:
    assert httpx.get(f"{demo['http_url']}/healthz").json() == {"status": "ok"}
    post(demo, {"sql": "SELECT count(*) FROM jira.issues WHERE project = 'WEB'"})
    ready = httpx.get(f"{demo['http_url']}/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    assert ready.json()["connectors"]["jira"]["ok"] is True


def test_http_queries_reach_the_query_log_and_the_audit(demo: dict[str, Any], adbc_conn: Any) -> None:
    trace_id = post(demo, {"sql": "SELECT count(*) FROM jira.issues WHERE project = 'MOB'"}).json()["trace_id"]
    cursor = adbc_conn.cursor()
    cursor.execute("SELECT outcome, rows FROM omnisql.query_log WHERE trace_id = ?", (trace_id,))
    assert cursor.fetch_arrow_table().to_pylist() == [{"outcome": "ok", "rows": 1}]


def test_a_kept_alive_connection_answers_without_a_delayed_ack(demo: dict[str, Any]) -> None:
    """Nagle's algorithm on the server socket makes every answer after the first on a kept-alive connection wait
    for the client's delayed ACK (~40 ms on Linux); the gateway turns it off."""
    import statistics
    import time

    with httpx.Client(base_url=demo["http_url"]) as client:
        client.get("/healthz")
        times = []
        for _ in range(10):
            started = time.perf_counter()
            client.get("/healthz")
            times.append(time.perf_counter() - started)
    assert statistics.median(times) < 0.030, times
