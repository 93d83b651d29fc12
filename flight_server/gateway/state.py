"""What the gateway shares with the Flight service: the engine (and so its cache and policy), the admission
(one set of concurrency caps for both doors) and the authenticator (one set of principals)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry

from flight_server.admission import Admission
from planner.engine import Engine
from security.principals import TokenAuthenticator

__all__ = ["DEFAULT_MAX_ROWS", "GatewayState", "HttpSettings"]

DEFAULT_MAX_ROWS = 10_000  # a JSON answer's cap; Arrow and Flight have none beyond max_result_bytes


@dataclass
class GatewayState:
    engine: Engine
    admission: Admission
    authenticator: TokenAuthenticator
    max_rows: int = DEFAULT_MAX_ROWS
    demo_tokens: Mapping[str, str] = field(default_factory=dict)  # the console's token picker (demo only)
    templates: Mapping[str, str] = field(default_factory=dict)  # the console's one-click queries
    metrics: CollectorRegistry = field(default_factory=CollectorRegistry)  # this service's scrape-time figures
    ready: bool = False


@dataclass(frozen=True)
class HttpSettings:
    """``serve``'s HTTP options: the port (0: a free one), the JSON row cap, and for the demo the console's
    token picker and templates."""

    port: int = 8001
    max_rows: int = DEFAULT_MAX_ROWS
    demo_tokens: Mapping[str, str] = field(default_factory=dict)
    templates: Mapping[str, str] = field(default_factory=dict)
