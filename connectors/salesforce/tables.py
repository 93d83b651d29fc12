"""Salesforce tables from ``describe``: each queryable field becomes a snake_case column whose Arrow type and
filter capabilities follow the field's type. Before ``open()`` (e.g. ``omnisql config check``) the tables come
from the standard fields every org has, so the policy can be checked without a call."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from connectors.decode import WireField
from connectors.salesforce.soql import NUMBER_KINDS, STRING_KINDS, FieldRef
from core.types import ColumnSpec, FilterCap, TableSpec, ops

__all__ = ["OBJECTS", "SfTable", "column_name", "standard_fields", "table_from_describe"]

TS = pa.timestamp("us", tz="UTC")
# table → (sObject, row estimate before the first count, description)
OBJECTS: dict[str, tuple[str, int, str]] = {
    "accounts": ("Account", 500, "Salesforce accounts (customers, prospects, partners)"),
    "opportunities": ("Opportunity", 2000, "Salesforce opportunities (deals), with their account and close date"),
    "contacts": ("Contact", 2000, "Salesforce contacts (people at accounts)"),
}
_API_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,79}")
_SKIPPED = frozenset({"address", "location", "base64", "anyType", "complexvalue", "json"})
_ORDERED = ops("=", "<>", "IN", "<", "<=", ">", ">=", "BETWEEN")
ID_MAX_IN = 300  # 18-character ids: ~28 URL bytes each, so 300 stay far below the URL limit


@dataclass(frozen=True)
class SfTable:
    """One table: its spec, the sObject, each column's API field, and where each lives in a record."""

    spec: TableSpec
    sobject: str
    fields: dict[str, FieldRef]
    wire: dict[str, WireField]


def column_name(api_name: str) -> str:
    """``AnnualRevenue`` → ``annual_revenue``; custom fields keep their suffix: ``Tier__c`` → ``tier__c``."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", api_name).lower()


def arrow_type(kind: str) -> pa.DataType | None:
    if kind in STRING_KINDS:
        return pa.string()
    if kind == "boolean":
        return pa.bool_()
    if kind in ("int", "long"):
        return pa.int64()
    if kind in NUMBER_KINDS:
        return pa.float64()
    if kind == "date":
        return pa.date32()
    if kind == "datetime":
        return TS
    return None


def _filter(kind: str, nillable: bool, filterable: bool, example: str) -> FilterCap | None:
    if not filterable or kind in ("textarea", "time", "multipicklist", "encryptedstring"):
        return None
    null = ops("IS_NULL") if nillable else frozenset()
    if kind in ("id", "reference"):
        return FilterCap(ops("=", "IN") | null, max_in=ID_MAX_IN, example=example)
    if kind in STRING_KINDS:
        return FilterCap(ops("=", "IN", "LIKE_PREFIX") | null, max_in=100, example=example)
    if kind == "boolean":
        return FilterCap(ops("=", "<>"), example=example)
    return FilterCap(_ORDERED | null, max_in=100, example=example)


def _example(column: str, kind: str) -> str:
    samples = {"boolean": "false", "date": "DATE '2026-10-01'", "datetime": "TIMESTAMP '2026-01-01'"}
    if kind in NUMBER_KINDS:
        return f"{column} >= 1000"
    return f"{column} = {samples.get(kind, repr('value'))}"


def table_from_describe(schema_name: str, table: str, describe: Mapping[str, Any],
                        row_estimate: int | None = None, page_size: int = 2000) -> SfTable:
    """The table of one DescribeSObjectResult (fields of types we cannot map, like compound addresses, are
    left out: their parts are separate fields)."""
    sobject, default_rows, description = OBJECTS[table]
    columns: list[ColumnSpec] = []
    fields: dict[str, FieldRef] = {}
    wire: dict[str, WireField] = {}
    order: list[str] = []
    for field in describe.get("fields") or ():
        name, kind = field.get("name"), field.get("type")
        typ = arrow_type(kind) if isinstance(kind, str) and kind not in _SKIPPED else None
        if not isinstance(name, str) or not _API_NAME.fullmatch(name) or typ is None:
            continue
        column = column_name(name)
        if column in fields:
            continue
        nillable = bool(field.get("nillable", True))
        columns.append(ColumnSpec(
            column, typ, str(field.get("label") or name), nullable=nillable,
            filter=_filter(kind, nillable, bool(field.get("filterable", True)), _example(column, kind)),
            # Ids, unique fields and the record name (an account's Name) pick about one row per value: a join
            # from another app's names is then priced as the few rows it fetches, not a tenth of the table.
            distinct_estimate=(row_estimate or default_rows)
            if kind == "id" or field.get("unique") or field.get("nameField") else None))
        fields[column] = FieldRef(name, kind)
        wire[column] = WireField((name,), "timestamp" if kind == "datetime" else None)
        if not nillable and field.get("sortable", True) and kind in ("date", "datetime"):
            order.append(column)
    spec = TableSpec(schema_name=schema_name, name=table, columns=tuple(columns),
                     description=f"{description} (SOQL on {sobject})",
                     primary_key=("id",) if "id" in fields else (), row_estimate=row_estimate or default_rows,
                     page_size=page_size, order_pushdown=tuple(order))
    return SfTable(spec, sobject, fields, wire)


# The standard fields of each object, as describe reports them (used until open() reads the real describe).
_STANDARD: dict[str, Sequence[tuple[str, str, bool]]] = {
    "Account": (("Id", "id", False), ("Name", "string", False), ("Type", "picklist", True),
                ("Industry", "picklist", True), ("AnnualRevenue", "currency", True),
                ("NumberOfEmployees", "int", True), ("BillingCountry", "string", True),
                ("Rating", "picklist", True), ("Website", "url", True), ("CreatedDate", "datetime", False),
                ("LastModifiedDate", "datetime", False)),
    "Opportunity": (("Id", "id", False), ("Name", "string", False), ("AccountId", "reference", True),
                    ("StageName", "picklist", False), ("Amount", "currency", True), ("Probability", "percent", True),
                    ("CloseDate", "date", False), ("IsClosed", "boolean", False), ("IsWon", "boolean", False),
                    ("Type", "picklist", True), ("LeadSource", "picklist", True), ("CreatedDate", "datetime", False),
                    ("LastModifiedDate", "datetime", False)),
    "Contact": (("Id", "id", False), ("AccountId", "reference", True), ("FirstName", "string", True),
                ("LastName", "string", False), ("Email", "email", True), ("Title", "string", True),
                ("Phone", "phone", True), ("CreatedDate", "datetime", False), ("LastModifiedDate", "datetime", False)),
}


def standard_fields(sobject: str) -> dict[str, Any]:
    """A describe-shaped dict of the standard fields."""
    return {"name": sobject, "fields": [{"name": n, "type": k, "nillable": nil, "label": n}
                                        for n, k, nil in _STANDARD[sobject]]}
