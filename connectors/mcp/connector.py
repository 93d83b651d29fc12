"""MCP connector: one MCP server's tools as tables, through the ``mcp`` client (stdio or streamable HTTP).

Honest about what MCP is: a tool call takes arguments and returns a result, so the only pushdown is the tool's
arguments (``=``, and ``IN`` as one call per value); everything else is filtered here and by DuckDB. A required
argument is a required filter, which a join can supply (a bind join calls the tool once per key). Calls to one
server are capped (``concurrency``, default 2), bounded in time (``timeout_s``) and counted as API calls."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pyarrow as pa

from connectors.decode import decode_failure
from connectors.filtering import filter_batch
from connectors.mcp.schema import McpTable, table_for_tool
from core.errors import SourceTimeout, UpstreamError
from core.types import ScanRequest, ScanStats, TableSpec

__all__ = ["McpConfig", "McpConnector"]

log = logging.getLogger("omnisql.connectors")
MAX_TOOL_PAGES = 100
MAX_ROWS = 100_000  # per tool call


@dataclass(frozen=True)
class McpConfig:
    transport: Literal["stdio", "http"]
    url: str = ""  # http: the streamable HTTP endpoint, e.g. https://mcp.example.com/mcp
    command: str = ""  # stdio: the server program and its arguments
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict, repr=False)
    cwd: str | None = None
    token: str = field(default="", repr=False)  # http: sent as Authorization: Bearer
    tools: tuple[str, ...] = ()  # only these tools (default: every tool the server lists)
    concurrency: int = 2
    timeout_s: float = 30.0


class McpConnector:
    """Implements ``core.types.Connector``: the session lives in one task from ``open()`` to ``aclose()``."""

    def __init__(self, config: McpConfig, name: str = "mcp") -> None:
        self.name = name
        self.config = config
        self.slots = asyncio.Semaphore(config.concurrency)
        self._tables: dict[str, McpTable] = {}
        self._client: Any = None
        self._stop: asyncio.Event | None = None
        self._owner: asyncio.Task[None] | None = None

    def tables(self) -> Sequence[TableSpec]:
        return tuple(t.spec for t in self._tables.values())

    def _target(self) -> Any:
        from mcp import StdioServerParameters

        if self.config.transport == "stdio":
            return StdioServerParameters(command=self.config.command, args=list(self.config.args),
                                         env=self.config.env or None, cwd=self.config.cwd)
        if not self.config.token:
            return self.config.url
        import httpx2
        from mcp.client.streamable_http import streamable_http_client

        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {self.config.token}"},
                                  timeout=self.config.timeout_s, follow_redirects=False)
        return streamable_http_client(self.config.url, http_client=http)

    async def open(self) -> None:
        """Connect (the session is entered and left by one owner task, as anyio requires), then list the tools."""
        from mcp import Client

        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._stop = asyncio.Event()
        stop = self._stop

        async def own() -> None:
            try:
                async with Client(self._target(), read_timeout_seconds=self.config.timeout_s, cache=None) as client:
                    self._client = client
                    ready.set_result(None)
                    await stop.wait()
            except BaseException as exc:  # a failed connect is reported by open(); later ones by the next call
                if not ready.done():
                    ready.set_exception(exc)
            finally:
                self._client = None

        self._owner = asyncio.create_task(own(), name=f"mcp-{self.name}")
        try:
            async with asyncio.timeout(self.config.timeout_s):
                await asyncio.shield(ready)
        except Exception as exc:
            await self.aclose()
            raise UpstreamError(f"MCP server {self.name} could not be reached ({type(exc).__name__}); check "
                                f"connectors.{self.name}") from exc
        await self._list_tools()

    async def _list_tools(self) -> None:
        cursor: str | None = None
        seen: set[str] = set()
        for _ in range(MAX_TOOL_PAGES):
            page = await self._client.list_tools(cursor=cursor)
            for tool in page.tools:
                if self.config.tools and tool.name not in self.config.tools:
                    continue
                table = table_for_tool(self.name, tool)
                if table is None:
                    log.warning("MCP server %s: tool %s cannot be a table (name or arguments); skipped", self.name,
                                str(tool.name)[:60])
                else:
                    self._tables[table.spec.name] = table
            cursor = page.next_cursor
            if not cursor or cursor in seen:
                return
            seen.add(cursor)

    async def aclose(self) -> None:
        if self._stop is not None:
            self._stop.set()
        if self._owner is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(self._owner, timeout=10)
            self._owner = None

    # -- scanning ----------------------------------------------------------------------------------------------
    async def scan(self, request: ScanRequest, stats: ScanStats) -> AsyncIterator[pa.RecordBatch]:
        table = self._tables[request.table]
        choices: dict[str, tuple[Any, ...]] = {}
        for p in request.predicates:
            if p.column in table.arguments and p.op in ("=", "IN"):
                values = set(p.values) if p.column not in choices else set(choices[p.column]) & set(p.values)
                choices[p.column] = tuple(v for v in p.values if v in values)
        names = list(choices)
        for combo in itertools.product(*(choices[n] for n in names)):
            arguments = {table.arguments[n]: v for n, v in zip(names, combo, strict=True)}
            rows = await self._call(table, arguments, stats)
            stats.listed += len(rows)
            batch = self._to_batch(table, rows, arguments, request)
            stats.rows += batch.num_rows
            if batch.num_rows:
                yield batch

    async def _call(self, table: McpTable, arguments: dict[str, Any], stats: ScanStats) -> list[dict[str, Any]]:
        if self._client is None:
            raise UpstreamError(f"MCP server {self.name} is not connected; the server may have exited")
        if stats.gate is not None:
            await stats.gate.acquire()
        async with self.slots:
            stats.spend()
            stats.pages += 1
            try:
                async with asyncio.timeout(self.config.timeout_s):
                    result = await self._client.call_tool(table.tool, arguments)
            except TimeoutError as exc:
                raise SourceTimeout(f"MCP server {self.name} did not answer tool {table.tool} in time; retry "
                                    "later") from exc
            except Exception as exc:
                raise UpstreamError(f"MCP server {self.name} failed on tool {table.tool} ({type(exc).__name__}); "
                                    "retry later") from exc
        texts = [str(getattr(c, "text", "")) for c in result.content or () if getattr(c, "type", "") == "text"]
        if result.is_error:
            raise UpstreamError(f"MCP server {self.name}: tool {table.tool} answered an error: "
                                f"{' '.join(texts)[:200] or 'no message'}")
        return self._rows(table, result.structured_content, texts)

    def _rows(self, table: McpTable, structured: Any, texts: list[str]) -> list[dict[str, Any]]:
        if table.text:
            return [{"content": "\n".join(texts)}]
        if structured is None and texts:  # older servers: the JSON in a text block
            with contextlib.suppress(ValueError):
                structured = json.loads(texts[0])
        if table.rows_key is not None:
            rows = structured.get(table.rows_key) if isinstance(structured, dict) else None
        else:
            rows = [structured] if isinstance(structured, dict) else None
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise UpstreamError(f"MCP server {self.name}: tool {table.tool} returned a result that does not match "
                                "its output schema")
        if len(rows) > MAX_ROWS:
            raise UpstreamError(f"MCP server {self.name}: tool {table.tool} returned more than {MAX_ROWS} rows")
        return rows

    def _to_batch(self, table: McpTable, rows: list[dict[str, Any]], arguments: dict[str, Any],
                  request: ScanRequest) -> pa.RecordBatch:
        needed = set(request.columns) | {p.column for p in request.row_filters}
        schema = table.spec.schema_for(needed)
        data: dict[str, list[Any]] = {}
        for name in schema.names:
            if name in table.outputs:
                values = [r.get(table.outputs[name]) for r in rows]
                if name in table.json_columns:
                    values = [None if v is None else json.dumps(v) for v in values]
            else:  # an argument only: every row was asked for with it
                values = [arguments.get(table.arguments.get(name, ""))] * len(rows)
            data[name] = values
        try:
            arrays = [pa.array(data[n], type=pa.string() if pa.types.is_timestamp(schema.field(n).type)
                               else schema.field(n).type).cast(schema.field(n).type) for n in schema.names]
        except (pa.ArrowException, TypeError, ValueError) as exc:
            raise UpstreamError(f"MCP server {self.name}: tool {table.tool} returned values of the wrong type "
                                f"({decode_failure(exc)})") from exc
        batch = filter_batch(pa.RecordBatch.from_arrays(arrays, schema=schema), request.row_filters)
        out = table.spec.schema_for(request.columns)
        return pa.RecordBatch.from_arrays([batch.column(n) for n in out.names], schema=out)
