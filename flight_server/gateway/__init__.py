"""The HTTP gateway beside the Flight server, in the same process (one engine, one cache, one policy):
``POST /v1/query`` (JSON or Arrow IPC), ``/healthz``, ``/readyz``, ``/metrics``, ``/openapi.json`` and the web
console at ``/``."""

from flight_server.gateway.server import Gateway, start_gateway

__all__ = ["Gateway", "start_gateway"]
