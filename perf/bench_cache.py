"""Cached single-source query throughput and p50/p99 through ADBC, with 1 and 8 client threads.

Starts ``omnisql serve --demo`` in a subprocess (the server's GIL is not the clients'), warms the scan cache
with one query, then every client sends the same query with ``x-omnisql-max-staleness-ms`` large (one hour), so
each is answered from the cache: planning, the cache lookup, DuckDB and the Arrow stream back, no API call (the
sandbox's request log is checked). A live run (staleness 0, one thread) is printed beside it for scale. Every
loop is bounded by a count.

    .venv/bin/python perf/bench_cache.py [--queries 400] [--redis redis://127.0.0.1:6379/0]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import adbc_driver_flightsql.dbapi as flightsql
import httpx

ROOT = Path(__file__).resolve().parent.parent
SQL = "SELECT number, title, status FROM github.pull_requests WHERE repo = 'web-frontend' AND status = 'open'"
HOUR_MS = 3_600_000


def start_server(directory: Path, redis: str | None) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    info_file = directory / "info.json"
    command = [sys.executable, "-m", "clients.cli", "serve", "--demo", "--port", "0", "--info-file", str(info_file),
               "--http-port", "0",
               "--github-rate-limit", "1000000", "--max-concurrent-queries-per-principal", "16",
               "--max-concurrent-queries", "32", "--rate-limit-burst", "1000000",
               "--rate-limit-refill-per-s", "1000000", *(["--redis", redis] if redis else [])]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env={**os.environ, "OMNISQL_LOG_LEVEL": "WARNING"})
    deadline = time.monotonic() + 60
    while not info_file.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("the demo server did not start")
        time.sleep(0.1)
    return process, json.loads(info_file.read_text())


def connect(info: dict[str, Any], staleness_ms: int) -> Any:
    return flightsql.connect(info["flight_uri"], db_kwargs={
        "adbc.flight.sql.authorization_header": f"Bearer {info['tokens']['token_admin']}",
        "adbc.flight.sql.rpc.call_header.x-omnisql-max-staleness-ms": str(staleness_ms)})


def run(info: dict[str, Any], threads: int, queries: int, staleness_ms: int) -> tuple[float, list[float]]:
    """``queries`` executions spread over ``threads`` clients (one connection each); (wall s, latencies ms)."""
    latencies: list[float] = []
    lock = threading.Lock()
    per_thread = [queries // threads + (1 if i < queries % threads else 0) for i in range(threads)]
    start = threading.Barrier(threads + 1)

    def client(count: int) -> None:
        with connect(info, staleness_ms) as conn, conn.cursor() as cur:
            cur.execute(SQL)  # the connection's own warm-up (handshake, first prepare)
            cur.fetch_arrow_table()
            start.wait()
            mine = []
            for _ in range(count):
                began = time.perf_counter()
                cur.execute(SQL)
                cur.fetch_arrow_table()
                mine.append((time.perf_counter() - began) * 1000)
        with lock:
            latencies.extend(mine)

    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        futures = [pool.submit(client, n) for n in per_thread]
        start.wait()
        began = time.perf_counter()
        for future in futures:
            future.result()
        wall = time.perf_counter() - began
    return wall, latencies


def upstream_calls(info: dict[str, Any]) -> int:
    entries = httpx.get(f"{info['sandbox']['github']['base_url']}/_sandbox/requests").json()
    return sum(1 for e in entries if not e["path"].startswith("/_sandbox"))


def report(label: str, wall: float, latencies: list[float], calls: int) -> None:
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    print(f"  {label:<28}{len(latencies) / wall:9.1f} q/s   p50 {statistics.median(latencies):7.2f} ms   "
          f"p99 {p99:7.2f} ms   upstream calls {calls}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--queries", type=int, default=400, help="queries per run (all threads together)")
    parser.add_argument("--redis", help="serve with --redis URL (the near cache still answers repeated hits)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        process, info = start_server(Path(tmp), args.redis)
        try:
            with connect(info, HOUR_MS) as conn, conn.cursor() as cur:  # fill the cache once
                cur.execute(SQL)
                rows = cur.fetch_arrow_table().num_rows
            print(f"single-source query via ADBC, {rows} rows, {args.queries} queries per run"
                  + (f", Redis {args.redis}" if args.redis else ""))
            for threads in (1, 8):
                before = upstream_calls(info)
                wall, latencies = run(info, threads, args.queries, HOUR_MS)
                report(f"cached, {threads} thread{'s' if threads > 1 else ''}", wall, latencies,
                       upstream_calls(info) - before)
            before = upstream_calls(info)
            wall, latencies = run(info, 1, min(args.queries, 200), 0)
            report("live (staleness 0), 1 thread", wall, latencies, upstream_calls(info) - before)
        finally:
            process.terminate()
            process.wait(timeout=10)


if __name__ == "__main__":
    main()
