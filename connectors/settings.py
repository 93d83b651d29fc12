"""One connector's section of the tenant config, read with errors that name the key (``connectors.<name>.<key>``).
Secrets never live in the file: a ``<key>_env`` entry names the environment variable that holds them."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from connectors.http import HttpLimits

__all__ = ["SettingError", "Settings"]


class SettingError(ValueError):
    """A connector section is wrong; the message names the key (flight_server.config re-raises it)."""


@dataclass(frozen=True)
class Settings:
    section: str  # e.g. "connectors.github", for messages
    values: Mapping[str, Any]
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)

    def required(self, key: str) -> Any:
        if key not in self.values or self.values[key] is None:
            raise SettingError(f"{self.section}.{key} is required")
        return self.values[key]

    def text(self, key: str, default: str | None = None) -> str:
        value = self.values.get(key, default)
        if value is None:
            raise SettingError(f"{self.section}.{key} is required")
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise SettingError(f"{self.section}.{key} must be a string")
        return str(value)

    def secret(self, key: str) -> str:
        """The value of the environment variable that ``<key>_env`` names."""
        name = self.values.get(f"{key}_env")
        if not name:
            raise SettingError(f"{self.section}.{key}_env is required (the name of the environment variable that "
                               "holds it)")
        value = self.environ.get(str(name))
        if not value:
            raise SettingError(f"environment variable {name} (from {self.section}.{key}_env) is not set")
        return value

    def choice(self, key: str, allowed: tuple[str, ...], default: str) -> str:
        value = self.text(key, default)
        if value not in allowed:
            raise SettingError(f"{self.section}.{key} must be one of {', '.join(allowed)}")
        return value

    def mapping(self, key: str) -> dict[str, str]:
        value = self.values.get(key) or {}
        if not isinstance(value, Mapping):
            raise SettingError(f"{self.section}.{key} must be a mapping")
        return {str(k): str(v) for k, v in value.items()}

    def number(self, key: str, default: float, minimum: float = 0, integer: bool = False) -> Any:
        value = self.values.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or (integer and not isinstance(value, int)):
            raise SettingError(f"{self.section}.{key} must be {'an integer' if integer else 'a number'}")
        if value < minimum:
            raise SettingError(f"{self.section}.{key} must be at least {minimum}")
        return value

    def limits(self) -> HttpLimits:
        """``max_body_bytes``, ``response_timeout_s`` and ``max_redirects``: bounds on each upstream response."""
        default = HttpLimits()
        return HttpLimits(max_body_bytes=self.number("max_body_bytes", default.max_body_bytes, 1, integer=True),
                          response_timeout_s=float(self.number("response_timeout_s", default.response_timeout_s,
                                                               0.001)),
                          max_redirects=self.number("max_redirects", default.max_redirects, 0, integer=True))
