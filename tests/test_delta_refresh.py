"""Delta refresh through ADBC, on a sandbox of this module's own (its data changes under the queries): a live
query over a cached scan fetches only what changed (GitHub ``sort=updated``, JQL ``updated >=``) and merges it by
primary key, and its answer equals a full fetch's after records were updated, merged, moved between statuses —
and, once ``full_refresh_s`` has passed, deleted."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

PULLS = "SELECT number, title, status FROM github.pull_requests WHERE repo = 'web-frontend'"
ISSUES = "SELECT issue_key, status, summary FROM jira.issues WHERE status = 'In Progress'"


@dataclasses.dataclass
class World:
    urls: dict[str, str]
    services: dict[str, Any]  # "delta": full_refresh_s 300, "short": 1.5 s, "truth": delta refresh off
    tokens: dict[str, str]

    def requests(self, app: str) -> list[dict[str, Any]]:
        entries = httpx.get(f"{self.urls[app]}/_sandbox/requests").json()
        return [e for e in entries if not e["path"].startswith("/_sandbox")]

    def clear(self) -> None:
        for url in self.urls.values():
            httpx.delete(f"{url}/_sandbox/requests").raise_for_status()

    def mutate(self, app: str, **body: Any) -> None:
        httpx.post(f"{self.urls[app]}/_sandbox/mutate", json=body).raise_for_status()

    def rows(self, service: str, sql: str) -> list[tuple[Any, ...]]:
        import adbc_driver_flightsql.dbapi as flightsql

        with flightsql.connect(self.services[service].uri, db_kwargs={
                "adbc.flight.sql.authorization_header": f"Bearer {self.tokens['token_admin']}"}) as conn:
            cursor = conn.cursor()
            cursor.execute(sql)
            return sorted(tuple(r.values()) for r in cursor.fetch_arrow_table().to_pylist())


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    from demo.tenant import UNTHROTTLED, demo_config, demo_tokens
    from flight_server.app import start_service
    from sandbox.server import start_sandbox

    sandbox = start_sandbox()
    config = demo_config(sandbox.info(), "127.0.0.1", 0, UNTHROTTLED)
    services = {name: start_service(dataclasses.replace(config, cache=dataclasses.replace(
        config.cache, full_refresh_s=refresh))) for name, refresh in (("delta", 300.0), ("short", 1.5), ("truth", 0))}
    try:
        yield World({"github": sandbox.github_url, "jira": sandbox.jira_url}, services, demo_tokens())
    finally:
        for service in services.values():
            service.stop()
        sandbox.stop()


def _open_pull(world: World, number_from_end: int) -> int:
    """The id of an open pull request of web-frontend (from the truth service, no cache involved)."""
    rows = world.rows("truth", "SELECT pr_id FROM github.pull_requests WHERE repo = 'web-frontend' AND "
                               "status = 'open' ORDER BY number")
    return int(rows[-number_from_end][0])


def test_a_live_repeat_fetches_only_the_changes(world: World) -> None:
    first = world.rows("delta", PULLS)
    world.clear()
    full = world.rows("truth", PULLS)
    full_requests = len(world.requests("github"))
    assert first == full
    world.mutate("github", update=[{"id": _open_pull(world, 1), "title": "Renamed while cached"},
                                   {"id": _open_pull(world, 2), "merged": True}])
    world.clear()
    got = world.rows("delta", PULLS)
    delta_requests = len(world.requests("github"))
    assert got == world.rows("truth", PULLS) != first
    assert any(title == "Renamed while cached" for _, title, _ in got)
    assert delta_requests <= 2 < full_requests, (delta_requests, full_requests)


def test_changes_move_rows_in_and_out_of_a_filtered_scan(world: World) -> None:
    """A status filter is not sent with the change listing: an issue that left 'In Progress' leaves the copy,
    one that entered it joins, one whose summary changed is replaced."""
    before = world.rows("delta", ISSUES)
    todo = world.rows("truth", "SELECT issue_key FROM jira.issues WHERE status = 'To Do' ORDER BY issue_key")
    leaving, renamed, entering = before[0][0], before[1][0], todo[0][0]
    world.mutate("jira", update=[{"key": leaving, "status": "Done"}, {"key": renamed, "summary": "New summary"},
                                 {"key": entering, "status": "In Progress"}])
    world.clear()
    got = world.rows("delta", ISSUES)
    assert len(world.requests("jira")) == 1, "one search for what changed"
    assert got == world.rows("truth", ISSUES)
    keys = {k for k, _, _ in got}
    assert leaving not in keys and entering in keys and (renamed, "In Progress", "New summary") in got


def test_explain_analyze_says_delta_and_the_statistics_stay_honest(world: World) -> None:
    import adbc_driver_flightsql.dbapi as flightsql

    world.rows("delta", PULLS)
    with flightsql.connect(world.services["delta"].uri, db_kwargs={
            "adbc.flight.sql.authorization_header": f"Bearer {world.tokens['token_admin']}"}) as conn:
        cursor = conn.cursor()
        cursor.execute("EXPLAIN ANALYZE " + PULLS)
        step = cursor.fetch_arrow_table().to_pylist()[0]
        cursor.execute("EXPLAIN " + PULLS)
        planned = cursor.fetch_arrow_table().to_pylist()[0]
    assert step["fetch"] == "delta" and step["api_calls"] <= 2
    assert "pr_id" in step["projection"], "the primary key is fetched for the merge"
    assert planned["est_rows"] > 50, "a delta's few listed rows are not taken for the table's size"


def test_deletions_show_after_the_full_refresh(world: World) -> None:
    world.rows("short", PULLS)
    victim = _open_pull(world, 3)
    world.mutate("github", delete=[victim])
    time.sleep(1.6)  # past full_refresh_s = 1.5: the next live query fetches in full
    world.clear()
    got = world.rows("short", PULLS)
    assert got == world.rows("truth", PULLS)
    assert len(world.requests("github")) > 4, "a full fetch, not a delta"
