"""The sandbox's fault layer (``sandbox/faults.py``) in front of every stand-in, seen through ADBC: a body that is
not JSON or is cut short is an UPSTREAM_ERROR naming the app (never a crash or a wrong answer), a connection
dropped mid-answer is retried on a fresh one, jitter only slows things down."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import adbc_driver_flightsql.dbapi as flightsql
import httpx
import pytest

from tests.answers import adbc_answer
from tests.salesforce_service import SalesforceService, salesforce_service

QUERIES = {"salesforce": ("SELECT count(*) FROM salesforce.accounts", 240),
           "github": ("SELECT count(*) FROM github.pull_requests WHERE repo = 'infra-tools'", 275),
           "jira": ("SELECT count(*) FROM jira.issues WHERE project = 'WEB'", 333)}


@pytest.fixture(scope="module")
def sf() -> Iterator[SalesforceService]:
    with salesforce_service() as service:
        yield service


@pytest.fixture(scope="module")
def conn(sf: SalesforceService) -> Iterator[Any]:
    connection = flightsql.connect(sf.uri, db_kwargs={"adbc.flight.sql.authorization_header": f"Bearer {sf.token}"})
    yield connection
    connection.close()


def _faults(sf: SalesforceService, app: str, **settings: Any) -> None:
    url = {"salesforce": sf.sandbox.salesforce_url, "github": sf.sandbox.github_url, "jira": sf.sandbox.jira_url}[app]
    httpx.post(f"{url}/_sandbox/faults", json=settings).raise_for_status()


@pytest.mark.parametrize("app", sorted(QUERIES))
@pytest.mark.parametrize("fault", ["malformed_next", "truncate_next"])
def test_a_broken_body_is_an_upstream_error(app: str, fault: str, conn: Any, sf: SalesforceService) -> None:
    sql, _ = QUERIES[app]
    _faults(sf, app, **{fault: 1})
    try:
        with pytest.raises(Exception, match="UPSTREAM_ERROR") as caught:
            adbc_answer(conn, sql)
        assert {"salesforce": "Salesforce", "github": "GitHub", "jira": "Jira"}[app] in str(caught.value)
    finally:
        _faults(sf, app)


@pytest.mark.parametrize("app", sorted(QUERIES))
def test_a_dropped_connection_is_retried(app: str, conn: Any, sf: SalesforceService) -> None:
    sql, expected = QUERIES[app]
    _faults(sf, app, drop_next=1, jitter_s=0.05)
    try:
        assert adbc_answer(conn, sql).column(0)[0].as_py() == expected
        assert getattr(sf.sandbox, app).faults.drop_next == 0  # it did drop one
    finally:
        _faults(sf, app)
