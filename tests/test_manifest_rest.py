"""A second app with only a manifest: a status-page REST API (tests/statuspage_standin.py) configured by a tenant
YAML that names ``tests/manifests`` as its manifests folder, served by the real Flight server and read over ADBC."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.answers import adbc_answer
from tests.conftest import ROOT
from tests.statuspage_standin import TOKEN, StatusPage, start_statuspage


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[StatusPage, Any]]:
    import adbc_driver_flightsql.dbapi as flightsql

    from flight_server.app import start_service
    from flight_server.config import load_config

    app, url, server = start_statuspage()
    tenant = tmp_path_factory.mktemp("tenant") / "tenant.yaml"
    tenant.write_text(f"""tenant: acme
connectors:
  status:
    type: manifest
    manifest: statuspage
    manifests_dir: {ROOT / "tests" / "manifests"}
    base_url: {url}
    api_token_env: SP_TOKEN
principals:
  - {{user: ana, token_env: SP_USER_TOKEN}}
""")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SP_TOKEN", TOKEN)
        env.setenv("SP_USER_TOKEN", "sp-user-token")
        import dataclasses
        service = start_service(dataclasses.replace(load_config(tenant), port=0))
    conn = flightsql.connect(service.uri, db_kwargs={"adbc.flight.sql.authorization_header": "Bearer sp-user-token"})
    yield app, conn
    conn.close()
    service.stop()
    server.should_exit = True


def _expected(app: StatusPage, keep: Any) -> list[str]:
    return sorted(r["id"] for r in app.incidents if keep(r))


def test_every_incident_over_link_header_pages(served: tuple[StatusPage, Any]) -> None:
    app, conn = served
    app.requests.clear()
    got = adbc_answer(conn, "SELECT * FROM status.incidents")
    assert sorted(got.column("id").to_pylist()) == _expected(app, lambda r: True)
    assert len(app.requests) == 5  # 87 incidents, 20 a page
    first = got.to_pylist()[0]
    assert first["started_at"] == datetime.fromtimestamp(app.incidents[0]["started_at"], UTC)
    assert first["service"] == app.incidents[0]["service"]["name"] and first["tags"] == app.incidents[0]["tags"]


def test_filters_become_query_parameters_and_rows_are_rechecked(served: tuple[StatusPage, Any]) -> None:
    app, conn = served
    app.requests.clear()
    since = datetime(2026, 1, 20, 12, 30, 0, 500_000, tzinfo=UTC)
    got = adbc_answer(conn, "SELECT id FROM status.incidents WHERE status IN ('resolved', 'monitoring') "
                            "AND started_at >= TIMESTAMP '2026-01-20 12:30:00.5' AND impact <> 'none'")
    assert sorted(got.column("id").to_pylist()) == _expected(
        app, lambda r: r["status"] in ("resolved", "monitoring") and r["started_at"] >= since.timestamp()
        and r["impact"] != "none")
    query = app.requests[0]["query"]
    assert query["status"] in ("resolved,monitoring", "monitoring,resolved")
    assert query.get("since", str(int(since.timestamp()))) == str(int(since.timestamp())) and "impact" not in query


def test_explain_and_a_join_with_another_table(served: tuple[StatusPage, Any]) -> None:
    app, conn = served
    plan = adbc_answer(conn, "EXPLAIN SELECT id FROM status.incidents WHERE status = 'resolved' "
                             "AND started_at >= TIMESTAMP '2026-01-10'").to_pylist()[0]
    assert plan["pushed_exact"] == "status = 'resolved'"
    assert plan["pushed_inexact"] is None or plan["pushed_inexact"].startswith("started_at >=")
    got = adbc_answer(conn, "SELECT s.name, count(i.id) AS n FROM status.services s "
                            "LEFT JOIN status.incidents i ON i.service = s.name GROUP BY s.name ORDER BY s.name")
    assert got.column("n").to_pylist() == [sum(1 for r in app.incidents if r["service"]["name"] == name)
                                           for name in sorted(("api", "web", "billing", "search"))]


def test_a_wrong_token_reads_as_the_apis_own_message(tmp_path: Path) -> None:
    import asyncio

    import httpx

    from connectors.declarative.factory import parse
    from connectors.registry import default_registry
    from connectors.settings import Settings
    from core.errors import UpstreamError
    from core.types import ScanRequest, ScanStats

    app, url, server = start_statuspage()
    config = parse(Settings("connectors.status", {"manifest": str(ROOT / "tests/manifests/statuspage.yaml"),
                                                  "base_url": url, "api_token_env": "T"}, {"T": "wrong-token"}))

    async def scan() -> None:
        async with httpx.AsyncClient() as http:
            connector = default_registry().factory("manifest").build("status", config, http)
            async for _ in connector.scan(ScanRequest("services", ("name",)), ScanStats()):
                pass

    with pytest.raises(UpstreamError, match="HTTP 401 to GET /api/v1/services: invalid token; check the connector"):
        asyncio.run(scan())
    server.should_exit = True


def test_the_filters_block_maps_predicates_to_query_parameters() -> None:
    from connectors.declarative import load_manifest
    from connectors.declarative.options import build_options
    from core.types import Predicate

    table = load_manifest(ROOT / "tests/manifests/statuspage.yaml").table("incidents")
    since = datetime(2026, 1, 20, 12, 30, 0, 500_000)
    options = build_options(table, [Predicate("status", "IN", ("resolved", "a&b=c")),
                                    Predicate("started_at", ">=", (since,)), Predicate("impact", "=", ("x",))], {})
    assert options.params == {"status": "resolved,a&b=c", "since": int(since.replace(tzinfo=UTC).timestamp())}
    assert options.sent == ["status IN ('resolved', 'a&b=c')", f"started_at >= TIMESTAMP '{since.isoformat(sep=' ')}'"]


def test_config_check_probes_a_manifest_connector(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from flight_server.config_check import check_file

    _, url, server = start_statuspage()
    tenant = tmp_path / "tenant.yaml"
    tenant.write_text(f"connectors:\n  status: {{type: manifest, manifest: {ROOT / 'tests/manifests/statuspage.yaml'}"
                      f", base_url: {url}, api_token_env: SP_TOKEN}}\nprincipals:\n  - {{user: a, token_env: U}}\n")
    monkeypatch.setenv("U", "u")
    try:
        monkeypatch.setenv("SP_TOKEN", TOKEN)
        (ok,) = check_file(tenant).probes
        assert ok.ok and ok.message == f"status.incidents: 1 row from {url} (bearer)"
        monkeypatch.setenv("SP_TOKEN", "wrong")
        (bad,) = check_file(tenant).probes
        assert not bad.ok and "HTTP 401 to GET /api/v1/incidents: invalid token" in bad.message
    finally:
        server.should_exit = True
