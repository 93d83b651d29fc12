"""``omnisql connector check``'s engine, for ``clients`` (which reach connectors only through this layer): a
manifest validated with its lines, each table's pushdown, and one page dry-run against the configured endpoint."""

from __future__ import annotations

from connectors.declarative.check import DryRun, describe_tables, dry_run, load_for_check
from connectors.declarative.check import probe as probe_manifest
from connectors.declarative.connector import ManifestConfig
from connectors.declarative.validate import ManifestError
from core.errors import OmniSQLError

__all__ = ["DryRun", "ManifestConfig", "ManifestError", "OmniSQLError", "describe_tables", "dry_run", "load_for_check",
           "probe_manifest"]
