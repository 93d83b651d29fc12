"""Round trips per second and p50/p99 of a single-source query through ADBC, and DoGet throughput of a large
result. Starts its own demo (sandbox + server) on 127.0.0.1. Every loop is bounded by a count.

    .venv/bin/python perf/bench_roundtrip.py [--queries 200]
"""

from __future__ import annotations

import argparse
import statistics
import time

import adbc_driver_flightsql.dbapi as flightsql

from demo.launch import start_sandbox
from demo.tenant import UNTHROTTLED, demo_config, demo_tokens
from flight_server.app import start_service


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--large-repeats", type=int, default=5)
    args = parser.parse_args()
    sandbox = start_sandbox()
    service = start_service(demo_config(sandbox.info(), "127.0.0.1", 0, UNTHROTTLED))
    conn = flightsql.connect(service.uri, db_kwargs={
        "adbc.flight.sql.authorization_header": f"Bearer {demo_tokens()['token_admin']}"})
    cursor = conn.cursor()
    sql = "SELECT number, title, status FROM github.pull_requests WHERE repo = 'web-frontend' AND status = 'open'"
    cursor.execute(sql)
    cursor.fetchall()  # warm-up
    latencies = []
    started = time.perf_counter()
    for _ in range(args.queries):
        t = time.perf_counter()
        cursor.execute(sql)
        cursor.fetch_arrow_table()
        latencies.append((time.perf_counter() - t) * 1000)
    wall = time.perf_counter() - started
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    print(f"single-source query via ADBC (fresh API fetch each time, no cache yet): {args.queries} queries")
    print(f"  throughput {args.queries / wall:8.1f} queries/s   p50 {statistics.median(latencies):7.1f} ms   "
          f"p99 {p99:7.1f} ms")

    large = ("SELECT a.pr_id, a.number, a.repo, a.title, a.author, a.status, a.branch, a.labels, a.created_at, "
             "b.number AS n2 FROM github.pull_requests a CROSS JOIN "
             "(SELECT number FROM github.pull_requests LIMIT 300) b")
    rows = nbytes = 0
    elapsed = 0.0
    for _ in range(args.large_repeats):
        t = time.perf_counter()
        cursor.execute(large)
        table = cursor.fetch_arrow_table()
        elapsed += time.perf_counter() - t
        rows, nbytes = table.num_rows, table.nbytes
    print(f"large result via DoGet: {rows:,} rows, {nbytes / 1e6:.1f} MB per query, "
          f"{args.large_repeats} repeats")
    print(f"  {rows * args.large_repeats / elapsed:,.0f} rows/s   "
          f"{nbytes * args.large_repeats / elapsed / 1e6:,.1f} MB/s (end to end, includes 2 API scans per query)")
    cursor.close()
    conn.close()
    service.stop()
    sandbox.stop()


if __name__ == "__main__":
    main()
