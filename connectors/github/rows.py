"""What every Link-header GitHub listing of a table shares (repositories, issues, commits, reviews): the schemas a
request decodes into, the paging loop, and a page's decoded columns turned into the request's rows."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import pyarrow as pa

from connectors.decode import map_values
from connectors.filtering import filter_batch
from connectors.http import ApiClient
from connectors.requester import LinkHeader, PageRequest, RecordSelector, paginate
from core.types import ScanRequest, ScanStats, TableSpec

__all__ = ["PageColumns", "listed_rows", "request_rows", "request_schemas"]

# A page's records and the schema to decode them into → their columns (``repo`` included), or None when the page
# holds none of the table's rows.
PageColumns = Callable[[list[Any], pa.Schema], "dict[str, pa.Array] | None"]


def request_schemas(table: TableSpec, request: ScanRequest) -> tuple[pa.Schema, pa.Schema]:
    """(what a page decodes into: the requested columns, those its row filters read, and ``repo``; the rows out)."""
    needed = set(request.columns) | {p.column for p in request.row_filters}
    return table.schema_for(needed | {"repo"}), table.schema_for(request.columns)


async def listed_rows(api: ApiClient, first: PageRequest, route: str, request: ScanRequest, stats: ScanStats,
                      max_pages: int, table: TableSpec, repo_teams: Mapping[str, str], columns: PageColumns
                      ) -> AsyncIterator[pa.RecordBatch]:
    """Every page of one listing (``first`` onwards, Link-header paging) as the rows ``request`` asked for; each
    next page is asked for while this one is decoded, unless a LIMIT may stop the reading early."""
    schema, out = request_schemas(table, request)
    async with contextlib.aclosing(paginate(api, first, LinkHeader(), RecordSelector(()), stats, route,
                                            max_pages, prefetch=request.limit is None)) as pages:
        async for page in pages:
            stats.listed += len(page.records)
            cols = columns(page.records, schema) if page.records else None
            if cols is None:
                continue
            batch = request_rows(cols, schema, out, repo_teams, request)
            stats.rows += batch.num_rows
            if batch.num_rows:
                yield batch


def request_rows(cols: dict[str, pa.Array], schema: pa.Schema, out: pa.Schema, repo_teams: Mapping[str, str],
                 request: ScanRequest) -> pa.RecordBatch:
    """``cols`` (with ``repo``) as the rows ``request`` asked for: ``team_id`` from the tenant's repo → team
    mapping, every condition re-checked (row filters and the local residual), only the requested columns."""
    if "team_id" in schema.names:
        cols["team_id"] = map_values(cols["repo"], repo_teams)
    batch = pa.RecordBatch.from_pydict({n: cols[n] for n in schema.names}, schema=schema)
    batch = filter_batch(batch, request.row_filters, request.residual)
    return pa.RecordBatch.from_arrays([batch.column(n) for n in out.names], schema=out)
