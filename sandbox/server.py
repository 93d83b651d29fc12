"""Run the stand-ins over real HTTP on 127.0.0.1, in a background thread or in the foreground."""

from __future__ import annotations

import asyncio
import socket
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from sandbox.common import apply_faults
from sandbox.faults import FaultLayer
from sandbox.github_api import GitHubStandIn
from sandbox.jira_api import JiraStandIn
from sandbox.linear_api import LinearStandIn
from sandbox.linear_seed import build_linear_seed
from sandbox.salesforce_api import SalesforceStandIn
from sandbox.salesforce_seed import build_salesforce_seed
from sandbox.seed import DEFAULT_ISSUES, DEFAULT_PULLS, ORG, build_seed

ROOT = Path(__file__).resolve().parent.parent
GITHUB_TOKEN = "ghp_sandboxTokenForOmniSQLDemo000000000000"
JIRA_EMAIL = "omnisql-bot@acme.example"
JIRA_API_TOKEN = "ATATT3xSandboxJiraToken0000"
LINEAR_API_KEY = "lin_api_sandboxOmniSQLKey000000000000"
LINEAR_CLIENT_ID = "lin-sandbox-oauth-client"
LINEAR_CLIENT_SECRET = "lin-sandbox-oauth-secret-0000"
LINEAR_REFRESH_TOKEN = "lin_refresh_sandbox0000"
SALESFORCE_CLIENT_ID = "3MVG9sandboxOmniSQLConnectedApp"
SALESFORCE_CLIENT_SECRET = "sandbox-salesforce-client-secret-0000"
SALESFORCE_REFRESH_TOKEN = "5Aep861sandboxRefreshToken0000"


@dataclass
class Sandbox:
    """The running stand-ins and how to reach them."""

    github: GitHubStandIn
    jira: JiraStandIn
    github_url: str = ""
    jira_url: str = ""
    linear: LinearStandIn | None = None
    linear_url: str = ""
    salesforce: SalesforceStandIn | None = None
    salesforce_url: str = ""
    _thread: threading.Thread | None = None
    _servers: tuple[uvicorn.Server, ...] = ()

    def info(self) -> dict[str, Any]:
        return self._linear_info() | {"github": {"base_url": self.github_url, "token": GITHUB_TOKEN, "org": ORG},
                "jira": {"base_url": self.jira_url, "email": JIRA_EMAIL, "api_token": JIRA_API_TOKEN},
                "salesforce": {"base_url": self.salesforce_url, "client_id": SALESFORCE_CLIENT_ID,
                               "client_secret": SALESFORCE_CLIENT_SECRET, "refresh_token": SALESFORCE_REFRESH_TOKEN},
                # the MCP incident tracker runs over stdio: a client starts it (python -m sandbox.mcp_incidents)
                "mcp": {"command": sys.executable, "args": ["-m", "sandbox.mcp_incidents"], "cwd": str(ROOT)}}

    def _linear_info(self) -> dict[str, Any]:
        return {"linear": {"base_url": self.linear_url, "api_key": LINEAR_API_KEY,
                           "client_id": LINEAR_CLIENT_ID, "client_secret": LINEAR_CLIENT_SECRET,
                           "refresh_token": LINEAR_REFRESH_TOKEN}} if self.linear else {}

    def set_faults(self, faults: dict[str, dict[str, Any]]) -> None:
        """Each named app's faults, as ``POST /_sandbox/faults`` would set them (``sandbox/fault_spec.py``)."""
        for app, settings in faults.items():
            stand_in = getattr(self, app, None)
            if stand_in is None:
                raise ValueError(f"the sandbox has no {app} stand-in")
            apply_faults(stand_in.faults, settings)

    def stop(self) -> None:
        for server in self._servers:
            server.should_exit = True
        if self._thread:
            self._thread.join(timeout=10)


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit this on Linux; without it a keep-alive response written in two parts
    # waits ~40 ms for the client's delayed ACK (Nagle), which real APIs behind proxies do not do.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(512)
    return sock


def start_sandbox(host: str = "127.0.0.1", github_port: int = 0, jira_port: int = 0,
                  github_rate_limit: int = 5000, jira_rate_limit: int = 100_000, pulls: int = DEFAULT_PULLS,
                  issues: int = DEFAULT_ISSUES, faults: dict[str, dict[str, Any]] | None = None) -> Sandbox:
    """Start the stand-ins (GitHub, Jira, Salesforce, Linear) in a daemon thread, with ``faults`` per app from the
    start; returns once they accept connections."""
    seed = build_seed(pulls=pulls, issues=issues)
    sandbox = Sandbox(github=GitHubStandIn(seed, GITHUB_TOKEN, github_rate_limit),
                      jira=JiraStandIn(seed, JIRA_EMAIL, JIRA_API_TOKEN, jira_rate_limit),
                      salesforce=SalesforceStandIn(build_salesforce_seed(), SALESFORCE_CLIENT_ID,
                                                   SALESFORCE_CLIENT_SECRET, SALESFORCE_REFRESH_TOKEN))
    sockets = [_bind(host, github_port), _bind(host, jira_port), _bind(host, 0)]
    sandbox.github_url = f"http://{host}:{sockets[0].getsockname()[1]}"
    sandbox.jira_url = f"http://{host}:{sockets[1].getsockname()[1]}"
    sandbox.salesforce_url = f"http://{host}:{sockets[2].getsockname()[1]}"
    assert sandbox.salesforce is not None
    apps = [FaultLayer(s.app, s.faults) for s in (sandbox.github, sandbox.jira, sandbox.salesforce)]
    servers = tuple(uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
                    for app in apps)
    linear_socket = _bind(host, 0)  # Linear's GraphQL stand-in (sandbox/linear_api.py)
    sandbox.linear = LinearStandIn(build_linear_seed(), LINEAR_API_KEY, LINEAR_CLIENT_ID, LINEAR_CLIENT_SECRET,
                                   LINEAR_REFRESH_TOKEN)
    sandbox.linear_url = f"http://{host}:{linear_socket.getsockname()[1]}"
    sockets.append(linear_socket)
    sandbox.set_faults(faults or {})  # before the first request can arrive
    servers += (uvicorn.Server(uvicorn.Config(FaultLayer(sandbox.linear.app, sandbox.linear.faults),
                                              log_level="warning", access_log=False, lifespan="off")),)
    for server in servers:
        server.install_signal_handlers = lambda: None  # type: ignore[attr-defined,method-assign]
    started = threading.Event()

    async def run() -> None:
        tasks = [asyncio.create_task(s.serve(sockets=[sock])) for s, sock in zip(servers, sockets, strict=True)]
        while not all(s.started for s in servers):
            await asyncio.sleep(0.01)
        started.set()
        await asyncio.gather(*tasks)

    thread = threading.Thread(target=asyncio.run, args=(run(),), name="omnisql-sandbox", daemon=True)
    thread.start()
    if not started.wait(timeout=20):
        raise RuntimeError("sandbox did not start within 20 s")
    sandbox._thread, sandbox._servers = thread, servers
    return sandbox
