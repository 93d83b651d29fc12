"""The differential suite under the demo's policy: every query as a developer of each team (row filters, pushed
upstream and re-checked) and as QA (row filter and masks), against an oracle that applies the same policy to the
seed in its own SQL — a filtered view per table, the masks written again here with Python's ``hmac`` — so a
planner that pushes, binds or caches past a row filter, or filters and joins on unmasked values, answers
differently. A query the policy forbids (QA and ``diff_link``) must be refused by both, and ours as
ENTITLEMENT_DENIED or INVALID_QUERY, never INTERNAL; the one refusal by design is a join whose keys would come
from a masked column into a table that needs them as a filter (the error says so)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from typing import Any

import duckdb
import pytest

from core.errors import OmniSQLError
from core.types import TableSpec
from tests.answers import assert_same_answer, is_ordered
from tests.differential_queries import differential_queries
from tests.oracle import oracle_answer, oracle_db, oracle_tables

QUERIES = [pytest.param(sql, id=query_id) for query_id, sql in differential_queries()]
MASK_DOMAIN = b"omnisql/column-mask"  # the domain the tenant's mask key is derived for (security/masks.py)


def email_mask(key: bytes, value: str | None) -> str | None:
    """``hash8****@domain``: the first 8 hex of the keyed HMAC of the address, then its own domain."""
    if value is None:
        return None
    derived = hmac.new(key, MASK_DOMAIN, hashlib.sha256).digest()
    digest = hmac.new(derived, value.encode(), hashlib.sha256).hexdigest()[:8]
    return digest + "****" + (value[value.rindex("@"):] if "@" in value else "")


def _select(spec: TableSpec, masked: dict[str, str], denied: set[str]) -> str:
    columns = []
    for column in spec.columns:
        name = column.name
        if name in denied:
            continue
        kind = masked.get(name)
        if kind == "redact":
            columns.append(f"CASE WHEN {name} IS NULL THEN NULL ELSE '[HIDDEN]' END AS {name}")
        elif kind == "email":
            columns.append(f"email_mask({name}) AS {name}")
        else:
            columns.append(name)
    return ", ".join(columns)


def policy_oracle(team: str, qa: bool, key: bytes) -> duckdb.DuckDBPyConnection:
    """The seed as a principal of ``team`` sees it: raw tables under ``raw_*``, and views with the policy's
    row filters (and QA's masks and denied column) under the tables' own names."""
    from connectors.github.tables import PULL_REQUESTS, USERS
    from connectors.jira.tables import ISSUES

    tables = oracle_tables()
    db = oracle_db({name.replace(".", ".raw_"): table for name, table in tables.items()})
    db.create_function("email_mask", lambda v: email_mask(key, v), ["VARCHAR"], "VARCHAR")
    views = [
        (PULL_REQUESTS, "team_id", {"author": "redact", "author_email": "email"} if qa else {},
         {"diff_link"} if qa else set()),
        (ISSUES, "team", {"assignee": "redact", "assignee_email": "email"} if qa else {}, set()),
        (USERS, None, {"email": "email"} if qa else {}, set()),
    ]
    for spec, team_column, masked, denied in views:
        where = f" WHERE {team_column} = '{team}'" if team_column else ""
        db.execute(f"CREATE VIEW {spec.schema_name}.{spec.name} AS SELECT {_select(spec, masked, denied)} "
                   f"FROM {spec.schema_name}.raw_{spec.name}{where}")
    return db


@pytest.fixture(scope="module")
def service(demo: dict[str, Any]) -> Iterator[Any]:
    from demo.tenant import UNTHROTTLED, demo_config
    from flight_server.app import start_service

    running = start_service(demo_config(demo["sandbox"], "127.0.0.1", 0, UNTHROTTLED))
    yield running
    running.stop()


PRINCIPALS = {"dev": ("mobile", False), "web_dev": ("web", False), "qa": ("mobile", True)}


@pytest.fixture(scope="module", params=list(PRINCIPALS))
def as_principal(request: pytest.FixtureRequest, service: Any) -> Iterator[tuple[Any, Any, duckdb.DuckDBPyConnection]]:
    from demo.tenant import MASK_KEY, demo_config

    principal = next(p for _, p in demo_config(_NO_SANDBOX, "127.0.0.1", 0).principals if p.user == request.param)
    team, qa = PRINCIPALS[request.param]
    db = policy_oracle(team, qa, MASK_KEY)
    yield service.engine, principal, db
    db.close()


_NO_SANDBOX = {app: {"base_url": "http://127.0.0.1:9", "token": "", "org": "", "email": "", "api_token": ""}
               for app in ("github", "jira")}


@pytest.mark.parametrize("sql", QUERIES)
def test_answers_under_the_policy_are_the_oracles(sql: str, as_principal: tuple[Any, Any, duckdb.DuckDBPyConnection]
                                                   ) -> None:
    engine, principal, db = as_principal
    try:
        expected = oracle_answer(db, sql)
    except duckdb.Error:
        expected = None  # the policy's view lacks a column the query names: ours must refuse it too
    try:
        got = engine.query(sql, ctx=engine.context(principal)).table
    except OmniSQLError as exc:
        assert exc.code in ("ENTITLEMENT_DENIED", "INVALID_QUERY"), exc
        # by design: a masked column never supplies a join's keys upstream (github.users needs logins)
        assert expected is None or "masked for you" in str(exc), f"refused ({exc}) what the oracle answers: {sql}"
        return
    assert expected is not None, f"answered what the policy's oracle refuses: {sql}"
    assert_same_answer(got, expected, is_ordered(sql), context=f"{principal.user}: {sql}")
