"""LIMIT and top-N pushdown, without any network: a LIMIT goes to an API only when provably nothing but the
conditions the API enforces exactly can drop, add or reorder rows of that SELECT. The answers themselves are
checked against the oracle in the differential suite (including generated wrappers of every query)."""

from __future__ import annotations

import pytest

from connectors.github.tables import PULL_REQUESTS, USERS
from connectors.jira.tables import ISSUES
from planner.catalog import Catalog
from planner.duck import Duck
from planner.parameters import to_parameters
from planner.plan import FetchPlan
from planner.planner import Planner


def plan(sql: str, params: tuple[object, ...] = ()) -> FetchPlan:
    return Planner(Catalog([PULL_REQUESTS, USERS, ISSUES]), Duck()).plan(sql, to_parameters(params))


def pushed(sql: str, params: tuple[object, ...] = ()) -> list[tuple[int | None, str | None]]:
    return [(s.limit, s.order_by) for s in plan(sql, params).steps]


NOT_PUSHED = [
    # a condition of an outer query over a derived table that stays local (LIKE '%x%' cannot go to GitHub)
    "SELECT * FROM (SELECT number, title FROM github.pull_requests) s WHERE s.title LIKE '%cache%' LIMIT 3",
    "SELECT * FROM (SELECT number, title FROM github.pull_requests) s WHERE lower(s.title) = 'x' LIMIT 3",
    # conditions with subqueries
    "SELECT number FROM github.pull_requests WHERE branch IN (SELECT branch_name FROM jira.issues) LIMIT 3",
    "SELECT number FROM github.pull_requests gh WHERE EXISTS (SELECT 1 FROM jira.issues ji "
    "WHERE ji.branch_name = gh.branch) LIMIT 3",
    "SELECT number FROM github.pull_requests WHERE (SELECT count(*) FROM jira.issues) > 3 LIMIT 3",
    # volatile functions and conditions on no column at all
    "SELECT number FROM github.pull_requests WHERE random() < 0.5 LIMIT 3",
    "SELECT number FROM github.pull_requests WHERE 1 = 0 LIMIT 3",
    # inexact pushdown: GitHub's state=closed also lists closed-but-not-merged pull requests
    "SELECT number FROM github.pull_requests WHERE status = 'merged' LIMIT 3",
    # set-returning functions, aggregates, DISTINCT, windows in the projection
    "SELECT unnest(labels) AS label FROM github.pull_requests LIMIT 3",
    "SELECT DISTINCT repo FROM github.pull_requests LIMIT 3",
    "SELECT count(*) FROM github.pull_requests LIMIT 3",
    "SELECT number, row_number() OVER () FROM github.pull_requests LIMIT 3",
    # ORDER BY that the API cannot sort by, or a projection alias that shadows a sortable column
    "SELECT number FROM github.pull_requests ORDER BY number LIMIT 3",
    "SELECT number AS created_at FROM github.pull_requests ORDER BY created_at LIMIT 3",
    "SELECT number AS updated_at, created_at FROM github.pull_requests ORDER BY updated_at DESC LIMIT 3",
    "SELECT number FROM github.pull_requests ORDER BY created_at + INTERVAL 1 DAY LIMIT 3",
    # the LIMIT belongs to a set operation or a join, not to one table's SELECT
    "SELECT number FROM github.pull_requests UNION ALL SELECT story_points FROM jira.issues LIMIT 3",
    "SELECT gh.number FROM github.pull_requests gh JOIN jira.issues ji ON gh.branch = ji.branch_name LIMIT 3",
    # the derived table itself filters after its own limit: the inner LIMIT may go down, the outer may not
    "SELECT * FROM (SELECT number, title FROM github.pull_requests WHERE title LIKE '%x%') s LIMIT 3",
]


@pytest.mark.parametrize("sql", NOT_PUSHED)
def test_limit_stays_local_when_something_else_can_drop_rows(sql: str) -> None:
    assert all(limit is None for limit, _ in pushed(sql)), plan(sql).describe()


def test_limit_goes_down_through_a_plain_wrapper() -> None:
    """BI tools and JDBC previews wrap queries; a wrapper that only projects keeps the pushdown."""
    assert pushed("SELECT * FROM (SELECT number, title FROM github.pull_requests) s LIMIT 3") == [(3, None)]
    assert pushed("SELECT * FROM (SELECT * FROM jira.issues WHERE story_points >= 5) AS preview LIMIT 100") \
        == [(100, None)]


def test_exact_conditions_of_the_wrapper_reach_the_scan() -> None:
    p = plan("SELECT * FROM (SELECT number, repo FROM github.pull_requests) s WHERE s.repo = 'web-frontend' LIMIT 4")
    assert [str(c) for c in p.steps[0].pushed] == ["repo = 'web-frontend' [exact]"]
    assert p.steps[0].limit == 4


def test_top_n_follows_aliases_and_positions() -> None:
    assert pushed("SELECT number, created_at AS c FROM github.pull_requests ORDER BY c DESC LIMIT 5") \
        == [(5, "created_at DESC")]
    assert pushed("SELECT number, created_at FROM github.pull_requests ORDER BY 2 LIMIT 5 OFFSET 2") \
        == [(7, "created_at ASC")]
    assert pushed("SELECT * FROM (SELECT number, updated_at FROM github.pull_requests) s "
                  "ORDER BY s.updated_at DESC LIMIT 5") == [(5, "updated_at DESC")]


def test_an_inner_limit_goes_down_on_its_own() -> None:
    """A LIMIT inside a derived table bounds that SELECT whatever the outer query does with its rows."""
    assert pushed("SELECT count(*) FROM (SELECT number FROM github.pull_requests LIMIT 5) s") == [(5, None)]


def test_limit_parameters_are_values() -> None:
    assert pushed("SELECT issue_key FROM jira.issues WHERE story_points > ? LIMIT ?", (3, 10)) == [(10, None)]
    assert pushed("SELECT issue_key FROM jira.issues WHERE story_points > $2 LIMIT $1", (10, 3)) == [(10, None)]
