"""Issue #11: "Long queries show progress on stderr ... API calls so far per source — the server can report this."
The server answers the Flight action ``omnisql.QueryProgress`` (body: a trace id) with the API calls a running query
of the caller's has made so far, per connector; a query of another principal, or one that is not running, is
answered as not running (no leak). The CLI names its queries' trace id itself (a W3C ``traceparent`` on every
call), so it can ask while DoGet is still fetching."""

from __future__ import annotations

import concurrent.futures
import json
import secrets
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.flight as flight
import pytest

from clients.flight_rpc import FlightRpc
from tests.conftest import SandboxLog

ACTION = "omnisql.QueryProgress"


@pytest.fixture()
def slow_jira(sandbox_log: SandboxLog) -> Iterator[None]:
    with sandbox_log.slowed("jira", 0.6):
        yield


def progress(demo: dict[str, Any], token: str, body: bytes) -> dict[str, Any]:
    client = flight.FlightClient(demo["flight_uri"])
    options = flight.FlightCallOptions(headers=[(b"authorization", f"Bearer {token}".encode())])
    [result] = list(client.do_action(flight.Action(ACTION, body), options))
    return dict(json.loads(result.body.to_pybytes()))


def test_a_running_query_reports_its_api_calls_per_source(demo: dict[str, Any], slow_jira: None) -> None:
    trace_id = secrets.token_hex(16)
    admin = demo["tokens"]["token_admin"]
    sql = "SELECT issue_key FROM jira.issues WHERE status <> 'Done'"  # several pages, 0.6 s each
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        running = pool.submit(httpx.post, f"{demo['http_url']}/v1/query", json={"sql": sql}, timeout=60,
                              headers={"X-User-Token": admin, "traceparent": f"00-{trace_id}-{'1' * 16}-01"})
        seen: list[dict[str, Any]] = []
        deadline = time.monotonic() + 30
        while not running.done() and time.monotonic() < deadline:
            seen.append(progress(demo, admin, trace_id.encode()))
            time.sleep(0.3)
        answer = running.result().json()
    live = [p for p in seen if p["running"]]
    assert live and live[-1]["api_calls"]["jira"] >= 2, seen  # counted as the pages come, not at the end
    counts = [p["api_calls"].get("jira", 0) for p in live]
    assert counts == sorted(counts) and counts[-1] <= answer["api_calls"]
    assert set(live[-1]["api_calls"]) == {"jira"} and live[-1]["elapsed_ms"] > 0
    assert progress(demo, admin, trace_id.encode()) == {"trace_id": trace_id, "running": False}  # it ended


def test_another_principals_query_is_not_shown(demo: dict[str, Any], slow_jira: None) -> None:
    trace_id = secrets.token_hex(16)
    admin, dev = demo["tokens"]["token_admin"], demo["tokens"]["token_dev"]
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        running = pool.submit(httpx.post, f"{demo['http_url']}/v1/query", timeout=60,
                              json={"sql": "SELECT issue_key FROM jira.issues WHERE status <> 'Done'"},
                              headers={"X-User-Token": admin, "traceparent": f"00-{trace_id}-{'1' * 16}-01"})
        time.sleep(1.0)
        assert progress(demo, dev, trace_id.encode()) == {"trace_id": trace_id, "running": False}
        assert progress(demo, admin, trace_id.encode())["running"] is True
        running.result()


def test_a_malformed_trace_id_is_invalid(demo: dict[str, Any]) -> None:
    with pytest.raises(pa.ArrowInvalid, match="32 hexadecimal"):  # gRPC INVALID_ARGUMENT
        progress(demo, demo["tokens"]["token_admin"], b"not a trace id")


def test_the_cli_client_asks_with_its_own_trace_id(demo: dict[str, Any], slow_jira: None) -> None:
    rpc = FlightRpc(demo["flight_uri"], demo["tokens"]["token_admin"])
    try:
        assert rpc.trace_id is not None and len(rpc.trace_id) == 32
        plan = rpc.plan("SELECT issue_key FROM jira.issues WHERE status <> 'Done'")
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            fetched = pool.submit(lambda: sum(b.num_rows for b in rpc.stream(plan.tickets[0])[1]))
            time.sleep(1.5)
            during = rpc.progress()
            rows = fetched.result()
        assert rows > 0 and during["running"] is True and during["api_calls"]["jira"] >= 1
        assert plan.metadata["trace_id"] == rpc.trace_id
    finally:
        rpc.close()
