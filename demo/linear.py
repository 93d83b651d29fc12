"""The demo's Linear connector: the shipped ``linear`` manifest pointed at the sandbox's stand-in, read through the
same tenant-section parser a ``connectors: {linear: {type: manifest, ...}}`` entry goes through."""

from __future__ import annotations

import dataclasses
from typing import Any

from connectors.declarative.factory import parse
from connectors.registry import ConnectorConfig
from connectors.settings import Settings
from flight_server.config import TenantConfig

__all__ = ["linear_connector", "with_linear"]


def linear_connector(sandbox_info: dict[str, Any]) -> ConnectorConfig | None:
    """``linear`` (type ``manifest``) with the stand-in's URL and raw API key, or None without a stand-in."""
    linear = sandbox_info.get("linear")
    if not linear:
        return None
    section = {"manifest": "linear", "base_url": linear["base_url"], "api_key_env": "LINEAR_API_KEY"}
    config = parse(Settings("connectors.linear", section, {"LINEAR_API_KEY": linear["api_key"]}))
    return ConnectorConfig("linear", "manifest", config)


def with_linear(config: TenantConfig, sandbox_info: dict[str, Any]) -> TenantConfig:
    """``config`` serving ``linear.*`` too (admins see it through the demo policy's ``*`` rule)."""
    entry = linear_connector(sandbox_info)
    if entry is None or any(c.name == "linear" for c in config.connectors):
        return config
    return dataclasses.replace(config, connectors=(*config.connectors, entry))
