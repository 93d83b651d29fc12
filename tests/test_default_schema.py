"""The Flight SQL session option ``schema`` (ADBC: ``adbc_current_db_schema``) resolves unqualified table
names, the way DuckDB's ``USE`` does; without it, an unqualified name must be unique across schemas."""

from __future__ import annotations

import dataclasses
from typing import Any

import adbc_driver_flightsql.dbapi as flightsql
import pytest

from connectors.jira.tables import ISSUES
from core.errors import InvalidQuery
from planner.catalog import Catalog
from planner.context import QueryContext, QueryOptions
from planner.duck import Duck
from planner.planner import Planner
from security.principals import Principal

SHADOW = dataclasses.replace(ISSUES, schema_name="servicedesk")  # a second table named ``issues``


def _planner() -> Planner:
    return Planner(Catalog([ISSUES, SHADOW]), Duck())


def test_an_ambiguous_name_needs_a_schema_or_a_default() -> None:
    with pytest.raises(InvalidQuery, match="unknown table issues; write it with its schema"):
        _planner().plan("SELECT issue_key FROM issues")
    for schema in ("jira", "servicedesk"):
        ctx = QueryContext(Principal("ana"), options=QueryOptions(default_schema=schema))
        plan = _planner().plan("SELECT issue_key FROM issues", ctx=ctx)
        assert plan.steps[0].spec.schema_name == schema


def test_the_session_schema_travels_with_every_query(demo: dict[str, Any], admin_token: str) -> None:
    with flightsql.connect(demo["flight_uri"], db_kwargs={
            "adbc.flight.sql.authorization_header": f"Bearer {admin_token}",
            "adbc.flight.sql.rpc.with_cookie_middleware": "true"}) as conn:
        conn.adbc_current_db_schema = "jira"
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) AS n FROM issues WHERE project = 'WEB'")
            via_session = cur.fetch_arrow_table()
            cur.execute("SELECT count(*) AS n FROM jira.issues WHERE project = 'WEB'")
            qualified = cur.fetch_arrow_table()
    assert via_session.to_pylist() == qualified.to_pylist() and qualified.column("n")[0].as_py() > 0
