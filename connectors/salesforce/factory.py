"""The ``salesforce`` connector type: its tenant-config section and how to build it."""

from __future__ import annotations

from typing import Any

import httpx

from connectors.registry import ConnectorFactory
from connectors.salesforce.connector import MAX_PAGES, SalesforceConfig, SalesforceConnector
from connectors.settings import SettingError, Settings

__all__ = ["SALESFORCE", "parse"]

GRANTS = ("client_credentials", "refresh_token")


def parse(settings: Settings) -> SalesforceConfig:
    """``base_url``, ``auth`` (``client_credentials`` or ``refresh_token``), ``client_id_env``,
    ``client_secret_env``, ``refresh_token_env`` (refresh-token flow), optional ``token_url``, ``api_version``,
    ``batch_size``, ``max_url_chars`` and the common bounds."""
    grant = settings.text("auth", "client_credentials")
    if grant not in GRANTS:
        raise SettingError(f"{settings.section}.auth must be one of {', '.join(GRANTS)}, not {grant!r}")
    refresh = grant == "refresh_token"
    secret = settings.secret("client_secret") if not refresh or settings.values.get("client_secret_env") else ""
    version = settings.text("api_version", "62.0")
    try:
        too_old = float(version) < 31
    except ValueError:
        raise SettingError(f"{settings.section}.api_version must look like 62.0, not {version!r}") from None
    if too_old:
        raise SettingError(f"{settings.section}.api_version {version} is retired (Salesforce answers 410 GONE); "
                           "use 59.0 or later")
    batch = settings.number("batch_size", 2000, 200, integer=True)
    if batch > 2000:
        raise SettingError(f"{settings.section}.batch_size must be at most 2000 (Salesforce's maximum)")
    return SalesforceConfig(base_url=settings.text("base_url", None),
                            client_id=settings.secret("client_id"),
                            client_secret=secret,
                            refresh_token=settings.secret("refresh_token") if refresh else "",
                            grant="refresh_token" if refresh else "client_credentials",
                            token_url=settings.text("token_url", ""),
                            api_version=version, batch_size=batch,
                            max_url_chars=settings.number("max_url_chars", 16_000, 1000, integer=True),
                            concurrency=settings.number("concurrency", 8, 1, integer=True),
                            max_pages=settings.number("max_pages", MAX_PAGES, 1, integer=True),
                            limits=settings.limits())


def build(name: str, config: Any, http: httpx.AsyncClient) -> SalesforceConnector:
    return SalesforceConnector(config, http, name=name)


SALESFORCE = ConnectorFactory("salesforce", parse, build)
