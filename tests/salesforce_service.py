"""A sandbox and an OmniSQL server with two Salesforce connectors, in this process, for the Salesforce tests.

``salesforce``: client credentials, batches of 200 (every listing pages), a 1.5 s response timeout.
``sf_refresh``: the refresh-token flow and ``max_url_chars`` of 1,500, so IN lists are split across queries."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from connectors.http import HttpLimits
from connectors.registry import ConnectorConfig
from connectors.salesforce.connector import SalesforceConfig
from sandbox.server import Sandbox

__all__ = ["SalesforceService", "salesforce_service"]

SMALL_URL = 1500
TIMEOUT_S = 1.5


@dataclass
class SalesforceService:
    sandbox: Sandbox
    uri: str
    token: str

    @property
    def standin(self) -> Any:
        assert self.sandbox.salesforce is not None
        return self.sandbox.salesforce

    def requests(self) -> list[dict[str, Any]]:
        return [e for e in self.standin.log.snapshot() if not e["path"].startswith("/_sandbox")]

    def queries(self) -> list[str]:
        """The SOQL of each ``/query?q=`` sent since the log was cleared."""
        return [e["query"]["q"] for e in self.requests() if "q" in e["query"]]

    def clear(self) -> None:
        self.standin.log.clear()

    def faults(self, **settings: Any) -> None:
        faults = self.standin.faults
        faults.latency_s = float(settings.get("latency_s", 0.0))
        faults.fail_next = int(settings.get("fail_next", 0))
        faults.fail_status = int(settings.get("fail_status", 503))
        faults.retry_after = settings.get("retry_after")
        for name in ("truncate_next", "malformed_next", "drop_next"):
            setattr(faults, name, int(settings.get(name, 0)))
        faults.jitter_s = float(settings.get("jitter_s", 0.0))


@contextlib.contextmanager
def salesforce_service() -> Iterator[SalesforceService]:
    from demo.tenant import UNTHROTTLED, demo_config, demo_tokens
    from flight_server.app import start_service
    from sandbox.server import start_sandbox

    sandbox = start_sandbox()
    info = sandbox.info()["salesforce"]
    config = demo_config(sandbox.info(), "127.0.0.1", 0, UNTHROTTLED)
    main = SalesforceConfig(base_url=info["base_url"], client_id=info["client_id"],
                            client_secret=info["client_secret"], batch_size=200,
                            limits=HttpLimits(response_timeout_s=TIMEOUT_S))
    refresh = SalesforceConfig(base_url=info["base_url"], client_id=info["client_id"], grant="refresh_token",
                               refresh_token=info["refresh_token"], batch_size=200, max_url_chars=SMALL_URL)
    config = dataclasses.replace(config, connectors=(ConnectorConfig("salesforce", "salesforce", main),
                                                     ConnectorConfig("sf_refresh", "salesforce", refresh)))
    service = start_service(config)
    try:
        yield SalesforceService(sandbox, service.uri, demo_tokens()["token_admin"])
    finally:
        service.stop()
        sandbox.stop()
