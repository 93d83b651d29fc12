"""``/healthz`` (the process answers), ``/readyz`` (the engine serves; each connector's last upstream answer),
``/metrics`` (Prometheus text format)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from flight_server.gateway.state import GatewayState
from flight_server.metrics import CONTENT_TYPE, UPSTREAM_STATUS, exposition
from planner.access import INFORMATION_SCHEMA, SYSTEM_SCHEMA

__all__ = ["healthz", "metrics", "readyz"]


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """503 until the engine serves. A connector whose API failed last does not make the server unready (other
    sources and the cache still answer); it is reported so an operator sees it."""
    state: GatewayState = request.app.state.omnisql
    with UPSTREAM_STATUS.lock:
        last = dict(UPSTREAM_STATUS.last)
    connectors = {}
    for name, connector in sorted(state.engine.connectors.items()):
        if name in (SYSTEM_SCHEMA, INFORMATION_SCHEMA):  # answered in-process: no upstream to report
            continue
        connectors[name] = last.get(_kind(name, connector), {"status": "unknown", "ok": None, "at": None})
    body = {"status": "ready" if state.ready else "starting", "connectors": connectors}
    return JSONResponse(body, status_code=200 if state.ready else 503)


async def metrics(request: Request) -> Response:
    state: GatewayState = request.app.state.omnisql
    return Response(exposition(state.metrics), media_type=CONTENT_TYPE)


def _kind(name: str, connector: object) -> str:
    """The label its upstream requests carry: the API client's source (``github``), else the connector's name."""
    source = getattr(getattr(connector, "api", None), "source", None)
    return source.lower() if isinstance(source, str) else name
