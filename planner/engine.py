"""The engine: the only door into planning and execution. The Flight service (and later the HTTP gateway)
creates one ``QueryContext`` per request and calls ``prepare`` / ``schema`` / ``execute``; nothing outside
``planner/`` reaches into parsing, parameters or plans."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import OrderedDict
from collections.abc import Hashable, Iterator, Mapping, Sequence
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from connectors.ratelimit import RateLimiter
from core import tracing
from core.errors import InvalidQuery, ResourceExhausted
from core.types import Connector
from planner.access import INFORMATION_SCHEMA, SYSTEM_SCHEMA, SYSTEM_SCHEMAS, visible_catalog
from planner.binding import JOIN_STRATEGIES
from planner.cache import ScanCache
from planner.catalog import Catalog
from planner.context import QueryContext, QueryLimits, QueryOptions
from planner.duck import DEFAULT_MAX_RESULT_BYTES, Duck
from planner.estimates import Estimator
from planner.execute import BackgroundLoop, Executor, OnCancel, QueryResult
from planner.information_schema import InformationSchemaConnector
from planner.parameters import Parameters, parameter_rows, parameter_schema, to_parameters
from planner.parse import parse_query
from planner.plan import FetchPlan
from planner.plan_cache import PlanCache, plan_key
from planner.planner import EXPLAIN_SCHEMA, Planner, split_explain
from planner.system import QueryLog, SourceMonitor, SystemConnector
from security.policy import ALLOW_ALL, Policy
from security.principals import Principal

__all__ = ["JOIN_STRATEGIES", "BackgroundLoop", "Engine", "OnCancel", "Prepared", "QueryContext", "QueryLimits",
           "QueryOptions"]

MAX_SCOPES = 1024  # security scopes whose visible catalog is kept
IN_PROCESS = Principal(user="in-process", tenant="default")  # tests, benchmarks and the CLI's own checks


@dataclass(frozen=True)
class Prepared:
    """What a prepared statement announces before any value is bound."""

    dataset_schema: pa.Schema
    parameter_schema: pa.Schema


class Engine:
    def __init__(self, connectors: Mapping[str, Connector], loop: BackgroundLoop, pushdown: bool = True,
                 deadline_s: float = 60.0, join_strategy: str = "auto", limits: QueryLimits | None = None,
                 policy: Policy = ALLOW_ALL, default_max_staleness_ms: int = 0, cache: ScanCache | None = None,
                 throttle: RateLimiter | None = None) -> None:
        self.cache = cache or ScanCache()
        self.query_log = QueryLog()
        self._scope_catalogs: OrderedDict[str, Catalog] = OrderedDict()  # security scope → the catalog it sees
        self._scope_lock = threading.Lock()
        self._scopes: dict[tuple[object, ...], str] = {}  # principal identity → its security scope
        self.monitor = SourceMonitor()
        self.throttle = throttle
        self.connectors = {**connectors,
                           SYSTEM_SCHEMA: SystemConnector(self.query_log, self.cache, self.monitor, throttle,
                                                          self._catalog_of_scope),
                           INFORMATION_SCHEMA: InformationSchemaConnector(self._catalog_of_scope)}
        self.catalog = Catalog(spec for c in self.connectors.values() for spec in c.tables())
        self.limits = limits or QueryLimits(deadline_s=deadline_s)
        self.duck = Duck(memory_limit=self.limits.memory_bytes,
                         max_result_bytes=self.limits.result_bytes or DEFAULT_MAX_RESULT_BYTES)
        self.loop = loop
        self.estimator = Estimator()  # shared: the executor records what it fetched, the planner estimates with it
        self.policy = policy
        self.default_max_staleness_ms = default_max_staleness_ms
        policy.validate(list(self.catalog.tables.values()))
        self.plans = PlanCache()
        self.planner = Planner(self.catalog, self.duck, pushdown=pushdown, join_strategy=join_strategy,
                               estimator=self.estimator, policy=policy)
        self.executor = Executor(self.connectors, self.duck, loop, estimator=self.estimator,
                                 mask_key=policy.mask_key, cache=self.cache, throttle=throttle,
                                 monitor=self.monitor)

    # -- contexts ----------------------------------------------------------------------------------------------
    def context(self, principal: Principal | None = None, options: QueryOptions | None = None,
                on_cancel: OnCancel | None = None) -> QueryContext:
        """A fresh context under the tenant's limits. ``on_cancel`` registers a callback for when the caller
        goes away (gRPC's ``add_callback``): the query then stops wherever it is. Without a principal the
        context is the operator's own in-process use (trusted: no policy); every request from a client carries
        its authenticated principal."""
        options = options or QueryOptions()
        if options.max_staleness_ms is None:  # the tenant's default_max_staleness_ms (0: live)
            options = dataclasses.replace(options, max_staleness_ms=self.default_max_staleness_ms)
        ctx = QueryContext(principal or IN_PROCESS, self.limits, options)
        ctx.trusted = principal is None
        ctx.security_scope = "in-process" if ctx.trusted else self.scope_of(ctx.principal)
        self._remember_scope(ctx.security_scope, None if ctx.trusted else ctx.principal)
        if on_cancel is not None and not on_cancel(ctx.control.cancel):
            ctx.control.cancel()
        return ctx

    def scope_of(self, principal: Principal) -> str:
        """The principal's security scope under the policy (principals who see the same share one), computed
        once per identity (user, tenant, roles and attributes: everything the policy can match on). A policy
        whose answers may change (an external decision point) is asked every time: it caches them itself."""
        if not self.policy.static:
            return self.policy.scope(principal, self.catalog.tables.values())
        identity = (principal.user, principal.tenant, principal.roles, tuple(sorted(principal.attributes.items())))
        with self._scope_lock:
            scope = self._scopes.get(identity)
        if scope is None:
            scope = self.policy.scope(principal, self.catalog.tables.values())
            with self._scope_lock:
                if len(self._scopes) >= MAX_SCOPES * 16:
                    self._scopes.clear()
                self._scopes[identity] = scope
        return scope

    def visible_catalog(self, principal: Principal) -> Catalog:
        """The catalog as this principal may see it, for metadata RPCs and ``information_schema``: the system
        tables (``omnisql.*``, ``information_schema.*``) are queryable by everyone but not listed, so catalog
        browsers show the apps' tables only. Built once per security scope."""
        scope = self.scope_of(principal)
        self._remember_scope(scope, principal)
        return self._catalog_of_scope(scope)

    def _remember_scope(self, scope: str, principal: Principal | None) -> None:
        """Keep the catalog ``scope`` sees (bounded LRU; principals of one scope see alike by definition)."""
        with self._scope_lock:
            if scope in self._scope_catalogs:
                self._scope_catalogs.move_to_end(scope)
                return
        seen = self.catalog if principal is None or self.policy is ALLOW_ALL \
            else visible_catalog(self.catalog, self.policy, principal)
        listed = Catalog(spec for spec in seen.tables.values() if spec.schema_name not in SYSTEM_SCHEMAS)
        with self._scope_lock:
            self._scope_catalogs[scope] = listed
            while len(self._scope_catalogs) > MAX_SCOPES:
                self._scope_catalogs.popitem(last=False)

    def _catalog_of_scope(self, scope: str) -> Catalog:
        with self._scope_lock:
            catalog = self._scope_catalogs.get(scope)
        return catalog if catalog is not None else Catalog(())  # an unknown scope sees nothing

    # -- the Flight SQL verbs ----------------------------------------------------------------------------------
    def prepare(self, sql: str, ctx: QueryContext) -> Prepared:
        """The result and parameter schemas of a statement, before values are bound and before any API call.
        Unbound parameters are typed NULLs for DuckDB and stand-in values for pushdown, so ``login = ?`` still
        counts as the filter a table requires."""
        params = parameter_schema(parse_query(split_explain(sql)[1]), self.catalog)
        if not len(params):  # nothing to stand in for: the very plan GetFlightInfo and DoGet will use
            return Prepared(self.plan(sql, Parameters(), ctx).schema, params)
        dataset = self.plan(sql, Parameters.placeholders(params), ctx, count_listings=False).schema
        return Prepared(dataset, params)

    def schema(self, sql: str, params: pa.Table | None, ctx: QueryContext) -> pa.Schema:
        """GetFlightInfo / GetSchema: the result schema for these bound rows (the first row types them)."""
        rows = parameter_rows(params)
        schema = self.plan(sql, rows[0] if rows else Parameters(), ctx).schema
        self.note_budgets(ctx)
        return schema

    def execute(self, sql: str, params: pa.Table | None, ctx: QueryContext) -> pa.Table:
        """DoGet: one execution per bound row (Flight SQL treats the rows as one execution), concatenated."""
        results = [self.query(sql, row, ctx) for row in parameter_rows(params) or [Parameters()]]
        table = results[0].table if len(results) == 1 else pa.concat_tables([r.table for r in results])
        ctx.counters.rows += table.num_rows
        return table

    def stream(self, sql: str, params: pa.Table | None, ctx: QueryContext) -> pa.RecordBatchReader:
        """DoGet, streamed: planned and fetched before this returns (errors raise here), DuckDB's batches made
        as the caller reads them. Several bound rows run one after another as ``execute`` does."""
        rows = parameter_rows(params)
        if len(rows) > 1:
            table = self.execute(sql, params, ctx)
            return pa.RecordBatchReader.from_batches(table.schema, table.to_batches())
        reader = self.executor.stream(self.plan(sql, rows[0] if rows else Parameters(), ctx), ctx)

        def counted() -> Iterator[pa.RecordBatch]:
            for batch in reader:
                ctx.counters.rows += batch.num_rows
                yield batch

        return pa.RecordBatchReader.from_batches(reader.schema, counted())

    # -- in-process use (tests, benchmarks, EXPLAIN) -----------------------------------------------------------
    def plan(self, sql: str, params: Sequence[Any] | Parameters = (), ctx: QueryContext | None = None,
             count_listings: bool = True) -> FetchPlan:
        """Plan under ``ctx``. ``count_listings``: before betting on a bind join whose target's size is only a
        guess, let the API count it (one call) and plan again with the count; EXPLAIN does the same, so it shows
        what the run will do. Off for prepared statements, whose values are stand-ins."""
        ctx = ctx or self.context()
        started = time.perf_counter()
        explain, body = split_explain(sql)
        try:
            values = params if isinstance(params, Parameters) else to_parameters(params)
            with tracing.span("omnisql.plan"):
                plan = self.plans.get(self._plan_key(body, values, ctx, count_listings))
                if plan is None:
                    plan = self.planner.plan(body, values, ctx)
                    if count_listings and self._count_guessed_listings(plan, ctx):
                        plan = self.planner.plan(body, values, ctx)
                    self.plans.put(self._plan_key(body, values, ctx, count_listings), plan)
        except RecursionError as exc:  # sqlglot walks the tree recursively
            raise InvalidQuery("the query nests too deeply to plan; flatten its expressions or subqueries") from exc
        finally:
            ctx.counters.planning_ms += (time.perf_counter() - started) * 1000
        if explain:
            plan = dataclasses.replace(plan, explain=explain, schema=EXPLAIN_SCHEMA)
        _within_budget(plan, ctx.limits.api_calls)
        ctx.counters.est_api_calls = sum(step.est_calls for step in plan.steps)
        ctx.tables.extend(t for t in dict.fromkeys(s.spec.qualified_name for s in plan.steps) if t not in ctx.tables)
        ctx.decisions.extend(d for d in plan.decisions if d not in ctx.decisions)
        return plan

    def _plan_key(self, sql: str, values: Parameters, ctx: QueryContext, count_listings: bool) -> Hashable:
        return plan_key(sql, values, ctx.scope, ctx.options.default_schema, self.catalog.version,
                        self.estimator.statistics.version, count_listings)

    def _count_guessed_listings(self, plan: FetchPlan, ctx: QueryContext) -> bool:
        """Count (Jira's approximate count) the listings a bind join's crossover was priced on when their size
        is a guess; a wrong guess costs far more than the call. True when a count changed the statistics."""
        statistics = self.estimator.scoped(ctx.scope).statistics
        learned = False
        for step in plan.steps:
            binding, pushed = step.binding, tuple(c.predicate for c in step.pushed)
            if binding is None or binding.max_keys is None or statistics.rows(step.spec, pushed) is not None:
                continue
            if step.row_filter is not None and step.local:
                continue  # the count would include rows a locally checked row filter hides (EXPLAIN shows counts)
            try:
                count = self.loop.run(self.executor.count_listing(step, ctx), timeout=ctx.control.remaining())
            except FutureTimeout:
                count = None
            if count is not None:
                statistics.record(step.spec, pushed, count)
                learned = True
        return learned

    def query(self, sql: str, params: Sequence[Any] | Parameters = (), ctx: QueryContext | None = None
              ) -> QueryResult:
        """Plan and run once under one context: its deadline covers planning, fetching and DuckDB."""
        ctx = ctx or self.context()
        return self.executor.execute(self.plan(sql, params, ctx), ctx)

    def note_budgets(self, ctx: QueryContext) -> None:
        """Fill ``ctx.rate_limits``: the API budget now of each connector the query reads (no API call), in one
        trip to the I/O loop (a DoGet's fetch fills them on the loop itself: ``Executor``)."""
        if not self.executor.note_budgets_now(ctx):
            self.loop.run(self.executor.note_budgets(ctx), timeout=5)


def _within_budget(plan: FetchPlan, limit: int | None) -> None:
    """Refuse, before spending anything, a query whose estimated API calls exceed ``max_api_calls_per_query``:
    one ``login IN (3000 values)`` must not burn the tenant's hourly budget for everyone. EXPLAIN still shows
    the estimate."""
    estimate = sum(step.est_calls for step in plan.steps)
    if limit is not None and estimate > limit and plan.explain != "EXPLAIN":
        worst = max(plan.steps, key=lambda step: step.est_calls)
        raise ResourceExhausted(
            f"the query would make about {estimate} API calls (most for {worst.spec.qualified_name} AS "
            f"{worst.alias}: {worst.est_calls}), more than max_api_calls_per_query = {limit}; narrow it (EXPLAIN "
            "shows where the calls go) or ask the operator to raise the limit")
