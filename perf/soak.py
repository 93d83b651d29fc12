"""A bounded soak: 16 client threads for a few minutes against a demo server started with a configured
``duckdb_memory_limit``, running a mix of innocent and hostile queries (refused table functions, memory and result
hogs, IN lists over the API budget, cancellations, deep nesting, adversarial metadata patterns). Reports
queries/s per class, the error codes seen, latencies, and the server's peak RSS (``VmHWM``) against the limit.

    .venv/bin/python perf/soak.py [--duration-s 120] [--clients 16] [--duckdb-memory-limit 1GiB]

Not a test: it prints figures. Every loop is bounded (a deadline and a count).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from core.sizes import format_size
from flight_server.commands import pack
from flight_server.limits import parse_size
from flight_server.proto import flight_pb2 as fpb
from flight_server.proto import flight_sql_pb2 as pb

ROOT = Path(__file__).resolve().parent.parent
SERVICE = "/arrow.flight.protocol.FlightService/"
MAX_QUERIES_PER_CLIENT = 1_000_000  # the count bound; the duration bound ends a run long before
BACKOFF_S = 0.1

# Each class: what a client sends, and how long it lets a call take (the call's gRPC deadline).
LOGINS = ", ".join(f"'user-{i}'" for i in range(6000))
CLASSES: dict[str, tuple[str, float]] = {
    "small": ("SELECT count(*) AS n FROM jira.issues WHERE project = 'WEB'", 30.0),
    "join": ("SELECT gh.repo, gh.number, ji.issue_key FROM github.pull_requests gh JOIN jira.issues ji "
             "ON gh.branch = ji.branch_name WHERE ji.status = 'In Progress'", 60.0),
    "table_function": ("SELECT * FROM (SELECT 1) t, LATERAL range(10000000000) r", 30.0),
    "memory_hog": ("SELECT a.repo, string_agg(repeat(b.title, 200), ',') AS s FROM github.pull_requests a, "
                   "github.pull_requests b GROUP BY a.repo", 60.0),
    "result_hog": ("SELECT repeat(a.title, 50) AS t FROM github.pull_requests a, github.pull_requests b", 60.0),
    "huge_in": (f"SELECT login, name FROM github.users WHERE login IN ({LOGINS})", 30.0),
    "cancelled": ("SELECT count(*) FROM github.pull_requests a, github.pull_requests b WHERE a.title < b.title",
                  0.3),
    "deep_nesting": ("SELECT " + "(" * 3000 + "1" + ")" * 3000, 30.0),
    "metadata_pattern": ("", 30.0),  # GetTables with an adversarial LIKE pattern (below)
}
HOSTILE_MIX = {"small": 1, "join": 1, "table_function": 2, "memory_hog": 2, "result_hog": 2, "huge_in": 2,
               "cancelled": 2, "deep_nesting": 1, "metadata_pattern": 1}
INNOCENT_MIX = {"small": 6, "join": 2, "table_function": 1, "huge_in": 1, "cancelled": 1, "metadata_pattern": 1}
ADVERSARIAL_PATTERN = "%" * 50_000 + "x"


@dataclass
class Tally:
    """One class's outcomes, filled by every client thread (under ``lock``)."""

    latencies: list[float] = field(default_factory=list)
    outcomes: collections.Counter[str] = field(default_factory=collections.Counter)


@dataclass
class Soak:
    uri: str
    tokens: dict[str, str]
    stop_at: float
    tallies: dict[str, Tally] = field(default_factory=lambda: collections.defaultdict(Tally))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, name: str, seconds: float, outcome: str) -> None:
        with self.lock:
            self.tallies[name].latencies.append(seconds)
            self.tallies[name].outcomes[outcome] += 1


def _identity(data: bytes) -> bytes:
    return data


LIMIT_KEYS = ("max_concurrent_queries_per_principal", "max_concurrent_queries", "duckdb_memory_limit",
              "max_result_bytes", "max_api_calls_per_query", "max_upload_bytes")


def _outcome(exc: grpc.RpcError) -> str:
    """``STATUS/x-omnisql-error-code`` (``-`` when the status came without our trailer), and for
    RESOURCE_EXHAUSTED the limit the message names."""
    trailers = dict(exc.trailing_metadata() or ())  # type: ignore[attr-defined]
    outcome = f"{exc.code().name}/{trailers.get('x-omnisql-error-code', '-')}"  # type: ignore[attr-defined]
    details = exc.details() or ""  # type: ignore[attr-defined]
    limit = next((key for key in LIMIT_KEYS if key in details), None)
    return f"{outcome}({limit})" if limit else outcome


def run_one(channel: grpc.Channel, token: str, name: str) -> str:
    """GetFlightInfo then DoGet (the whole stream read) for one query of class ``name``; the outcome."""
    sql, timeout_s = CLASSES[name]
    command = (pack(pb.CommandGetTables(table_name_filter_pattern=ADVERSARIAL_PATTERN)) if name == "metadata_pattern"
               else pack(pb.CommandStatementQuery(query=sql)))
    metadata = [("authorization", f"Bearer {token}")]
    info_call = channel.unary_unary(SERVICE + "GetFlightInfo", request_serializer=_identity,
                                    response_deserializer=_identity)
    get_call = channel.unary_stream(SERVICE + "DoGet", request_serializer=_identity, response_deserializer=_identity)
    started = time.monotonic()
    try:
        descriptor = fpb.FlightDescriptor(type=fpb.FlightDescriptor.CMD, cmd=command).SerializeToString()
        info = fpb.FlightInfo.FromString(info_call(descriptor, metadata=metadata, timeout=timeout_s))
        left = max(0.05, timeout_s - (time.monotonic() - started))
        for _ in get_call(info.endpoint[0].ticket.SerializeToString(), metadata=metadata, timeout=left):
            pass
        return "OK"
    except grpc.RpcError as exc:
        return _outcome(exc)


def client(soak: Soak, user: str, mix: dict[str, int], seed: int) -> None:
    """Queries of ``mix`` in a loop; after a concurrency refusal it backs off briefly, as a client should, so
    the hostile queries themselves run too (not only refusals)."""
    rng = random.Random(seed)
    names, weights = list(mix), list(mix.values())
    group = "hostile" if mix is HOSTILE_MIX else "innocent"
    with grpc.insecure_channel(soak.uri.removeprefix("grpc://"), options=[
            ("grpc.max_receive_message_length", -1)]) as channel:
        for _ in range(MAX_QUERIES_PER_CLIENT):
            if time.monotonic() >= soak.stop_at:
                return
            name = rng.choices(names, weights)[0]
            started = time.monotonic()
            outcome = run_one(channel, soak.tokens[f"token_{user}"], name)
            soak.record(f"{group} {name}", time.monotonic() - started, outcome)
            if "max_concurrent_queries" in outcome:
                time.sleep(BACKOFF_S)


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of ``pid`` in bytes."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) * 1024
    return values


def start_server(directory: Path, args: argparse.Namespace) -> tuple[subprocess.Popen[bytes], dict[str, object]]:
    info_file = directory / "info.json"
    command = [sys.executable, "-m", "clients.cli", "serve", "--demo", "--port", "0", "--info-file", str(info_file),
               "--http-port", "0",
               "--github-rate-limit", "100000000", "--duckdb-memory-limit", args.duckdb_memory_limit,
               "--max-result-bytes", args.max_result_bytes]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env={**os.environ, "OMNISQL_LOG_LEVEL": "ERROR"})
    deadline = time.monotonic() + 120
    while not info_file.exists():  # bounded by the deadline
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("the demo server did not start")
        time.sleep(0.1)
    return process, json.loads(info_file.read_text())


def report(soak: Soak, elapsed: float, status: dict[str, int], peak_sampled: int, memory_limit: int) -> None:
    print(f"\n{'client / class':<27}{'queries':>8}{'q/s':>7}{'p50 ms':>8}{'p99 ms':>8}  outcomes")
    seen: collections.Counter[str] = collections.Counter()
    for name in (f"{group} {c}" for group in ("innocent", "hostile") for c in CLASSES):
        tally = soak.tallies.get(name)
        if not tally or not tally.latencies:
            continue
        ordered = sorted(tally.latencies)
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
        outcomes = ", ".join(f"{k} {v}" for k, v in tally.outcomes.most_common())
        print(f"{name:<27}{len(ordered):>8}{len(ordered) / elapsed:>7.1f}{statistics.median(ordered) * 1000:>8.0f}"
              f"{p99 * 1000:>8.0f}  {outcomes}")
        seen.update(tally.outcomes)
    total = sum(seen.values())
    print(f"\nall: {total} queries in {elapsed:.0f} s = {total / elapsed:.1f} q/s")
    print("outcomes seen: " + ", ".join(f"{k} {v}" for k, v in seen.most_common()))
    print(f"server peak RSS (VmHWM) {format_size(status['VmHWM'])}, sampled peak {format_size(peak_sampled)}, "
          f"RSS at the end {format_size(status['VmRSS'])}; duckdb_memory_limit {format_size(memory_limit)} "
          f"(peak RSS / limit = {status['VmHWM'] / memory_limit:.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration-s", type=float, default=120.0)
    parser.add_argument("--clients", type=int, default=16, help="client threads (default 16)")
    parser.add_argument("--duckdb-memory-limit", default="1GiB")
    parser.add_argument("--max-result-bytes", default="64MiB")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    memory_limit = parse_size("--duckdb-memory-limit", args.duckdb_memory_limit)
    with tempfile.TemporaryDirectory() as directory:
        process, info = start_server(Path(directory), args)
        pid = int(str(info["pid"]))
        try:
            soak = Soak(str(info["flight_uri"]), dict(info["tokens"]),  # type: ignore[call-overload]
                        stop_at=time.monotonic() + args.duration_s)
            # admin is the hostile principal (more threads than its concurrency cap); the others mostly innocent
            users = ["admin" if i % 16 < 7 else ("dev", "qa", "web_dev")[i % 3] for i in range(args.clients)]
            threads = [threading.Thread(target=client, args=(soak, user, HOSTILE_MIX if user == "admin" else
                                                             INNOCENT_MIX, args.seed + i), daemon=True)
                       for i, user in enumerate(users)]
            print(f"soak: {args.clients} clients ({users.count('admin')} hostile as admin) for {args.duration_s:.0f} s "
                  f"against {info['flight_uri']} (pid {pid}), duckdb_memory_limit {args.duckdb_memory_limit}, "
                  f"max_result_bytes {args.max_result_bytes}")
            started = time.monotonic()
            for thread in threads:
                thread.start()
            peak = _sample_until_done(threads, pid, soak.stop_at + 120)
            elapsed = time.monotonic() - started
            report(soak, elapsed, proc_status(pid), peak, memory_limit)
        finally:
            process.terminate()
            process.wait(timeout=30)


def _sample_until_done(threads: list[threading.Thread], pid: int, give_up_at: float,
                       sample: Callable[[int], dict[str, int]] = proc_status) -> int:
    """Sample the server's RSS every second until every client is done (bounded by ``give_up_at``)."""
    peak = 0
    while any(t.is_alive() for t in threads) and time.monotonic() < give_up_at:
        peak = max(peak, sample(pid)["VmRSS"])
        time.sleep(1.0)
    return peak


if __name__ == "__main__":
    main()
