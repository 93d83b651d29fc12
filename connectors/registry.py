"""Connector types by name: ``type → factory``. The tenant config names connector instances
(``connectors: {name: {type: github, ...}}``); each type knows how to read its section and how to build a
connector from it. Built-in types are listed in ``default_registry``; the YAML engine, Salesforce and MCP
register there too.

An instance's name is its schema in SQL: ``connectors: {github: ...}`` serves ``github.pull_requests``;
``connectors: {gh_oss: {type: github, ...}}`` serves ``gh_oss.pull_requests``."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from connectors.settings import SettingError, Settings
from core.types import Connector

__all__ = ["ConnectorConfig", "ConnectorFactory", "Registry", "default_registry"]

_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")
RESERVED = frozenset({"omnisql", "information_schema", "main", "pg_catalog", "system", "temp"})


@dataclass(frozen=True)
class ConnectorFactory:
    """One connector type: ``parse`` reads its config section, ``build`` makes a connector (no I/O: discovery
    belongs in the connector's async ``open()``)."""

    type: str
    parse: Callable[[Settings], Any]
    build: Callable[[str, Any, httpx.AsyncClient], Connector]


@dataclass(frozen=True)
class ConnectorConfig:
    """A configured instance: its name (= SQL schema), its type, and the type's parsed config."""

    name: str
    type: str
    config: Any


class Registry:
    def __init__(self) -> None:
        self._factories: dict[str, ConnectorFactory] = {}

    def register(self, factory: ConnectorFactory) -> None:
        if factory.type in self._factories:
            raise ValueError(f"connector type {factory.type!r} is already registered")
        self._factories[factory.type] = factory

    @property
    def types(self) -> tuple[str, ...]:
        return tuple(sorted(self._factories))

    def factory(self, type_name: str) -> ConnectorFactory:
        try:
            return self._factories[type_name]
        except KeyError:
            raise SettingError(f"unknown connector type {type_name!r} (known: {', '.join(self.types)})") from None

    def parse(self, name: str, section: Mapping[str, Any], environ: Mapping[str, str]) -> ConnectorConfig:
        """One ``connectors.<name>`` entry. Without ``type`` the name must be a type (``github: {...}``)."""
        where = f"connectors.{name}"
        if not isinstance(name, str) or not _NAME.fullmatch(name) or name in RESERVED:
            raise SettingError(f"{where}: a connector name is its SQL schema, so it must be lowercase letters, "
                               "digits and _ (starting with a letter), and not a reserved schema name")
        if section is None:
            section = {}
        if not isinstance(section, Mapping):
            raise SettingError(f"{where} must be a mapping")
        type_name = section.get("type", name if name in self._factories else None)
        if type_name is None:
            raise SettingError(f"{where}.type is required ({', '.join(self.types)}), unless the name is a type")
        if not isinstance(type_name, str) or type_name not in self._factories:
            raise SettingError(f"{where}.type: unknown connector type {type_name!r} (known: {', '.join(self.types)})")
        config = self._factories[type_name].parse(Settings(where, section, environ))
        return ConnectorConfig(name, type_name, config)

    def build(self, entry: ConnectorConfig, http: httpx.AsyncClient) -> Connector:
        return self.factory(entry.type).build(entry.name, entry.config, http)


def default_registry() -> Registry:
    """The built-in connector types."""
    from connectors.declarative.factory import MANIFEST
    from connectors.github.factory import GITHUB
    from connectors.jira.factory import JIRA
    from connectors.mcp.factory import MCP
    from connectors.salesforce.factory import SALESFORCE

    registry = Registry()
    for factory in (GITHUB, JIRA, SALESFORCE, MANIFEST, MCP):
        registry.register(factory)
    return registry
