"""The ``omnisql`` CLI against the running demo, as a user would type it."""

from __future__ import annotations

import socket
import subprocess
import sys
from typing import Any

from sandbox.seed import build_seed
from tests.conftest import ROOT


def omnisql(demo: dict[str, Any], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "clients.cli", *args, "--uri", demo["flight_uri"], "--token",
                           demo["tokens"]["token_admin"]], cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_query_prints_an_aligned_table_once(demo: dict[str, Any]) -> None:
    done = omnisql(demo, "query", "SELECT count(*) AS n FROM jira.issues")
    assert done.returncode == 0, done.stderr
    n = str(len(build_seed().issues))  # 1000: the column is as wide as the widest value
    assert done.stdout.splitlines() == ["n".ljust(len(n)), "-" * len(n), n, "(1 row)"]


def test_explain_prints_one_block_per_step(demo: dict[str, Any]) -> None:
    done = omnisql(demo, "explain", "SELECT gh.number FROM github.pull_requests gh JOIN jira.issues ji "
                   "ON gh.branch = ji.branch_name WHERE gh.repo = 'infra-tools' AND gh.status = 'open'")
    assert done.returncode == 0, done.stderr
    assert "strategy: bind join" in done.stdout and "binding: branch_name IN (keys of [0] gh.branch)" in done.stdout


def test_bad_sql_is_an_error_on_stderr(demo: dict[str, Any]) -> None:
    done = omnisql(demo, "query", "SELECT nope FROM jira.issues")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith("error: INVALID_QUERY: Column 'nope' could not be resolved")


def test_a_taken_port_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "clients.cli", "serve", "--demo", "--port", str(port)],
                              cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert f"omnisql serve: cannot listen on 127.0.0.1:{port}: is the port taken?" in done.stderr
