"""The OpenAPI 3.1 document of the gateway (``GET /openapi.json``), kept as a file beside the code so that
``tests/test_http_openapi.py`` can check the live API against it (schemathesis)."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = ["openapi_document"]

DOCUMENT = Path(__file__).parent / "openapi.json"


@lru_cache(maxsize=1)
def openapi_document() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(DOCUMENT.read_text())
    return document
