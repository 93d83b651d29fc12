"""Shared fixtures: the real demo (``omnisql serve --demo``) in a subprocess, reached over real gRPC/HTTP."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"


@contextlib.contextmanager
def launch_demo(directory: Path, *extra_args: str, throttled: bool = False, env: dict[str, str] | None = None
                ) -> Iterator[dict[str, Any]]:
    """``omnisql serve --demo`` in a subprocess; yields its info file's contents once it is ready."""
    info_file = directory / "info.json"
    # The suite makes more GitHub calls than one realistic hourly budget (5,000) allows, and more at once than the
    # default rate-limit buckets (50, then 10/s) admit; ``throttled`` keeps the demo's default buckets.
    buckets = () if throttled else ("--rate-limit-burst", "1000000", "--rate-limit-refill-per-s", "1000000")
    # Full fetches only: tests read what a scan sends upstream, and a live repeat of a cached scan would send only
    # its changes. Delta refresh is tested on sandboxes of its own (tests/test_delta_refresh.py, test_manifest.py).
    command = [sys.executable, "-m", "clients.cli", "serve", "--demo", "--port", "0", "--info-file", str(info_file),
               "--github-rate-limit", "1000000", "--http-port", "0", "--cache-full-refresh-s", "0", *buckets,
               *extra_args]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               env={**os.environ, "OMNISQL_LOG_LEVEL": "WARNING", **(env or {})})
    try:
        deadline = time.time() + 60
        while not info_file.exists():
            if process.poll() is not None or time.time() > deadline:
                process.kill()
                output = process.stdout.read().decode() if process.stdout else ""
                raise RuntimeError(f"demo did not start:\n{output}")
            time.sleep(0.1)
        yield json.loads(info_file.read_text())
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with launch_demo(tmp_path_factory.mktemp("demo")) as info:
        assert info["flight_uri"].startswith("grpc://127.0.0.1:")
        yield info


@pytest.fixture()
def admin_token(demo: dict[str, Any]) -> str:
    return str(demo["tokens"]["token_admin"])


@pytest.fixture()
def adbc_conn(demo: dict[str, Any], admin_token: str) -> Iterator[Any]:
    import adbc_driver_flightsql.dbapi as flightsql

    conn = flightsql.connect(demo["flight_uri"], db_kwargs={
        "adbc.flight.sql.authorization_header": f"Bearer {admin_token}"})
    yield conn
    conn.close()


@pytest.fixture(scope="session")
def adbc_session(demo: dict[str, Any]) -> Iterator[Any]:
    """One ADBC connection (as admin) shared by a whole session of queries, for suites that run hundreds."""
    import adbc_driver_flightsql.dbapi as flightsql

    conn = flightsql.connect(demo["flight_uri"], db_kwargs={
        "adbc.flight.sql.authorization_header": f"Bearer {demo['tokens']['token_admin']}"})
    yield conn
    conn.close()


class SandboxLog:
    """The sandbox's request log, read over HTTP like any other client would."""

    def __init__(self, info: dict[str, Any]) -> None:
        self.urls = {app: info["sandbox"][app]["base_url"] for app in ("github", "jira")}

    def clear(self) -> None:
        for url in self.urls.values():
            httpx.delete(f"{url}/_sandbox/requests").raise_for_status()

    def requests(self, app: str) -> list[dict[str, Any]]:
        entries = httpx.get(f"{self.urls[app]}/_sandbox/requests").json()
        return [e for e in entries if not e["path"].startswith("/_sandbox")]

    def faults(self, app: str, **settings: Any) -> None:
        httpx.post(f"{self.urls[app]}/_sandbox/faults", json=settings).raise_for_status()

    @contextlib.contextmanager
    def slowed(self, app: str, latency_s: float) -> Iterator[None]:
        """Every request to ``app`` answered ``latency_s`` late inside the block; on time again after it."""
        self.faults(app, latency_s=latency_s)
        try:
            yield
        finally:
            self.faults(app, latency_s=0)


@pytest.fixture()
def sandbox_log(demo: dict[str, Any]) -> SandboxLog:
    log = SandboxLog(demo)
    log.clear()
    return log


def isolated_venv(name: str, extra: str) -> Path:
    """A venv of its own (``.venv/<name>``) holding pyproject's ``[project.optional-dependencies] <extra>`` list:
    for a client whose pins cannot share the test environment (flightsql-dbapi needs sqlalchemy<2.0). Installed
    once, again only when the list changes; returns its Python."""
    requirements = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"][extra]
    home = ROOT / ".venv" / name
    python = home / "bin" / "python"
    marker = home / "omnisql-requirements.txt"
    wanted = "\n".join(requirements)
    if python.exists() and marker.exists() and marker.read_text() == wanted:
        return python
    for command in ([sys.executable, "-m", "venv", "--clear", str(home)],
                    [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *requirements]):
        done = subprocess.run(command, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout[-2000:]}{done.stderr[-3000:]}")
    marker.write_text(wanted)
    return python


@pytest.fixture(scope="session")
def flightsql_dbapi_python() -> Path:
    """The Python of a venv with flightsql-dbapi 0.2.2 and its SQLAlchemy 1.4 (see pyproject's test-flightsql-dbapi)."""
    return isolated_venv("flightsql-dbapi", "test-flightsql-dbapi")


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Any]:
    """The stand-ins (GitHub, Jira, Salesforce, Linear) of the module's own, for suites that read what they were
    asked or change what they serve."""
    from sandbox.server import start_sandbox

    box = start_sandbox()
    try:
        yield box
    finally:
        box.stop()


@contextlib.contextmanager
def own_demo(change: Callable[[Any, dict[str, Any]], Any] = lambda config, info: config,
             apps: tuple[str, ...] | None = ("github", "jira")) -> Iterator[tuple[Any, Any]]:
    """A sandbox of its own and an in-process demo service over it, with an admin ADBC connection. The service
    connects to the sandbox's ``apps`` (None: every app it serves); its tenant config is passed through
    ``change`` with the sandbox's info (base URLs and credentials) before it starts."""
    import adbc_driver_flightsql.dbapi as flightsql

    from demo.tenant import UNTHROTTLED, demo_config, demo_tokens
    from flight_server.app import start_service
    from sandbox.server import start_sandbox

    sandbox = start_sandbox()
    info = {k: v for k, v in sandbox.info().items() if apps is None or k in apps}
    service = start_service(change(demo_config(info, "127.0.0.1", 0, UNTHROTTLED), info))
    conn = flightsql.connect(service.uri, db_kwargs={
        "adbc.flight.sql.authorization_header": f"Bearer {demo_tokens()['token_admin']}"})
    try:
        yield sandbox, conn
    finally:
        conn.close()
        service.stop()
        sandbox.stop()


@pytest.fixture(scope="module")
def running() -> Iterator[tuple[Any, Any]]:
    """``own_demo`` for a whole module: suites with seeds of their own (issues, commits, reviews, projects)."""
    with own_demo() as pair:
        yield pair


@pytest.fixture(scope="session")
def oracle() -> Iterator[Any]:
    """The truth answers are compared with: the sandbox's seed as DuckDB tables, built without any connector
    (``tests/oracle.py``; query it with ``tests.oracle.oracle_answer``)."""
    from tests.oracle import connect_oracle

    db = connect_oracle()
    yield db
    db.close()


@pytest.fixture(scope="session")
def reference_engine(demo: dict[str, Any]) -> Iterator[Any]:
    """An in-process engine with pushdown OFF over the same sandbox: full scans, DuckDB does everything."""
    from demo.tenant import UNTHROTTLED, demo_config
    from flight_server.app import start_service

    config = demo_config(demo["sandbox"], "127.0.0.1", 0, UNTHROTTLED)
    config = dataclasses.replace(config, pushdown=False)
    service = start_service(config)
    yield service.engine
    service.stop()
