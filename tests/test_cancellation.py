"""Cancellation and the query deadline cover the whole query: a client that cancels (or whose gRPC deadline
passes) and the server's ``query_deadline_s`` interrupt DuckDB too, so the server's CPU is free within about a
second — measured on the real server process through /proc."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.flight as flight
import pytest

from tests.conftest import launch_demo

# Memory-light and CPU-heavy: a 4-way cross join counted in DuckDB after 4 small Jira scans.
HEAVY = "SELECT count(*) FROM jira.issues a, jira.issues b, jira.issues c, jira.issues d"
CLK_TCK = os.sysconf("SC_CLK_TCK")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    if not Path("/proc/self/stat").exists():
        pytest.skip("needs /proc to read the server's CPU time")
    with launch_demo(tmp_path_factory.mktemp("deadline"), "--query-deadline-s", "6") as info:
        yield info


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def busy_fraction(pid: int, seconds: float) -> float:
    """Share of one core the process used over ``seconds`` of wall time."""
    before, started = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return (cpu_seconds(pid) - before) / (time.monotonic() - started)


def client(info: dict[str, Any]) -> flight.FlightClient:
    conn = flight.FlightClient(info["flight_uri"])
    return conn


def options(info: dict[str, Any], timeout: float | None = None) -> flight.FlightCallOptions:
    token = info["tokens"]["token_admin"]
    return flight.FlightCallOptions(timeout=timeout, headers=[(b"authorization", f"Bearer {token}".encode())])


def flight_info(info: dict[str, Any], sql: str) -> flight.FlightInfo:
    from flight_server.commands import pack
    from flight_server.proto import flight_sql_pb2 as pb

    descriptor = flight.FlightDescriptor.for_command(pack(pb.CommandStatementQuery(query=sql)))
    return client(info).get_flight_info(descriptor, options(info))


def test_a_cancelled_duckdb_query_frees_the_cpu(server: dict[str, Any]) -> None:
    ticket = flight_info(server, HEAVY).endpoints[0].ticket
    started = time.monotonic()
    with pytest.raises(flight.FlightTimedOutError):
        client(server).do_get(ticket, options(server, timeout=2.5)).read_all()
    assert time.monotonic() - started < 4
    time.sleep(1.0)  # the interrupt lands within moments; leave a second for it
    assert busy_fraction(server["pid"], 1.5) < 0.3


def test_the_query_deadline_stops_duckdb(server: dict[str, Any]) -> None:
    """No client deadline at all: the server's own query_deadline_s (6 s here) ends the query with a clear
    error, and the CPU is free afterwards."""
    ticket = flight_info(server, HEAVY).endpoints[0].ticket
    started = time.monotonic()
    with pytest.raises(flight.FlightError, match="QUERY_TIMEOUT.*deadline of 6 s"):
        client(server).do_get(ticket, options(server)).read_all()
    assert 5 < time.monotonic() - started < 10
    assert busy_fraction(server["pid"], 1.5) < 0.3


def test_the_server_still_answers_after_both(server: dict[str, Any]) -> None:
    ticket = flight_info(server, "SELECT count(*) AS n FROM jira.issues WHERE project = 'WEB'").endpoints[0].ticket
    table = client(server).do_get(ticket, options(server, timeout=30)).read_all()
    assert table.column("n")[0].as_py() > 0
