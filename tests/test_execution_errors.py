"""What the executor learns and how it fails: statistics record what the API listed (not what survived local
filters), upstream garbage is UPSTREAM_ERROR, and a bug of ours is INTERNAL with an incident id."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import grpc
import pyarrow as pa
import pytest

from connectors.decode import WireField, decode_page
from connectors.github.tables import PULL_REQUESTS
from core.errors import UpstreamError
from core.types import ScanRequest, ScanStats, TableSpec
from flight_server.errors import status_of
from planner.duck import Duck
from planner.execute import BackgroundLoop, Executor
from sandbox.seed import build_seed


@pytest.fixture(scope="module")
def engine(demo: dict[str, Any]) -> Iterator[Any]:
    from demo.tenant import UNTHROTTLED, demo_config
    from flight_server.app import start_service

    service = start_service(demo_config(demo["sandbox"], "127.0.0.1", 0, UNTHROTTLED))
    yield service.engine
    service.stop()


def test_statistics_record_listed_rows_not_survivors(engine: Any) -> None:
    """A LIKE that keeps a few rows must not teach the planner that the listing is that small: bind-join
    pricing reads these numbers."""
    result = engine.query("SELECT number, additions FROM github.pull_requests WHERE title LIKE '%cache%'")
    assert 0 < result.table.num_rows < len(build_seed().pulls)
    learned = engine.estimator.statistics.scoped("in-process")  # the scope of the operator's own queries
    assert learned.rows(PULL_REQUESTS, ()) == len(build_seed().pulls)


@pytest.mark.parametrize("items", [
    [{"id": "not-a-number"}],
    ["a string where an object belongs"],
    [{"id": 1, "created_at": "yesterday"}],
])
def test_records_of_the_wrong_shape_are_upstream_errors(items: list[Any]) -> None:
    schema = pa.schema([("pr_id", pa.int64()), ("created_at", pa.timestamp("us", tz="UTC"))])
    fields = {"pr_id": WireField(("id",)), "created_at": WireField(("created_at",), "timestamp")}
    with pytest.raises(UpstreamError, match="GitHub returned records that do not match its API contract"):
        decode_page(items, schema, fields, "GitHub")


class _BuggyConnector:
    """A connector with a programming error (the only test double here, for one function: Executor._scan)."""

    name = "github"
    held = "a bug of ours"  # what the failing code held (a row value, say): never in the answer or the log

    async def open(self) -> None:
        return None

    def tables(self) -> Sequence[TableSpec]:
        return (PULL_REQUESTS,)

    async def _fail(self) -> AsyncIterator[pa.RecordBatch]:
        raise KeyError(self.held)
        yield  # pragma: no cover - makes this an async generator

    def scan(self, request: ScanRequest, stats: ScanStats) -> AsyncIterator[pa.RecordBatch]:
        return self._fail()

    async def aclose(self) -> None:
        return None


def test_a_bug_in_a_connector_is_internal_with_an_incident(caplog: pytest.LogCaptureFixture) -> None:
    loop = BackgroundLoop()
    try:
        executor = Executor({"github": _BuggyConnector()}, Duck(), loop)
        request = ScanRequest("pull_requests", ("number",))
        with pytest.raises(KeyError) as raised:  # not turned into "UPSTREAM_ERROR, retry later"
            loop.run(executor._scan(_BuggyConnector(), request, ScanStats()))
    finally:
        loop.stop()
    with caplog.at_level(logging.ERROR, logger="omnisql.flight"):
        code, message, _ = status_of(raised.value, "DoGet")
    assert code == grpc.StatusCode.INTERNAL
    incident = message.split("incident ")[1].split(")")[0]
    assert "a bug of ours" not in message
    [logged] = [r for r in caplog.records if incident in r.getMessage()]
    # The log finds the bug (type and stack) without its message, which may quote a row value.
    assert "KeyError" in logged.getMessage() and "in _fail" in logged.getMessage()
    assert "a bug of ours" not in logged.getMessage() and logged.exc_info is None

