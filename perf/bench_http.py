"""The HTTP API beside Flight: a cached single-source query through ``POST /v1/query`` (JSON and Arrow IPC) and
through ADBC, sequentially on one kept-alive connection each, against ``omnisql serve --demo``. Prints q/s, p50 and
p99 per way in; every answer is checked to come from the cache (no upstream call)."""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
SQL = "SELECT issue_key, status, story_points FROM jira.issues WHERE project = 'MOB'"
TOKEN = "omni-demo-admin-token"
HOUR_MS = 3_600_000


def measure(name: str, run: Callable[[], None], queries: int) -> None:
    times = []
    started = time.perf_counter()
    for _ in range(queries):
        began = time.perf_counter()
        run()
        times.append((time.perf_counter() - began) * 1000)
    total = time.perf_counter() - started
    times.sort()
    print(f"| {name} | {queries / total:.1f} q/s | p50 {statistics.median(times):.1f} ms | "
          f"p99 {times[int(len(times) * 0.99) - 1]:.1f} ms |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        info_file = Path(directory) / "info.json"
        server = subprocess.Popen([sys.executable, "-m", "clients.cli", "serve", "--demo", "--port", "0",
                                   "--http-port", "0", "--info-file", str(info_file), "--rate-limit-burst", "1000000",
                                   "--rate-limit-refill-per-s", "1000000"], cwd=ROOT, stdout=subprocess.DEVNULL)
        try:
            while not info_file.exists():
                assert server.poll() is None, "the demo did not start"
                time.sleep(0.1)
            info = json.loads(info_file.read_text())
            run_benchmarks(info, args.queries)
        finally:
            server.terminate()
            server.wait(timeout=15)


def run_benchmarks(info: dict[str, str], queries: int) -> None:
    import adbc_driver_flightsql.dbapi as flightsql

    body = {"sql": SQL, "metadata": {"max_staleness_ms": HOUR_MS}}
    print("| way in | throughput | p50 | p99 |\n|---|---|---|---|")
    with httpx.Client(base_url=info["http_url"], headers={"X-User-Token": TOKEN}) as client:
        def json_query() -> None:
            answer = client.post("/v1/query", json=body).json()
            assert answer["api_calls"] == 0 and answer["row_count"] > 0, answer

        def arrow_query() -> None:
            response = client.post("/v1/query", json=body, headers={"Accept": "application/vnd.apache.arrow.stream"})
            assert response.status_code == 200 and json.loads(response.headers["x-omnisql-metadata"])["api_calls"] == 0

        client.post("/v1/query", json=body).raise_for_status()  # warm: fills the scan cache and the plan cache
        measure("HTTP, JSON", json_query, queries)
        measure("HTTP, Arrow IPC", arrow_query, queries)
    with flightsql.connect(info["flight_uri"], db_kwargs={
            "adbc.flight.sql.authorization_header": f"Bearer {TOKEN}",
            "adbc.flight.sql.rpc.call_header.x-omnisql-max-staleness-ms": str(HOUR_MS)}) as conn, \
            conn.cursor() as cursor:
        def adbc_query() -> None:
            cursor.execute(SQL)
            assert cursor.fetch_arrow_table().num_rows > 0

        cursor.execute(SQL)
        cursor.fetch_arrow_table()
        measure("Flight SQL, ADBC", adbc_query, queries)


if __name__ == "__main__":
    main()
