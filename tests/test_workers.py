"""``omnisql serve --workers N``: N processes on one port (SO_REUSEPORT) that together keep the tenant's limits,
redeem each other's tickets, and stop together."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connectors.ratelimit import RateLimit, RateLimits
from flight_server.limits import ServerLimits

ROOT = Path(__file__).resolve().parent.parent


def test_each_worker_gets_its_share_of_the_limits() -> None:
    from demo.tenant import demo_config
    from flight_server.workers import worker_config

    config = demo_config({"github": {"base_url": "http://127.0.0.1:9", "token": "t", "org": "o"},
                          "jira": {"base_url": "http://127.0.0.1:9", "email": "e", "api_token": "a"}},
                         "127.0.0.1", 0, RateLimits(RateLimit(burst=50, refill_per_s=10.0),
                                                    {"github": RateLimit(burst=3, refill_per_s=1.5)}))
    config = config.__class__(**{**config.__dict__, "limits": ServerLimits(max_concurrent_queries=16,
                                                                           max_concurrent_queries_per_principal=3)})
    shared = worker_config(config, 2, 8815)
    assert shared.port == 8815 and shared.share_port and shared.secret
    assert shared.rate_limits.default == RateLimit(burst=25, refill_per_s=5.0)
    assert shared.rate_limits.connectors["github"] == RateLimit(burst=1, refill_per_s=0.75)
    assert shared.limits.max_concurrent_queries == 8 and shared.limits.max_concurrent_queries_per_principal == 2
    assert worker_config(shared, 2, 8815).secret == shared.secret, "a configured secret is kept"


@pytest.fixture(scope="module")
def workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    info_file = tmp_path_factory.mktemp("workers") / "info.json"
    process = subprocess.Popen([sys.executable, "-m", "clients.cli", "serve", "--demo", "--port", "0", "--no-http",
                                "--workers", "2", "--info-file", str(info_file)], cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               env={**os.environ, "PYTHONPATH": str(ROOT)})
    deadline = time.monotonic() + 120
    while not info_file.exists() or not info_file.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"serve --workers 2 did not start: {process.stderr.read().decode()[-2000:]}"
                                 if process.stderr else "serve --workers 2 did not start")
        time.sleep(0.1)
    info = json.loads(info_file.read_text())
    info["process"] = process
    yield info
    process.terminate()
    process.wait(timeout=60)


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().split()[3]) == pid:
                    found.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return found


def test_workers_serve_one_port_and_redeem_each_others_tickets(workers: dict[str, Any]) -> None:
    import pyarrow.flight as flight

    from clients.flight_client import statement_descriptor

    serving = [pid for pid in _children(workers["process"].pid)
               if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()]
    assert len(serving) == 2, "two worker processes"
    headers = [(b"authorization", f"Bearer {workers['tokens']['token_admin']}".encode())]
    options = flight.FlightCallOptions(headers=headers)
    clients = [flight.FlightClient(workers["flight_uri"]) for _ in range(8)]
    try:
        for i, client in enumerate(clients):  # planned on one connection, fetched on another
            info = client.get_flight_info(statement_descriptor("SELECT 42 AS answer"), options)
            other = clients[(i + 1) % len(clients)]
            table = other.do_get(info.endpoints[0].ticket, options).read_all()
            assert table.to_pylist() == [{"answer": 42}]
    finally:
        for client in clients:
            client.close()


def test_workers_stop_with_the_parent(workers: dict[str, Any]) -> None:
    process = workers["process"]
    children = _children(process.pid)
    assert children
    process.terminate()
    process.wait(timeout=60)
    deadline = time.monotonic() + 30
    while any(Path(f"/proc/{pid}").exists() and "Z" not in (Path(f"/proc/{pid}/stat").read_text().split()[2])
              for pid in children) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(Path(f"/proc/{pid}").exists() and Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
                   for pid in children), "no worker outlives the parent"
