"""Run a FetchPlan: every scan step's requests concurrently on one asyncio loop, then the final SQL in DuckDB
over zero-copy Arrow views. Total latency is the slowest source, not the sum."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Mapping
from concurrent.futures import CancelledError, Future
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import pyarrow as pa

from connectors.ratelimit import RateLimiter
from core import tracing
from core.errors import SourceTimeout
from core.types import ChangeListing, Changes, Connector, Counting, Describing, ScanRequest, ScanStats, TableSpec
from planner.access import SYSTEM_SCHEMAS, secure_table
from planner.arrow_final import ArrowFinal
from planner.binding import bound_requests
from planner.cache import ChangesLoader, FetchKind, ScanCache
from planner.context import FetchAllowance, QueryContext
from planner.control import QueryControl
from planner.duck import RESULT_BATCH_ROWS, Duck
from planner.estimates import Estimator
from planner.plan import FetchPlan, ScanStep, strategy_label, view_name
from planner.planner import EXPLAIN_SCHEMA
from planner.system import SourceMonitor

__all__ = ["BackgroundLoop", "Executor", "OnCancel", "QueryResult", "StepResult"]

T = TypeVar("T")
# Registers a function to call when the caller goes away; returns False if it already has (gRPC's add_callback).
OnCancel = Callable[[Callable[[], object]], bool]


class BackgroundLoop:
    """One asyncio loop in a daemon thread; synchronous callers (gRPC threads) submit coroutines to it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="omnisql-io", daemon=True)
        self.thread.start()

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        return self.submit(coro).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


@dataclass
class StepResult:
    table: pa.Table
    stats: ScanStats
    ms: float
    strategy: str = "scan"  # what actually ran (a bind join may fall back to a semi-join at run time)
    keys: int | None = None  # join keys received from the step this one binds from
    cache_hits: int = 0  # requests answered from the scan cache
    fetch: str = ""  # how its requests were had: hit, delta (changes merged into a cached copy) or full, counted


@dataclass
class QueryResult:
    table: pa.Table
    steps: list[StepResult] = field(default_factory=list)
    fetch_ms: float = 0.0
    duckdb_ms: float = 0.0

    @property
    def api_calls(self) -> int:
        return sum(s.stats.api_calls for s in self.steps)


class Executor:
    def __init__(self, connectors: Mapping[str, Connector], duck: Duck, loop: BackgroundLoop,
                 estimator: Estimator | None = None, mask_key: bytes = b"", cache: ScanCache | None = None,
                 throttle: RateLimiter | None = None, monitor: SourceMonitor | None = None) -> None:
        self.connectors = connectors
        self.monitor = monitor or SourceMonitor()  # requests and last outcome per connector (omnisql.sources)
        self.throttle = throttle  # per-credential token buckets (None: not governed, e.g. unit tests)
        self.duck = duck
        self.loop = loop
        self.estimator = estimator or Estimator()
        self.cache = cache or ScanCache()
        self.mask_key = mask_key  # the tenant's key for hash/email masks (never logged, never in a plan)

    def execute(self, plan: FetchPlan, ctx: QueryContext) -> QueryResult:
        """Run the plan under the context's control. A stop — the client going away or the deadline — cancels
        the fetch tasks (and their HTTP requests) at once, so an abandoned query stops spending the tenant's API
        budget, and interrupts DuckDB, so it stops spending the server's CPU. Fills the context's counters."""
        fetch_started = time.perf_counter()
        steps = self._fetched(plan, ctx)
        started = time.perf_counter()
        if plan.explain:
            table = explain_table(plan, steps if plan.explain == "EXPLAIN ANALYZE" else None, self._upstream)
        else:
            with tracing.span("omnisql.duckdb"):
                table = self._final(plan, steps, ctx).read_all()
        duckdb_ms = (time.perf_counter() - started) * 1000
        ctx.counters.duckdb_ms += duckdb_ms
        return QueryResult(table, steps, fetch_ms=(started - fetch_started) * 1000, duckdb_ms=duckdb_ms)

    def stream(self, plan: FetchPlan, ctx: QueryContext) -> pa.RecordBatchReader:
        """Like ``execute``, with DuckDB's result streamed: the fetch is done (and its errors raised) before this
        returns; the final SQL's batches are made as the caller reads them, so the first can be sent before the
        last is computed and the server holds about one batch window, not the whole result."""
        steps = self._fetched(plan, ctx)
        if plan.explain:
            return pa.RecordBatchReader.from_batches(
                EXPLAIN_SCHEMA,
                explain_table(plan, steps if plan.explain == "EXPLAIN ANALYZE" else None, self._upstream).to_batches())
        started = time.perf_counter()
        final = self._final(plan, steps, ctx)
        ctx.counters.duckdb_ms += (time.perf_counter() - started) * 1000  # binding and the first batch's start
        return final

    def _fetched(self, plan: FetchPlan, ctx: QueryContext) -> list[StepResult]:
        """Every scan step's rows (a table-free query — SELECT 1, VALUES — needs no trip to the I/O loop)."""
        control = ctx.control
        started = time.perf_counter()
        control.check()
        steps: list[StepResult] | None = self._cached_now(plan, ctx) if plan.steps else []
        if steps is None:
            future = self.loop.submit(self._fetch_all(plan, ctx))
            control.on_stop(future.cancel)
            try:
                steps = future.result()
            except CancelledError:
                raise control.error() from None
        counters = ctx.counters
        counters.executions += 1
        counters.fetch_ms += (time.perf_counter() - started) * 1000
        counters.api_calls += sum(s.stats.api_calls for s in steps)
        counters.cache_hits += sum(r.cache_hits for r in steps)
        for step, result in zip(plan.steps, steps, strict=True):
            source = ctx.sources.setdefault(step.spec.qualified_name, {"api_calls": 0, "cache_hits": 0, "fetch": []})
            source["api_calls"] += result.stats.api_calls
            source["cache_hits"] += result.cache_hits
            if result.fetch:
                source["fetch"].append(result.fetch)
        return steps

    def _cached_now(self, plan: FetchPlan, ctx: QueryContext) -> list[StepResult] | None:
        """Every step's rows from this process's scan cache, on the calling thread: a cached query's largest cost
        was its trip to the I/O loop and back. None — take the loop — unless every request of every step is a
        young enough local hit and the budgets are in this process (not EXPLAIN, no bound step)."""
        if plan.explain or ctx.freshness.max_staleness_ms <= 0 or any(
                s.binding is not None or not s.spec.cacheable for s in plan.steps):
            return None
        found = []
        for step in plan.steps:
            entries = [self.cache.hit_now(ctx.scope, self._scoped(r, step, ctx), ctx.freshness)
                       for r in step.requests]
            if any(entry is None for entry in entries):
                return None
            found.append(entries)
        if not self.note_budgets_now(ctx):
            return None
        steps = []
        for step, entries in zip(plan.steps, found, strict=True):
            with tracing.span("omnisql.scan", {"omnisql.table": step.spec.qualified_name, "omnisql.alias": step.alias,
                                               "omnisql.step": step.index}) as span:
                started = time.perf_counter()
                hit: FetchKind = "hit"
                parts = [(self.cache.use(entry, ctx.freshness), hit) for entry in entries if entry is not None]
                result = self._step_result(step, parts, ScanStats(budget=ctx.budget), ctx, started)
                _describe_span(span, result)
            steps.append(result)
            self.monitor.record(self.connectors[step.spec.schema_name].name, 0, None)
        return steps

    def _final(self, plan: FetchPlan, steps: list[StepResult], ctx: QueryContext) -> pa.RecordBatchReader:
        """The final SQL over the steps' rows as zero-copy views, in the plan's announced schema."""
        views = {s.view_name: r.table for s, r in zip(plan.steps, steps, strict=True)}
        if plan.arrow_final is not None:
            table = _arrow_final(plan.arrow_final, views.get(plan.arrow_final.view), plan.schema)
            if table is not None:
                self.duck.check_result_size(table.nbytes)
                return pa.RecordBatchReader.from_batches(plan.schema, table.to_batches(RESULT_BATCH_ROWS))
        reader = self.duck.stream(plan.final_sql, views, plan.params.duckdb_values(), ctx.control)
        if reader.schema == plan.schema:
            return reader
        return pa.RecordBatchReader.from_batches(plan.schema, (b.cast(plan.schema) for b in reader))

    async def _fetch_all(self, plan: FetchPlan, ctx: QueryContext) -> list[StepResult]:
        """The steps' rows, then the budgets they left (``note_budgets``) in the same trip to the loop."""
        if plan.explain == "EXPLAIN":
            steps = [StepResult(s.schema.empty_table(), ScanStats(), 0.0) for s in plan.steps]
        else:
            control = ctx.control
            try:
                steps = await asyncio.wait_for(self._run_steps(plan, ctx), control.remaining())
            except TimeoutError as exc:
                raise SourceTimeout(f"the sources did not answer within the query deadline of "
                                    f"{control.deadline_s:g} s; narrow the query or retry") from exc
        await self.note_budgets(ctx)
        return steps

    def budgeted(self, ctx: QueryContext) -> list[str]:
        """The governed connectors the query reads (their budgets go into its answer)."""
        names = dict.fromkeys(t.partition(".")[0] for t in ctx.tables)
        return [n for n in names if n not in SYSTEM_SCHEMAS] if self.throttle is not None else []

    def note_budgets_now(self, ctx: QueryContext) -> bool:
        """``note_budgets`` from this thread when the buckets are in this process (no trip to the loop); False
        when they must be read on the loop (Redis)."""
        names = self.budgeted(ctx)
        statuses = [self.throttle.status_now(f"{ctx.tenant}/{n}") for n in names] if self.throttle else []
        if any(status is None for status in statuses):
            return False
        ctx.rate_limits.update((n, s.as_dict()) for n, s in zip(names, statuses, strict=True) if s is not None)
        return True

    async def note_budgets(self, ctx: QueryContext) -> None:
        """Fill ``ctx.rate_limits``: each governed connector's API budget now (no API call), read concurrently."""
        names = self.budgeted(ctx)
        if self.throttle is None or not names:
            return
        statuses = await asyncio.gather(*(self.throttle.status(f"{ctx.tenant}/{n}") for n in names))
        ctx.rate_limits.update((n, status.as_dict()) for n, status in zip(names, statuses, strict=True))

    async def _run_steps(self, plan: FetchPlan, ctx: QueryContext) -> list[StepResult]:
        """Every step starts at once, except that a bound step first awaits the one step it takes keys from
        (not the whole wave before it). A failing step cancels the rest."""
        tasks: dict[int, asyncio.Task[StepResult]] = {}
        for wave in plan.waves():  # sources are created before the steps that await them
            for step in wave:
                source = tasks[step.binding.source] if step.binding else None
                tasks[step.index] = asyncio.ensure_future(self._fetch(plan, step, source, ctx))
        try:
            return list(await asyncio.gather(*(tasks[s.index] for s in plan.steps)))
        finally:
            for task in tasks.values():
                task.cancel()

    async def _fetch(self, plan: FetchPlan, step: ScanStep, source: asyncio.Task[StepResult] | None,
                     ctx: QueryContext) -> StepResult:
        source_result = await source if source is not None else None
        with tracing.span("omnisql.scan", {"omnisql.table": step.spec.qualified_name, "omnisql.alias": step.alias,
                                           "omnisql.step": step.index}) as span:
            result = await self._fetch_step(plan, step, source_result, ctx)
            _describe_span(span, result)
            return result

    async def _fetch_step(self, plan: FetchPlan, step: ScanStep, source_result: StepResult | None,
                          ctx: QueryContext) -> StepResult:
        connector = self.connectors[step.spec.schema_name]
        credential = f"{ctx.tenant}/{connector.name}"  # the rate-limit bucket: per (tenant, connector credential)
        gate = self.throttle.gate(credential, ctx.control.deadline) if self.throttle is not None else None
        stats = ScanStats(budget=ctx.budget, gate=gate)
        try:
            result = await self._fetch_rows(plan, step, source_result, ctx, stats, connector)
        except BaseException as exc:
            self.monitor.record(connector.name, stats.api_calls, exc)
            raise
        self.monitor.record(connector.name, stats.api_calls, None)
        return result

    async def _fetch_rows(self, plan: FetchPlan, step: ScanStep, source_result: StepResult | None,
                          ctx: QueryContext, stats: ScanStats, connector: Connector) -> StepResult:
        started = time.perf_counter()
        requests, strategy, keys = step.requests, "scan", None
        if step.binding is not None and source_result is not None:
            requests, strategy, keys = await self._bind(plan, step, source_result, ctx.control)
        parts = await asyncio.gather(*(
            self._cached(connector, self._scoped(r, step, ctx), stats, ctx, step.spec) for r in requests))
        return self._step_result(step, list(parts), stats, ctx, started, strategy, keys)

    def _scoped(self, request: ScanRequest, step: ScanStep, ctx: QueryContext) -> ScanRequest:
        """The request as the caller sends it: its security scope, credential (the rate-limit bucket: per tenant
        and connector) and principal."""
        credential = f"{ctx.tenant}/{self.connectors[step.spec.schema_name].name}"
        return replace(request, scope=ctx.scope, credential=credential, principal=ctx.principal.user)

    def _step_result(self, step: ScanStep, parts: list[tuple[list[pa.RecordBatch], FetchKind]], stats: ScanStats,
                     ctx: QueryContext, started: float, strategy: str = "scan", keys: int | None = None
                     ) -> StepResult:
        """The step's table from its requests' batches, secured (row filter, masks) when its policy says so."""
        batches = [b for part, _ in parts for b in part]
        kinds = Counter(kind for _, kind in parts)
        hits = kinds["hit"]
        schema = step.fetch_schema
        table = pa.Table.from_batches(batches, schema=schema) if batches else schema.empty_table()
        if step.secured:
            secured = time.perf_counter()
            with tracing.span("omnisql.security"):
                table = secure_table(table, step.spec, step.row_filter, step.masks, step.hidden, self.mask_key,
                                     lambda rows, condition: self.duck.run(f"SELECT * FROM __rows WHERE {condition}",
                                                                           {"__rows": rows}, control=ctx.control))
            ctx.counters.security_ms += (time.perf_counter() - secured) * 1000
        if step.binding is None and step.limit is None and set(kinds) == {"full"}:  # what the API lists, for estimates
            pushed = tuple(c.predicate for c in step.pushed)
            # Under a row filter, only the rows it lets through: the API's own count includes rows the principal
            # may not see, and EXPLAIN's est_rows would hand it back (an exact count of hidden rows per pushed
            # condition). The principal can count what it sees anyway.
            listed = stats.listed if step.row_filter is None else min(stats.listed, table.num_rows)
            self.estimator.scoped(ctx.scope).statistics.record(step.spec, pushed, listed)
        fetch = next(iter(kinds)) if len(kinds) == 1 else ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
        return StepResult(table, stats, (time.perf_counter() - started) * 1000, strategy, keys, hits, fetch)

    async def _cached(self, connector: Connector, request: ScanRequest, stats: ScanStats, ctx: QueryContext,
                      spec: TableSpec) -> tuple[list[pa.RecordBatch], FetchKind]:
        """One request through the scan cache under the query's freshness (``max_staleness_ms``); a table whose
        connector lists changes is refreshed by merging them into a recent copy (delta refresh)."""
        if not spec.cacheable:
            return await self._scan(connector, request, stats, ctx.fetched), "full"
        changes: ChangesLoader | None = None
        key = spec.primary_key[0] if spec.delta_refresh and len(spec.primary_key) == 1 else None
        if key is not None and request.limit is None and isinstance(connector, ChangeListing):
            lister = connector

            async def changes(since: float) -> Changes | None:
                return await lister.scan_changes(request, since, stats)
        return await self.cache.scan(ctx.scope, request, ctx.freshness,
                                     lambda: self._scan(connector, request, stats, ctx.fetched), changes, key,
                                     spec.page_size)

    def _upstream(self, step: ScanStep) -> str | None:
        """What the step's (first) request sends to its API, when the connector can say (``Describing``); a bound
        step's keys are only known at run time."""
        connector = self.connectors.get(step.spec.schema_name)
        if not isinstance(connector, Describing) or not step.requests:
            return None
        described = connector.describe_request(step.requests[0])
        return described + (" + the join keys" if step.binding is not None else "")

    async def _bind(self, plan: FetchPlan, step: ScanStep, source: StepResult, control: QueryControl
                    ) -> tuple[tuple[ScanRequest, ...], str, int]:
        """The bound step's requests from the source's distinct keys; the mode is the plan's own rule applied
        to the actual key count (``Binding.runtime_mode``), nothing re-estimated."""
        binding = step.binding
        assert binding is not None
        keys = self.duck.run(binding.key_sql, {view_name(binding.source): source.table},
                             plan.params.subset(binding.key_params), control).column(0).to_pylist()
        mode = binding.runtime_mode(len(keys))
        strategy = strategy_label(mode, binding.batch)
        if mode != binding.mode:
            strategy += f" ({len(keys)} keys > {binding.max_keys}: listing costs less than a bind join)"
        return bound_requests(step, mode, keys), strategy, len(keys)

    async def count_listing(self, step: ScanStep, ctx: QueryContext) -> int | None:
        """What the step's unbound request would list, when its API can count that in one call (Jira's
        approximate count); None when it cannot. The planner asks before betting on a bind join."""
        connector = self.connectors[step.spec.schema_name]
        if not isinstance(connector, Counting) or len(step.requests) != 1:
            return None
        credential = f"{ctx.tenant}/{connector.name}"
        gate = self.throttle.gate(credential, ctx.control.deadline) if self.throttle is not None else None
        stats = ScanStats(budget=ctx.budget, gate=gate)
        request = replace(step.requests[0], scope=ctx.scope, credential=credential, principal=ctx.principal.user)
        try:
            return await connector.count(request, stats)
        finally:
            ctx.counters.api_calls += stats.api_calls

    async def _scan(self, connector: Connector, request: ScanRequest, stats: ScanStats,
                    fetched: FetchAllowance | None = None) -> list[pa.RecordBatch]:
        """Connectors raise the error vocabulary for what upstream did wrong (bad bodies included); anything
        else is a bug of ours and travels on as INTERNAL with an incident id in the server log. Every batch
        counts against the query's ``fetched`` allowance as it arrives."""
        batches = []
        async for batch in connector.scan(request, stats):
            if fetched is not None:
                fetched.take(batch.nbytes)
            batches.append(batch)
        return batches


def explain_table(plan: FetchPlan, actual: list[StepResult] | None,
                  upstream: Callable[[ScanStep], str | None] = lambda step: None) -> pa.Table:
    waves = {step.index: n for n, wave in enumerate(plan.waves()) for step in wave}
    rows = []
    for i, step in enumerate(plan.steps):
        result = actual[i] if actual else None
        strategy = step.strategy
        if result is not None and step.binding is not None:
            strategy = result.strategy + (" + lookup" if step.lookups else "")
        rows.append({
            "step": step.index, "wave": waves[step.index], "source_table": step.spec.qualified_name,
            "alias": step.alias,
            "strategy": strategy,
            "pushed_exact": "; ".join(str(c.predicate) for c in step.pushed if c.exact) or None,
            "pushed_inexact": "; ".join(str(c.predicate) for c in step.pushed if not c.exact) or None,
            "local": "; ".join(step.local) or None, "projection": ", ".join(step.columns),
            "lookups": _lookups(step),
            "binding": str(step.binding) if step.binding else None,
            "limit": step.limit, "order_by": step.order_by, "requests": None if step.binding else len(step.requests),
            "upstream": result.stats.access if result and result.stats.access else upstream(step) or None,
            "est_api_calls": step.est_calls, "est_pages": step.est_pages, "est_rows": step.est_rows,
            "est_keys": step.binding.est_keys if step.binding else None,
            "keys": result.keys if result else None,
            "api_calls": result.stats.api_calls if result else None, "pages": result.stats.pages if result else None,
            "not_modified": result.stats.not_modified if result else None,  # of api_calls: 304s, no token spent
            "rows": result.table.num_rows if result else None, "cache_hits": result.cache_hits if result else None,
            "fetch": result.fetch or None if result else None,
            "ms": round(result.ms, 2) if result else None,
        })
    rows.append({"step": len(plan.steps), "wave": len(plan.waves()), "source_table": None, "alias": None,
                 "strategy": "arrow" if plan.arrow_final else "duckdb", "local": plan.final_sql, "requests": 0})
    return pa.Table.from_pylist(rows, schema=EXPLAIN_SCHEMA)


def _lookups(step: ScanStep) -> str | None:
    if not step.lookups:
        return None
    costs = ", ".join(f"{c} ({step.spec.fetch_costs.get(step.spec.column(c).fetch, 'per row')})"
                      for c in step.lookups)
    return costs + (f", only for rows where {' AND '.join(step.prelookup)}" if step.prelookup else "")


def _arrow_final(final: ArrowFinal, table: pa.Table | None, schema: pa.Schema) -> pa.Table | None:
    """The final SQL as Arrow compute, or None when the fetched table is not as planned (then DuckDB runs it)."""
    try:
        return final.run(table, schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, KeyError):
        return None


def _describe_span(span: Any, result: StepResult) -> None:
    span.set_attributes({"omnisql.strategy": result.strategy, "omnisql.api_calls": result.stats.api_calls,
                         "omnisql.cache_hits": result.cache_hits, "omnisql.rows": result.table.num_rows})
