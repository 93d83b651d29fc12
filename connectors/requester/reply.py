"""One exchange as plain values: the request the pager asks for, and the reply after its body was read under
the size cap. Paginators, selectors and error handlers read these, never a live ``httpx.Response``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import httpx
import orjson
import pyarrow as pa

from connectors.requester.pruned import UNPRUNED, pruned_body

__all__ = ["Origin", "PageRequest", "Reply", "json_kind"]

_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class Origin:
    """Scheme, host and port: the unit credentials are bound to (a different port is a different origin)."""

    scheme: str
    host: str
    port: int

    @classmethod
    def of(cls, url: str | httpx.URL) -> Origin:
        parsed = httpx.URL(url)
        scheme = parsed.scheme.lower()
        return cls(scheme, parsed.host.lower(), parsed.port or _DEFAULT_PORTS.get(scheme, 0))

    def __str__(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"


@dataclass(frozen=True)
class PageRequest:
    """A request to send: ``params`` go in the query string, ``body`` is sent as JSON."""

    method: str
    url: str
    params: Mapping[str, Any] | None = None
    body: Mapping[str, Any] | None = None

    def key(self) -> str:
        """Identity for the repeat guard: asking for the same page twice means the upstream is going in circles."""
        url = httpx.URL(self.url, params=dict(self.params)) if self.params else httpx.URL(self.url)
        return json.dumps([self.method.upper(), str(url), self.body], sort_keys=True, default=str)


@dataclass(frozen=True)
class Reply:
    """What came back: status, headers and the (decoded, size-capped) body bytes."""

    method: str
    url: httpx.URL
    status: int
    headers: httpx.Headers
    content: bytes

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @cached_property
    def _parsed(self) -> tuple[bool, Any]:
        """orjson: decoding API bodies is most of a listing's CPU, and orjson does it several times faster than
        ``json``, into the same Python values. Stricter, too: NaN, integers past 64 bits and invalid UTF-8 are
        not JSON, so such a body is the upstream's error, as any other broken body."""
        try:
            return True, orjson.loads(self.content)
        except ValueError:  # orjson.JSONDecodeError is one
            return False, None

    @property
    def is_json(self) -> bool:
        return self._parsed[0]

    def pruned_json(self, at: tuple[str, ...], record: pa.DataType) -> Any:
        """Like ``json``, with the records at ``at`` holding only ``record``'s fields (``pruned.py``)."""
        body = pruned_body(self.content, at, record)
        return self.json() if body is UNPRUNED else body

    def json(self) -> Any:
        """The parsed body; ``ValueError`` when it is not JSON (callers turn that into the source's error)."""
        ok, value = self._parsed
        if not ok:
            raise ValueError("body is not JSON")
        return value


def json_kind(value: Any) -> str:
    """JSON's own name for a parsed value's type, for messages about wrong shapes."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    names: dict[type, str] = {str: "string", list: "array", dict: "object"}
    return names.get(type(value), type(value).__name__)
