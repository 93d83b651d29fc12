"""The declarative connector engine: a YAML manifest (requests, paging, columns, filter pushdown) compiled into the
same ``TableSpec`` + ``Connector`` the planner uses for code connectors. The format is in the README
(*Connectors from a manifest*) and in ``manifest.schema.json``."""

from __future__ import annotations

from connectors.declarative.connector import ManifestConfig, ManifestConnector
from connectors.declarative.manifest import Manifest, load_manifest, parse_manifest
from connectors.declarative.validate import ManifestError

__all__ = ["Manifest", "ManifestConfig", "ManifestConnector", "ManifestError", "load_manifest", "parse_manifest"]
