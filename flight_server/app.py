"""Process wiring: connectors on one asyncio loop with one shared HTTP client, the engine, the Flight server."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from connectors.github.connector import GitHubConnector
from connectors.http import new_http_client
from connectors.jira.connector import JiraConnector
from core.types import Connector
from flight_server.config import TenantConfig
from flight_server.server import FlightSqlService
from flight_server.transport import FlightGrpcServer
from planner.engine import Engine
from planner.execute import BackgroundLoop
from security.principals import TokenAuthenticator

__all__ = ["RunningService", "start_service"]


@dataclass
class RunningService:
    server: FlightGrpcServer
    engine: Engine
    loop: BackgroundLoop
    uri: str

    def stop(self) -> None:
        self.server.stop()
        self.loop.stop()


def start_service(config: TenantConfig) -> RunningService:
    """Start serving (non-blocking: gRPC serves from its own thread pool)."""
    loop = BackgroundLoop()

    async def make_client():  # type: ignore[no-untyped-def]
        return new_http_client()

    http = loop.run(make_client())
    connectors: dict[str, Connector] = {}
    if config.github:
        connectors["github"] = GitHubConnector(config.github, http)
    if config.jira:
        connectors["jira"] = JiraConnector(config.jira, http)
    engine = Engine(connectors, loop, pushdown=config.pushdown, deadline_s=config.deadline_s,
                    join_strategy=config.join_strategy)
    secret = config.secret or secrets.token_bytes(32)
    authenticator = TokenAuthenticator(config.principals, secret=secret)
    tls = config.tls()
    server = FlightGrpcServer(FlightSqlService(engine, secret=secret), authenticator, config.host, config.port, tls)
    scheme = "grpc+tls" if tls else "grpc"
    return RunningService(server, engine, loop, f"{scheme}://{config.host}:{server.port}")
