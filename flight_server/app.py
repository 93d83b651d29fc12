"""Process wiring: connectors on one asyncio loop with one shared HTTP client, the engine, the Flight server."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from connectors.github.connector import GitHubConnector
from connectors.http import new_http_client
from connectors.jira.connector import JiraConnector
from connectors.types import Connector
from flight_server.config import TenantConfig
from flight_server.server import OmniSQLFlightServer
from planner.engine import Engine
from planner.execute import BackgroundLoop
from security.principals import TokenAuthenticator

__all__ = ["RunningService", "start_service"]


@dataclass
class RunningService:
    server: OmniSQLFlightServer
    engine: Engine
    loop: BackgroundLoop
    uri: str

    def stop(self) -> None:
        self.server.shutdown()
        self.loop.stop()


def start_service(config: TenantConfig) -> RunningService:
    """Start serving (non-blocking: pyarrow's server runs its own gRPC threads)."""
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
    server = OmniSQLFlightServer(f"grpc://{config.host}:{config.port}", engine,
                                 TokenAuthenticator(config.principals, secret=secret), secret=secret)
    return RunningService(server, engine, loop, f"grpc://{config.host}:{server.port}")
