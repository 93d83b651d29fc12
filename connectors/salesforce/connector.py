"""Salesforce connector: SOQL over ``/services/data/vNN.N/query``, paged by ``nextRecordsUrl``.

Only the fields a query needs are selected (``SELECT *``-style field lists overflow URL limits: HTTP 414/431).
Predicates become SOQL (connectors/salesforce/soql.py) and every row is re-checked here, so each pushed condition
is exact for the planner even where SOQL only narrows (case-insensitive text). An ``IN`` list whose SOQL would not
fit in ``max_url_chars`` is split over several queries (bind joins send ``Id IN (...)`` / ``AccountId IN
(...)``). OAuth 2.0 (client credentials or refresh token) refreshes the session when Salesforce answers 401
``INVALID_SESSION_ID``; ``Sforce-Limit-Info`` feeds the rate-limit budget."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote_plus

import httpx
import pyarrow as pa

from connectors.decode import decode_page
from connectors.filtering import filter_batch
from connectors.http import ApiClient, HttpLimits
from connectors.requester import OAuth2Grant, OAuth2Refresh, PageRequest
from connectors.requester.reply import Reply
from connectors.salesforce.errors import SalesforceErrors, api_usage
from connectors.salesforce.soql import build_where, soql_query
from connectors.salesforce.tables import OBJECTS, SfTable, standard_fields, table_from_describe
from connectors.topn import TopN
from core.errors import InvalidQuery, RateLimitExhausted, SourceTimeout, UpstreamError
from core.types import Predicate, ScanRequest, ScanStats, TableSpec

__all__ = ["SalesforceConfig", "SalesforceConnector"]

log = logging.getLogger("omnisql.connectors")

MAX_PAGES = 500  # 1,000,000 records at 2,000 a batch


@dataclass(frozen=True)
class SalesforceConfig:
    base_url: str  # the My Domain / instance URL, e.g. https://acme.my.salesforce.com
    client_id: str
    client_secret: str = field(default="", repr=False)
    refresh_token: str = field(default="", repr=False)
    grant: Literal["client_credentials", "refresh_token"] = "client_credentials"
    token_url: str = ""  # default: {base_url}/services/oauth2/token
    api_version: str = "62.0"
    batch_size: int = 2000  # Sforce-Query-Options: batchSize (200-2000)
    max_url_chars: int = 16_000
    concurrency: int = 8
    max_pages: int = MAX_PAGES
    limits: HttpLimits = field(default_factory=HttpLimits)


class SalesforceConnector:
    """Implements ``core.types.Connector`` for the ``salesforce`` schema (or the configured connector name)."""

    def __init__(self, config: SalesforceConfig, http: httpx.AsyncClient, name: str = "salesforce") -> None:
        self.name = name
        self.config = config
        base = config.base_url.rstrip("/")
        self.data_url = f"{base}/services/data/v{config.api_version}"
        self.auth = OAuth2Refresh(OAuth2Grant(
            token_url=config.token_url or f"{base}/services/oauth2/token", client_id=config.client_id,
            client_secret=config.client_secret, grant_type=config.grant, refresh_token=config.refresh_token))
        self.api = ApiClient("Salesforce", http, base, auth=self.auth, errors=SalesforceErrors(), name=name,
                             concurrency=config.concurrency, limits=config.limits,
                             headers={"Accept": "application/json", "User-Agent": "omnisql/0.1",
                                      "Sforce-Query-Options": f"batchSize={config.batch_size}"})
        self._tables = {t: table_from_describe(name, t, standard_fields(obj), page_size=config.batch_size)
                        for t, (obj, _, _) in OBJECTS.items()}

    def tables(self) -> Sequence[TableSpec]:
        return tuple(t.spec for t in self._tables.values())

    async def open(self) -> None:
        """Read each object's describe (columns and types) and count its rows (the planner's estimates). Refused
        credentials stop the start with the settings to fix."""
        try:
            await self._discover()
        except UpstreamError as exc:
            if "token endpoint" not in str(exc) and "HTTP 401" not in str(exc):
                raise
            keys = "client_id_env and refresh_token_env" if self.config.grant == "refresh_token" else \
                "client_id_env and client_secret_env"
            raise UpstreamError(f"Salesforce connector {self.name!r} could not sign in: {exc} (settings: "
                                f"connectors.{self.name}.{keys.replace(' and ', f' and connectors.{self.name}.')}, "
                                f"token_url, base_url)") from exc

    async def _discover(self) -> None:
        stats = ScanStats()
        for table, (sobject, _, _) in OBJECTS.items():
            route = f"/sobjects/{sobject}/describe"
            described = await self.api.get_json(f"{self.data_url}/sobjects/{sobject}/describe", stats, route,
                                                expect=dict)
            counted = await self._count(soql_query((), sobject, "", count=True), stats)
            self._tables[table] = table_from_describe(self.name, table, described, counted or None,
                                                      self.config.batch_size)

    async def aclose(self) -> None:
        """The HTTP client is the process's, closed by its owner."""
        return None

    # -- counting ----------------------------------------------------------------------------------------------
    async def count(self, request: ScanRequest, stats: ScanStats) -> int | None:
        """``SELECT COUNT()`` with the request's conditions (one call; only an optimisation, never fails a query)."""
        table = self._tables[request.table]
        where, _ = build_where(request.predicates, table.fields)
        try:
            return await self._count(soql_query((), table.sobject, where, count=True), stats)
        except (UpstreamError, RateLimitExhausted, SourceTimeout) as exc:
            log.warning("%s count failed (%s); planning without it", self.name, exc.code)
            return None

    async def _count(self, soql: str, stats: ScanStats) -> int | None:
        reply = await self._send(PageRequest("GET", f"{self.data_url}/query", {"q": soql}), stats, "/query")
        body = self.api.json(reply, "/query", dict)
        total = body.get("totalSize")
        return total if isinstance(total, int) and not isinstance(total, bool) and total >= 0 else None

    # -- scanning ----------------------------------------------------------------------------------------------
    def soql_for(self, request: ScanRequest) -> list[str]:
        """The SOQL queries of one scan: one, or several when an IN list makes the URL too long."""
        table = self._tables[request.table]
        needed = set(request.columns) | {p.column for p in request.row_filters}
        select = [table.fields[c].name for c in table.spec.schema_for(needed).names] or ["Id"]
        groups = self._fit(list(request.predicates), table, select)
        if len(groups) > 1:
            return [soql_query(select, table.sobject, build_where(g, table.fields)[0]) for g in groups]
        where, exact = build_where(groups[0], table.fields)
        exact = exact and not request.prefilters and request.residual is None
        order = None
        if request.limit is not None and request.order_by:
            column, descending = request.order_by[0]
            order = (table.fields[column].name, descending)
        limit = request.limit if exact and order is None and request.limit is not None else None
        return [soql_query(select, table.sobject, where, order, limit)]

    def _fit(self, predicates: list[Predicate], table: SfTable, select: list[str]) -> list[list[Predicate]]:
        """Split the longest IN list until each query's URL fits ``max_url_chars``."""
        done: list[list[Predicate]] = []
        todo = [predicates]
        while todo:
            group = todo.pop()
            soql = soql_query(select, table.sobject, build_where(group, table.fields)[0])
            if len(self.data_url) + len("/query?q=") + len(quote_plus(soql)) <= self.config.max_url_chars:
                done.append(group)
                continue
            lists = [p for p in group if p.op == "IN" and len(p.values) > 1]
            if not lists:
                raise InvalidQuery(f"the SOQL for {self.name}.{table.spec.name} does not fit in a URL of "
                                   f"{self.config.max_url_chars} characters; narrow the query")
            widest = max(lists, key=lambda p: len(p.values))
            half = len(widest.values) // 2
            for part in (widest.values[:half], widest.values[half:]):
                todo.append([dataclasses.replace(widest, values=part) if p is widest else p for p in group])
        return done

    async def scan(self, request: ScanRequest, stats: ScanStats) -> AsyncIterator[pa.RecordBatch]:
        queries = self.soql_for(request)
        table = self._tables[request.table]
        top = TopN(request.limit, request.order_by[0][0]) \
            if request.limit is not None and request.order_by and len(queries) == 1 else None
        emitted = 0
        for soql in queries:
            async for records in self._pages(soql, stats):
                stats.listed += len(records)
                batch = self._to_batch(records, table, request)
                done = False
                if top is not None:
                    done = top.add(batch)
                elif request.limit is not None and not request.order_by:
                    batch = batch.slice(0, request.limit - emitted)
                    done = emitted + batch.num_rows >= request.limit
                emitted += batch.num_rows
                stats.rows += batch.num_rows
                if batch.num_rows:
                    yield batch
                if done:
                    return

    async def _pages(self, soql: str, stats: ScanStats) -> AsyncIterator[list[dict[str, Any]]]:
        """Each page's records, following ``nextRecordsUrl`` (bounded; a locator seen twice is refused)."""
        request = PageRequest("GET", f"{self.data_url}/query", {"q": soql})
        seen: set[str] = set()
        for _ in range(self.config.max_pages):
            reply = await self._send(request, stats, "/query")
            stats.pages += 1
            body = self.api.json(reply, "/query", dict)
            records = body.get("records")
            if not isinstance(records, list):
                raise UpstreamError("Salesforce answered /query without a records list; retry later")
            yield records
            next_url = body.get("nextRecordsUrl")
            if body.get("done", True) or not isinstance(next_url, str) or not next_url:
                return
            if next_url in seen:
                raise UpstreamError("Salesforce repeated a nextRecordsUrl; stopped paging (retry later)")
            seen.add(next_url)
            request = PageRequest("GET", str(httpx.URL(self.config.base_url).join(next_url)))
        raise UpstreamError(f"Salesforce listing passed max_pages = {self.config.max_pages}; narrow the query or "
                            f"raise connectors.{self.name}.max_pages")

    async def _send(self, request: PageRequest, stats: ScanStats, route: str) -> Reply:
        reply = await self.api.send(request, stats, route)
        usage = api_usage(reply)
        if usage is not None:
            used, limit = usage
            stats.rate_limit_remaining, stats.rate_limit_limit = max(limit - used, 0), limit
            if stats.gate is not None:
                await stats.gate.observe(max(limit - used, 0), None)
        return reply

    def _to_batch(self, records: list[dict[str, Any]], table: SfTable, request: ScanRequest) -> pa.RecordBatch:
        needed = set(request.columns) | {p.column for p in request.row_filters}
        schema = table.spec.schema_for(needed)
        # dates arrive as 'YYYY-MM-DD' text: parse them as strings, then cast (malformed text is the upstream's)
        as_text = pa.schema([f.with_type(pa.string()) if pa.types.is_date(f.type) else f for f in schema])
        cols = decode_page(records, as_text, table.wire, "Salesforce")
        try:
            arrays = {n: cols[n].cast(schema.field(n).type) for n in schema.names}
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise UpstreamError("Salesforce returned a date that is not YYYY-MM-DD; retry later, or report it if "
                                "it persists") from exc
        batch = pa.RecordBatch.from_pydict(arrays, schema=schema)
        batch = filter_batch(batch, request.row_filters, request.residual)
        out = table.spec.schema_for(request.columns)
        return pa.RecordBatch.from_arrays([batch.column(n) for n in out.names], schema=out)
