"""The Salesforce seed as DuckDB tables, built without the connector (the truth differential tests compare with).

Rows come straight from ``sandbox.salesforce_seed`` following what the REST API puts on the wire: every field by
its API name, dates as dates, dateTimes in UTC, nulls as nulls. Only the schemas come from the connector's tables
(built from the stand-in's describe), so an answer must also agree on column names, order and types. The Jira
and GitHub tables of ``tests.oracle`` sit beside them for cross-app joins.
"""

from __future__ import annotations

from typing import Any

import duckdb
import pyarrow as pa

from connectors.salesforce.tables import OBJECTS, table_from_describe
from sandbox.salesforce_describe import describe
from sandbox.salesforce_seed import SfAccount, SfContact, SfOpportunity, SfSeed, build_salesforce_seed
from tests.oracle import oracle_db, oracle_tables

__all__ = ["connect_salesforce_oracle", "salesforce_tables"]


def account_row(a: SfAccount) -> dict[str, Any]:
    return {"id": a.id, "name": a.name, "type": a.type, "industry": a.industry, "annual_revenue": a.annual_revenue,
            "number_of_employees": a.employees, "billing_country": a.country, "rating": a.rating,
            "website": a.website, "tier__c": a.tier, "created_date": a.created, "last_modified_date": a.modified}


def opportunity_row(o: SfOpportunity) -> dict[str, Any]:
    return {"id": o.id, "name": o.name, "account_id": o.account_id, "stage_name": o.stage, "amount": o.amount,
            "probability": o.probability, "close_date": o.close_date, "is_closed": o.is_closed, "is_won": o.is_won,
            "type": o.type, "lead_source": o.lead_source, "created_date": o.created,
            "last_modified_date": o.modified}


def contact_row(c: SfContact) -> dict[str, Any]:
    return {"id": c.id, "account_id": c.account_id, "first_name": c.first_name, "last_name": c.last_name,
            "email": c.email, "title": c.title, "phone": c.phone, "created_date": c.created,
            "last_modified_date": c.modified}


def salesforce_tables(seed: SfSeed | None = None, schema_name: str = "salesforce") -> dict[str, pa.Table]:
    seed = seed or build_salesforce_seed()
    rows = {"accounts": [account_row(a) for a in seed.accounts],
            "opportunities": [opportunity_row(o) for o in seed.opportunities],
            "contacts": [contact_row(c) for c in seed.contacts]}
    out = {}
    for table, (sobject, _, _) in OBJECTS.items():
        spec = table_from_describe(schema_name, table, describe(sobject, "62.0")).spec
        out[spec.qualified_name] = pa.Table.from_pylist(rows[table], schema=spec.arrow_schema)
    return out


def connect_salesforce_oracle(*schemas: str) -> duckdb.DuckDBPyConnection:
    """DuckDB (session in UTC) with the Salesforce tables under each of ``schemas`` plus GitHub and Jira."""
    tables = dict(oracle_tables())
    for schema in schemas or ("salesforce",):
        tables |= salesforce_tables(schema_name=schema)
    return oracle_db(tables)
