"""Result column names of unaliased expressions follow the query as written (``planner/names.py``)."""

from __future__ import annotations

import sqlglot

from connectors.github.tables import PULL_REQUESTS
from connectors.jira.tables import ISSUES
from planner.catalog import Catalog
from planner.names import WrittenNames, unnamed_outputs


def test_names_are_duckdbs_for_the_text_as_written() -> None:
    names = WrittenNames(Catalog([PULL_REQUESTS, ISSUES]))
    assert names.names("SELECT repo, string_agg(status, ','), date_trunc('month', created_at) FROM "
                       "github.pull_requests GROUP BY ALL", [], None) == \
        ["repo", "string_agg(status, ',')", "date_trunc('month', created_at)"]
    assert names.names("SELECT count(*) FROM pull_requests", [], "github") == ["count_star()"]
    assert names.names("SELECT nothing FROM github.pull_requests", [], None) is None  # does not bind: no names
    assert names.names("SELECT * FROM read_csv('/etc/hostname')", [], None) is None  # binds, never reads


def test_only_unaliased_expressions_of_the_naming_select_are_renamed() -> None:
    def positions(sql: str) -> list[int] | None:
        found = unnamed_outputs(sqlglot.parse_one(sql, dialect="duckdb"))
        return None if found is None else found[1]

    assert positions("SELECT a, b AS c, 1, count(*), upper(a) FROM t") == [3, 4]
    assert positions("SELECT upper(a) FROM t UNION ALL SELECT b FROM u") == [0]
    assert positions("SELECT * FROM (SELECT list(a) FROM t) s LIMIT 3") == [0]
    assert positions("SELECT *, upper(a) FROM t") is None  # a star is any number of columns
    assert positions("SELECT * EXCLUDE (x) FROM (SELECT list(a), 1 AS x FROM t) s") is None
