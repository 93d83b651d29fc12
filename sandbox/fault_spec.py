"""``omnisql sandbox --faults APP:key=value,...``: the faults a stand-in shows from its start, in the words of
``POST /_sandbox/faults`` (sandbox/common.py ``FAULT_KEYS``) plus ``latency_ms`` / ``jitter_ms``. Checked here,
so a typo is an error at start rather than a sandbox that quietly behaves."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sandbox.common import FAULT_KEYS

__all__ = ["APPS", "parse_fault_specs"]

APPS = ("github", "jira", "salesforce", "linear")
_MS = {"latency_ms": "latency_s", "jitter_ms": "jitter_s"}
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _value(key: str, text: str) -> Any:
    kind = FAULT_KEYS[key]
    if kind is bool:
        if text.lower() not in _TRUE + _FALSE:
            raise ValueError(f"{key} must be true or false, not {text!r}")
        return text.lower() in _TRUE
    if kind is str:
        return text
    try:
        value = kind(text)
    except ValueError:
        raise ValueError(f"{key} must be {'an integer' if kind is int else 'a number'}, not {text!r}") from None
    if value < 0:
        raise ValueError(f"{key} must not be negative")
    if key == "error_rate" and value > 1:
        raise ValueError("error_rate is a probability: between 0 and 1")
    if key == "fail_status" and not 400 <= value <= 599:
        raise ValueError("fail_status must be an HTTP error status (400-599)")
    return value


def parse_fault_specs(specs: Iterable[str]) -> dict[str, dict[str, Any]]:
    """``["github:latency_ms=200,error_rate=0.1", "all:jitter_ms=50"]`` → settings per app (``all``: every app;
    later specs override earlier ones key by key). ``ValueError`` names what is wrong."""
    out: dict[str, dict[str, Any]] = {}
    for spec in specs:
        app, sep, body = spec.partition(":")
        app = app.strip().lower()
        if not sep or app not in (*APPS, "all"):
            raise ValueError(f"{spec!r}: start with the app and a colon ({', '.join(APPS)} or all), e.g. "
                             "github:latency_ms=200,error_rate=0.1")
        settings: dict[str, Any] = {}
        for item in filter(None, (part.strip() for part in body.split(","))):
            key, eq, text = item.partition("=")
            key = key.strip()
            name = _MS.get(key, key)
            if not eq or name not in FAULT_KEYS:
                raise ValueError(f"{spec!r}: {item!r} is not key=value with a known key "
                                 f"({', '.join(sorted([*FAULT_KEYS, *_MS]))})")
            value = _value(name, text.strip())
            settings[name] = value / 1000 if key in _MS else value
        for target in APPS if app == "all" else (app,):
            out.setdefault(target, {}).update(settings)
    return out
