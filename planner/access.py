"""Placing the policy (``security/policy.py``) in a query: what a principal sees of each table before
planning (denied columns gone, masked columns re-typed), the checks on the SQL it sent, and the enforcement on
fetched rows — the row filter re-checked exactly, then masks applied, before any row reaches DuckDB."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence

import pyarrow as pa
from sqlglot import exp

from core.errors import EntitlementDenied
from core.types import ColumnSpec, TableSpec
from planner.catalog import Catalog
from planner.residual import to_residual
from security.masks import Mask, apply_mask, masked_type
from security.policy import Policy, TableDecision
from security.principals import Principal

__all__ = ["INFORMATION_SCHEMA", "SYSTEM_SCHEMA", "SYSTEM_SCHEMAS", "check_denied_columns", "decision_for",
           "secure_table", "visible_catalog", "visible_spec"]


def visible_spec(spec: TableSpec, decision: TableDecision) -> TableSpec:
    """The table as this principal sees it: denied columns removed, masked columns in their masked type (and
    without filter capabilities: a condition on a masked column is never sent upstream)."""
    columns = tuple(_masked_column(c, decision.masks.get(c.name)) for c in spec.columns
                    if c.name not in decision.denied_columns)
    primary = tuple(c for c in spec.primary_key if c not in decision.denied_columns)
    return dataclasses.replace(spec, columns=columns, primary_key=primary)


def _masked_column(column: ColumnSpec, mask: Mask | None) -> ColumnSpec:
    if mask is None:
        return column
    return dataclasses.replace(column, type=masked_type(mask, column.type), filter=None, distinct_estimate=None)


SYSTEM_SCHEMA = "omnisql"  # the engine's own tables (planner/system.py): readable by every principal
INFORMATION_SCHEMA = "information_schema"  # the catalog as SQL (planner/information_schema.py): likewise
SYSTEM_SCHEMAS = frozenset({SYSTEM_SCHEMA, INFORMATION_SCHEMA})  # queryable by all, not listed as apps' tables


def decision_for(policy: Policy, principal: Principal, spec: TableSpec) -> TableDecision:
    """The policy's decision, except for the system tables, which filter themselves by principal."""
    if spec.schema_name in SYSTEM_SCHEMAS:
        return TableDecision(spec.qualified_name, True, "system table")
    return policy.decide(principal, spec)


def visible_catalog(catalog: Catalog, policy: Policy, principal: Principal) -> Catalog:
    """Only the tables this principal may read, as it sees them (metadata RPCs and qualification use this)."""
    specs = []
    for spec in catalog.tables.values():
        decision = decision_for(policy, principal, spec)
        if decision.allowed:
            specs.append(visible_spec(spec, decision))
    return Catalog(specs)


def check_denied_columns(tree: exp.Expr, tables: Sequence[exp.Table], decisions: Mapping[int, TableDecision],
                         specs: Mapping[int, TableSpec]) -> None:
    """ENTITLEMENT_DENIED for a query that names a denied column (``SELECT *`` simply leaves it out). A name is
    denied when it is qualified by a table whose policy denies it, or unqualified and no other table of the
    query offers a column of that name."""
    by_alias = {t.alias_or_name.lower(): t.meta["omnisql_scan"] for t in tables}
    offered = {c.name for i, spec in specs.items() for c in spec.columns
               if c.name not in decisions[i].denied_columns}
    for column in tree.find_all(exp.Column):
        name = column.name
        if column.table:
            index = by_alias.get(column.table.lower())
            if index is not None and name in decisions[index].denied_columns:
                raise EntitlementDenied(f"you may not read {decisions[index].table}.{name}; leave it out of the "
                                        "query (SELECT * already does)")
        elif name not in offered:
            for decision in decisions.values():
                if name in decision.denied_columns:
                    raise EntitlementDenied(f"you may not read {decision.table}.{name}; leave it out of the "
                                            "query (SELECT * already does)")


DuckFilter = Callable[[pa.Table, str], pa.Table]  # (rows, SQL condition) → the rows DuckDB keeps


def secure_table(table: pa.Table, spec: TableSpec, row_filter: exp.Expr | None, masks: Mapping[str, Mask],
                 hidden: Sequence[str], key: bytes, duck_filter: DuckFilter) -> pa.Table:
    """Enforce the policy on one scan's rows before DuckDB sees them: the row filter is re-checked on raw values
    (as an exact Arrow expression, or by DuckDB when it does not translate exactly), masks replace values,
    and columns fetched only for the filter are dropped."""
    if row_filter is not None and table.num_rows:
        translated = to_residual(row_filter, spec)
        if translated is not None and translated[1]:
            table = table.filter(translated[0])
        else:
            table = duck_filter(table, row_filter.sql("duckdb"))
    for name, mask in masks.items():
        if name in table.column_names:
            index = table.column_names.index(name)
            masked = apply_mask(table.column(index), mask, key)
            table = table.set_column(index, pa.field(name, masked.type), masked)
    if hidden:
        table = table.drop_columns([h for h in hidden if h in table.column_names])
    return table
