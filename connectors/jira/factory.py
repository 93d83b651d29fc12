"""The ``jira`` connector type: its tenant-config section and how to build it."""

from __future__ import annotations

from typing import Any

import httpx

from connectors.jira.connector import MAX_PAGES, JiraConfig, JiraConnector
from connectors.registry import ConnectorFactory
from connectors.settings import SettingError, Settings

__all__ = ["JIRA", "parse"]


def parse(settings: Settings) -> JiraConfig:
    """``base_url``, ``email_env`` and ``api_token_env`` (or ``auth: bearer`` and ``access_token_env``),
    ``project_teams``, ``story_points_field``,
    ``branch_field``, ``customer_field``, and the optional bounds ``concurrency``, ``max_pages``, ``max_body_bytes``,
    ``response_timeout_s``, ``max_redirects``."""
    auth = settings.text("auth", "basic")
    if auth not in ("basic", "bearer"):
        raise SettingError(f"{settings.section}.auth must be basic or bearer, not {auth!r}")
    bearer = auth == "bearer"  # an OAuth 2.0 access token, at https://api.atlassian.com/ex/jira/{cloudId}
    return JiraConfig(base_url=settings.text("base_url", None),
                      email="" if bearer else settings.secret("email"),
                      api_token="" if bearer else settings.secret("api_token"),
                      access_token=settings.secret("access_token") if bearer else "",
                      project_teams=settings.mapping("project_teams"),
                      story_points_field=settings.text("story_points_field", "customfield_10016"),
                      branch_field=settings.text("branch_field", "customfield_10100"),
                      customer_field=settings.text("customer_field", "customfield_10200"),
                      concurrency=settings.number("concurrency", 8, 1, integer=True),
                      max_pages=settings.number("max_pages", MAX_PAGES, 1, integer=True),
                      limits=settings.limits())


def build(name: str, config: Any, http: httpx.AsyncClient) -> JiraConnector:
    return JiraConnector(config, http, name=name)


JIRA = ConnectorFactory("jira", parse, build)
