"""OpenTelemetry traces: an in-process service (HTTP gateway and Flight) exports to an in-memory exporter, and the
spans have the right parent/child structure — request → query → plan, scans → upstream requests and security,
DuckDB — with the query's ``trace_id`` as their trace id and a caller's W3C ``traceparent`` continued (HTTP and
gRPC metadata). No attribute carries a token or a row value. Then the real OTLP/HTTP exporter of ``serve
--trace-exporter otlp`` against a receiver on 127.0.0.1."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from sandbox.seed import REPOS
from tests.conftest import launch_demo

JOIN = ("SELECT gh.number, gh.author, ji.issue_key, ji.summary FROM github.pull_requests gh JOIN jira.issues ji "
        "ON gh.branch = ji.branch_name WHERE ji.status = 'In Progress' ORDER BY ALL")


@pytest.fixture(scope="module")
def service(demo: dict[str, Any]) -> Iterator[Any]:
    from demo.tenant import UNTHROTTLED, demo_config
    from flight_server.app import start_service
    from flight_server.gateway.state import HttpSettings

    running = start_service(demo_config(demo["sandbox"], "127.0.0.1", 0, UNTHROTTLED), HttpSettings(port=0))
    yield running
    running.stop()


@pytest.fixture()
def exporter() -> Iterator[InMemorySpanExporter]:
    from flight_server.tracing import add_processor, remove_processor

    memory = InMemorySpanExporter()
    processor = SimpleSpanProcessor(memory)
    add_processor(processor)
    yield memory
    remove_processor(processor)


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def hex_id(span: ReadableSpan, parent: bool = False) -> str | None:
    context = span.parent if parent else span.context
    if context is None:
        return None
    return format(context.span_id, "016x")


def of_trace(exporter: InMemorySpanExporter, trace_id: str) -> list[ReadableSpan]:
    deadline = time.monotonic() + 5  # the last span (the request's) ends just after the answer is sent
    while True:
        spans = [s for s in exporter.get_finished_spans() if s.context and format(s.context.trace_id, "032x") ==
                 trace_id]
        if any(s.name == "POST /v1/query" for s in spans) or time.monotonic() > deadline:
            return spans
        time.sleep(0.02)


def test_an_http_query_is_one_trace_of_its_stages(service: Any, exporter: InMemorySpanExporter) -> None:
    trace_id, caller = secrets.token_hex(16), secrets.token_hex(8)
    response = httpx.post(f"{service.http_url}/v1/query", json={"sql": JOIN}, timeout=60,
                          headers={"X-User-Token": "omni-demo-qa-token", "traceparent": f"00-{trace_id}-{caller}-01"})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["trace_id"] == trace_id and answer["rows"]
    spans = of_trace(exporter, trace_id)
    by_id = {hex_id(s): s for s in spans}

    def parent_name(span: ReadableSpan) -> str:
        return by_id[hex_id(span, parent=True)].name

    [request] = [s for s in spans if s.name == "POST /v1/query"]
    assert hex_id(request, parent=True) == caller and attrs(request)["http.response.status_code"] == 200
    [query] = [s for s in spans if s.name == "omnisql.query"]
    assert parent_name(query) == "POST /v1/query" and attrs(query)["omnisql.transport"] == "http"
    assert attrs(query)["omnisql.outcome"] == "ok" and attrs(query)["omnisql.api_calls"] == answer["api_calls"]
    names = [s.name for s in spans]
    assert names.count("omnisql.scan") == 2 and names.count("omnisql.duckdb") == 1 and "omnisql.plan" in names
    for span in spans:
        if span.name in ("omnisql.plan", "omnisql.scan", "omnisql.duckdb"):
            assert parent_name(span) == "omnisql.query", span.name
        if span.name == "omnisql.security":
            assert parent_name(span) == "omnisql.scan"
    scans = {attrs(s)["omnisql.table"]: s for s in spans if s.name == "omnisql.scan"}
    assert set(scans) == {"github.pull_requests", "jira.issues"}
    assert sum(1 for s in spans if s.name == "omnisql.security") == 2  # QA: row filters and masks on both
    upstream = [s for s in spans if s.name == "omnisql.upstream"]
    assert len(upstream) == answer["api_calls"] + sum(1 for s in upstream if parent_name(s) == "omnisql.plan")
    for span in upstream:
        found = attrs(span)
        assert parent_name(span) in ("omnisql.scan", "omnisql.plan")
        assert found["http.request.method"] in ("GET", "POST") and found["http.response.status_code"] == 200
        template = str(found["url.template"])
        assert template.startswith("/") and "?" not in template
        assert not any(repo in template for repo, _ in REPOS), template  # the route, not the request's names
        assert found["omnisql.connector"] in ("github", "jira")
    values = {str(v) for row in answer["rows"] for v in row.values() if v is not None and len(str(v)) >= 4}
    attributes = " ".join(k + "=" + str(v) for s in spans for k, v in attrs(s).items())
    assert "omni-demo-qa-token" not in attributes and not any(v in attributes for v in values)
    assert "mobile" not in attributes  # nor the principal's attribute, which the row filter binds


def test_queries_sharing_a_callers_trace_answer_with_their_own_sources(service: Any) -> None:
    import concurrent.futures

    traceparent = f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"
    tables = ["github.pull_requests", "jira.issues"] * 3

    def run(table: str) -> dict[str, Any]:
        return dict(httpx.post(f"{service.http_url}/v1/query", json={"sql": f"SELECT count(*) FROM {table}"},
                               headers={"X-User-Token": "omni-demo-admin-token", "traceparent": traceparent},
                               timeout=60).json())

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(run, tables))
    for table, answer in zip(tables, answers, strict=True):
        assert [s["table"] for s in answer["sources"]] == [table], answer["sources"]


def test_without_traceparent_the_query_starts_its_own_trace(service: Any, exporter: InMemorySpanExporter) -> None:
    answer = httpx.post(f"{service.http_url}/v1/query", json={"sql": "SELECT 1 AS one"},
                        headers={"X-User-Token": "omni-demo-admin-token"}, timeout=30).json()
    spans = of_trace(exporter, answer["trace_id"])
    [request] = [s for s in spans if s.name == "POST /v1/query"]
    assert request.parent is None and {s.name for s in spans} >= {"omnisql.query", "omnisql.plan", "omnisql.duckdb"}


def test_a_refused_query_is_an_error_span(service: Any, exporter: InMemorySpanExporter) -> None:
    response = httpx.post(f"{service.http_url}/v1/query", json={"sql": "SELECT diff_link FROM github.pull_requests"},
                          headers={"X-User-Token": "omni-demo-qa-token"}, timeout=30)
    error = response.json()["error"]
    [query] = [s for s in of_trace(exporter, error["trace_id"]) if s.name == "omnisql.query"]
    assert attrs(query)["omnisql.outcome"] == "ENTITLEMENT_DENIED"
    assert query.status.status_code.name == "ERROR" and query.status.description == "ENTITLEMENT_DENIED"
    assert not query.events  # no exception text or stack trace in the span


def test_flight_calls_continue_the_callers_trace(service: Any, exporter: InMemorySpanExporter) -> None:
    import adbc_driver_flightsql.dbapi as flightsql

    trace_id, caller = secrets.token_hex(16), secrets.token_hex(8)
    with flightsql.connect(service.uri, db_kwargs={
            "adbc.flight.sql.authorization_header": "Bearer omni-demo-admin-token",
            "adbc.flight.sql.rpc.call_header.traceparent": f"00-{trace_id}-{caller}-01"}) as conn, \
            conn.cursor() as cursor:
        cursor.execute("SELECT count(*) AS n FROM jira.issues WHERE project = 'WEB'")
        assert cursor.fetch_arrow_table().num_rows == 1
    time.sleep(0.2)
    spans = of_trace(exporter, trace_id)
    queries = [s for s in spans if s.name == "omnisql.query"]
    assert {attrs(q)["omnisql.stage"] for q in queries} == {"plan", "execute"}
    assert all(hex_id(q, parent=True) == caller and attrs(q)["omnisql.transport"] == "flight" for q in queries)
    by_id = {hex_id(s): s for s in spans}

    def stage_of(span: ReadableSpan) -> str | None:
        """The ``omnisql.stage`` of the query span the span hangs under."""
        while span.name != "omnisql.query":
            span = by_id[str(hex_id(span, parent=True))]
        return str(attrs(span)["omnisql.stage"])

    upstream = [s for s in spans if s.name == "omnisql.upstream"]
    assert upstream and all(attrs(s)["url.template"] == "/rest/api/3/search/jql" for s in upstream)
    assert {stage_of(s) for s in spans if s.name in ("omnisql.scan", "omnisql.duckdb")} == {"execute"}
    assert all(stage_of(s) in ("plan", "execute") for s in upstream)


class _Receiver(BaseHTTPRequestHandler):
    bodies: list[bytes] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        self.bodies.append(self.rfile.read(int(self.headers["content-length"])))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_serve_exports_spans_over_otlp(tmp_path: Path) -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    receiver = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{receiver.server_address[1]}",
           "OTEL_BSP_SCHEDULE_DELAY": "100"}
    try:
        with launch_demo(tmp_path, "--trace-exporter", "otlp", env=env) as info:
            trace_id = httpx.post(f"{info['http_url']}/v1/query", json={"sql": "SELECT 1 AS one"}, timeout=30,
                                  headers={"X-User-Token": "omni-demo-admin-token"}).json()["trace_id"]
            deadline = time.monotonic() + 10
            names: set[str] = set()
            while "omnisql.query" not in names and time.monotonic() < deadline:
                time.sleep(0.1)
                for body in list(_Receiver.bodies):
                    request = ExportTraceServiceRequest.FromString(body)
                    names |= {span.name for rs in request.resource_spans for ss in rs.scope_spans
                              for span in ss.spans if span.trace_id.hex() == trace_id}
    finally:
        receiver.shutdown()
    assert {"POST /v1/query", "omnisql.query", "omnisql.plan"} <= names
