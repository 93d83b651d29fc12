"""``omnisql sandbox --faults``: the stand-ins misbehave from their start as the specs say (a real CLI process,
real HTTP), ``POST /_sandbox/faults`` still changes them, and a wrong spec is refused before anything starts."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sandbox.fault_spec import parse_fault_specs

ROOT = Path(__file__).resolve().parent.parent


def _start(tmp_path: Path, *specs: str) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    info_file = tmp_path / "sandbox.json"
    args = [arg for spec in specs for arg in ("--faults", spec)]
    process = subprocess.Popen([sys.executable, "-m", "clients.cli", "sandbox", "--info-file", str(info_file), *args],
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not info_file.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"the sandbox did not start: {process.communicate()[1][-2000:]}")
        time.sleep(0.1)
    return process, json.loads(info_file.read_text())


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    process, info = _start(tmp_path_factory.mktemp("faults"),
                           "github:latency_ms=300,error_rate=1,fail_status=429,retry_after=7",
                           "all:jitter_ms=1", "jira:malformed_next=1")
    try:
        yield info
    finally:
        process.terminate()
        process.wait(timeout=20)


def _github(info: dict[str, Any], path: str) -> httpx.Response:
    gh = info["sandbox"]["github"]
    return httpx.get(f"{gh['base_url']}{path}", headers={"Authorization": f"Bearer {gh['token']}",
                                                          "User-Agent": "t"}, timeout=10)


def test_the_faults_hold_from_the_start(faulty: dict[str, Any]) -> None:
    assert faulty["faults"]["github"] == {"latency_s": 0.3, "error_rate": 1.0, "fail_status": 429,
                                          "retry_after": "7", "jitter_s": 0.001}
    storm = _github(faulty, f"/orgs/{faulty['sandbox']['github']['org']}/repos")  # error_rate 1: every answer
    assert storm.status_code == 429 and storm.headers["retry-after"] == "7"
    jira = faulty["sandbox"]["jira"]
    broken = httpx.get(f"{jira['base_url']}/rest/api/3/project/search", auth=(jira["email"], jira["api_token"]))
    assert broken.headers.get("content-type", "").startswith("application/json") and not _is_json(broken.content)


def test_the_control_route_still_changes_them(faulty: dict[str, Any]) -> None:
    base = faulty["sandbox"]["github"]["base_url"]
    httpx.post(f"{base}/_sandbox/faults", json={"latency_s": 0.3}).raise_for_status()
    started = time.monotonic()
    assert _github(faulty, f"/orgs/{faulty['sandbox']['github']['org']}/repos").status_code == 200
    assert time.monotonic() - started >= 0.3


def _is_json(content: bytes) -> bool:
    try:
        json.loads(content)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize(("spec", "message"), [
    ("gitlab:latency_ms=1", "start with the app"),
    ("github:latency=1", "not key=value with a known key"),
    ("github:error_rate=2", "error_rate is a probability"),
    ("jira:fail_status=200", "fail_status must be an HTTP error status"),
    ("github:etags=maybe", "etags must be true or false"),
])
def test_a_wrong_spec_is_refused_at_start(spec: str, message: str, tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "clients.cli", "sandbox", "--faults", spec,
                           "--info-file", str(tmp_path / "never.json")], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2 and message in done.stderr and "omnisql sandbox: --faults" in done.stderr
    assert not (tmp_path / "never.json").exists()


def test_specs_merge_per_app_and_all_reaches_every_app() -> None:
    got = parse_fault_specs(["all:jitter_ms=20", "github:latency_ms=5,etags=false", "github:jitter_ms=0"])
    assert got["github"] == {"jitter_s": 0.0, "latency_s": 0.005, "etags": False}
    assert got["jira"] == got["salesforce"] == got["linear"] == {"jitter_s": 0.02}
