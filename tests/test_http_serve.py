"""``omnisql serve``'s HTTP options as a user runs them: the demo prints the console's address and writes
``http_url``; ``--trace-exporter console`` prints the spans; a tenant file's ``listen.http_port`` and
``tracing.exporter`` do the same and its ``http_max_rows`` caps a JSON answer, the flags overriding them;
``--no-http`` serves Flight only; a taken HTTP port stops the start with a clear message (exit 2), never a
traceback; with ``--tls-cert/--tls-key`` it is HTTPS."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme

from clients.cli import build_parser, http_settings
from flight_server.config import load_config
from tests.conftest import ROOT, launch_demo
from tests.test_cli import free_port, sandbox_env, sandbox_tenant

BASE = [sys.executable, "-m", "clients.cli", "serve", "--demo", "--port", "0"]


def start(tmp_path: Path, *args: str) -> tuple[subprocess.Popen[bytes], dict[str, object]]:
    info_file = tmp_path / "info.json"
    process = subprocess.Popen([*BASE, "--info-file", str(info_file), *args], cwd=ROOT,
                               stdout=(tmp_path / "out.txt").open("wb"), stderr=(tmp_path / "err.txt").open("wb"))
    deadline = time.time() + 60
    while not info_file.exists():
        assert process.poll() is None and time.time() < deadline, (tmp_path / "err.txt").read_text()
        time.sleep(0.1)
    return process, json.loads(info_file.read_text())


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    process.wait(timeout=15)


def test_the_demo_prints_the_console_and_exports_spans_to_the_console(tmp_path: Path) -> None:
    process, info = start(tmp_path, "--http-port", "0", "--trace-exporter", "console")
    try:
        url = str(info["http_url"])
        assert url.startswith("http://127.0.0.1:")
        out = (tmp_path / "out.txt").read_text()
        assert f"Web console: {url}/" in out
        curl = next(line.strip() for line in out.splitlines() if line.strip().startswith("curl "))
        done = subprocess.run(["bash", "-c", curl], capture_output=True, text=True, timeout=60)
        assert json.loads(done.stdout)["row_count"] == 4, done.stderr  # the banner's curl line runs as printed
        assert "OmniSQL console" in httpx.get(f"{url}/").text
        trace_id = httpx.post(f"{url}/v1/query", json={"sql": "SELECT 42 AS answer"}, timeout=30,
                              headers={"X-User-Token": "omni-demo-admin-token"}).json()["trace_id"]
        time.sleep(0.5)
    finally:
        stop(process)
    err = (tmp_path / "err.txt").read_text()
    assert '"name": "omnisql.query"' in err and trace_id in err and "omni-demo-admin-token" not in err


def test_no_http_serves_flight_only(tmp_path: Path) -> None:
    process, info = start(tmp_path, "--no-http")
    try:
        assert "http_url" not in info and "Web console" not in (tmp_path / "out.txt").read_text()
    finally:
        stop(process)


def test_a_taken_http_port_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([*BASE, "--http-port", str(port)], cwd=ROOT, capture_output=True, text=True,
                              timeout=60)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"omnisql serve: cannot serve HTTP on 127.0.0.1:{port}" in done.stderr and "--http-port" in done.stderr


def test_with_tls_the_gateway_speaks_https(tmp_path: Path) -> None:
    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1", "localhost")
    cert, key = tmp_path / "server.pem", tmp_path / "server.key"
    issued.private_key_pem.write_to_path(str(key))
    issued.cert_chain_pems[0].write_to_path(str(cert))
    trusted = ssl.create_default_context()
    ca.configure_trust(trusted)
    with launch_demo(tmp_path, "--tls-cert", str(cert), "--tls-key", str(key)) as info:
        url = str(info["http_url"])
        assert url.startswith("https://127.0.0.1:")
        answer = httpx.post(f"{url}/v1/query", json={"sql": "SELECT 1 AS one"}, verify=trusted, timeout=30,
                            headers={"X-User-Token": "omni-demo-admin-token"}).json()
        assert answer["rows"] == [{"one": 1}]
        with pytest.raises(httpx.ConnectError):  # a client that does not trust the CA
            httpx.get(f"{url}/healthz", timeout=10)


def test_the_tenant_file_sets_the_http_port_and_the_exporter(demo: dict[str, Any], tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    config = sandbox_tenant(demo, tmp_path / "tenant.yaml", f"{{host: 127.0.0.1, port: 0, http_port: {port}}}")
    config.write_text(config.read_text() + "tracing: {exporter: console}\nhttp_max_rows: 2\n")
    info_file = tmp_path / "info.json"
    process = subprocess.Popen([sys.executable, "-m", "clients.cli", "serve", "--config", str(config), "--info-file",
                                str(info_file)], cwd=ROOT, env=sandbox_env(demo), stdout=subprocess.DEVNULL,
                               stderr=(tmp_path / "err.txt").open("wb"))
    try:
        deadline = time.time() + 60
        while not info_file.exists():
            assert process.poll() is None and time.time() < deadline, (tmp_path / "err.txt").read_text()
            time.sleep(0.1)
        assert json.loads(info_file.read_text())["http_url"] == f"http://127.0.0.1:{port}"
        answer = httpx.post(f"http://127.0.0.1:{port}/v1/query", json={"sql": "SELECT 1 AS one"}, timeout=30,
                            headers={"X-User-Token": "admin-secret"}).json()
        assert answer["rows"] == [{"one": 1}]
        three = {"sql": "SELECT * FROM (VALUES (1), (2), (3)) AS t(x)"}
        capped = httpx.post(f"http://127.0.0.1:{port}/v1/query", json=three, timeout=30,
                            headers={"X-User-Token": "admin-secret"})
        assert capped.status_code == 413 and "(http_max_rows: 2" in capped.json()["error"]["message"]
        time.sleep(0.5)
    finally:
        stop(process)
    assert '"name": "omnisql.query"' in (tmp_path / "err.txt").read_text()
    off = sandbox_tenant(demo, tmp_path / "off.yaml", "{host: 127.0.0.1, port: 0, http_port: null}")
    for name in ("GH_T", "JIRA_E", "JIRA_T", "ADMIN_T"):
        monkeypatch.setenv(name, sandbox_env(demo)[name])
    args = build_parser().parse_args(["serve", "--config", str(off)])
    assert http_settings(args, load_config(off), None) is None  # null: no HTTP
    args = build_parser().parse_args(["serve", "--config", str(off), "--http-port", "0"])
    assert http_settings(args, load_config(off), None).port == 0  # the flag wins
