"""The README lists only errors the code raises (issue #11): every code in its *Errors* (gRPC) and *HTTP API*
tables is one of our error classes' codes or a gateway refusal's, and every one of those codes is listed."""

from __future__ import annotations

import re

from core import errors
from flight_server.gateway.app import _CODES
from flight_server.sessions import SessionNotFound
from tests.conftest import ROOT


def table_codes(section: str) -> set[str]:
    readme = (ROOT / "README.md").read_text()
    body = readme.split(f"\n{section}\n", 1)[1].split("\n#", 1)[0]
    rows = [line for line in body.splitlines() if line.startswith("| ")]
    return {code for row in rows for code in re.findall(r"`([A-Z][A-Z_]{3,})`", row)}


def raised_codes() -> set[str]:
    classes = [getattr(errors, name) for name in errors.__all__]
    codes = {c.code for c in classes if isinstance(c, type) and issubclass(c, errors.OmniSQLError)}
    return codes | {SessionNotFound.code}


def test_the_grpc_table_lists_exactly_the_codes_raised() -> None:
    listed = table_codes("### Errors") - {"INVALID_ARGUMENT", "PERMISSION_DENIED", "UNAVAILABLE",
                                            "DEADLINE_EXCEEDED", "NOT_FOUND"}  # gRPC status names
    assert listed == raised_codes()


def test_the_http_table_lists_exactly_the_codes_answered() -> None:
    assert table_codes("### HTTP API") == (raised_codes() - {"SESSION_NOT_FOUND"}) | set(_CODES.values())
