"""Every executed query leaves one audit line with the principal, tables, decisions and outcome — and never a
value from the query or its rows."""

from __future__ import annotations

import json
import logging
from typing import Any

import adbc_driver_flightsql.dbapi as flightsql
import pytest


def test_each_query_is_audited_without_values(demo: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    from demo.tenant import UNTHROTTLED, demo_config, demo_tokens
    from flight_server.app import start_service

    service = start_service(demo_config(demo["sandbox"], "127.0.0.1", 0, UNTHROTTLED))
    try:
        token = demo_tokens()["token_qa"]
        with caplog.at_level(logging.INFO, logger="omnisql.audit"), flightsql.connect(
                service.uri, db_kwargs={"adbc.flight.sql.authorization_header": f"Bearer {token}"}) as conn, \
                conn.cursor() as cur:
            cur.execute("SELECT author FROM github.pull_requests WHERE title LIKE '%secret-word%'")
            cur.fetch_arrow_table()
            with pytest.raises(flightsql.Error):
                cur.execute("SELECT diff_link FROM github.pull_requests")
    finally:
        service.stop()
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "omnisql.audit"]
    ok = next(line for line in lines if line["outcome"] == "ok")
    assert ok["user"] == "qa" and ok["tables"] == ["github.pull_requests"] and ok["rows"] == 0
    assert "github.pull_requests.author: mask redact" in ok["decisions"]
    assert "github.pull_requests: row filter" in ok["decisions"]
    denied = next(line for line in lines if line["outcome"] == "ENTITLEMENT_DENIED")
    assert denied["user"] == "qa" and denied["rows"] is None
    text = "\n".join(r.getMessage() for r in caplog.records if r.name == "omnisql.audit")
    assert "secret-word" not in text and "mobile" not in text  # no literal, no bound policy value
