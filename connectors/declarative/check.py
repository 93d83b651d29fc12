"""``omnisql connector check FILE``: validate a manifest, say what each table can push down, and dry-run one page
against the configured endpoint, so a manifest author sees at once whether paths, types and auth fit the API."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
import pyarrow as pa

from connectors.declarative.connector import ManifestConfig, ManifestConnector
from connectors.declarative.factory import parse
from connectors.declarative.manifest import Manifest, load_manifest
from connectors.declarative.tables import table_spec
from connectors.settings import Settings
from core.errors import OmniSQLError
from core.types import ColumnSpec, ScanRequest, ScanStats

__all__ = ["DryRun", "describe_tables", "dry_run", "load_for_check", "probe", "pushdown_text"]

_PAGING = {"none": "one request", "link_header": "Link-header paging", "cursor": "cursor paging",
           "next_token": "next-token paging", "offset": "offset paging", "page_number": "page-number paging"}


def load_for_check(path: str | Path, base_url: str | None = None, secret_env: Mapping[str, str] | None = None,
                   variables: Mapping[str, str] | None = None, auth: str | None = None,
                   environ: Mapping[str, str] | None = None) -> tuple[Manifest, ManifestConnector | None, str]:
    """The manifest (``ManifestError`` when wrong) and, when credentials are at hand, a connector for the dry
    run; else None and why. A secret ``name`` is read from ``secret_env[name]``, by default the variable
    ``<MANIFEST>_<NAME>`` (``LINEAR_API_KEY``)."""
    import os

    manifest = load_manifest(path)
    env = os.environ if environ is None else environ
    section: dict[str, object] = {"manifest": str(path), "vars": dict(variables or {})}
    if base_url:
        section["base_url"] = base_url
    if auth:
        section["auth"] = auth
    for option in manifest.auth:
        for secret in option.secrets:
            name = (secret_env or {}).get(secret, f"{manifest.name}_{secret}".upper())
            if env.get(name):
                section[f"{secret}_env"] = name
    if manifest.auth and not any(key.endswith("_env") for key in section):
        wanted = " or ".join(" + ".join((secret_env or {}).get(s, f"{manifest.name}_{s}".upper()) for s in a.secrets)
                             + f" ({a.type})" for a in manifest.auth)
        return manifest, None, f"no credentials: set {wanted}, or name other variables with --secret-env NAME=VAR"
    try:
        config = parse(Settings(f"connector {manifest.name}", section, env))
    except ValueError as exc:
        return manifest, None, str(exc)
    return manifest, ManifestConnector(config, httpx.AsyncClient(), manifest.name), ""


def pushdown_text(column: ColumnSpec) -> str:
    cap = column.filter
    if cap is None:
        return "-"
    order = ["=", "<>", "IN", "<", "<=", ">", ">=", "BETWEEN", "LIKE_PREFIX", "IS_NULL"]
    ops = " ".join(o.replace("LIKE_PREFIX", "LIKE 'x%'").replace("IS_NULL", "IS NULL") for o in order if o in cap.ops)
    how = "exact" if cap.exact else "narrows, re-checked"
    batch = f", IN up to {cap.max_in} a request" if "IN" in cap.ops else ""
    return f"{ops} ({how}{batch}{', required' if cap.required else ''})"


def describe_tables(manifest: Manifest) -> list[str]:
    """Each table with its request and paging, then each column: type and what the API can filter."""
    lines = []
    for table in manifest.tables:
        spec = table_spec(manifest.name, table)
        paging = _PAGING[table.paging.type] + (f", {table.paging.page_size} a page" if table.paging.type != "none"
                                              else "")
        extra = f"; sorts by {', '.join(spec.order_pushdown)}" if spec.order_pushdown else ""
        lines.append(f"{spec.qualified_name}: {table.description or 'no description'} "
                     f"(~{spec.row_estimate} rows, {table.request.method} {table.request.path}, {paging}{extra})")
        width = max(len(c.name) for c in spec.columns)
        types = [f"{c.type}{'' if c.nullable else ' NOT NULL'}" for c in spec.columns]
        type_width = max(map(len, types))
        for column, typ in zip(spec.columns, types, strict=True):
            lines.append(f"  {column.name:<{width}}  {typ:<{type_width}}  {pushdown_text(column)}")
    return lines


@dataclass(frozen=True)
class DryRun:
    table: str
    rows: pa.Table
    api_calls: int
    seconds: float
    rate_limit_remaining: int | None


def dry_run(connector: ManifestConnector, table: str, rows: int = 5, timeout_s: float = 30.0) -> DryRun:
    """The first ``rows`` rows of ``table`` (one request when the page size follows the limit); raises the error
    vocabulary (``OmniSQLError``) with the API's own message when it fails."""
    spec = connector.specs[table]

    async def run() -> DryRun:
        stats = ScanStats()
        started = time.perf_counter()
        request = ScanRequest(table, tuple(c.name for c in spec.columns), limit=rows)
        try:
            async with asyncio.timeout(timeout_s):
                batches = [b async for b in connector.scan(request, stats)]
        finally:
            await connector.api.http.aclose()
        got = pa.Table.from_batches(batches, schema=spec.arrow_schema)
        return DryRun(table, got, stats.api_calls, time.perf_counter() - started, stats.rate_limit_remaining)

    return asyncio.run(run())



def probe(config: ManifestConfig, name: str) -> tuple[bool, str]:
    """``omnisql config check``'s probe of a manifest connector: one row of its first table."""
    connector = ManifestConnector(config, httpx.AsyncClient(), name)
    table = config.manifest.tables[0].name
    try:
        result = dry_run(connector, table, rows=1, timeout_s=10.0)
    except (OmniSQLError, TimeoutError) as exc:
        return False, f"{name}.{table} from {config.base_url}: {exc}"
    auth = config.auth.type if config.auth else "no auth"
    return True, f"{name}.{table}: {result.rows.num_rows} row from {config.base_url} ({auth})"
