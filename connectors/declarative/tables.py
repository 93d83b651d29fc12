"""A manifest's table as the planner's ``TableSpec``: its columns and what the API can do with conditions on each
(``FilterCap`` from the ``filters`` block), so pushdown, bind joins and EXPLAIN work as for code connectors."""

from __future__ import annotations

from connectors.declarative.manifest import FilterDef, TableDef
from core.types import ColumnSpec, FilterCap, Op, TableSpec

__all__ = ["filter_cap", "table_spec"]


def filter_cap(filters: list[FilterDef]) -> FilterCap | None:
    """One column's capability from its filter entries: every operator any entry maps; exact only when every entry
    is (an entry the API merely narrows makes the planner re-check); the smallest IN batch any entry allows."""
    if not filters:
        return None
    ops: frozenset[Op] = frozenset().union(*(f.ops for f in filters))
    max_in = min((f.max_in for f in filters if "IN" in f.ops), default=1)
    return FilterCap(ops, exact=all(f.exact for f in filters), required=any(f.required for f in filters),
                     max_in=max_in, example=next((f.example for f in filters if f.example), ""))


def table_spec(schema_name: str, table: TableDef) -> TableSpec:
    columns = tuple(ColumnSpec(c.name, c.type, c.description, nullable=c.nullable,
                               filter=filter_cap([f for f in table.filters if f.column == c.name]),
                               distinct_estimate=c.distinct_estimate)
                    for c in table.columns)
    nullable = {c.name: c.nullable for c in table.columns}
    return TableSpec(schema_name=schema_name, name=table.name, columns=columns, description=table.description,
                     primary_key=table.primary_key, row_estimate=table.row_estimate,
                     page_size=table.paging.page_size if table.paging.type != "none" else max(table.row_estimate, 1),
                     limit_pushdown=table.limit_pushdown,
                     order_pushdown=tuple(o.column for o in table.order_by if not nullable[o.column]),
                     delta_refresh=table.changes is not None)
