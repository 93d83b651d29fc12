"""OmniSQL side by side with roapi (Rust/DataFusion Flight SQL) and a bare pyarrow.flight server (issue 14).

Why one script: the machine is shared and noisy, so the three servers are measured in the same run, in
interleaved rounds (the order rotates each round), and the table reports the median of the rounds with its
min–max spread. Every client goes through ADBC (``adbc_driver_flightsql``), as a user's would.

Scenarios:
- ``SELECT 1`` with 1 and 8 client threads: q/s, p50 latency and the server's CPU ms per query (utime+stime of
  the server process and its descendants from /proc, read before and after the run). OmniSQL runs twice: one
  serving process (the default) and ``serve --workers 2`` (both cores serve; its rows say so).
- bulk: a multi-million-row, 4-column numeric result, GB/s = Arrow bytes received / wall time of
  ``execute`` + ``fetch_arrow_table``, at a few sizes. OmniSQL generates the rows by SQL, roapi serves the same
  rows from a parquet file it loaded, the bare server a prebuilt table (the transport's ceiling). The server's
  CPU and its RSS growth during the query (peak minus before; streaming keeps it near one batch window) too.
- bulk, cached source table: the same rows as a *table* of a REST source (``perf/bulk_source.py`` through the
  manifest ``perf/manifests/bulk.yaml``, one connector per size), served by a second OmniSQL process from its scan
  cache (``SELECT * FROM bulk_<n>.rows``, filled once before timing): the transport's share of a real table's
  answer, next to roapi and the bare server serving the same table.
- cached single-source query: OmniSQL with ``x-omnisql-max-staleness-ms`` one hour (answered from its scan
  cache), roapi serving the same rows from a local parquet file (the bare server a prebuilt result).
- OmniSQL's latency per stage from ``omnisql.query_log`` (planning, fetch, DuckDB, the rest).

roapi is installed from PyPI into ``.venv/roapi`` the first time (its own venv: nothing of it leaks into ours).
Every server is a subprocess bound on 127.0.0.1 (its GIL is not the clients'), killed in ``finally``; temporary
files (parquet, info files) live in a temp dir that is removed at the end. Plots go to ``perf/results/``.

    PYTHONPATH=. .venv/bin/python perf/bench_overhead.py [--rounds 5] [--queries 500]
        [--bulk-rows 500000,2000000,5000000]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import json
import os
import re
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from perf.bulk_source import BulkSource

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "perf" / "results"
ROAPI_VERSION = "0.12.7"
HOUR_MS = 3_600_000
CACHED_SQL = "SELECT number, title, status FROM github.pull_requests WHERE repo = 'web-frontend' AND status = 'open'"
ROAPI_CACHED_SQL = "SELECT number, title, status FROM pull_requests WHERE repo = 'web-frontend' AND status = 'open'"
# The range() generator streams its rows (unnest(range(n)) would build the whole list first).
BULK_SQL = "SELECT i AS a, i*2 AS b, i*0.5::DOUBLE AS c, i%7 AS d FROM range({n}) t(i)"
BARE_BATCH_ROWS = 65_536  # the bare server's record batches: ~2.6 MB frames at 40 bytes a row
SYSTEMS = ("OmniSQL", "roapi", "bare")
TABLE = "OmniSQL table"  # OmniSQL serving the bulk rows as a cached source table (bulk scenario only)
WORKERS = "OmniSQL ×2"  # ``serve --workers 2``: both cores serve (query scenarios only)
QUERY_SYSTEMS = (*SYSTEMS, WORKERS)
BULK_SYSTEMS = (*SYSTEMS, TABLE)
STAGES = ("planning_ms", "fetch_ms", "duckdb_ms", "other_ms")
READY_TRIES = 600  # × 0.1 s: how long a server may take to accept connections


# ---------------------------------------------------------------- the bare pyarrow.flight server (subprocess)

def serve_bare(spec_file: Path, port: int) -> None:
    """A minimal Flight server: any GetFlightInfo whose command names ``q:<key>`` is answered with that table's
    schema and a ticket ``<key>``; DoGet streams the prebuilt table. No SQL, no auth: the transport's floor."""
    import pyarrow as pa
    import pyarrow.flight as flight
    import pyarrow.parquet as pq

    spec: dict[str, str] = json.loads(spec_file.read_text())
    tables: dict[bytes, pa.Table] = {}
    for key, source in spec.items():
        table = pa.table({"1": pa.array([1], pa.int64())}) if source == "select1" else pq.read_table(source)
        # Prebuilt, contiguous and chunked once, so DoGet does no work but framing.
        tables[key.encode()] = pa.Table.from_batches(table.combine_chunks().to_batches(BARE_BATCH_ROWS),
                                                     table.schema)

    class Bare(flight.FlightServerBase):  # type: ignore[misc]
        def _key(self, command: bytes) -> bytes:
            match = re.search(rb"q:(\w+)", command)
            if match is None or match.group(1) not in tables:
                raise flight.FlightServerError(f"unknown command {command[:80]!r}")
            return match.group(1)

        def get_flight_info(self, context: Any, descriptor: Any) -> Any:
            key = self._key(descriptor.command or b"")
            table = tables[key]
            return flight.FlightInfo(table.schema, descriptor, [flight.FlightEndpoint(b"q:" + key, [])],
                                     table.num_rows, table.nbytes)

        def do_get(self, context: Any, ticket: Any) -> Any:
            return flight.RecordBatchStream(tables[self._key(ticket.ticket)])

    server = Bare(f"grpc://127.0.0.1:{port}")
    server.serve()


# ---------------------------------------------------------------- processes

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(process: subprocess.Popen[bytes], port: int, what: str, log: Path | None = None) -> None:
    """Bounded: READY_TRIES attempts, and stop early when the process died."""
    for _ in range(READY_TRIES):
        if process.poll() is not None:
            break
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.1)
    tail = log.read_text()[-2000:] if log is not None and log.exists() else ""
    raise RuntimeError(f"{what} did not accept connections on port {port}\n{tail}")


def roapi_binary() -> Path:
    """roapi from PyPI in a venv of its own (``.venv/roapi``), installed once (again when the pin changes)."""
    home = ROOT / ".venv" / "roapi"
    binary = home / "bin" / "roapi"
    marker = home / "omnisql-roapi-version.txt"
    if binary.exists() and marker.exists() and marker.read_text() == ROAPI_VERSION:
        return binary
    print(f"installing roapi=={ROAPI_VERSION} into {home} ...", flush=True)
    for command in ([sys.executable, "-m", "venv", "--clear", str(home)],
                    [str(home / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                     f"roapi=={ROAPI_VERSION}"]):
        done = subprocess.run(command, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout[-2000:]}{done.stderr[-3000:]}")
    marker.write_text(ROAPI_VERSION)
    return binary


def serve_omnisql(args: Sequence[str], info_file: Path, env: dict[str, str] | None = None
                  ) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    """``omnisql serve ARGS --info-file INFO_FILE`` in a subprocess; (process, its info) once it is ready."""
    command = [sys.executable, "-m", "clients.cli", "serve", *args, "--no-http", "--info-file", str(info_file)]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env={**os.environ, "OMNISQL_LOG_LEVEL": "WARNING", **(env or {})})
    for _ in range(READY_TRIES):
        if info_file.exists() or process.poll() is not None:
            break
        time.sleep(0.1)
    if not info_file.exists():
        process.kill()
        raise RuntimeError(f"omnisql serve {' '.join(args[:2])} did not start")
    time.sleep(0.2)  # the file is written once ready; let a partial write finish
    return process, json.loads(info_file.read_text())


def start_omnisql(tmp: Path, workers: int = 1) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    return serve_omnisql(["--demo", "--port", "0", "--github-rate-limit", "1000000", "--workers", str(workers),
                          "--max-concurrent-queries-per-principal", "16", "--max-concurrent-queries", "32",
                          "--rate-limit-burst", "1000000", "--rate-limit-refill-per-s", "1000000"],
                         tmp / f"omnisql_{workers}.info.json")


def start_omnisql_table(tmp: Path, source: BulkSource, bulk_rows: Sequence[int]
                        ) -> tuple[subprocess.Popen[bytes], dict[str, Any], str]:
    """An OmniSQL server whose tenant has one bulk connector per size (``bulk_<n>``, a table of n rows on
    ``source``) and a scan cache big enough for all of them; (process, info, its user's token)."""
    token = secrets.token_urlsafe(16)
    connectors = "".join(f"  bulk_{n}:\n    type: manifest\n    manifest: {ROOT / 'perf/manifests/bulk.yaml'}\n"
                         f"    base_url: {source.base_url(n)}\n    max_pages: {n // 50_000 + 2}\n"
                         for n in bulk_rows)
    tenant = tmp / "bulk_tenant.yaml"
    tenant.write_text(f"tenant: bench\nlisten: {{host: 127.0.0.1, port: 0}}\nconnectors:\n{connectors}"
                      "principals:\n  - {user: bench, token_env: OMNISQL_BENCH_TOKEN}\n"
                      "cache: {max_bytes: 4GiB}\n")
    process, info = serve_omnisql(["--config", str(tenant)], tmp / "omnisql_table.info.json",
                                  {"OMNISQL_BENCH_TOKEN": token})
    return process, info, token


def start_roapi(tmp: Path, tables: dict[str, Path]) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    log = tmp / "roapi.log"
    # Its HTTP and Postgres endpoints are bound on 127.0.0.1 too (their defaults are not loopback).
    command = [str(roapi_binary()), "--addr-flight-sql", f"127.0.0.1:{port}",
               "--addr-http", f"127.0.0.1:{free_port()}", "--addr-postgres", f"127.0.0.1:{free_port()}"]
    for name, path in tables.items():
        command += ["-t", f"{name}={path}"]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    wait_for_port(process, port, "roapi", log)
    return process, port


def start_bare(tmp: Path, spec: dict[str, str]) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    spec_file = tmp / "bare.json"
    spec_file.write_text(json.dumps(spec))
    log = tmp / "bare.log"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--serve-bare", str(spec_file),
                                    "--port", str(port)], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    wait_for_port(process, port, "the bare pyarrow.flight server", log)
    return process, port


def stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (a server may fork workers); bounded by the tree's size."""
    found: list[int] = []
    queue = [pid]
    while queue and len(found) < 1000:
        current = queue.pop()
        found.append(current)
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{current}/task"):
                with contextlib.suppress(OSError):
                    queue += [int(c) for c in Path(f"/proc/{current}/task/{task}/children").read_text().split()]
    return found


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process tree, in seconds (fields 14 and 15 of /proc/<pid>/stat)."""
    ticks = 0
    for member in process_tree(pid):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{member}/stat").read_text().rpartition(")")[2].split()
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def reset_peak_rss(pid: int) -> float | None:
    """Reset VmHWM to the current RSS (Linux ``clear_refs`` 5) so the next reading is one query's peak; returns
    that baseline in MB, None if refused."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return None
    return memory_mb(pid, "VmRSS:")


def memory_mb(pid: int, key: str) -> float | None:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1]) / 1024
    return None


# ---------------------------------------------------------------- the systems under test

@dataclass
class Target:
    """One server: how to reach it, its pid, and the SQL each scenario sends it."""

    name: str
    uri: str
    pid: int
    select1: str
    cached: str
    bulk: Callable[[int], str]
    db_kwargs: dict[str, str] = field(default_factory=dict)
    cached_kwargs: dict[str, str] = field(default_factory=dict)

    def connect(self, cached: bool = False) -> Any:
        import adbc_driver_flightsql.dbapi as flightsql

        kwargs = {**self.db_kwargs, **(self.cached_kwargs if cached else {})}
        return flightsql.connect(self.uri, db_kwargs=kwargs)


def fetch(cur: Any, sql: str) -> Any:
    cur.execute(sql)
    return cur.fetch_arrow_table()


@dataclass
class Run:
    queries: int
    wall_s: float
    latencies_ms: list[float]
    server_cpu_s: float

    @property
    def qps(self) -> float:
        return self.queries / self.wall_s

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies_ms)

    @property
    def cpu_ms_per_query(self) -> float:
        return self.server_cpu_s * 1000 / self.queries


def run_queries(target: Target, sql: str, threads: int, queries: int, cached: bool = False) -> Run:
    """``queries`` executions spread over ``threads`` clients (one connection each, warmed first); the clock
    and the server CPU reading start only once every client is connected and warm."""
    latencies: list[float] = []
    lock = threading.Lock()
    per_thread = [queries // threads + (1 if i < queries % threads else 0) for i in range(threads)]
    ready = threading.Barrier(threads + 1)
    go = threading.Barrier(threads + 1)

    def client(count: int) -> None:
        mine = []
        try:
            with target.connect(cached) as conn, conn.cursor() as cur:
                fetch(cur, sql)  # handshake, first plan
                ready.wait(timeout=120)
                go.wait(timeout=120)
                for _ in range(count):
                    began = time.perf_counter()
                    fetch(cur, sql)
                    mine.append((time.perf_counter() - began) * 1000)
        except BaseException:
            ready.abort()
            go.abort()
            raise
        with lock:
            latencies.extend(mine)

    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        futures = [pool.submit(client, n) for n in per_thread]
        try:
            ready.wait(timeout=120)
            cpu_before = cpu_seconds(target.pid)
            go.wait(timeout=120)
        except threading.BrokenBarrierError:
            for future in futures:
                future.result()  # raises the client's error
            raise
        began = time.perf_counter()
        for future in futures:
            future.result()
        wall = time.perf_counter() - began
        cpu = cpu_seconds(target.pid) - cpu_before
    return Run(len(latencies), wall, latencies, cpu)


@dataclass
class Bulk:
    rows: int
    nbytes: int
    wall_s: float
    server_cpu_s: float
    rss_growth_mb: float | None  # the server's peak RSS during the query minus its RSS before

    @property
    def gbps(self) -> float:
        return self.nbytes / self.wall_s / 1e9


def run_bulk(target: Target, rows: int) -> Bulk:
    with target.connect() as conn, conn.cursor() as cur:
        fetch(cur, target.select1)  # the handshake is not part of the transfer
        rss_before = reset_peak_rss(target.pid)
        cpu_before = cpu_seconds(target.pid)
        began = time.perf_counter()
        table = fetch(cur, target.bulk(rows))
        wall = time.perf_counter() - began
        cpu = cpu_seconds(target.pid) - cpu_before
    if table.num_rows != rows:
        raise RuntimeError(f"{target.name} returned {table.num_rows} rows, not {rows}")
    peak = memory_mb(target.pid, "VmHWM:")
    return Bulk(rows, table.nbytes, wall, cpu, peak - rss_before if peak is not None and rss_before is not None
                else None)


def query_log_stages(omnisql: Target, n: int) -> list[dict[str, float]]:
    """The last ``n`` queries of the admin principal (the run just measured), each split into stages."""
    sql = ("SELECT planning_ms, fetch_ms, duckdb_ms, total_ms FROM omnisql.query_log "
           f"ORDER BY started_at DESC LIMIT {min(n, 200)}")
    with omnisql.connect() as conn, conn.cursor() as cur:
        rows = fetch(cur, sql).to_pylist()
    for row in rows:
        row["other_ms"] = max(0.0, row["total_ms"] - row["planning_ms"] - row["fetch_ms"] - row["duckdb_ms"])
    return rows


# ---------------------------------------------------------------- data

def write_data(tmp: Path, omnisql: Target, bulk_rows: Sequence[int]) -> tuple[dict[str, Path], dict[str, str]]:
    """The parquet files roapi loads and the bare server prebuilds: the bulk rows made by DuckDB with OmniSQL's
    own SQL (so types match), and the demo's pull requests (synthetic sandbox data) read through OmniSQL."""
    import duckdb
    import pyarrow.parquet as pq

    roapi_tables: dict[str, Path] = {}
    bare: dict[str, str] = {"select1": "select1"}
    relation = duckdb.sql(BULK_SQL.format(n=max(bulk_rows)))
    assert relation is not None
    full = relation.arrow()
    if not hasattr(full, "num_rows"):  # newer DuckDB returns a reader
        full = full.read_all()
    for rows in bulk_rows:
        path = tmp / f"bulk_{rows}.parquet"
        pq.write_table(full.slice(0, rows), path)
        roapi_tables[f"bulk_{rows}"] = path
        bare[f"bulk{rows}"] = str(path)
    with omnisql.connect() as conn, conn.cursor() as cur:
        prs = fetch(cur, "SELECT repo, number, title, status FROM github.pull_requests")
        cached = fetch(cur, CACHED_SQL)
    pq.write_table(prs, tmp / "pull_requests.parquet")
    pq.write_table(cached, tmp / "cached.parquet")
    roapi_tables["pull_requests"] = tmp / "pull_requests.parquet"
    bare["cached"] = str(tmp / "cached.parquet")
    return roapi_tables, bare


# ---------------------------------------------------------------- reporting

def spread(values: Sequence[float], fmt: str) -> str:
    """median (min–max)"""
    return f"{format(statistics.median(values), fmt)} ({format(min(values), fmt)}–{format(max(values), fmt)})"


def ratio(a: Sequence[float], b: Sequence[float]) -> str:
    return f"{statistics.median(a) / statistics.median(b):.2f}×" if a and b else "—"


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def cell_queries(runs: list[Run], cpu: bool) -> str:
    text = f"{spread([r.qps for r in runs], '.0f')} q/s, p50 {spread([r.p50 for r in runs], '.2f')} ms"
    if cpu:
        text += f", CPU {spread([r.cpu_ms_per_query for r in runs], '.2f')} ms/q"
    return text


def cell_bulk(runs: list[Bulk]) -> str:
    cpu = statistics.median([b.server_cpu_s for b in runs])
    text = f"{spread([b.gbps for b in runs], '.3f')} GB/s, CPU {cpu:.2f} s"
    rss = [b.rss_growth_mb for b in runs if b.rss_growth_mb is not None]
    return text + (f", RSS +{statistics.median(rss):.0f} MB" if rss else "")


def plot(threads: Sequence[int], queries: dict[tuple[str, int, str], list[Run]],
         bulk: dict[tuple[int, str], list[Bulk]], stages: dict[str, list[dict[str, float]]],
         client_ms: dict[str, list[float]]) -> list[Path]:
    """Three PNGs in perf/results/: q/s vs client threads, GB/s vs result size, OmniSQL's stages."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    RESULTS.mkdir(parents=True, exist_ok=True)
    written = []

    def errorbar(ax: Any, xs: Sequence[float], series: list[list[float]], label: str) -> None:
        med = [statistics.median(s) for s in series]
        low = [m - min(s) for m, s in zip(med, series, strict=True)]
        high = [max(s) - m for m, s in zip(med, series, strict=True)]
        ax.errorbar(xs, med, yerr=[low, high], marker="o", capsize=4, label=label)

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, scenario, title in ((axes[0], "select1", "SELECT 1"), (axes[1], "cached", "cached single-source query")):
        for system in QUERY_SYSTEMS:
            errorbar(ax, threads, [[r.qps for r in queries[(scenario, t, system)]] for t in threads],
                     "OmniSQL (serve --workers 2)" if system == WORKERS else system)
        ax.set(title=title, xlabel="client threads", ylabel="queries/s (median, min–max)", xticks=list(threads))
        ax.set_ylim(bottom=0)
        ax.legend()
    fig.tight_layout()
    written.append(RESULTS / "throughput_vs_threads.png")
    fig.savefig(written[-1], dpi=110)
    plt.close(fig)

    sizes = sorted({rows for rows, _ in bulk})
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for system in BULK_SYSTEMS:
        errorbar(ax, [s / 1e6 for s in sizes], [[b.gbps for b in bulk[(s, system)]] for s in sizes],
                 "OmniSQL (cached source table)" if system == TABLE else system)
    ax.set(title="bulk result through ADBC (4 numeric columns)", xlabel="rows (millions)",
           ylabel="GB/s (median, min–max)")
    ax.set_ylim(bottom=0)
    ax.legend()
    fig.tight_layout()
    written.append(RESULTS / "gbps_vs_size.png")
    fig.savefig(written[-1], dpi=110)
    plt.close(fig)

    # One row per query, linear ms (the scales differ by 100×); the last segment is the time the client saw
    # beyond the server's own total: gRPC calls, ADBC, the client decoding.
    names = list(stages)
    fig, axes = plt.subplots(len(names), 1, figsize=(8, 1.3 + 1.1 * len(names)), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, name in zip(axes[:, 0], names, strict=True):
        medians = {stage: statistics.median([row[stage] for row in stages[name]]) for stage in STAGES}
        total = statistics.median([row["total_ms"] for row in stages[name]])
        medians["outside the server's log"] = max(0.0, statistics.median(client_ms[name]) - total)
        left = 0.0
        for color, (stage, value) in zip(colors, medians.items(), strict=False):
            ax.barh([0], [value], left=left, color=color, label=stage.removesuffix("_ms"))
            left += value
        ax.set(yticks=[], xlabel="ms", title=f"{name}: client p50 {statistics.median(client_ms[name]):.1f} ms")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=5, fontsize=8)
    fig.suptitle("OmniSQL latency per stage (omnisql.query_log medians)")
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    written.append(RESULTS / "latency_breakdown.png")
    fig.savefig(written[-1], dpi=110)
    plt.close(fig)
    return written


# ---------------------------------------------------------------- main

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds; the table shows their median")
    parser.add_argument("--queries", type=int, default=500, help="queries per run (all client threads together)")
    parser.add_argument("--threads", default="1,8", help="client thread counts")
    parser.add_argument("--bulk-rows", default="500000,2000000,5000000", help="bulk result sizes (rows)")
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument("--serve-bare", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_bare:
        serve_bare(args.serve_bare, args.port)
        return
    warnings.filterwarnings("ignore", message="Cannot disable autocommit")
    threads = [int(t) for t in args.threads.split(",")]
    bulk_rows = [int(r) for r in args.bulk_rows.split(",")]

    processes: list[subprocess.Popen[bytes]] = []
    source = BulkSource()  # the bulk rows as a REST table (perf/bulk_source.py), for the second OmniSQL
    with tempfile.TemporaryDirectory(prefix="omnisql-bench-") as tmp_name:
        tmp = Path(tmp_name)
        try:
            process, info = start_omnisql(tmp)
            processes.append(process)
            auth = {"adbc.flight.sql.authorization_header": f"Bearer {info['tokens']['token_admin']}"}
            omnisql = Target("OmniSQL", info["flight_uri"], process.pid, "SELECT 1", CACHED_SQL,
                             lambda n: BULK_SQL.format(n=n), auth,
                             {"adbc.flight.sql.rpc.call_header.x-omnisql-max-staleness-ms": str(HOUR_MS)})
            roapi_tables, bare_spec = write_data(tmp, omnisql, bulk_rows)
            process, port = start_roapi(tmp, roapi_tables)
            processes.append(process)
            roapi = Target("roapi", f"grpc://127.0.0.1:{port}", process.pid, "SELECT 1", ROAPI_CACHED_SQL,
                           lambda n: f"SELECT * FROM bulk_{n}")
            process, port = start_bare(tmp, bare_spec)
            processes.append(process)
            bare = Target("bare", f"grpc://127.0.0.1:{port}", process.pid, "q:select1", "q:cached",
                          lambda n: f"q:bulk{n}")
            targets = [omnisql, roapi, bare]
            process, workers_info = start_omnisql(tmp, workers=2)
            processes.append(process)
            omnisql_workers = Target(WORKERS, workers_info["flight_uri"], process.pid, "SELECT 1", CACHED_SQL,
                                     omnisql.bulk, auth, omnisql.cached_kwargs)
            process, table_info, token = start_omnisql_table(tmp, source, bulk_rows)
            processes.append(process)
            omnisql_table = Target(TABLE, table_info["flight_uri"], process.pid, "SELECT 1", CACHED_SQL,
                                   lambda n: f"SELECT * FROM bulk_{n}.rows",
                                   {"adbc.flight.sql.authorization_header": f"Bearer {token}",
                                    "adbc.flight.sql.rpc.call_header.x-omnisql-max-staleness-ms": str(HOUR_MS)})
            for rows in bulk_rows:  # the first read lists the source (not timed); every timed one is a cache hit
                began = time.monotonic()
                with omnisql_table.connect() as conn, conn.cursor() as cur:
                    filled = fetch(cur, omnisql_table.bulk(rows))
                print(f"{TABLE}: bulk_{rows}.rows listed and cached, {filled.num_rows} rows "
                      f"{filled.schema.types} in {time.monotonic() - began:.1f} s", flush=True)

            # Same answers everywhere before anything is timed (and OmniSQL's scan cache is filled).
            for target in targets:
                with target.connect(cached=True) as conn, conn.cursor() as cur:
                    one = fetch(cur, target.select1)
                    rows = fetch(cur, target.cached)
                    small = fetch(cur, target.bulk(bulk_rows[0]))
                print(f"{target.name:<8} {target.uri}: SELECT 1 → {one.column(0)[0]}, cached query "
                      f"{rows.num_rows} rows, bulk {small.num_rows} rows {small.schema.types}", flush=True)

            queries: dict[tuple[str, int, str], list[Run]] = {}
            bulk: dict[tuple[int, str], list[Bulk]] = {}
            stages: dict[str, list[dict[str, float]]] = {}
            client_ms: dict[str, list[float]] = {}  # the same queries' latency as the client saw it
            log_n = min(args.queries, 100)
            for round_no in range(args.rounds):
                began = time.monotonic()
                order = targets[round_no % 3:] + targets[:round_no % 3]
                for scenario in ("select1", "cached"):
                    for t in threads:
                        for target in [*order, omnisql_workers]:
                            sql = target.select1 if scenario == "select1" else target.cached
                            run = run_queries(target, sql, t, args.queries, cached=scenario == "cached")
                            queries.setdefault((scenario, t, target.name), []).append(run)
                            if target is omnisql and t == 1:
                                label = "SELECT 1" if scenario == "select1" else "cached query"
                                stages.setdefault(label, []).extend(query_log_stages(omnisql, log_n))
                                client_ms.setdefault(label, []).extend(run.latencies_ms[-log_n:])
                for rows in bulk_rows:
                    for target in [*order, omnisql_table]:
                        result = run_bulk(target, rows)
                        bulk.setdefault((rows, target.name), []).append(result)
                        if target is omnisql and rows == max(bulk_rows):
                            label = f"bulk {rows / 1e6:g}M rows"
                            stages.setdefault(label, []).extend(query_log_stages(omnisql, 1))
                            client_ms.setdefault(label, []).append(result.wall_s * 1000)
                print(f"round {round_no + 1}/{args.rounds}: {time.monotonic() - began:.0f} s", flush=True)
        finally:
            for process in processes:
                stop(process)
            source.stop()

    print(f"\n{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores; medians of {args.rounds} interleaved "
          f"rounds (min–max); {args.queries} queries per run; ADBC {_adbc_version()}\n")
    print("| scenario | OmniSQL | roapi | bare pyarrow.flight | OmniSQL / roapi | OmniSQL / bare |")
    print("|---|---|---|---|---|---|")
    for scenario, title in (("select1", "`SELECT 1`"), ("cached", "cached single-source query")):
        for t in threads:
            runs = {s: queries[(scenario, t, s)] for s in SYSTEMS}
            qps = {s: [r.qps for r in runs[s]] for s in SYSTEMS}
            print(f"| {title}, {t} client thread{'s' if t > 1 else ''} | "
                  + " | ".join(cell_queries(runs[s], cpu=scenario == "select1") for s in SYSTEMS)
                  + f" | {ratio(qps['OmniSQL'], qps['roapi'])} | {ratio(qps['OmniSQL'], qps['bare'])} |")
    for scenario, title in (("select1", "`SELECT 1`"), ("cached", "cached single-source query")):
        for t in threads:  # the same runs' roapi and bare cells, beside OmniSQL serving with both cores
            runs = {s: queries[(scenario, t, s)] for s in QUERY_SYSTEMS}
            qps = {s: [r.qps for r in runs[s]] for s in QUERY_SYSTEMS}
            print(f"| {title}, {t} client thread{'s' if t > 1 else ''}, `serve --workers 2` | "
                  + " | ".join(cell_queries(runs[s], cpu=scenario == "select1") for s in (WORKERS, "roapi", "bare"))
                  + f" | {ratio(qps[WORKERS], qps['roapi'])} | {ratio(qps[WORKERS], qps['bare'])} |")
    for rows in bulk_rows:
        runs_b = {s: bulk[(rows, s)] for s in BULK_SYSTEMS}
        gbps = {s: [b.gbps for b in runs_b[s]] for s in BULK_SYSTEMS}
        mb = statistics.median([b.nbytes for b in runs_b["OmniSQL"]]) / 1e6
        print(f"| bulk {rows / 1e6:g}M rows × 4 columns ({mb:.0f} MB Arrow), generated by SQL | "
              + " | ".join(cell_bulk(runs_b[s]) for s in SYSTEMS)
              + f" | {ratio(gbps['OmniSQL'], gbps['roapi'])} | {ratio(gbps['OmniSQL'], gbps['bare'])} |")
        print(f"| bulk {rows / 1e6:g}M rows, a cached source table (`SELECT * FROM bulk_{rows}.rows`) | "
              + " | ".join(cell_bulk(runs_b[s]) for s in (TABLE, "roapi", "bare"))
              + f" | {ratio(gbps[TABLE], gbps['roapi'])} | {ratio(gbps[TABLE], gbps['bare'])} |")

    print("\nOmniSQL per stage (omnisql.query_log; ms, median (p25–p75)):\n")
    print("| query | n | " + " | ".join(s.removesuffix("_ms") for s in (*STAGES, "total_ms"))
          + " | client (ADBC) |")
    print("|---|---|" + "---|" * (len(STAGES) + 2))
    for label, rows_s in stages.items():
        cells = []
        for values in [[row[stage] for row in rows_s] for stage in (*STAGES, "total_ms")] + [client_ms[label]]:
            cells.append(f"{statistics.median(values):.2f} ({percentile(values, 0.25):.2f}–"
                         f"{percentile(values, 0.75):.2f})")
        print(f"| {label} | {len(rows_s)} | " + " | ".join(cells) + " |")

    if not args.no_plots:
        for path in plot(threads, queries, bulk, stages, client_ms):
            print(f"wrote {path.relative_to(ROOT)}")


def _adbc_version() -> str:
    from importlib.metadata import version

    return version("adbc-driver-flightsql")


if __name__ == "__main__":
    main()
