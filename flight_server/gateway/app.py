"""The Starlette application: routes, static console files, and JSON errors for every path (an unknown path or
method answers in the same ``{"error": ...}`` shape as a failed query)."""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from flight_server.gateway.errors import HttpProblem, error_response
from flight_server.gateway.health import healthz, metrics, readyz
from flight_server.gateway.openapi import openapi_document
from flight_server.gateway.query import query_endpoint
from flight_server.gateway.state import GatewayState

__all__ = ["STATIC", "build_app"]

STATIC = Path(__file__).parent / "static"
_CODES = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}


_PAGE_HEADERS = {"Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'",
                 "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


async def console(request: Request) -> Response:
    """The console: static files only (no inline script), so a strict Content-Security-Policy holds."""
    return FileResponse(STATIC / "index.html", media_type="text/html", headers=_PAGE_HEADERS)


async def console_config(request: Request) -> Response:
    """What the console needs to start: demo tokens for its picker (demo mode only) and the query templates."""
    state: GatewayState = request.app.state.omnisql
    return JSONResponse({"tokens": dict(state.demo_tokens), "templates": dict(state.templates),
                         "max_rows": state.max_rows})


async def openapi(request: Request) -> Response:
    return JSONResponse(openapi_document())


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _CODES.get(exc.status_code, "BAD_REQUEST")
    message = (f"no such endpoint: {request.url.path}; see /openapi.json" if exc.status_code == 404 else
               f"{request.method} is not allowed on {request.url.path}; see /openapi.json"
               if exc.status_code == 405 else str(exc.detail))
    response = error_response(HttpProblem(exc.status_code, code, message))
    if exc.headers:
        response.headers.update(exc.headers)
    return response


def build_app(state: GatewayState) -> Starlette:
    routes = [
        Route("/", console, methods=["GET"]),
        Route("/console/config", console_config, methods=["GET"]),
        Route("/v1/query", query_endpoint, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: http_error, Exception: _internal})
    app.state.omnisql = state
    return app


async def _internal(request: Request, exc: Exception) -> Response:
    return error_response(exc)
