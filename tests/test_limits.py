"""The limit keys of the tenant config and their ``serve`` flags: parsed, validated with the key named, passed to
the engine and the Flight layer; the admission and prepared-statement bookkeeping on their own."""

from __future__ import annotations

import threading
from pathlib import Path

import pyarrow as pa
import pytest

from clients.cli import LIMIT_FLAGS, build_parser
from core.errors import ResourceExhausted
from flight_server.admission import Admission
from flight_server.config import ConfigError, load_config
from flight_server.limits import KEYS, ServerLimits, parse_limits, parse_size
from flight_server.statements import PreparedStatement, StatementStore
from security.principals import Principal

ROOT = Path(__file__).resolve().parent.parent
GiB, MiB = 1024**3, 1024**2


@pytest.mark.parametrize(("text", "expected"), [
    (4096, 4096), ("4GiB", 4 * GiB), ("512 MiB", 512 * MiB), ("1.5GiB", int(1.5 * GiB)), ("100MB", 100_000_000),
    ("2kb", 2000), ("7", 7), ("16mib", 16 * MiB),
])
def test_sizes(text: object, expected: int) -> None:
    assert parse_size("k", text) == expected


@pytest.mark.parametrize("text", ["4 GB of RAM", "-1", "0", 0, "GiB", True, 1.5, "4PiB", None])
def test_bad_sizes_name_the_key(text: object) -> None:
    with pytest.raises(ValueError, match="duckdb_memory_limit"):
        parse_size("duckdb_memory_limit", text)


def test_defaults() -> None:
    limits = parse_limits({})
    assert limits == ServerLimits()
    query = limits.query_limits(60.0)
    assert (query.memory_bytes, query.result_bytes, query.api_calls) == (None, 512 * MiB, 5000)
    assert (limits.max_concurrent_queries, limits.max_concurrent_queries_per_principal) == (16, 4)
    assert limits.max_upload_bytes == 16 * MiB
    assert limits.grpc_workers > 2 * limits.max_concurrent_queries  # the caps bite before the workers run out
    assert limits.max_receive_message_bytes > limits.max_upload_bytes * 4 // 3  # a ticket carrying the upload


def _config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra: str) -> Path:
    monkeypatch.setenv("T", "token")
    path = tmp_path / "t.yaml"
    path.write_text("principals: [{user: a, token_env: T}]\n" + extra)
    return path


def test_config_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _config(tmp_path, monkeypatch, "duckdb_memory_limit: 4GiB\nmax_result_bytes: 1048576\n"
                   "max_api_calls_per_query: 10\nmax_concurrent_queries: 3\nmax_concurrent_queries_per_principal: 1\n"
                   "max_prepared_statements_per_principal: 7\nmax_upload_bytes: 2MiB\nquery_deadline_s: 5\n")
    config = load_config(path)
    assert config.limits == ServerLimits(4 * GiB, MiB, 10, 3, 1, 7, 2 * MiB)
    assert config.limits.query_limits(config.deadline_s).deadline_s == 5.0


@pytest.mark.parametrize(("line", "key"), [
    ("max_concurrent_queries: 0", "max_concurrent_queries"),
    ("max_api_calls_per_query: many", "max_api_calls_per_query"),
    ("max_upload_bytes: 3 parsecs", "max_upload_bytes"), ("query_deadline_s: -1", "query_deadline_s"),
    ("max_concurrent_queries_per_principal: 1.5", "max_concurrent_queries_per_principal"),
])
def test_bad_config_values_name_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, line: str, key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        load_config(_config(tmp_path, monkeypatch, line + "\n"))


def test_every_key_is_documented_and_has_a_flag() -> None:
    readme, example = (ROOT / "README.md").read_text(), (ROOT / "tenant.example.yaml").read_text()
    for key in KEYS:
        assert f"`{key}`" in readme and f"{key}:" in example, key
        assert key in LIMIT_FLAGS and f"`--{key.replace('_', '-')}" in readme, key


def test_flags_parse_sizes_and_counts() -> None:
    args = build_parser().parse_args(["serve", "--demo", "--duckdb-memory-limit", "1GiB",
                                      "--max-concurrent-queries-per-principal", "2"])
    assert (args.duckdb_memory_limit, args.max_concurrent_queries_per_principal) == (GiB, 2)
    assert args.max_upload_bytes is None  # not given: the config's value stays
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--max-concurrent-queries", "0"])


def test_admission_refuses_at_once_and_frees_on_exit() -> None:
    admission = Admission(max_total=3, max_per_principal=2)
    a, b = Principal("a"), Principal("b")
    with admission.slot(a), admission.slot(a):
        with pytest.raises(ResourceExhausted, match="max_concurrent_queries_per_principal = 2"), admission.slot(a):
            pass
        with admission.slot(b), pytest.raises(ResourceExhausted, match="max_concurrent_queries = 3"), \
                admission.slot(b):
            pass
        assert admission.total == 2
    assert admission.total == 0 and admission.running(a) == 0
    with pytest.raises(RuntimeError), admission.slot(a):
        raise RuntimeError("the query failed")
    assert admission.total == 0  # a failing query gives its slot back


def test_admission_under_contention_never_passes_its_caps() -> None:
    admission = Admission(max_total=4, max_per_principal=4)
    peak, lock, barrier = [0], threading.Lock(), threading.Barrier(16)

    def worker() -> None:
        barrier.wait()
        for _ in range(200):
            try:
                with admission.slot(Principal("a")), lock:
                    peak[0] = max(peak[0], admission.total)
            except ResourceExhausted:
                pass

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert 1 <= peak[0] <= 4 and admission.total == 0


def test_statements_evict_only_their_own_principals_oldest() -> None:
    now = [0.0]
    store = StatementStore(idle_ttl_s=100, max_per_user=2, clock=lambda: now[0])
    schema = pa.schema([])
    theirs = store.add(PreparedStatement("b", "SELECT 1", schema))
    mine = [store.add(PreparedStatement("a", f"SELECT {i}", schema)) for i in range(3)]
    assert store.count("a") == 2 and store.count("b") == 1
    assert store.get(theirs, "b").sql == "SELECT 1"
    with pytest.raises(Exception, match="unknown or expired"):
        store.get(mine[0], "a")
    store.get(mine[1], "a")  # now the most recently used: the next add evicts mine[2]
    store.add(PreparedStatement("a", "SELECT 9", schema))
    with pytest.raises(Exception, match="unknown or expired"):
        store.get(mine[2], "a")
    now[0] = 1000.0  # everything idle past the TTL expires
    assert store.count("a") == 2
    store.add(PreparedStatement("c", "SELECT 1", schema))
    assert len(store) == 1


def test_bound_parameters_are_capped_per_principal_in_sum() -> None:
    store = StatementStore(max_per_user=10)
    schema = pa.schema([("x", pa.binary())])
    rows = pa.table({"x": [b"x" * 1000]})  # ~1 KB bound to each statement
    mine = [store.add(PreparedStatement("a", "SELECT ?", schema)) for _ in range(3)]
    theirs = store.add(PreparedStatement("b", "SELECT ?", schema))
    limit = 2 * rows.nbytes
    store.bind(mine[0], "a", rows, limit)
    store.bind(mine[1], "a", rows, limit)
    with pytest.raises(ResourceExhausted, match=r"bound parameters \(4 x max_upload_bytes\)"):
        store.bind(mine[2], "a", rows, limit)
    store.bind(mine[1], "a", rows, limit)  # rebinding replaces, it does not add
    store.bind(theirs, "b", rows, limit)  # another principal's sum is its own
    store.bind(mine[0], "a", None, limit)
    store.bind(mine[2], "a", rows, limit)  # room again once one is unbound
