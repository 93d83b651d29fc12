"""A small MCP server for the sandbox: an incident tracker with ``list_incidents(service, status)`` and
``get_incident(id)``, over stdio (``python -m sandbox.mcp_incidents``) or streamable HTTP (``serve_http``).

Incidents are deterministic and name the seed's Salesforce customers, so they join with the other apps."""

from __future__ import annotations

import random
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel

from sandbox.seed import CUSTOMERS

__all__ = ["INCIDENTS", "SERVICES", "build_server", "serve_http"]

SERVICES = ("checkout", "search", "payments", "auth", "notifications")
STATUSES = ("open", "investigating", "resolved")


class Incident(BaseModel):
    id: str
    service: str
    status: str
    severity: int
    title: str
    customer: str | None
    opened_at: str


class IncidentList(BaseModel):
    incidents: list[Incident]


def _incidents(count: int = 60) -> tuple[Incident, ...]:
    rng = random.Random(20261123)
    start = datetime(2026, 9, 1, 6, 0, tzinfo=UTC)
    out = []
    for n in range(count):
        service = SERVICES[n % len(SERVICES)]
        out.append(Incident(id=f"INC-{1000 + n}", service=service, status=rng.choice(STATUSES),
                            severity=rng.randint(1, 4), title=f"{service} {rng.choice(('latency', 'errors', 'outage'))}"
                            f" #{n}", customer=rng.choice(CUSTOMERS) if rng.random() < 0.7 else None,
                            opened_at=(start + timedelta(hours=9 * n)).strftime("%Y-%m-%dT%H:%M:%SZ")))
    return tuple(out)


INCIDENTS = _incidents()


def build_server() -> MCPServer:
    server = MCPServer("omnisql-sandbox-incidents", instructions="A small incident tracker for OmniSQL's sandbox.",
                       log_level="WARNING")

    @server.tool(description="List incidents of one service, optionally only those in one status.")
    def list_incidents(service: str, status: str | None = None) -> IncidentList:
        return IncidentList(incidents=[i for i in INCIDENTS if i.service == service
                                       and (status is None or i.status == status)])

    @server.tool(description="One incident by id (an error when there is none).")
    def get_incident(id: str) -> Incident:
        for incident in INCIDENTS:
            if incident.id == id:
                return incident
        raise ToolError(f"no incident {id}")

    return server


def _bearer(app: Any, token: str) -> Any:
    """The app behind ``Authorization: Bearer <token>``: anything else is a 401 with ``WWW-Authenticate``, as an
    MCP server with authorization answers (MCP spec: Authorization), before any JSON-RPC is read."""
    from starlette.responses import JSONResponse

    async def guarded(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            sent = dict(scope.get("headers") or ()).get(b"authorization", b"").decode("latin-1")
            if sent != f"Bearer {token}":
                reply = JSONResponse({"error": "invalid_token", "error_description": "Authentication required"},
                                     401, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
                await reply(scope, receive, send)
                return
        await app(scope, receive, send)

    return guarded


def serve_http(host: str = "127.0.0.1", token: str | None = None) -> tuple[str, Any]:
    """Streamable HTTP on a free port in a daemon thread; returns (url of /mcp, the uvicorn server). With a
    ``token``, every request must carry it as a Bearer token."""
    import uvicorn

    sock = socket.socket()
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    sock.close()
    app = build_server().streamable_http_app()
    if token is not None:
        app = _bearer(app, token)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
    server.install_signal_handlers = lambda: None  # type: ignore[attr-defined,method-assign]
    threading.Thread(target=server.run, name="omnisql-mcp-sandbox", daemon=True).start()
    deadline = time.time() + 20
    while not server.started and time.time() < deadline:
        time.sleep(0.02)
    return f"http://{host}:{port}/mcp", server


if __name__ == "__main__":
    build_server().run("stdio")
