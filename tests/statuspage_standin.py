"""A tiny incident/status-page REST API for tests/test_manifest_rest.py: the app OmniSQL reaches with only a YAML
manifest (tests/manifests/statuspage.yaml), no Python. Bearer token; ``GET /api/v1/incidents`` pages with a
``Link: <...>; rel="next"`` header (cursor inside the link), filters ``status`` (comma list) and ``since``
(started at or after, epoch seconds); times are epoch seconds; ``GET /api/v1/services`` is one page."""

from __future__ import annotations

import asyncio
import random
import socket
import threading
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

TOKEN = "sp_test_token_0123456789"
SERVICES = ("api", "web", "billing", "search")
STATUSES = ("investigating", "identified", "monitoring", "resolved")


def incidents() -> list[dict[str, Any]]:
    rng = random.Random(7)
    out = []
    for n in range(1, 88):
        started = 1_767_225_600 + n * 36_000 + rng.randint(0, 3000)
        status = rng.choice(STATUSES)
        out.append({"id": f"inc_{n:04d}", "title": f"Incident {n} on {SERVICES[n % 4]}", "status": status,
                    "impact": rng.choice(("none", "minor", "major", "critical")),
                    "service": {"name": SERVICES[n % 4]}, "started_at": started,
                    "resolved_at": started + rng.randint(600, 20_000) if status == "resolved" else None,
                    "tags": rng.sample(["db", "network", "deploy", "dns"], rng.randint(0, 2))})
    return out


class StatusPage:
    def __init__(self) -> None:
        self.incidents = incidents()
        self.requests: list[dict[str, Any]] = []
        self.app = Starlette(routes=[Route("/api/v1/incidents", self.list_incidents),
                                     Route("/api/v1/services", self.list_services)])

    def _denied(self, request: Request) -> Response | None:
        self.requests.append({"path": request.url.path, "query": dict(request.query_params)})
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return JSONResponse({"error": {"message": "invalid token"}}, 401)
        return None

    async def list_services(self, request: Request) -> Response:
        return self._denied(request) or JSONResponse({"services": [{"name": s} for s in SERVICES]})

    async def list_incidents(self, request: Request) -> Response:
        denied = self._denied(request)
        if denied:
            return denied
        rows = self.incidents
        if request.query_params.get("status"):
            wanted = request.query_params["status"].split(",")
            rows = [r for r in rows if r["status"] in wanted]
        if request.query_params.get("since"):
            rows = [r for r in rows if r["started_at"] >= int(request.query_params["since"])]
        size = min(int(request.query_params.get("per_page", 20)), 50)
        start = int(request.query_params.get("cursor", "0") or 0)
        page = rows[start:start + size]
        headers = {}
        if start + size < len(rows):
            params = dict(request.query_params) | {"cursor": str(start + size)}
            query = "&".join(f"{k}={v}" for k, v in params.items())
            headers["link"] = f'<{request.url.path}?{query}>; rel="next"'
        return JSONResponse({"incidents": page}, headers=headers)


def start_statuspage() -> tuple[StatusPage, str, uvicorn.Server]:
    """Serve it on 127.0.0.1 in a daemon thread; returns (app state, base URL, server to stop)."""
    app = StatusPage()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    server = uvicorn.Server(uvicorn.Config(app.app, log_level="warning", access_log=False, lifespan="off"))
    server.install_signal_handlers = lambda: None  # type: ignore[attr-defined,method-assign]
    threading.Thread(target=asyncio.run, args=(server.serve(sockets=[sock]),), daemon=True).start()
    while not server.started:
        threading.Event().wait(0.02)
    return app, f"http://127.0.0.1:{sock.getsockname()[1]}", server
