"""Another user running a small query in a loop while a hostile one does its worst: every hostile suite asserts
that this client is still served, without error and within its deadline, on the same server."""

from __future__ import annotations

import threading
import time
from typing import Any

import adbc_driver_flightsql.dbapi as flightsql
import pyarrow as pa

__all__ = ["DEADLINE_S", "Innocent", "run_sql"]

DEADLINE_S = 10.0  # the innocent query's own deadline: every run must finish well within it


def run_sql(conn: Any, sql: str, params: Any = None) -> pa.Table:
    with conn.cursor() as cur:
        cur.execute(sql, params) if params is not None else cur.execute(sql)
        return cur.fetch_arrow_table()


class Innocent:
    """``web_dev`` (a principal no hostile test uses) counting WEB issues in a loop on ``demo["flight_uri"]``;
    records each latency and error. It runs at least once, however short the hostile part is."""

    SQL = "SELECT count(*) AS n FROM jira.issues WHERE project = 'WEB'"

    def __init__(self, demo: dict[str, Any], max_runs: int = 200) -> None:
        self.conn = flightsql.connect(demo["flight_uri"], db_kwargs={
            "adbc.flight.sql.authorization_header": f"Bearer {demo['tokens']['token_web_dev']}"})
        self.max_runs = max_runs
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        for _ in range(self.max_runs):  # bounded
            started = time.monotonic()
            try:
                run_sql(self.conn, self.SQL)
            except Exception as exc:  # recorded, asserted on by assert_served
                self.errors.append(str(exc)[:200])
            self.latencies.append(time.monotonic() - started)
            if self.stop.is_set():
                return

    def __enter__(self) -> Innocent:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=30)
        self.conn.close()

    def assert_served(self) -> None:
        assert self.errors == [] and self.latencies, self.errors
        assert max(self.latencies) < DEADLINE_S, self.latencies  # served within its deadline throughout
