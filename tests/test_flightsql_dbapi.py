"""flightsql-dbapi (and its SQLAlchemy inspector), run in a subprocess because its protobuf module clashes, with the
Python of its own venv because it pins sqlalchemy<2.0 (conftest's ``flightsql_dbapi_python``)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any


def test_flightsql_dbapi_and_sqlalchemy_inspector(demo: dict[str, Any], admin_token: str,
                                                  flightsql_dbapi_python: Path) -> None:
    script = Path(__file__).with_name("flightsql_dbapi_client.py")
    done = subprocess.run([str(flightsql_dbapi_python), str(script), demo["flight_uri"], admin_token],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["open"] == out["open_param"] > 0
    assert {"github", "jira"} <= set(out["schemas"])  # and the other demo apps
    assert out["tables"] == ["issues", "projects"]
    assert out["columns"][:2] == ["issue_key", "summary"]
    assert "Column 'nope' could not be resolved" in out["error"]
    assert "Traceback" not in out["error"] and "Python exception" not in out["error"]
