"""``max_fetch_bytes_per_query``: what one query's scans may bring into the process is bounded while they fetch
(issue #10: memory outside DuckDB), through the real service and sandbox over ADBC; the server lives on."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from core.errors import ResourceExhausted
from planner.context import FetchAllowance
from tests.conftest import own_demo

KiB = 1024


def test_the_allowance_refuses_past_its_limit_naming_the_key() -> None:
    allowance = FetchAllowance(100)
    allowance.take(60)
    allowance.take(40)
    with pytest.raises(ResourceExhausted, match="max_fetch_bytes_per_query"):
        allowance.take(1)


@pytest.fixture(scope="module")
def small() -> Iterator[Any]:
    def small_fetches(config: Any, info: dict[str, Any]) -> Any:
        return dataclasses.replace(config, limits=dataclasses.replace(config.limits,
                                                                      max_fetch_bytes_per_query=64 * KiB))

    with own_demo(small_fetches) as (_, conn):
        yield conn


def _run(conn: Any, sql: str) -> Any:
    with conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetch_arrow_table()


def test_a_query_that_lists_too_much_is_stopped_and_the_server_lives_on(small: Any) -> None:
    import adbc_driver_manager

    with pytest.raises(adbc_driver_manager.Error) as refused:
        _run(small, "SELECT * FROM github.pull_requests")
    assert "RESOURCE_EXHAUSTED" in str(refused.value) and "max_fetch_bytes_per_query" in str(refused.value)
    assert "64 KiB" in str(refused.value)
    narrow = _run(small, "SELECT number, status FROM github.pull_requests WHERE repo = 'web-frontend' "
                         "AND status = 'open'")
    assert narrow.num_rows > 0  # a query within the allowance still runs on the same server
    assert _run(small, "SELECT 1 AS x").column("x").to_pylist() == [1]
