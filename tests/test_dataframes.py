"""DataFrame libraries over an ADBC connection, as their docs show: Polars ``pl.read_database`` (Arrow straight
through, with and without parameters, and over the SQLAlchemy engine of ``sqlalchemy-adbc``), pandas
``pd.read_sql`` on an ADBC connection and the ADBC cursor's ``fetch_df()``. Answers are compared with the seed or
with the same literal SQL through ``fetch_arrow_table``.

Not tested, because the libraries cannot do it (README, "Client compatibility"): ``pd.read_sql(..., params=...)``
on an ADBC connection (pandas: "'params' is not implemented for ADBC drivers"), and ``pl.read_database_uri(...,
engine="adbc")``: Polars picks the driver from the URI's scheme (``grpc://`` → ``adbc_driver_grpc``, which does not
exist) and passes only the URI to ``connect``, so there is no way to send the ``authorization`` header."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pandas as pd
import polars as pl
import pytest
import sqlalchemy as sa

from sandbox.seed import build_seed, team_of_project


def arrow_rows(adbc_conn: Any, sql: str) -> list[dict[str, Any]]:
    cursor = adbc_conn.cursor()
    cursor.execute(sql)
    rows: list[dict[str, Any]] = cursor.fetch_arrow_table().to_pylist()
    cursor.close()
    return rows


def pr_status_counts() -> dict[str, int]:
    counts = Counter("merged" if p.merged_at else p.state for p in build_seed().pulls)
    return dict(sorted(counts.items()))


def test_polars_read_database_over_adbc(adbc_conn: Any) -> None:
    frame = pl.read_database("SELECT status, count(*) AS n FROM github.pull_requests GROUP BY status "
                             "ORDER BY status", adbc_conn)
    assert frame.schema == pl.Schema({"status": pl.String, "n": pl.Int64})
    assert dict(frame.iter_rows()) == pr_status_counts()


def test_polars_read_database_keeps_arrow_types(adbc_conn: Any) -> None:
    sql = ("SELECT issue_key, story_points, labels, created_at FROM jira.issues WHERE project = 'PLAT' "
           "ORDER BY issue_key LIMIT 20")
    frame = pl.read_database(sql, adbc_conn)
    assert frame.schema["story_points"] == pl.Float64
    assert frame.schema["labels"] == pl.List(pl.String)
    created_at = frame.schema["created_at"]
    assert isinstance(created_at, pl.Datetime) and created_at.time_unit == "us"
    assert created_at.time_zone in ("UTC", "Etc/UTC")
    expected = arrow_rows(adbc_conn, sql)
    assert frame.to_dicts() == expected
    assert len(expected) == 20


def test_polars_read_database_with_parameters(adbc_conn: Any) -> None:
    frame = pl.read_database("SELECT issue_key, team FROM jira.issues WHERE team = ? AND status = ? "
                             "ORDER BY issue_key", adbc_conn, execute_options={"parameters": ["mobile", "Done"]})
    seed = build_seed()
    expected = sorted(i.key for i in seed.issues if team_of_project(i.project) == "mobile" and i.status == "Done")
    assert frame["issue_key"].to_list() == expected
    assert set(frame["team"]) == {"mobile"}


def test_polars_read_database_with_a_bound_limit(adbc_conn: Any) -> None:
    frame = pl.read_database("SELECT issue_key FROM jira.issues WHERE project = ? ORDER BY issue_key LIMIT ?",
                             adbc_conn, execute_options={"parameters": ["WEB", 7]})
    expected = arrow_rows(adbc_conn, "SELECT issue_key FROM jira.issues WHERE project = 'WEB' "
                                     "ORDER BY issue_key LIMIT 7")
    assert frame.to_dicts() == expected
    assert frame.height == 7


@pytest.fixture()
def engine(demo: dict[str, Any], admin_token: str) -> Iterator[sa.Engine]:
    host_port = demo["flight_uri"].removeprefix("grpc://")
    engine = sa.create_engine(f"adbc+flightsql://omnisql:{admin_token}@{host_port}?tls=false")
    yield engine
    engine.dispose()


def test_polars_read_database_over_a_sqlalchemy_engine(engine: sa.Engine) -> None:
    frame = pl.read_database("SELECT repo, count(*) AS n FROM github.pull_requests GROUP BY repo ORDER BY repo",
                             engine)
    expected = Counter(p.repo for p in build_seed().pulls)
    assert dict(frame.iter_rows()) == dict(sorted(expected.items()))


def test_pandas_fetch_df(adbc_conn: Any) -> None:
    cursor = adbc_conn.cursor()
    cursor.execute("SELECT status, count(*) AS n FROM github.pull_requests GROUP BY status ORDER BY status")
    frame = cursor.fetch_df()
    cursor.close()
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == ["status", "n"]
    assert dict(zip(frame["status"], frame["n"], strict=True)) == pr_status_counts()


def test_pandas_read_sql_on_an_adbc_connection(adbc_conn: Any) -> None:
    sql = ("SELECT issue_key, summary, story_points FROM jira.issues WHERE project = 'MOB' AND status = 'To Do' "
           "ORDER BY issue_key")
    frame = pd.read_sql(sql, adbc_conn)
    seed = build_seed()
    expected = sorted((i for i in seed.issues if i.project == "MOB" and i.status == "To Do"), key=lambda i: i.key)
    assert frame["issue_key"].tolist() == [i.key for i in expected]
    assert frame["summary"].tolist() == [i.summary for i in expected]
    points = [None if pd.isna(v) else float(v) for v in frame["story_points"]]
    assert points == [i.story_points for i in expected]
