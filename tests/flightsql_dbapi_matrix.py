"""Run in a subprocess with flightsql-dbapi's own Python: what one token sees (the access matrix)."""

from __future__ import annotations

import json
import sys

from flightsql import FlightSQLClient, connect

uri, token = sys.argv[1], sys.argv[2]
host, port = uri.removeprefix("grpc://").rsplit(":", 1)
cursor = connect(FlightSQLClient(host=host, port=int(port), insecure=True, token=token, metadata={})).cursor()
out: dict[str, object] = {}
cursor.execute("SELECT count(*) AS n FROM github.pull_requests")
out["pulls"] = cursor.fetchone()[0]
cursor.execute("SELECT count(*) AS n FROM jira.issues")
out["issues"] = cursor.fetchone()[0]
cursor.execute("SELECT DISTINCT author FROM github.pull_requests ORDER BY author LIMIT 3")
out["authors"] = [row[0] for row in cursor.fetchall()]
try:
    cursor.execute("SELECT diff_link FROM github.pull_requests LIMIT 1")
    cursor.fetchall()
    out["diff_link"] = "readable"
except Exception as exc:  # the client's own error type; we check its text
    out["diff_link"] = "denied" if "ENTITLEMENT_DENIED" in str(exc) else str(exc)[:200]
print(json.dumps(out))
