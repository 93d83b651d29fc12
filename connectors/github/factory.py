"""The ``github`` connector type: its tenant-config section and how to build it."""

from __future__ import annotations

from typing import Any

import httpx

from connectors.github.connector import (
    API_VERSION,
    API_VERSIONS,
    ETAG_CACHE_BYTES,
    MAX_PAGES,
    GitHubConfig,
    GitHubConnector,
)
from connectors.registry import ConnectorFactory
from connectors.settings import Settings

__all__ = ["GITHUB", "parse"]


def parse(settings: Settings) -> GitHubConfig:
    """``base_url`` (default https://api.github.com), ``org``, ``token_env``, ``repo_teams``, and the optional
    bounds ``concurrency``, ``max_pages``, ``max_body_bytes``, ``response_timeout_s``, ``max_redirects``;
    ``api_version`` (``X-GitHub-Api-Version``) and ``etag_cache_bytes`` (conditional requests; 0 = off)."""
    return GitHubConfig(base_url=settings.text("base_url", "https://api.github.com"),
                        token=settings.secret("token"),
                        org=settings.text("org", None),
                        repo_teams=settings.mapping("repo_teams"),
                        concurrency=settings.number("concurrency", 8, 1, integer=True),
                        max_pages=settings.number("max_pages", MAX_PAGES, 1, integer=True),
                        limits=settings.limits(),
                        api_version=settings.choice("api_version", API_VERSIONS, API_VERSION),
                        etag_cache_bytes=settings.number("etag_cache_bytes", ETAG_CACHE_BYTES, 0, integer=True))


def build(name: str, config: Any, http: httpx.AsyncClient) -> GitHubConnector:
    return GitHubConnector(config, http, name=name)


GITHUB = ConnectorFactory("github", parse, build)
