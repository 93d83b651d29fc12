"""The ``mcp`` connector type: one MCP server per connector section."""

from __future__ import annotations

from typing import Any

import httpx

from connectors.mcp.connector import McpConfig, McpConnector
from connectors.registry import ConnectorFactory
from connectors.settings import SettingError, Settings

__all__ = ["MCP", "parse"]


def _strings(settings: Settings, key: str) -> tuple[str, ...]:
    value = settings.values.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str | int | float) for v in value):
        raise SettingError(f"{settings.section}.{key} must be a list of strings")
    return tuple(str(v) for v in value)


def parse(settings: Settings) -> McpConfig:
    """``transport`` (``stdio``: ``command``, ``args``, ``env`` names → ``*_env`` variables, ``cwd``; ``http``:
    ``url``, optional ``token_env``), ``tools`` (allowlist), ``concurrency`` (default 2), ``timeout_s`` (30)."""
    transport = settings.text("transport", "stdio")
    if transport not in ("stdio", "http"):
        raise SettingError(f"{settings.section}.transport must be stdio or http, not {transport!r}")
    env = {k: settings.environ.get(v, "") for k, v in settings.mapping("env_from").items()}
    common: dict[str, Any] = {"tools": _strings(settings, "tools"),
                              "concurrency": settings.number("concurrency", 2, 1, integer=True),
                              "timeout_s": float(settings.number("timeout_s", 30.0, 0.001))}
    if transport == "http":
        url = settings.text("url", None)
        if not url.startswith(("http://", "https://")):
            raise SettingError(f"{settings.section}.url must be an http(s):// URL")
        token = settings.secret("token") if settings.values.get("token_env") else ""
        return McpConfig("http", url=url, token=token, **common)
    return McpConfig("stdio", command=settings.text("command", None), args=_strings(settings, "args"), env=env,
                     cwd=settings.values.get("cwd"), **common)


def build(name: str, config: Any, http: httpx.AsyncClient) -> McpConnector:
    return McpConnector(config, name=name)


MCP = ConnectorFactory("mcp", parse, build)
