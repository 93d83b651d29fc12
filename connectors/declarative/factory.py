"""The ``manifest`` connector type: a tenant section names a manifest (in ``manifests_dir``, by default the
manifests shipped in ``connectors/manifests``) and supplies what the manifest leaves to the tenant: credentials
as ``<secret>_env`` variables, ``vars``, and an optional ``base_url`` / ``token_url`` override."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from connectors.declarative.connector import ManifestConfig, ManifestConnector
from connectors.declarative.manifest import AuthDef, Manifest, load_manifest
from connectors.declarative.validate import ManifestError
from connectors.registry import ConnectorFactory
from connectors.settings import SettingError, Settings

__all__ = ["BUILTIN_DIR", "MANIFEST", "choose_auth", "manifest_path", "parse"]

BUILTIN_DIR = Path(__file__).resolve().parent.parent / "manifests"


def manifest_path(name: str, directory: str | None) -> Path:
    """``linear`` → ``<manifests_dir>/linear.yaml``; a value with a ``/`` or a ``.yaml`` suffix is a path."""
    if "/" in name or name.endswith((".yaml", ".yml")):
        return Path(name)
    return Path(directory or BUILTIN_DIR) / f"{name}.yaml"


def choose_auth(manifest: Manifest, settings: Settings) -> AuthDef | None:
    """The tenant's ``auth`` (a type), else the first option whose secrets the section supplies (``<name>_env``)."""
    if not manifest.auth:
        return None
    wanted = settings.values.get("auth")
    options = [a for a in manifest.auth if wanted is None or a.type == wanted]
    if wanted is not None and not options:
        raise SettingError(f"{settings.section}.auth: the manifest has no {wanted!r} auth "
                           f"(it offers {', '.join(a.type for a in manifest.auth)})")
    for option in options:
        if all(f"{secret}_env" in settings.values for secret in option.secrets):
            return option
    offers = " or ".join(" + ".join(f"{s}_env" for s in a.secrets) + f" ({a.type})" for a in options)
    raise SettingError(f"{settings.section} needs credentials for {manifest.name}: {offers}")


def parse(settings: Settings) -> ManifestConfig:
    """``manifest`` (a name or a path), ``manifests_dir``, ``base_url``, ``token_url``, ``auth``, ``vars``, the
    ``<secret>_env`` keys its auth names, and the bounds ``concurrency``, ``max_pages``, ``max_body_bytes``,
    ``response_timeout_s``, ``max_redirects``."""
    directory = settings.values.get("manifests_dir")
    path = manifest_path(settings.text("manifest", None), str(directory) if directory else None)
    try:
        manifest = load_manifest(path)
    except ManifestError as exc:
        raise SettingError(f"{settings.section}.manifest: {exc}") from exc
    auth = choose_auth(manifest, settings)
    secrets = {name: settings.secret(name) for name in (auth.secrets if auth else ())}
    given = settings.mapping("vars")
    variables: dict[str, str] = {}
    for name, default in manifest.variables.items():
        value = given.get(name, default)
        if value is None:
            raise SettingError(f"{settings.section}.vars.{name} is required by the {manifest.name} manifest")
        variables[name] = str(value)
    unknown = sorted(set(given) - set(manifest.variables))
    if unknown:
        raise SettingError(f"{settings.section}.vars: the {manifest.name} manifest has no variable "
                           f"{', '.join(unknown)} (it has: {', '.join(manifest.variables) or 'none'})")
    base_url = settings.text("base_url", manifest.base_url).rstrip("/")
    if not base_url.startswith(("https://", "http://")):
        raise SettingError(f"{settings.section}.base_url must start with https:// (or http://)")
    token_url = settings.values.get("token_url")
    return ManifestConfig(manifest=manifest, base_url=base_url, auth=auth, secrets=secrets,
                          token_url=str(token_url) if token_url else None, variables=variables,
                          concurrency=settings.number("concurrency", 8, 1, integer=True),
                          max_pages=settings.number("max_pages", manifest.max_pages, 1, integer=True),
                          limits=settings.limits())


def build(name: str, config: Any, http: httpx.AsyncClient) -> ManifestConnector:
    return ManifestConnector(config, http, name=name)


MANIFEST = ConnectorFactory("manifest", parse, build)
