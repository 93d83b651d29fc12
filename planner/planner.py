"""SQL → FetchPlan: parse, qualify, collect per-table conditions by scope, decide pushdown, write the final
DuckDB SQL over per-scan views. Every condition stays in the final SQL, so pushdown can only narrow what is
fetched, never change an answer."""

from __future__ import annotations

import dataclasses
import functools
import operator
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.merge_subqueries import merge_subqueries
from sqlglot.optimizer.scope import Scope, traverse_scope

from core.types import TableSpec
from planner.access import SYSTEM_SCHEMAS, check_denied_columns, decision_for, visible_catalog, visible_spec
from planner.arrow_final import compile_arrow_final
from planner.binding import JoinEdge, JoinStrategy, bind_step, choose_bindings
from planner.binding import join_strategy as join_strategy_of
from planner.catalog import Catalog
from planner.context import QueryContext
from planner.duck import Duck
from planner.estimates import Estimator
from planner.information_schema import DESCRIBE_TARGET, describe_listed, describe_query
from planner.names import WrittenNames, unnamed_outputs
from planner.parameters import Parameters, bind_literals, check_count, renumber
from planner.parse import SCAN_TAG, base_tables, expand_column_aliases, parse_query, qualify_query
from planner.passes import rewrite
from planner.plan import FetchPlan, JoinMode, ScanStep
from planner.predicates import to_predicate
from planner.pushdown import Pushdown, decide, require_filters, split_requests
from planner.residual import to_residual
from security.policy import ALLOW_ALL, Policy, TableDecision
from security.principals import Principal

__all__ = ["EXPLAIN_SCHEMA", "Planner", "split_explain"]

_EXPLAIN = re.compile(r"^\s*EXPLAIN(\s+ANALYZE)?\s+", re.IGNORECASE)
EXPLAIN_SCHEMA = pa.schema([
    pa.field("step", pa.int32(), nullable=False), pa.field("wave", pa.int32()), pa.field("source_table", pa.string()),
    pa.field("alias", pa.string()), pa.field("strategy", pa.string()),
    pa.field("pushed_exact", pa.string()), pa.field("pushed_inexact", pa.string()),
    pa.field("local", pa.string()), pa.field("projection", pa.string()), pa.field("lookups", pa.string()),
    pa.field("binding", pa.string()), pa.field("limit", pa.int64()), pa.field("order_by", pa.string()),
    pa.field("requests", pa.int64()), pa.field("upstream", pa.string()),
    pa.field("est_api_calls", pa.int64()), pa.field("est_pages", pa.int64()), pa.field("est_rows", pa.int64()),
    pa.field("est_keys", pa.int64()), pa.field("keys", pa.int64()), pa.field("api_calls", pa.int64()),
    pa.field("pages", pa.int64()), pa.field("not_modified", pa.int64()),
    pa.field("rows", pa.int64()), pa.field("cache_hits", pa.int64()), pa.field("fetch", pa.string()),
    pa.field("ms", pa.float64()),
])


def split_explain(sql: str) -> tuple[str | None, str]:
    """(``"EXPLAIN"`` / ``"EXPLAIN ANALYZE"`` / None, the query without that prefix)."""
    match = _EXPLAIN.match(sql)
    if not match:
        return None, sql
    return ("EXPLAIN ANALYZE" if match.group(1) else "EXPLAIN"), sql[match.end():]


@dataclass
class _Conditions:
    """Conjuncts that restrict one table reference; ``nullable_side`` = it is null-extended by an outer join.
    ``select`` is the SELECT that reads the table as its only source, when it is one (its LIMIT may go down);
    ``unattached`` counts that SELECT's WHERE conjuncts that are not conditions on this table alone."""

    alias: str = ""
    where: list[exp.Expr] = field(default_factory=list)
    nullable_side: bool = False
    select: exp.Select | None = None
    unattached: int = 0


@dataclass
class _Analysis:
    """What planning learns from the SQL before deciding anything: the parsed tree (tables tagged), each table
    reference as (tag, spec), its conditions, the join edges and the columns each reference needs."""

    tree: exp.Expr
    tables: list[tuple[int, TableSpec]]
    conditions: dict[int, _Conditions]
    edges: list[JoinEdge]
    columns: dict[int, set[str]]
    decisions: dict[int, TableDecision]


class Planner:
    """``join_strategy``: ``auto`` (cheapest by estimated API calls), ``scan`` (never bind), ``bind`` (bind
    whenever possible) or ``per_row`` (one request per key, for comparison only)."""

    def __init__(self, catalog: Catalog, duck: Duck, pushdown: bool = True, join_strategy: str = "auto",
                 estimator: Estimator | None = None, policy: Policy = ALLOW_ALL) -> None:
        self.catalog = catalog
        self.duck = duck
        self.pushdown = pushdown
        self.join_strategy = join_strategy_of(join_strategy)
        self.estimator = estimator or Estimator()
        self.policy = policy
        self._visible: dict[str, Catalog] = {}  # security scope → the catalog its principals qualify against
        self.written = WrittenNames(catalog)

    def plan(self, sql: str, params: Parameters | None = None, ctx: QueryContext | None = None) -> FetchPlan:
        """SQL → FetchPlan in named steps: analyse the query, decide each scan's pushdown, bind joins, check
        required filters, write the final SQL and ask DuckDB for its result schema (no API call, no execution)."""
        params = params if params is not None else Parameters()
        explain, sql = split_explain(sql)
        principal = ctx.principal if ctx is not None and not ctx.trusted else None
        estimator = self.estimator.scoped(ctx.scope) if ctx else self.estimator
        query = self._analyse(sql, params, ctx.options.default_schema if ctx else None, principal,
                              ctx.scope if ctx else "")
        steps = [self._step(index, spec, query.conditions[index], query.columns.get(index, set()), params,
                            query.decisions[index], estimator) for index, spec in query.tables]
        steps = self._bind_joins(steps, query, estimator)
        for step in steps:
            bound = {step.binding.column} if step.binding else set()
            missing = [c for c in step.missing_required if c not in bound]
            require_filters(step.spec, missing, _masked_join(steps, query, step, missing))
        final_sql = _final_sql(query.tree, steps)
        schema = EXPLAIN_SCHEMA if explain else self.duck.result_schema(
            final_sql, {s.view_name: s.schema for s in steps}, params.duckdb_values(),
            ctx.control if ctx else None)
        if not explain and _renamed_as_written(query.tree, sql, schema, params, self.written,
                                               ctx.options.default_schema if ctx else None):
            final_sql = _final_sql(query.tree, steps)
            schema = self.duck.result_schema(final_sql, {s.view_name: s.schema for s in steps},
                                             params.duckdb_values(), ctx.control if ctx else None)
        decisions = tuple(dict.fromkeys(line for d in query.decisions.values() for line in d.describe()))
        arrow_final = None if explain or params.duckdb_values() else compile_arrow_final(
            final_sql, {s.view_name: s.schema for s in steps}, schema)
        return FetchPlan(tuple(steps), final_sql, schema, explain, params=params, decisions=decisions,
                         arrow_final=arrow_final)

    def _visible_catalog(self, principal: Principal | None, scope: str) -> Catalog:
        """The catalog as this principal sees it, built once per security scope (principals of one scope see
        alike; bounded: a scope beyond the first 1024 is rebuilt per query)."""
        visible = self._visible.get(scope)
        if visible is None:
            visible = visible_catalog(self.catalog, self.policy, principal or _NOBODY)
            if len(self._visible) < 1024:
                self._visible[scope] = visible
        return visible

    def _analyse(self, sql: str, params: Parameters, default_schema: str | None, principal: Principal | None,
                 scope: str = "") -> _Analysis:
        """Parse, tag the catalog's tables, apply the principal's table and column decisions, qualify (against
        the tables as this principal sees them, so ``*`` leaves denied columns out); collect each table's
        conditions (on the query with its derived tables merged), its join edges, and the columns it must fetch
        (on the query as written)."""
        tree = parse_query(sql)
        check_count(tree, params)
        if DESCRIBE_TARGET in tree.meta:
            tree = self._described(tree.meta[DESCRIBE_TARGET], default_schema, principal, scope)
        policy = self.policy if principal is not None else ALLOW_ALL
        visible = self._visible_catalog(principal, scope) if policy is not ALLOW_ALL else self.catalog
        tagged = base_tables(tree, self.catalog, default_schema, visible)
        expand_column_aliases(tagged, visible)
        specs = {node.meta[SCAN_TAG]: self.catalog.lookup(node.db, node.name) for node in tagged}
        decisions = {i: decision_for(policy, principal or _NOBODY, spec) for i, spec in specs.items()}
        for decision in decisions.values():
            decision.require()
        check_denied_columns(tree, tagged, decisions, specs)
        _mark_star_wrappers(tree)
        qualified = qualify_query(tree, visible)
        conditions, edges = _collect_conditions(_merged(qualified))
        tables = []
        for node in tagged:
            index = node.meta[SCAN_TAG]
            found = conditions.setdefault(index, _Conditions(alias=node.alias_or_name))
            found.alias = found.alias or node.alias_or_name
            tables.append((index, specs[index]))
        used = _columns_by_scan(qualified)
        for index, names in _columns_by_pattern(tree, visible).items():
            used.setdefault(index, set()).update(names)
        for node in tagged:  # PIVOT groups by every column it does not pivot: the view must have them all
            if node.args.get("pivots"):
                used[node.meta[SCAN_TAG]] = {c.name for c in visible.lookup(node.db, node.name).columns}
        return _Analysis(tree, tables, conditions, edges, used, decisions)

    def _described(self, target: tuple[str | None, str], default_schema: str | None, principal: Principal | None,
                   scope: str = "") -> exp.Expr:
        """``DESCRIBE t``: the table resolved like in a query (unknown: INVALID_QUERY; denied:
        ENTITLEMENT_DENIED), then its columns from ``information_schema``."""
        schema, name = target
        spec = self.catalog.tables.get((schema.lower(), name.lower())) if schema \
            else self.catalog.resolve_unqualified(name, default_schema)
        if spec is None:
            shown = self._visible_catalog(principal, scope) if principal is not None else self.catalog
            raise shown.unknown(schema, name)
        if spec.schema_name in SYSTEM_SCHEMAS:  # queryable by everyone, not listed in information_schema
            return describe_listed(spec)
        if principal is not None:
            decision_for(self.policy, principal, spec).require()
        return describe_query(spec.schema_name, spec.name)

    def _bind_joins(self, steps: list[ScanStep], query: _Analysis, estimator: Estimator) -> list[ScanStep]:
        """Join keys of one scan filter another where that saves API calls (with pushdown off, only where a
        binding supplies a required filter). Never along a masked column: the keys would be masked values, and
        filtering the other side upstream by raw values would leak through row counts."""
        if len(steps) < 2:
            return steps
        strategy: JoinStrategy = self.join_strategy if self.pushdown else "scan"
        edges = [e for e in query.edges
                 if e.source_column not in steps[e.source].masks and e.target_column not in steps[e.target].masks]
        applied: dict[int, tuple[JoinEdge, JoinMode, int]] = {}
        for _ in range(len(steps)):  # each round binds the steps whose sources are settled, then prices again
            chosen = choose_bindings(steps, edges, strategy, estimator, applied)
            pending = chosen.keys() - applied.keys()
            ready = {t: c for t, c in chosen.items() if t in pending and c[0].source not in pending}
            if not ready:
                break
            for target, (edge, mode, n_keys) in ready.items():
                key_sql, key_params = _key_sql(steps[edge.source], edge.source_column, query.conditions[edge.source])
                steps[target] = bind_step(steps[target], edge, mode, n_keys, steps, key_sql, estimator, key_params)
                applied[target] = (edge, mode, n_keys)
        return steps

    def _step(self, index: int, spec: TableSpec, found: _Conditions, used: set[str], params: Parameters,
              decision: TableDecision, estimator: Estimator) -> ScanStep:
        """One table reference: its projection, the pushdown verdict per condition, LIMIT/top-N, requests.
        The principal's row filter joins the conditions (so it goes upstream where the API enforces it exactly)
        and is re-checked on every fetched row by the executor; a masked column is never filtered upstream."""
        visible = visible_spec(spec, decision) if decision.restricts else None
        seen = visible or spec
        row_filter = _qualified(decision.row_filter, found.alias) if decision.row_filter is not None else None
        filter_columns = _names(decision.row_filter) if decision.row_filter is not None else set()
        names = [c.name for c in spec.columns]
        wanted = used | filter_columns
        columns = tuple(n for n in names if n in wanted) or (seen.primary_key[:1] or (seen.columns[0].name,))
        conditions = [*found.where, *_conjuncts(row_filter)] if row_filter is not None else found.where
        rewritten = [(rewrite(bind_literals(c, params)), c) for c in conditions]
        verdict, local = self._verdict(seen, found, rewritten)
        scan_limit, order = self._scan_limit(seen, found, params, verdict, local, decision)
        keyed = _delta_key(spec, columns, scan_limit, {c.predicate.column for c in verdict.pushed})
        columns += keyed
        requests = split_requests(spec, columns, verdict, scan_limit, order=order)
        unmasked = [(n, c) for n, c in rewritten if not _names(n) & set(decision.masks)]
        residual, prelookup = self._residual(spec, columns, found.nullable_side, unmasked) if self.pushdown \
            else (None, ())
        if residual is not None:
            requests = tuple(dataclasses.replace(r, residual=residual) for r in requests)
        pages, calls = estimator.cost(spec, requests)
        return ScanStep(index=index, alias=found.alias, spec=spec, columns=columns, pushed=tuple(verdict.pushed),
                        local=tuple(local), requests=requests, limit=scan_limit, est_pages=pages, est_calls=calls,
                        est_rows=round(estimator.rows_returned(spec, requests)),
                        missing_required=verdict.missing_required, prelookup=prelookup, visible=visible,
                        row_filter=decision.row_filter, masks=dict(decision.masks),
                        hidden=tuple(c for c in columns if c in decision.denied_columns or c in keyed))

    def _verdict(self, spec: TableSpec, found: _Conditions, rewritten: Sequence[tuple[exp.Expr, exp.Expr]]
                 ) -> tuple[Pushdown, list[str]]:
        """Which conditions go to the API (exact or inexact) and which stay local only (with the reason)."""
        predicates, local = [], []
        for normalized, condition in rewritten:
            predicate = to_predicate(normalized, spec)
            if predicate is not None and not self.pushdown and not _required(spec, predicate.column):
                predicate = None  # pushdown off still sends required filters: the API cannot list without them
            if predicate is None or (found.nullable_side and predicate.op == "IS_NULL"):
                local.append(condition.sql("duckdb"))
            else:
                predicates.append(predicate)
        verdict = decide(spec, predicates)
        return verdict, local + [f"{p} ({why})" for p, why in verdict.unsupported]

    def _scan_limit(self, spec: TableSpec, found: _Conditions, params: Parameters, verdict: Pushdown,
                    local: Sequence[str], decision: TableDecision) -> tuple[int | None, tuple[tuple[str, bool], ...]]:
        """(rows the API may stop after, the order it must list in): only when the SELECT's LIMIT provably sees
        every condition (``_pushable_limit``), nothing stays local and the API enforces every pushed condition
        exactly; with an ORDER BY, only on a column the API sorts by."""
        limit = _pushable_limit(found, params) if self.pushdown and spec.limit_pushdown else None
        if limit is None or local or not all(c.exact for c in verdict.pushed):
            return None, ()
        n, order = limit
        if order and (order[0][0] not in spec.order_pushdown or order[0][0] in decision.masks):
            return None, ()  # a masked column sorts by its masked values, which the API does not have
        return n, order

    @staticmethod
    def _residual(spec: TableSpec, columns: tuple[str, ...], nullable_side: bool,
                  rewritten: Sequence[tuple[exp.Expr, exp.Expr]]) -> tuple[pc.Expression | None, tuple[str, ...]]:
        """Every condition on a scan with per-row lookups, as far as it translates to Arrow, so lookups run
        only for rows that can survive. Not on an outer join's null-extended side: there a row a condition
        rejects may still matter (it decides whether the other side is null-extended)."""
        if nullable_side or not any(spec.column(c).fetch != "list" for c in columns):
            return None, ()
        terms = [(t, c) for normalized, c in rewritten if (t := to_residual(normalized, spec)) is not None]
        if not terms:
            return None, ()
        expression = functools.reduce(operator.and_, (t[0] for t, _ in terms))
        return expression, tuple(c.sql("duckdb") for _, c in terms)


_NOBODY = Principal(user="", tenant="")  # stands in where no principal is given (policy off)


def _names(condition: exp.Expr) -> set[str]:
    return {column.name for column in condition.find_all(exp.Column)}


def _qualified(condition: exp.Expr, alias: str) -> exp.Expr:
    """A policy row filter (over bare column names) as a condition on this table reference."""
    def qualify(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Column) and not node.table:
            return exp.column(node.name, table=alias)
        return node

    return condition.copy().transform(qualify)


def _masked_join(steps: Sequence[ScanStep], query: _Analysis, step: ScanStep, missing: Sequence[str]) -> str:
    """Why a join the query has could not supply a missing required filter: its other side is masked for this
    principal (masked values are never sent upstream). Empty when no such join is the reason."""
    for edge in query.edges:
        for source, source_column, target, target_column in (
                (edge.source, edge.source_column, edge.target, edge.target_column),
                (edge.target, edge.target_column, edge.source, edge.source_column)):
            if target == step.index and target_column in missing and source_column in steps[source].masks:
                return (f"the join on {steps[source].alias}.{source_column} cannot supply it: that column is "
                        "masked for you, and masked values are never sent to an API")
    return ""


def _required(spec: TableSpec, column: str) -> bool:
    cap = spec.column(column).filter
    return bool(cap and cap.required)


def _aliases(node: exp.Expr) -> set[str]:
    return {c.table for c in node.find_all(exp.Column)}


def _merged(qualified: exp.Expr) -> exp.Expr:
    """Derived tables merged into the queries that read them (sqlglot's ``merge_subqueries``), for analysis
    only: ``SELECT * FROM (SELECT ... FROM t) s WHERE s.x = 1 LIMIT 3``, the way BI tools wrap queries, then
    shows its condition and its LIMIT on t's own SELECT. The final SQL is always the user's query as written."""
    try:
        return merge_subqueries(qualified.copy())
    except (SqlglotError, KeyError, ValueError, AttributeError):
        return qualified


def _collect_conditions(qualified: exp.Expr) -> tuple[dict[int, _Conditions], list[JoinEdge]]:
    """Per tagged table reference: the conjuncts of its own scope's WHERE/ON that only mention it; and the
    column-equality join edges along which one reference's keys may filter another (see ``_add_edges``)."""
    found: dict[int, _Conditions] = {}
    edges: list[JoinEdge] = []
    for scope in traverse_scope(qualified):
        select = scope.expression
        if not isinstance(select, exp.Select):
            continue
        # a PIVOTed table's conditions and LIMIT read the pivot's output, a sampled one's the sample (taken from
        # all the table's rows, not from those a pushed condition leaves): never pushed
        tagged = {alias: src for alias, (_, src) in scope.selected_sources.items()
                  if isinstance(src, exp.Table) and SCAN_TAG in src.meta
                  and not src.args.get("pivots") and not src.args.get("sample")}
        only_source = len(scope.selected_sources) == 1 and len(tagged) == 1
        for alias, src in tagged.items():
            found[src.meta[SCAN_TAG]] = _Conditions(alias=alias, select=select if only_source else None)
        nullable = _null_supplied(select)

        where = select.args.get("where")
        if where is not None:
            for conjunct in where.this.flatten() if isinstance(where.this, exp.And) else [where.this]:
                if not _add_conjunct(found, tagged, nullable, conjunct) and only_source:
                    found[next(iter(tagged.values())).meta[SCAN_TAG]].unattached += 1
                _add_edges(edges, tagged, conjunct)
        for join in select.args.get("joins") or []:
            on = join.args.get("on")
            if on is None:
                continue
            side = (join.side or "").upper()
            conjuncts = on.flatten() if isinstance(on, exp.And) else [on]
            for conjunct in conjuncts:
                if not side:
                    _add_conjunct(found, tagged, nullable, conjunct)
                    _add_edges(edges, tagged, conjunct)
                elif side == "LEFT":
                    _add_conjunct(found, tagged, nullable, conjunct, only=join.this.alias_or_name, on_clause=True)
                    _add_edges(edges, tagged, conjunct, only_target=join.this.alias_or_name)
    return found, edges


def _add_edges(edges: list[JoinEdge], tagged: dict[str, exp.Table], conjunct: exp.Expr,
               only_target: str | None = None) -> None:
    """``a.x = b.y`` between two tables of this scope. In a WHERE or inner ON both directions are safe (a row
    of either side that matches nothing cannot reach the output); in ``LEFT JOIN b ON a.x = b.y`` only b may be
    filtered by a's keys (a's rows are preserved whatever b holds). RIGHT/FULL joins give no edges."""
    node = conjunct.unnest()
    if isinstance(node, exp.In) and isinstance(node.this, exp.Column) and node.this.table in tagged:
        _add_subquery_edge(edges, tagged, node, only_target)
        return
    if not isinstance(node, exp.EQ) or not isinstance(node.this, exp.Column) \
            or not isinstance(node.expression, exp.Column):
        return
    left, right = node.this, node.expression
    if left.table == right.table or left.table not in tagged or right.table not in tagged:
        return
    for source, target in ((left, right), (right, left)):
        if only_target is None or target.table == only_target:
            edges.append(JoinEdge(tagged[source.table].meta[SCAN_TAG], source.name,
                                  tagged[target.table].meta[SCAN_TAG], target.name))


def _add_subquery_edge(edges: list[JoinEdge], tagged: dict[str, exp.Table], node: exp.In,
                       only_target: str | None) -> None:
    """``t.x IN (SELECT y FROM source WHERE ...)``: a row of t matters only if x is one of those y, so the
    source's keys (under its own conditions) may filter t. Only a plain one-table, one-column subquery."""
    query = node.args.get("query")
    inner = query.unnest() if query is not None else None
    if isinstance(inner, exp.Subquery):
        inner = inner.this
    if not isinstance(inner, exp.Select) or len(inner.expressions) != 1 or inner.args.get("joins") \
            or any(inner.args.get(k) for k in ("group", "having", "limit", "offset", "qualify", "with")):
        return
    selected = inner.expressions[0].unalias()
    from_ = inner.args.get("from") or inner.args.get("from_")
    source = from_.this if from_ is not None else None
    if not isinstance(selected, exp.Column) or not isinstance(source, exp.Table) or SCAN_TAG not in source.meta \
            or selected.table != source.alias_or_name or selected.find(exp.Window):
        return
    target = node.this
    if only_target is None or target.table == only_target:
        edges.append(JoinEdge(source.meta[SCAN_TAG], selected.name, tagged[target.table].meta[SCAN_TAG],
                              target.name))


def _key_sql(source: ScanStep, column: str, found: _Conditions) -> tuple[str, tuple[int, ...]]:
    """The source's distinct, non-null join keys in order (so the bound requests, their cache keys and EXPLAIN
    ANALYZE are the same run after run), under every condition the query puts on the source; and the query
    parameters it binds (renumbered from ``$1``: it runs on its own)."""
    key = exp.column(column, table=source.alias)
    query = (exp.select(key.copy()).distinct()
             .from_(exp.Table(this=exp.to_identifier(source.view_name),
                              alias=exp.TableAlias(this=exp.to_identifier(source.alias))))
             .where(exp.Not(this=exp.Is(this=key.copy(), expression=exp.Null())), *(c.copy() for c in found.where))
             .order_by(key.copy()))
    renumbered, params = renumber(query)
    return renumbered.sql(dialect="duckdb"), params


def _add_conjunct(found: dict[int, _Conditions], tagged: dict[str, exp.Table], nullable: set[str],
                  conjunct: exp.Expr, only: str | None = None, on_clause: bool = False) -> bool:
    """Attach ``conjunct`` to the one table it mentions (subqueries, volatile functions and multi-table
    conditions stay local); True when attached."""
    if conjunct.find(exp.Select, exp.Subquery) or _volatile(conjunct):
        return False
    names = _aliases(conjunct)
    if len(names) != 1:
        return False
    (alias,) = names
    if alias not in tagged or (only is not None and alias != only):
        return False
    entry = found[tagged[alias].meta[SCAN_TAG]]
    entry.where.append(conjunct)
    entry.nullable_side = entry.nullable_side or (alias in nullable and not on_clause)
    return True


_VOLATILE = frozenset({"random", "rand", "uuid", "gen_random_uuid", "setseed", "nextval", "currval"})


def _volatile(node: exp.Expr) -> bool:
    """A function whose value changes per call: a condition with one is evaluated once per row in DuckDB and
    must never be evaluated anywhere else (e.g. again on a bind join's keys)."""
    return any(isinstance(f, exp.Rand | exp.Uuid) or f.name.lower() in _VOLATILE
               for f in node.find_all(exp.Func))


def _null_supplied(select: exp.Select) -> set[str]:
    """Aliases that an outer join may null-extend (only null-rejecting conditions may be pushed to them)."""
    seen: list[str] = []
    from_ = select.args.get("from") or select.args.get("from_")
    if from_ is not None:
        seen.append(from_.this.alias_or_name)
    nullable: set[str] = set()
    for join in select.args.get("joins") or []:
        side = (join.side or "").upper()
        name = join.this.alias_or_name
        if side in ("LEFT", "FULL"):
            nullable.add(name)
        if side in ("RIGHT", "FULL"):
            nullable.update(seen)
        seen.append(name)
    return nullable


STAR_WRAPPER = "omnisql_star_wrapper"  # meta of a derived table's ``SELECT * FROM t [WHERE ...]``


def _mark_star_wrappers(tree: exp.Expr) -> None:
    """Mark each derived table that is only a filter over one catalog table, ``(SELECT * FROM t WHERE ...) s`` —
    how BI tools and JDBC previews wrap a query (``SELECT count(*) FROM (...) s``). Its ``*`` reaches only the
    columns the enclosing query reads from ``s``, so only those are fetched (``_columns_by_scan``): the view
    holds them, and the final SQL's ``*`` over the view gives exactly them. Anything whose answer depends on the
    full column list — DISTINCT, grouping, windows, ordinals, a star with modifiers, a join inside, NATURAL or
    USING joins or whole-row references outside — leaves the derived table as it is (every column fetched)."""
    for select in tree.find_all(exp.Select):
        subquery = select.parent
        if not isinstance(subquery, exp.Subquery) or not subquery.alias or subquery.args.get("pivots") \
                or not isinstance(subquery.parent, exp.From | exp.Join):
            continue
        star = select.expressions[0] if len(select.expressions) == 1 else None
        source = select.args.get("from_")
        if not isinstance(star, exp.Star) or any(star.args.values()) or source is None \
                or not isinstance(source.this, exp.Table) or SCAN_TAG not in source.this.meta \
                or source.this.args.get("pivots") or source.this.args.get("sample"):
            continue
        if any(select.args.get(k) for k in ("joins", "laterals", "distinct", "group", "having", "qualify",
                                             "windows", "sample")) \
                or select.find(exp.Window) is not None \
                or any(isinstance(o.this, exp.Literal) for o in (select.args.get("order") or exp.Order()).expressions):
            continue
        outer = subquery.find_ancestor(exp.Select)
        if outer is None or any(j.args.get("using") or j.args.get("method") or (j.args.get("kind") or "").upper()
                                == "NATURAL" for j in outer.args.get("joins") or ()) \
                or outer.find(exp.Columns) is not None \
                or any(any(star.args.values()) for star in outer.find_all(exp.Star)) \
                or any(not c.table and c.name.lower() == subquery.alias.lower() for c in outer.find_all(exp.Column)):
            continue
        select.meta[STAR_WRAPPER] = True


def _columns_by_scan(qualified: exp.Expr) -> dict[int, set[str]]:
    """Per tagged table reference, the columns the query uses (read from the unmerged query: the final SQL is
    the query as written). A column of a correlated subquery belongs to the enclosing scope that has its
    table. A star wrapper's (``_mark_star_wrappers``) expanded ``*`` counts only the columns read through it."""
    scopes = list(traverse_scope(qualified))
    read_through: dict[int, set[str]] = {}  # id(star wrapper select) → its output columns read outside it
    for scope in scopes:
        for column in scope.columns:
            source = _source_of(column, scope)
            if isinstance(source, Scope) and source.expression.meta.get(STAR_WRAPPER):
                read_through.setdefault(id(source.expression), set()).add(column.name)
    used: dict[int, set[str]] = {}
    for scope in scopes:
        wrapper = scope.expression if scope.expression.meta.get(STAR_WRAPPER) else None
        for column in scope.columns:
            if wrapper is not None and _projected_only(column, wrapper) \
                    and column.name not in read_through.get(id(wrapper), ()):
                continue
            source = _source_of(column, scope)
            if isinstance(source, exp.Table) and SCAN_TAG in source.meta:
                used.setdefault(source.meta[SCAN_TAG], set()).add(column.name)
    return used


def _source_of(column: exp.Column, scope: Scope) -> Any:
    """The table or derived table (a ``Scope``) ``column`` reads, looking outward for a correlated one."""
    owner: Any = scope
    while owner is not None and column.table not in owner.sources:
        owner = owner.parent
    return owner.sources[column.table] if owner is not None else None


def _projected_only(column: exp.Column, select: exp.Expr) -> bool:
    """Whether ``column`` stands in ``select``'s projection (an expanded ``*``), not in its WHERE or ORDER BY."""
    node: exp.Expr | None = column
    while node is not None and node.parent is not select:
        node = node.parent
    return node is not None and node.arg_key == "expressions"


def _columns_by_pattern(tree: exp.Expr, visible: Catalog) -> dict[int, set[str]]:
    """Per tagged table reference, the columns DuckDB's ``COLUMNS(...)`` of its SELECT may choose (the qualifier
    does not expand it): for ``COLUMNS('regex')`` every column the regex finds (a superset of what DuckDB
    matches), for ``COLUMNS(* EXCLUDE (...))`` all but the excluded, otherwise (a lambda) every column. Extra
    columns in a view are harmless: no ``*`` reads them that did not already."""
    chosen: dict[int, set[str]] = {}
    for columns in tree.find_all(exp.Columns):
        select = columns.find_ancestor(exp.Select)
        if select is None:
            continue
        for table in _sources(select):
            if isinstance(table, exp.Table) and SCAN_TAG in table.meta:
                names = [c.name for c in visible.lookup(table.db, table.name).columns]
                chosen.setdefault(table.meta[SCAN_TAG], set()).update(_chosen_by(columns.this, names))
    return chosen


def _sources(select: exp.Select) -> list[exp.Expr]:
    """What the SELECT reads from: its FROM source, then each JOIN's, in order."""
    clauses = [select.args.get("from_"), *(select.args.get("joins") or [])]
    return [clause.this for clause in clauses if clause is not None]


def _chosen_by(pattern: exp.Expr, names: list[str]) -> list[str]:
    if isinstance(pattern, exp.Literal) and pattern.is_string:
        try:
            found = re.compile(pattern.name, re.IGNORECASE)
        except re.error:
            return names
        return [n for n in names if found.search(n)]
    if isinstance(pattern, exp.Star):
        excluded = {c.name.lower() for c in pattern.args.get("except_") or []}
        return [n for n in names if n.lower() not in excluded]
    return names


_ROW_CHANGING = (exp.AggFunc, exp.Window, exp.UDTF, exp.Unnest, exp.Explode)
_SET_RETURNING = frozenset({"unnest", "generate_series", "range", "generate_subscripts", "json_each"})


def _pushable_limit(found: _Conditions, params: Parameters) -> tuple[int, tuple[tuple[str, bool], ...]] | None:
    """(LIMIT + OFFSET, the first ORDER BY key as ``((column, descending),)`` or ``()``) of the SELECT that
    reads this table as its only source, when provably nothing but its WHERE can drop, add or reorder rows:
    no join, grouping, DISTINCT, QUALIFY, aggregate, window or set-returning function, and every WHERE conjunct
    is a condition on this table (the caller also requires each to be pushed exactly). None otherwise."""
    select = found.select
    if select is None or found.unattached or any(select.args.get(k) for k in (
            "joins", "laterals", "group", "having", "distinct", "qualify", "with", "with_", "pivots", "sample")):
        return None
    for projection in select.expressions:
        if projection.find(*_ROW_CHANGING) or any(f.name.lower() in _SET_RETURNING
                                                   for f in projection.find_all(exp.Func)):
            return None
    limit = select.args.get("limit")
    if not isinstance(limit, exp.Limit) or limit.args.get("expressions") or limit.args.get("limit_options"):
        return None  # LIMIT 10 PERCENT / 10% / WITH TIES: not a row count
    count = _int_value(limit.expression, params)
    offset = select.args.get("offset")
    extra = _int_value(offset.expression, params) if offset is not None else 0
    if count is None or extra is None:
        return None
    order: tuple[tuple[str, bool], ...] = ()
    ordering = select.args.get("order")
    if ordering is not None:
        first = ordering.expressions[0]
        key = _order_column(select, first.this if isinstance(first, exp.Ordered) else first)
        if key is None or key.table != found.alias or first.find(exp.Collate):
            return None
        order = ((key.name, bool(first.args.get("desc"))),)
    return count + extra, order


def _int_value(node: exp.Expr, params: Parameters) -> int | None:
    """A non-negative integer literal or bound parameter, else None."""
    node = bind_literals(node, params).unnest()
    if isinstance(node, exp.Cast):
        node = node.this
    if isinstance(node, exp.Literal) and node.is_int and int(node.this) >= 0:
        return int(node.this)
    return None


def _order_column(select: exp.Select, key: exp.Expr) -> exp.Column | None:
    """The table column an ORDER BY key sorts by. An unqualified name is a projection alias (DuckDB sorts by
    the projection, even when a table column has the same name); ``ORDER BY 2`` is the second projection."""
    if isinstance(key, exp.Literal) and key.is_int:
        position = int(key.this)
        if not 1 <= position <= len(select.expressions):
            return None
        key = select.expressions[position - 1].unalias()
    elif isinstance(key, exp.Column) and not key.table:
        target = next((e for e in select.expressions if e.alias_or_name == key.name), None)
        if target is None:
            return None
        key = target.unalias()
    elif isinstance(key, exp.Column) and any(e.alias_or_name.lower() == key.name.lower() and e.unalias() != key
                                             for e in select.expressions):
        # The qualifier may have bound a name DuckDB reads as an output column to the table's column: a star's
        # RENAME/REPLACE (``* RENAME (updated_at AS created_at) ... ORDER BY created_at``) names an output after
        # a column it is not. Which one the user meant is no longer known here: not pushed.
        return None
    return key if isinstance(key, exp.Column) and key.table else None


def _conjuncts(condition: exp.Expr) -> list[exp.Expr]:
    """A row filter's AND-ed parts, each pushed or kept local on its own as a WHERE's are (the executor still
    re-checks the whole filter)."""
    condition = condition.unnest()
    return list(condition.flatten()) if isinstance(condition, exp.And) else [condition]


_NOT_A_QUERY = re.compile(r"^\s*(DESCRIBE|DESC|SHOW|SUMMARIZE|PRAGMA)\b", re.IGNORECASE)


def _renamed_as_written(tree: exp.Expr, sql: str, schema: pa.Schema, params: Parameters, written: WrittenNames,
                        default_schema: str | None) -> bool:
    """Alias the result's unaliased expression columns with the names DuckDB gives them in the query as written,
    where the final SQL (sqlglot's spelling) named them otherwise (``planner.names``); True when any was."""
    found = unnamed_outputs(tree)
    if found is None or not found[1] or _NOT_A_QUERY.match(sql):
        return False
    select, positions = found
    if len(select.expressions) != len(schema):
        return False
    names = written.names(sql, params.duckdb_values(), default_schema)
    if names is None or len(names) != len(schema):
        return False
    renamed = {i: names[i] for i in positions if names[i] != schema.names[i]}
    for i, name in renamed.items():
        item = select.expressions[i]
        item.replace(exp.alias_(item.copy(), name, quoted=True))
    return bool(renamed)


def _final_sql(tree: exp.Expr, steps: Sequence[ScanStep]) -> str:
    tree = tree.copy()
    by_index = {s.index: s for s in steps}
    _prune_star_excludes(tree, by_index)
    for node in [n for n in tree.find_all(exp.Table) if SCAN_TAG in n.meta]:
        step = by_index[node.meta[SCAN_TAG]]
        alias = node.args.get("alias") or exp.TableAlias(this=exp.to_identifier(node.name))
        view = node.copy()  # what else the reference carries (PIVOT, TABLESAMPLE, ...) stays on it
        view.set("this", exp.to_identifier(step.view_name))
        view.set("db", None)
        view.set("catalog", None)
        view.set("alias", alias.copy())
        node.replace(view)
    return tree.sql(dialect="duckdb")


def _prune_star_excludes(tree: exp.Expr, steps: dict[int, ScanStep]) -> None:
    """``* EXCLUDE (...)`` keeps only the names some view under the star has. A view holds the columns the
    query uses, so an excluded column is usually not fetched at all (excluding ``additions`` must not cost a
    call per row to fetch it), and DuckDB refuses to exclude a column its sources lack. A star over a source
    that is not a view (a subquery, a CTE, a generator) keeps its list as written."""
    for star in tree.find_all(exp.Star):
        excluded = star.args.get("except_")
        select = star.find_ancestor(exp.Select)
        if not excluded or select is None:
            continue
        covered = _views_under(star, select, steps)
        if covered is not None:
            have = {n.lower() for step in covered for n in step.schema.names}
            known = {c.name.lower() for step in covered for c in (step.visible or step.spec).columns}
            # a name no table has stays, for DuckDB to refuse as it would
            star.set("except_", [c for c in excluded if c.name.lower() in have or c.name.lower() not in known]
                     or None)


def _views_under(star: exp.Star, select: exp.Select, steps: dict[int, ScanStep]) -> list[ScanStep] | None:
    """The scans whose views a star of ``select`` covers; None if it covers anything else."""
    qualifier = star.parent.table.lower() if isinstance(star.parent, exp.Column) else ""
    covered = []
    for node in _sources(select):
        if qualifier and node.alias_or_name.lower() != qualifier:
            continue
        if not isinstance(node, exp.Table) or SCAN_TAG not in node.meta:
            return None
        covered.append(steps[node.meta[SCAN_TAG]])
    return covered


def _delta_key(spec: TableSpec, columns: tuple[str, ...], limit: int | None, pushed: set[str]
               ) -> tuple[str, ...]:
    """The primary key, when a table refreshed by deltas would not otherwise fetch it: the cache merges changes
    by it. Fetched, then dropped before DuckDB like any hidden column (it costs no API call: a listed field).
    Not when a pushed condition may take a path that cannot return it (``TableSpec.keyless_filters``)."""
    if not spec.delta_refresh or len(spec.primary_key) != 1 or limit is not None or spec.keyless_filters & pushed:
        return ()
    key = spec.primary_key[0]
    return () if key in columns or spec.column(key).fetch != "list" else (key,)
