"""Process wiring: connectors on one asyncio loop with one shared HTTP client, the engine, the Flight server.

Lifecycle: connectors are built from the tenant config through the registry, then ``open()``ed (their
discovery hook) before the engine reads their tables; on stop, the server stops taking calls, then every
connector is ``aclose()``d and the shared ``httpx.AsyncClient`` is closed, then the loop ends."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field

import httpx

from connectors.http import new_http_client
from connectors.registry import default_registry
from core.types import Connector
from flight_server.config import ConfigError, TenantConfig
from flight_server.gateway import Gateway, start_gateway
from flight_server.gateway.server import GatewayError
from flight_server.gateway.state import GatewayState, HttpSettings
from flight_server.governance import Governance, GovernanceError, start_governance
from flight_server.server import FlightSqlService
from flight_server.tracing import TracingError, setup_tracing
from flight_server.transport import FlightGrpcServer
from planner.engine import BackgroundLoop, Engine
from security.jwt_identity import JwtVerifier
from security.policy import PolicyError
from security.principals import TokenAuthenticator

__all__ = ["RunningService", "close_connectors", "open_connectors", "start_service"]

log = logging.getLogger("omnisql.flight")
CLOSE_TIMEOUT_S = 10.0


@dataclass
class RunningService:
    server: FlightGrpcServer
    engine: Engine
    loop: BackgroundLoop
    uri: str
    http: httpx.AsyncClient | None = None
    connectors: Mapping[str, Connector] = field(default_factory=dict)
    governance: Governance | None = None  # rate limiter and scan cache (and their Redis client, if any)
    gateway: Gateway | None = None  # the HTTP API, console, health and metrics (flight_server/gateway/)

    @property
    def http_url(self) -> str | None:
        return self.gateway.url if self.gateway is not None else None

    def stop(self) -> None:
        if self.gateway is not None:
            self.gateway.stop()
        self.server.stop()
        self.engine.policy.close()  # a decision point's connections and workers
        try:
            self.loop.run(close_connectors(self.connectors, self.http, self.governance), timeout=CLOSE_TIMEOUT_S)
        except Exception:  # shutting down regardless: say so, keep going
            log.warning("closing connectors did not finish cleanly", exc_info=True)
        self.loop.stop()


async def open_connectors(connectors: Mapping[str, Connector]) -> None:
    """Each connector's discovery hook (``open()``), concurrently."""
    await asyncio.gather(*(c.open() for c in connectors.values()))


async def close_connectors(connectors: Mapping[str, Connector], http: httpx.AsyncClient | None,
                           governance: Governance | None = None) -> None:
    """``aclose()`` every connector (one failing does not skip the others), then the shared HTTP client and the
    Redis client."""
    results = await asyncio.gather(*(c.aclose() for c in connectors.values()), return_exceptions=True)
    if governance is not None:
        await governance.aclose()
    for name, result in zip(connectors, results, strict=True):
        if isinstance(result, BaseException):
            log.warning("connector %s did not close cleanly", name, exc_info=result)
    if http is not None:
        await http.aclose()


def start_service(config: TenantConfig, http_settings: HttpSettings | None = None, trace_exporter: str = "none"
                  ) -> RunningService:
    """Start serving (non-blocking: gRPC serves from its own thread pool). With ``http_settings`` the HTTP gateway
    (flight_server/gateway/) serves beside it on the same host, sharing the engine, the admission caps and the
    principals."""
    try:
        setup_tracing(trace_exporter)
    except TracingError as exc:
        raise ConfigError(str(exc)) from exc
    loop = BackgroundLoop()

    async def make_client() -> httpx.AsyncClient:
        return new_http_client()

    http = loop.run(make_client())
    registry = default_registry()
    connectors: dict[str, Connector] = {}
    governance: Governance | None = None
    grpc_server: FlightGrpcServer | None = None  # stopped again if the HTTP gateway cannot start
    try:
        for entry in config.connector_configs():
            connectors[entry.name] = registry.build(entry, http)
        loop.run(open_connectors(connectors))
        try:  # rate-limit buckets and the scan cache: in this process, or in Redis shared by replicas
            governance = loop.run(start_governance(config.rate_limits, config.cache))
        except GovernanceError as exc:
            raise ConfigError(str(exc)) from exc
        try:
            engine = Engine(connectors, loop, pushdown=config.pushdown, join_strategy=config.join_strategy,
                            limits=config.limits.query_limits(config.deadline_s), policy=config.policy,
                            default_max_staleness_ms=config.cache.default_max_staleness_ms, cache=governance.cache,
                            throttle=governance.limiter)
        except PolicyError as exc:  # a rule names a column its tables do not have
            raise ConfigError(str(exc)) from exc
        secret = config.secret or secrets.token_bytes(32)
        authenticator = TokenAuthenticator(config.principals, secret=secret,
                                           jwt=JwtVerifier(config.jwt) if config.jwt else None)
        tls = config.tls()
        service = FlightSqlService(engine, secret=secret, limits=config.limits)
        server = grpc_server = FlightGrpcServer(service, authenticator, config.host, config.port, tls, config.limits,
                                                share_port=config.share_port)
        gateway = _start_gateway(http_settings, engine, service, authenticator, config) if http_settings else None
    except BaseException:  # nothing half-started survives a failed start
        if grpc_server is not None:
            grpc_server.stop()
        loop.run(close_connectors(connectors, http, governance), timeout=CLOSE_TIMEOUT_S)
        loop.stop()
        raise
    scheme = "grpc+tls" if tls else "grpc"
    return RunningService(server, engine, loop, f"{scheme}://{config.host}:{server.port}", http, connectors,
                          governance, gateway)


def _start_gateway(settings: HttpSettings, engine: Engine, service: FlightSqlService,
                   authenticator: TokenAuthenticator, config: TenantConfig) -> Gateway:
    """The HTTP gateway on the Flight server's host, with its admission caps and principals."""
    state = GatewayState(engine, service.admission, authenticator, settings.max_rows, settings.demo_tokens,
                         settings.templates)
    try:
        return start_gateway(state, config.host, settings.port, config.tls_cert_file, config.tls_key_file)
    except GatewayError as exc:
        raise ConfigError(str(exc)) from exc
