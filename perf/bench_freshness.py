"""Freshness costs through ADBC, on a sandbox of its own (its data changes between rounds):

1. live (staleness 0) repeats of one listing with delta refresh versus full refetch, in upstream requests and
   milliseconds, after a few records changed between rounds (``/_sandbox/mutate``);
2. a cold cross-app join (the seed's ``in_progress_join``, nothing cached) against the slowest of the
   single-source scans its plan makes, medians of interleaved rounds.

The sandbox runs in a process of its own (``omnisql sandbox``: its CPU is not the server's, as with a real API);
GitHub and Jira each in a process of their own, as two real services; the join is measured again with
``--latency-ms`` of upstream latency per request (real APIs are a network away). The services run in this
process (one with ``cache.full_refresh_s`` 300, one with delta refresh off); every loop is bounded by ``--rounds``.

    PYTHONPATH=. .venv/bin/python perf/bench_freshness.py [--rounds 15] [--latency-ms 30]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import adbc_driver_flightsql.dbapi as flightsql
import httpx

from demo.tenant import SEED_QUERIES, UNTHROTTLED, demo_config, demo_tokens
from flight_server.app import start_service

ROOT = Path(__file__).resolve().parent.parent

LISTINGS = {
    "github": "SELECT number, title, status FROM github.pull_requests WHERE repo = 'web-frontend'",
    "jira": "SELECT issue_key, status, summary FROM jira.issues WHERE project = 'WEB'",
}


@contextmanager
def sandbox_process(latency_ms: int = 0) -> Iterator[dict[str, Any]]:
    """``omnisql sandbox`` in a subprocess (every answer ``latency_ms`` late, as over a network); yields its info
    (URLs and credentials)."""
    faults = ["--faults", f"all:latency_ms={latency_ms}"] if latency_ms else []
    with tempfile.TemporaryDirectory() as directory:
        info_file = Path(directory) / "sandbox.json"
        process = subprocess.Popen([sys.executable, "-m", "clients.cli", "sandbox", "--info-file", str(info_file),
                                    "--github-rate-limit", "1000000", *faults], cwd=ROOT, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(ROOT)})
        try:
            deadline = time.monotonic() + 60
            while not info_file.exists() or not info_file.read_text():
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the sandbox did not start")
                time.sleep(0.1)
            yield dict(json.loads(info_file.read_text())["sandbox"])
        finally:
            process.terminate()
            process.wait(timeout=10)


def connect(uri: str, token: str) -> Any:
    return flightsql.connect(uri, db_kwargs={"adbc.flight.sql.authorization_header": f"Bearer {token}"})


def timed(conn: Any, sql: str) -> float:
    started = time.perf_counter()
    with conn.cursor() as cursor:
        cursor.execute(sql)
        cursor.fetch_arrow_table()
    return (time.perf_counter() - started) * 1000


def requests(url: str) -> int:
    return sum(1 for e in httpx.get(f"{url}/_sandbox/requests").json() if not e["path"].startswith("/_sandbox"))


def clear(urls: dict[str, str]) -> None:
    for url in urls.values():
        httpx.delete(f"{url}/_sandbox/requests").raise_for_status()


def delta_versus_full(conns: dict[str, Any], urls: dict[str, str], rounds: int) -> None:
    print("live repeats after changes (median of rounds): upstream requests and ms per query")
    print(f"{'listing':<8} {'mode':<6} {'requests':>9} {'p50 ms':>8}")
    for app, sql in LISTINGS.items():
        for conn in conns.values():
            timed(conn, sql)  # the first fetch is full for both
        samples: dict[str, list[tuple[int, float]]] = {"delta": [], "full": []}
        ids: list[int] = []
        if app == "github":
            with conns["full"].cursor() as cursor:
                cursor.execute("SELECT pr_id FROM github.pull_requests WHERE repo = 'web-frontend'")
                ids = [row[0] for row in cursor.fetchall()]
        for n in range(rounds):
            if app == "github":
                body: dict[str, Any] = {"update": [{"id": ids[n % len(ids)], "title": f"round {n}"}]}
            else:
                body = {"update": [{"key": f"WEB-{n + 1}", "summary": f"round {n}"}]}
            httpx.post(f"{urls[app]}/_sandbox/mutate", json=body).raise_for_status()
            for mode, conn in conns.items():
                clear(urls)
                ms = timed(conn, sql)
                samples[mode].append((requests(urls[app]), ms))
        for mode, got in samples.items():
            print(f"{app:<8} {mode:<6} {statistics.median(r for r, _ in got):>9.0f} "
                  f"{statistics.median(ms for _, ms in got):>8.1f}")


def join_versus_slowest(conn: Any, rounds: int) -> None:
    join = SEED_QUERIES["in_progress_join"]
    with conn.cursor() as cursor:
        cursor.execute("EXPLAIN " + join)
        plan = cursor.fetch_arrow_table().to_pylist()
    singles = {}
    for step in plan:
        if step["source_table"] is None:
            continue
        where = " AND ".join(filter(None, [step["pushed_exact"], step["pushed_inexact"]]))
        singles[step["source_table"]] = (f"SELECT {step['projection']} FROM {step['source_table']}"
                                         + (f" WHERE {where}" if where else ""))
        print(f"  step {step['step']} wave {step['wave']}: {step['strategy']} {step['source_table']}")
    samples: dict[str, list[float]] = {name: [] for name in ["join", *singles]}
    for _ in range(rounds):  # interleaved, so drift hits every query alike
        samples["join"].append(timed(conn, join))
        for name, sql in singles.items():
            samples[name].append(timed(conn, sql))
    medians = {name: statistics.median(ms) for name, ms in samples.items()}
    slowest = max((name for name in singles), key=lambda name: medians[name])
    for name, ms in medians.items():
        print(f"  {name:<22} p50 {ms:7.1f} ms")
    print(f"cold cross-app join / slowest single scan ({slowest}): {medians['join'] / medians[slowest]:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--latency-ms", type=int, default=30,
                        help="upstream latency per request for a second cold-join run (0: skip it)")
    args = parser.parse_args()
    # GitHub and Jira are separate services: each is served by a sandbox process of its own (the seed is
    # deterministic, so both processes hold the same data), as two real APIs would not share one CPU.
    with sandbox_process() as info, sandbox_process() as other:
        run({**info, "jira": other["jira"]}, args.rounds)
    if args.latency_ms:
        with sandbox_process(args.latency_ms) as info, sandbox_process(args.latency_ms) as other:
            print(f"\nwith {args.latency_ms} ms of upstream latency per request (a network between us and the APIs)")
            run({**info, "jira": other["jira"]}, args.rounds, delta=False)


def run(info: dict[str, Any], rounds: int, delta: bool = True) -> None:
    config = demo_config(info, "127.0.0.1", 0, UNTHROTTLED)
    services = {mode: start_service(dataclasses.replace(config, cache=dataclasses.replace(
        config.cache, full_refresh_s=refresh))) for mode, refresh in (("delta", 300.0), ("full", 0.0))}
    token = demo_tokens()["token_admin"]
    conns = {mode: connect(service.uri, token) for mode, service in services.items()}
    urls = {"github": info["github"]["base_url"], "jira": info["jira"]["base_url"]}
    try:
        if delta:
            delta_versus_full(conns, urls, rounds)
        print("\ncold cross-app join (delta refresh off: every scan fetched in full, nothing cached)")
        join_versus_slowest(conns["full"], rounds)
    finally:
        for conn in conns.values():
            conn.close()
        for service in services.values():
            service.stop()


if __name__ == "__main__":
    main()
