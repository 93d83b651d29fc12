"""MCP tools as tables, end to end through ADBC: the sandbox's incident tracker over stdio (the demo's
``incidents``) and over streamable HTTP (``incidents_http``), compared with the incidents themselves; required
arguments as required filters, IN as one call per value, a bind join supplying ``get_incident``'s id, a join
with Salesforce, and tool errors. Plus the schema mapping and ``tools/list`` paging on their own."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import adbc_driver_flightsql.dbapi as flightsql
import duckdb
import pyarrow as pa
import pytest

from connectors.mcp.connector import McpConfig, McpConnector
from connectors.mcp.schema import table_for_tool
from connectors.registry import ConnectorConfig
from sandbox.mcp_incidents import INCIDENTS, serve_http
from tests.answers import adbc_answer, assert_same_answer, is_ordered
from tests.conftest import SHARED
from tests.oracle import oracle_answer
from tests.salesforce_oracle import connect_salesforce_oracle

LIST = "incidents.list_incidents"


@pytest.fixture(scope="module")
def conn() -> Iterator[Any]:
    from demo.tenant import UNTHROTTLED, demo_config, demo_tokens
    from flight_server.app import start_service
    from sandbox.server import start_sandbox

    sandbox = start_sandbox()
    url, http_server = serve_http()
    config = demo_config(sandbox.info(), "127.0.0.1", 0, UNTHROTTLED)
    config = dataclasses.replace(config, connectors=(
        *config.connectors, ConnectorConfig("incidents_http", "mcp", McpConfig("http", url=url))))
    service = start_service(config)
    connection = flightsql.connect(service.uri, db_kwargs={
        "adbc.flight.sql.authorization_header": f"Bearer {demo_tokens()['token_admin']}"})
    yield connection
    connection.close()
    service.stop()
    http_server.should_exit = True
    sandbox.stop()


@pytest.fixture(scope="module")
def oracle() -> Iterator[duckdb.DuckDBPyConnection]:
    db = connect_salesforce_oracle()
    rows = [i.model_dump() for i in INCIDENTS]
    table = pa.Table.from_pylist(rows, schema=pa.schema([
        ("id", pa.string()), ("service", pa.string()), ("status", pa.string()), ("severity", pa.int64()),
        ("title", pa.string()), ("customer", pa.string()), ("opened_at", pa.string())]))
    for schema in ("incidents", "incidents_http"):
        db.execute(f"CREATE SCHEMA {schema}")
        db.register("incoming", table)
        db.execute(f"CREATE TABLE {schema}.list_incidents AS SELECT * FROM incoming")
        db.execute(f"CREATE TABLE {schema}.get_incident AS SELECT * FROM incoming")
        db.unregister("incoming")
    yield db
    db.close()


QUERIES = [
    f"SELECT * FROM {LIST} WHERE service = 'checkout'",
    f"SELECT id, status FROM {LIST} WHERE service IN ('auth', 'search') AND status = 'open'",
    f"SELECT service, count(*) AS n, max(severity) AS worst FROM {LIST} "
    "WHERE service IN ('checkout', 'search', 'payments', 'auth', 'notifications') GROUP BY service",
    "SELECT * FROM incidents_http.list_incidents WHERE service = 'payments' AND severity >= 3",
    "SELECT id, title FROM incidents.get_incident WHERE id = 'INC-1003'",
    f"SELECT a.name, a.tier__c, i.id FROM {LIST} i JOIN salesforce.accounts a ON i.customer = a.name "
    "WHERE i.service = 'payments' ORDER BY i.id LIMIT 5",
]


@pytest.mark.parametrize("sql", QUERIES)
def test_tools_answer_like_the_tracker(sql: str, conn: Any, oracle: duckdb.DuckDBPyConnection) -> None:
    assert_same_answer(adbc_answer(conn, sql), oracle_answer(oracle, sql), is_ordered(sql), context=sql)


def test_a_required_argument_is_a_required_filter(conn: Any) -> None:
    with pytest.raises(Exception, match="service"):
        adbc_answer(conn, f"SELECT id FROM {LIST}")


def test_in_is_one_call_per_value_and_explain_says_so(conn: Any) -> None:
    steps = adbc_answer(conn, f"EXPLAIN SELECT id FROM {LIST} WHERE service IN ('auth', 'search', 'payments')")
    step = steps.to_pylist()[0]
    assert step["requests"] == 3 and "service IN" in (step["pushed_inexact"] or "")


def test_a_join_supplies_a_required_argument(conn: Any, oracle: duckdb.DuckDBPyConnection) -> None:
    sql = (f"SELECT g.id, g.title FROM {LIST} l JOIN incidents.get_incident g ON g.id = l.id "
           "WHERE l.service = 'auth' AND l.status = 'resolved'")
    plan = {s["source_table"]: s for s in adbc_answer(conn, f"EXPLAIN {sql}").to_pylist()}
    assert plan["incidents.get_incident"]["strategy"] == "lookup join"  # a tool takes one id: one call per key
    assert_same_answer(adbc_answer(conn, sql), oracle_answer(oracle, sql), False, context=sql)


def test_a_tool_error_is_an_upstream_error(conn: Any) -> None:
    with pytest.raises(Exception, match="UPSTREAM_ERROR.*get_incident answered an error: .*no incident INC-0"):
        adbc_answer(conn, "SELECT * FROM incidents.get_incident WHERE id = 'INC-0'")


@dataclass
class _Tool:
    name: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any] | None = None
    description: str = ""


def test_schemas_become_columns() -> None:
    output = {"type": "object", "properties": {"items": {"type": "array", "items": {"$ref": "#/$defs/Item"}}},
              "$defs": {"Item": {"type": "object", "properties": {
                  "id": {"type": "integer"}, "at": {"type": "string", "format": "date-time"},
                  "tags": {"type": "array", "items": {"type": "string"}},
                  "owner": {"anyOf": [{"type": "string"}, {"type": "null"}]}}}}}
    inputs = {"type": "object", "properties": {"owner": {"type": "string"}, "limit": {"type": "integer"},
                                               "opts": {"type": "object"}}, "required": ["owner"]}
    table = table_for_tool("t", _Tool("search_items", inputs, output))
    assert table is not None and table.rows_key == "items" and table.json_columns == {"tags"}
    spec = table.spec
    assert [(c.name, str(c.type)) for c in spec.columns] == [
        ("id", "int64"), ("at", "timestamp[us, tz=UTC]"), ("tags", "string"), ("owner", "string"),
        ("limit", "int64")]
    owner, limit = spec.column("owner").filter, spec.column("limit").filter
    assert owner is not None and owner.required and limit is not None and not limit.required
    text = table_for_tool("t", _Tool("echo", {"type": "object", "properties": {"q": {"type": "string"}}}))
    assert text is not None and text.text and [c.name for c in text.spec.columns] == ["content", "q"]
    assert table_for_tool("t", _Tool("Bad-Name", inputs)) is None
    assert table_for_tool("t", _Tool("needs_obj", {"properties": {"o": {"type": "object"}}, "required": ["o"]})) \
        is None


class _Pages:
    """A client whose tools/list comes in pages (and a server that repeats its last cursor)."""

    def __init__(self) -> None:
        self.cursors: list[str | None] = []

    async def list_tools(self, cursor: str | None = None) -> Any:
        self.cursors.append(cursor)
        page = {None: ("a", "p2"), "p2": ("b", "p3"), "p3": ("c", "p3")}[cursor]
        tool = _Tool(page[0], {"type": "object", "properties": {}})
        return type("Page", (), {"tools": [tool], "next_cursor": page[1]})()


def test_tools_list_is_paged_until_the_cursor_ends_or_repeats() -> None:
    connector = McpConnector(McpConfig("stdio", command="unused"), name="m")
    pages = _Pages()
    connector._client = pages
    asyncio.run(connector._list_tools())
    assert [t.name for t in connector.tables()] == ["a", "b", "c"]
    assert pages.cursors == [None, "p2", "p3"]


SPEC = SHARED / "api-contracts" / "mcp" / "spec-examples.jsonrpc.json"


@pytest.mark.skipif(not SPEC.exists(), reason="../shared/api-contracts is not present")
def test_the_specs_examples_are_read_as_tables() -> None:
    """The spec's own tools/list and tools/call messages, parsed by the SDK's models, through our mapping."""
    from mcp_types import CallToolResult, ListToolsResult

    from core.errors import UpstreamError
    from core.types import ScanRequest, ScanStats

    examples = json.loads(SPEC.read_text())["2025-11-25/server/tools.mdx"]
    listed = ListToolsResult.model_validate(examples[1]["result"])
    assert listed.next_cursor == "next-page-cursor"
    weather = table_for_tool("mcp", listed.tools[0])
    assert weather is not None and weather.text
    assert [(c.name, c.filter is not None and c.filter.required) for c in weather.spec.columns] == [
        ("content", False), ("location", True)]
    structured = _Tool("get_weather", listed.tools[0].input_schema, {"type": "object", "properties": {
        "temperature": {"type": "number"}, "conditions": {"type": "string"}, "humidity": {"type": "number"}}})
    table = table_for_tool("mcp", structured)
    assert table is not None and table.rows_key is None

    class _Client:
        def __init__(self, result: dict[str, Any]) -> None:
            self.result = CallToolResult.model_validate(result)

        async def call_tool(self, name: str, arguments: dict[str, Any]) -> Any:
            return self.result

    connector = McpConnector(McpConfig("stdio", command="unused"), name="mcp")

    async def call(tool: Any, result: dict[str, Any]) -> list[dict[str, Any]]:
        connector._client = _Client(result)
        return await connector._call(tool, {"location": "New York"}, ScanStats())

    assert asyncio.run(call(weather, examples[3]["result"])) == [
        {"content": "Current weather in New York:\nTemperature: 72°F\nConditions: Partly cloudy"}]
    assert asyncio.run(call(table, examples[5]["result"])) == [
        {"temperature": 22.5, "conditions": "Partly cloudy", "humidity": 65}]
    batch = connector._to_batch(table, asyncio.run(call(table, examples[5]["result"])), {"location": "New York"},
                                ScanRequest("get_weather", ("location", "temperature", "humidity")))
    assert batch.to_pylist() == [{"temperature": 22.5, "humidity": 65.0, "location": "New York"}]
    with pytest.raises(UpstreamError, match="Invalid departure date"):
        asyncio.run(call(weather, examples[7]["result"]))


def test_the_demo_serves_salesforce_and_incidents(adbc_conn: Any) -> None:
    """``make demo`` (``omnisql serve --demo``, a subprocess here) has both new connectors."""
    sql = (f"SELECT count(*) AS n FROM {LIST} i JOIN salesforce.accounts a ON i.customer = a.name "
           "WHERE i.service = 'payments'")
    expected = sum(1 for i in INCIDENTS if i.service == "payments" and i.customer is not None)
    assert adbc_answer(adbc_conn, sql).column(0)[0].as_py() == expected > 0


class _SlowClient:
    def __init__(self, delay_s: float) -> None:
        self.delay_s, self.running, self.most = delay_s, 0, 0

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> Any:
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            await asyncio.sleep(self.delay_s)
        finally:
            self.running -= 1
        return type("Result", (), {"content": [], "structured_content": {"id": "x"}, "is_error": False})()


def test_calls_are_capped_per_server_and_bounded_in_time() -> None:
    from core.errors import SourceTimeout
    from core.types import ScanStats

    tool = table_for_tool("m", _Tool("one", {"type": "object", "properties": {}},
                                     {"type": "object", "properties": {"id": {"type": "string"}}}))
    assert tool is not None
    connector = McpConnector(McpConfig("stdio", command="unused", concurrency=2, timeout_s=0.5), name="m")
    slow = _SlowClient(0.05)
    connector._client = slow
    stats = ScanStats()

    async def many() -> None:
        await asyncio.gather(*(connector._call(tool, {}, stats) for _ in range(6)))

    asyncio.run(many())
    assert slow.most == 2 and stats.api_calls == 6
    connector._client = _SlowClient(2.0)
    with pytest.raises(SourceTimeout, match="did not answer tool one in time"):
        asyncio.run(connector._call(tool, {}, stats))


def test_the_tenant_section(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from flight_server.config import load_config

    monkeypatch.setenv("T", "x")
    monkeypatch.setenv("MCP_TOKEN", "secret-token")
    path = tmp_path / "t.yaml"
    path.write_text("connectors:\n  tracker:\n    type: mcp\n    transport: http\n    url: https://mcp.example.com/mcp\n"
                    "    token_env: MCP_TOKEN\n    tools: [list_incidents]\n    concurrency: 3\n"
                    "  local:\n    type: mcp\n    command: incident-mcp\n    args: [--read-only]\n"
                    "principals: [{user: a, token_env: T}]\n")
    configs = {c.name: c.config for c in load_config(path).connectors}
    assert configs["tracker"] == McpConfig("http", url="https://mcp.example.com/mcp", token="secret-token",
                                           tools=("list_incidents",), concurrency=3)
    assert configs["local"] == McpConfig("stdio", command="incident-mcp", args=("--read-only",))
    assert "secret-token" not in repr(configs["tracker"])


def test_http_with_a_bearer_token_lists_and_calls() -> None:
    from core.types import Predicate, ScanRequest, ScanStats

    url, server = serve_http()

    async def run() -> tuple[list[str], int]:
        connector = McpConnector(McpConfig("http", url=url, token="mcp-sandbox-token"), name="tracker")
        await connector.open()
        try:
            rows = 0
            async for batch in connector.scan(ScanRequest("list_incidents", ("id",),
                                                          (Predicate("service", "=", ("search",)),)), ScanStats()):
                rows += batch.num_rows
            return sorted(t.name for t in connector.tables()), rows
        finally:
            await connector.aclose()

    try:
        assert asyncio.run(run()) == (["get_incident", "list_incidents"],
                                      sum(1 for i in INCIDENTS if i.service == "search"))
    finally:
        server.should_exit = True


def test_a_cross_app_bind_join_from_a_tool(conn: Any, oracle: duckdb.DuckDBPyConnection) -> None:
    """The tool's rows supply Salesforce's keys: ``Name IN (...)`` from the incidents' customers, shown in EXPLAIN
    and paid for as one SOQL query instead of the accounts' full listing."""
    sql = (f"SELECT i.id, a.name, a.tier__c FROM {LIST} i JOIN salesforce.accounts a ON a.name = i.customer "
           "WHERE i.service = 'payments' AND i.status = 'resolved'")
    plan = {s["source_table"]: s for s in adbc_answer(conn, f"EXPLAIN {sql}").to_pylist()}
    accounts = plan["salesforce.accounts"]
    assert accounts["strategy"] == "bind join" and accounts["binding"].startswith("name IN (keys of [0] i.customer)")
    ran = {s["source_table"]: s for s in adbc_answer(conn, f"EXPLAIN ANALYZE {sql}").to_pylist()}
    assert ran["salesforce.accounts"]["api_calls"] == 1 and ran[LIST]["api_calls"] == 1
    assert_same_answer(adbc_answer(conn, sql), oracle_answer(oracle, sql), False, context=sql)
