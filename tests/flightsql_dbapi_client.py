"""Run in a subprocess: flightsql-dbapi bundles its own Flight SQL protobuf module, which clashes with ours."""

from __future__ import annotations

import json
import sys

from flightsql import FlightSQLClient, connect
from sqlalchemy import create_engine, inspect

uri, token = sys.argv[1], sys.argv[2]
host, port = uri.removeprefix("grpc://").rsplit(":", 1)
out: dict[str, object] = {}
client = FlightSQLClient(host=host, port=int(port), insecure=True, token=token, metadata={})
conn = connect(client)
cursor = conn.cursor()
cursor.execute("SELECT count(*) AS n FROM github.pull_requests WHERE status = 'open'")
out["open"] = cursor.fetchone()[0]
cursor.execute("SELECT count(*) AS n FROM github.pull_requests WHERE status = ?", ["open"])
out["open_param"] = cursor.fetchone()[0]
try:
    cursor.execute("SELECT nope FROM jira.issues")
    out["error"] = ""
except Exception as exc:  # the client's own error type; we check its text
    out["error"] = str(exc)
engine = create_engine(f"datafusion://{host}:{port}?insecure=true&token={token}")
inspector = inspect(engine)
out["schemas"] = sorted(inspector.get_schema_names())
out["tables"] = inspector.get_table_names(schema="jira")
out["columns"] = [c["name"] for c in inspector.get_columns("issues", schema="jira")]
print(json.dumps(out))
