"""The connector a manifest compiles to: ``core.types.Connector`` for any REST or GraphQL app, no Python per app.

A scan fills the manifest's request template with the pushed predicates (``options.py``), pages through the
answers with the one shared paging loop, decodes each page into Arrow by the columns' paths, and re-checks every
condition on the rows before handing them on: what the API did not enforce exactly is enforced here, so a
manifest that over-promises costs speed, never correct answers (the planner re-checks inexact ones too)."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
import pyarrow as pa

from connectors.declarative.client import ManifestApiClient, ManifestErrors, build_auth
from connectors.declarative.decode import decode_records
from connectors.declarative.manifest import AuthDef, ColumnDef, Manifest, TableDef
from connectors.declarative.options import Options, build_options, order_option
from connectors.declarative.paging import paginator_for
from connectors.declarative.tables import table_spec
from connectors.filtering import filter_batch
from connectors.http import HttpLimits, RetryPolicy
from connectors.requester import PageRequest, RecordSelector, paginate
from connectors.topn import TopN
from core.types import Changes, ScanRequest, ScanStats, TableSpec

__all__ = ["ManifestConfig", "ManifestConnector"]

log = logging.getLogger("omnisql.connectors")


@dataclass(frozen=True)
class ManifestConfig:
    """A configured instance: the manifest, and what the tenant file adds (URL override, credentials, variables)."""

    manifest: Manifest
    base_url: str
    auth: AuthDef | None = None
    secrets: Mapping[str, str] = field(default_factory=dict, repr=False)  # secret name → value, never logged
    token_url: str | None = None
    variables: Mapping[str, str] = field(default_factory=dict)
    concurrency: int = 8
    max_pages: int = 1000
    limits: HttpLimits = field(default_factory=HttpLimits)


@dataclass(frozen=True)
class Prepared:
    """One scan's first request, the options that went into it, and the page size it asks for."""

    first: PageRequest
    options: Options
    page_size: int
    route: str


class ManifestConnector:
    def __init__(self, config: ManifestConfig, http: httpx.AsyncClient, name: str) -> None:
        self.name = name
        self.config = config
        manifest = config.manifest
        errors = manifest.errors
        auth = build_auth(config.auth, config.secrets, config.base_url, config.token_url) if config.auth else None
        self.api = ManifestApiClient(
            manifest.name, http, config.base_url, auth=auth, errors=ManifestErrors(errors), name=name,
            headers={"Accept": "application/json", "User-Agent": "omnisql/0.1", **manifest.headers},
            concurrency=config.concurrency, limits=config.limits, budgets=manifest.rate_limits,
            retry=RetryPolicy(max_attempts=errors.max_attempts, backoff_s=errors.backoff_s,
                              max_wait_s=errors.max_wait_s))
        self.specs = {t.name: table_spec(name, t) for t in manifest.tables}

    def tables(self) -> Sequence[TableSpec]:
        return tuple(self.specs.values())

    async def open(self) -> None:
        """Nothing to discover: the manifest declares every table."""
        return None

    async def aclose(self) -> None:
        """The HTTP client is the process's, closed by its owner."""
        return None

    # -- requests ----------------------------------------------------------------------------------------------
    def _fill(self, value: Any, url: bool = False) -> Any:
        """``{name}`` placeholders of the manifest's ``variables`` (tenant-supplied, never query values)."""
        if isinstance(value, dict):
            return {k: self._fill(v, url) for k, v in value.items()}
        if isinstance(value, list):
            return [self._fill(v, url) for v in value]
        if isinstance(value, str):
            for key, given in self.config.variables.items():
                value = value.replace("{" + key + "}", quote(given, safe="") if url else given)
        return value

    def prepare(self, request: ScanRequest) -> Prepared:
        """The first request of a scan (also what ``omnisql connector check`` and the tests inspect)."""
        table = self.config.manifest.table(request.table)
        template = table.request
        options = build_options(table, request.predicates, template.language)
        page_size = table.paging.page_size
        if request.limit is not None and table.limit_pushdown and not request.prefilters and request.residual is None:
            page_size = max(1, min(page_size, request.limit))
        if request.limit is not None and request.order_by:
            self._order(table, request.order_by[0], options)
        params: dict[str, Any] = {**self._fill(dict(template.query)), **options.params}
        body: dict[str, Any] | None = self._fill(dict(template.body)) if template.body is not None else None
        if options.body:
            body = _deep_merge(body or {}, options.body)
        paging = table.paging
        if paging.page_size_param and paging.type != "none":
            if paging.in_body:
                body = {**(body or {}), paging.page_size_param: page_size}
            else:
                params[paging.page_size_param] = page_size
        if options.fragments or template.language.get("default"):
            text = template.language.get("join", " AND ").join(options.fragments) or template.language["default"]
            if "body_field" in template.language:
                body = {**(body or {}), template.language["body_field"]: text}
            else:
                params[template.language.get("param", "q")] = text
        if template.document is not None:
            variables = {**self._fill(dict(template.variables)), **options.variables}
            if paging.page_size_variable:
                variables[paging.page_size_variable] = page_size
            graphql_filter = options.graphql_filter()
            if template.filter_variable and graphql_filter is not None:
                variables[template.filter_variable] = graphql_filter
            body = {**(body or {}), "query": template.document, "variables": variables}
            if template.operation_name:
                body["operationName"] = template.operation_name
        url = self.config.base_url + self._fill(template.path, url=True)
        route = template.path
        return Prepared(PageRequest(template.method, url, params or None, body), options, page_size, route)

    def describe_request(self, request: ScanRequest) -> str:
        """What the first request of ``request`` sends upstream (filter object, parameters), for plans and logs:
        ``POST /graphql filter={"state": {"name": {"eq": "Done"}}}``."""
        prepared = self.prepare(request)
        options = prepared.options
        parts = [f"{prepared.first.method} {self.config.manifest.table(request.table).request.path}"]
        graphql_filter = options.graphql_filter()
        if graphql_filter is not None:
            parts.append(f"filter={json.dumps(graphql_filter, sort_keys=True, default=str)}")
        for source in (options.params, options.body, options.variables):
            parts += [f"{k}={json.dumps(v, default=str)}" for k, v in sorted(source.items())]
        if options.fragments:
            parts.append(json.dumps(self.config.manifest.table(request.table).request.language.get(
                "join", " AND ").join(options.fragments)))
        return " ".join(parts)

    def _order(self, table: TableDef, order: tuple[str, bool], options: Options) -> None:
        for spec in table.order_by:
            if spec.column == order[0]:
                chosen = order_option(spec, order[1])
                if chosen is None:
                    return
                target, name, value = chosen
                {"query_param": options.params, "variable": options.variables, "body_field": options.body}[
                    target][name] = value
                return

    async def scan_changes(self, request: ScanRequest, since: float, stats: ScanStats) -> Changes | None:
        """What changed since ``since`` (tables with a ``changes`` block; ``changes.py``)."""
        from connectors.declarative.changes import scan_changes

        return await scan_changes(self, request, since, stats)

    # -- the scan ----------------------------------------------------------------------------------------------
    async def scan(self, request: ScanRequest, stats: ScanStats) -> AsyncIterator[pa.RecordBatch]:
        table = self.config.manifest.table(request.table)
        spec = self.specs[request.table]
        prepared = self.prepare(request)
        paginator = paginator_for(table.paging, prepared.page_size)
        selector = RecordSelector(table.records)
        needed = set(request.columns) | {p.column for p in request.row_filters}
        columns = [c for c in table.columns if c.name in needed]
        out_schema = spec.schema_for(request.columns)
        ordered = request.limit is not None and bool(request.order_by) and request.order_by[0][0] in spec.order_pushdown
        top = TopN(request.limit, request.order_by[0][0]) if ordered and request.limit is not None else None
        emitted = 0
        max_pages = min(self.config.max_pages, self.config.manifest.max_pages)
        async with contextlib.aclosing(paginate(self.api, prepared.first, paginator, selector, stats, prepared.route,
                                                max_pages, prefetch=request.limit is None)) as pages:
            async for page in pages:
                stats.listed += len(page.records)
                if not page.records:
                    continue
                batch = self._batch(page.records, columns, spec, request)
                done = False
                if top is not None:
                    done = top.add(batch)
                elif request.limit is not None:
                    batch = batch.slice(0, request.limit - emitted)
                    done = emitted + batch.num_rows >= request.limit
                batch = pa.RecordBatch.from_arrays([batch.column(n) for n in out_schema.names], schema=out_schema)
                emitted += batch.num_rows
                stats.rows += batch.num_rows
                yield batch
                if done:
                    return

    def _batch(self, records: list[Any], columns: list[ColumnDef], spec: TableSpec, request: ScanRequest
               ) -> pa.RecordBatch:
        decoded = decode_records(records, columns, self.config.manifest.name)
        schema = spec.schema_for(decoded)  # never empty: the planner always asks for a column
        batch = pa.RecordBatch.from_arrays([decoded[n] for n in schema.names], schema=schema)
        return filter_batch(batch, request.row_filters, request.residual)


def _deep_merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = _deep_merge(out[key], value) if isinstance(out.get(key), dict) and isinstance(value, dict) \
            else value
    return out
