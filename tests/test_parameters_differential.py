"""Parameterized queries through ADBC (prepare → DoPut of the values → DoGet), compared with DuckDB running the
same text with the same values over the oracle's tables (``tests/oracle.py``).

Why: a bound value can go to the wrong slot (``$2`` before ``$1``, a repeated ``$1``, a ``?`` counted in the wrong
order past a subquery or a CTE), lose its type (an int64 that comes back int32 or decimal, a double that becomes
a decimal, a string that becomes a number), or be pushed to an API differently from the literal it stands for.
DuckDB is the reference for all of these, as long as both sides bind the *same types*: ADBC sends Python ints
as int64, floats as float64 and strings as utf8, so the oracle binds ``duckdb.Value(v, BIGINT | DOUBLE |
VARCHAR)`` (DuckDB's Python API alone would bind an int as INTEGER).

The cases are the ones people write (``login = ?``, ``IN (?, ?)``, ``story_points > ? LIMIT ?``, ``$2 AS b, $1 AS
a``) plus a seeded generator over templates with parameters in WHERE, IN lists, LIMIT/OFFSET, subqueries, CTEs,
joins and the SELECT list, each rendered both with ``?`` (values in text order, repeats sent twice) and with
``$n`` numbered in a shuffled order (repeats sent once). A LIMIT without ORDER BY is checked as SQL promises it:
the oracle's count, and only rows of the answer without the LIMIT.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from duckdb import sqltypes

from sandbox.seed import build_seed
from tests.answers import adbc_answer, assert_same_answer, assert_subset_answer, is_ordered
from tests.oracle import oracle_answer

_SLOT = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Case:
    """One execution: ``sql`` with ``params``; for a LIMIT without ORDER BY, ``superset`` is the same query
    without its LIMIT (with its own parameters), whose answer every returned row must come from."""

    sql: str
    params: tuple[Any, ...]
    superset: tuple[str, tuple[Any, ...]] | None = None


def duck_value(value: Any) -> duckdb.Value:
    """``value`` typed as ADBC sends it (Arrow int64 / float64 / utf8), for DuckDB to bind the same way."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError(f"no ADBC-equivalent binding for {value!r}")
    if isinstance(value, int):
        return duckdb.Value(value, sqltypes.BIGINT)
    if isinstance(value, float):
        return duckdb.Value(value, sqltypes.DOUBLE)
    return duckdb.Value(value, sqltypes.VARCHAR)


def render(template: str, values: dict[str, Any], style: str, rng: random.Random) -> tuple[str, tuple[Any, ...]]:
    """``{name}`` slots as ``?`` (one value per occurrence, in text order) or as ``$n`` (one number per name,
    numbers handed out in a shuffled order, so ``$2`` may come before ``$1`` and a repeated name reuses its
    number)."""
    names = _SLOT.findall(template)
    if style == "?":
        return _SLOT.sub("?", template), tuple(values[n] for n in names)
    distinct = list(dict.fromkeys(names))
    numbers = list(range(1, len(distinct) + 1))
    rng.shuffle(numbers)
    number = dict(zip(distinct, numbers, strict=True))
    by_number = sorted(distinct, key=number.__getitem__)
    return _SLOT.sub(lambda m: f"${number[m.group(1)]}", template), tuple(values[n] for n in by_number)


def case(body: str, tail: str, values: dict[str, Any], style: str, rng: random.Random) -> Case:
    sql, params = render(body + tail, values, style, rng)
    superset = None
    if "LIMIT" in tail and "ORDER BY" not in tail:
        superset = render(body, values, style, random.Random(rng.random()))
    return Case(sql, params, superset)


# Exactly the cases people write; numbered ones as written (not renumbered).
FIXED = [
    Case("SELECT login, name FROM github.users WHERE login = ?", ("ana-silva",)),
    Case("SELECT login, name, email FROM github.users WHERE login = ?", ("nobody-at-all",)),
    Case("SELECT login FROM github.users WHERE login IN (?, ?)", ("ana-silva", "ben-okafor")),
    Case("SELECT issue_key, story_points FROM jira.issues WHERE story_points > ? LIMIT ?", (3, 10),
         ("SELECT issue_key, story_points FROM jira.issues WHERE story_points > ?", (3,))),
    Case("SELECT issue_key, status FROM jira.issues WHERE status = ? LIMIT ?", ("Done", 2),
         ("SELECT issue_key, status FROM jira.issues WHERE status = ?", ("Done",))),
    Case("SELECT $2 AS b, $1 AS a", (7, "seven")),
    Case("SELECT $2 AS b, $1 AS a", (2.5, 7)),
    Case("SELECT issue_key FROM jira.issues WHERE status=$2 AND team=$1", ("web", "Done")),
    Case("SELECT ? AS x", (7,)),
    Case("SELECT ? AS x", (2.5,)),
    Case("SELECT ? AS x", ("it's",)),
    Case("SELECT ? AS i, ? AS f, ? AS s", (2**40, -0.125, "ÄÖ ☃")),
    Case("SELECT $1 AS a, $1 + 1 AS a1, $2 * 2 AS b2", (41, 1.5)),
    Case("SELECT issue_key FROM jira.issues WHERE project = ? ORDER BY issue_key LIMIT ? OFFSET ?", ("WEB", 5, 3)),
    Case("SELECT number FROM github.pull_requests WHERE repo = $1 ORDER BY number LIMIT $3 OFFSET $2",
         ("infra-tools", 2, 4)),
]


def _templates(data: Any) -> list[tuple[str, str, dict[str, list[Any]]]]:
    """``(body, tail, choices per slot)``; values come from the seed so most conditions match something."""
    logins = sorted(u.login for u in data.users)
    repos = sorted({p.repo for p in data.pulls})
    keys = sorted(i.key for i in data.issues)
    statuses = sorted({i.status for i in data.issues}) + ["in progress"]
    teams = ["mobile", "web", "platform", "nobody"]
    words = ["cache", "login", "Fix", "sync", "%"]
    points = [1, 2, 3, 5, 8, 13, 4.5]
    limits = [1, 2, 5, 10, 40]
    return [
        ("SELECT login, name, user_id FROM github.users WHERE login = {a}", "", {"a": logins + ["nobody-at-all"]}),
        ("SELECT login, email FROM github.users WHERE login IN ({a}, {b})", "", {"a": logins, "b": logins}),
        ("SELECT issue_key, story_points FROM jira.issues WHERE story_points > {p}", " LIMIT {n}",
         {"p": points, "n": limits}),
        ("SELECT issue_key, status FROM jira.issues WHERE status = {s}", " LIMIT {n}",
         {"s": statuses, "n": limits}),
        ("SELECT issue_key, status FROM jira.issues WHERE status = {s} AND team = {t}", "",
         {"s": statuses, "t": teams}),
        ("SELECT pr_id, repo, number, status FROM github.pull_requests WHERE repo = {r} AND number < {n}", "",
         {"r": repos, "n": [5, 40, 200]}),
        ("SELECT pr_id, status FROM github.pull_requests WHERE status IN ({s}, {u}) AND team_id = {t}", "",
         {"s": ["open", "closed", "merged"], "u": ["open", "merged", "nope"], "t": teams}),
        ("SELECT number, repo FROM github.pull_requests WHERE repo = {r}", " ORDER BY number LIMIT {n} OFFSET {o}",
         {"r": repos, "n": limits, "o": [0, 3, 270]}),
        ("SELECT issue_key, created_at FROM jira.issues WHERE team = {t}",
         " ORDER BY created_at DESC, issue_key LIMIT {n}", {"t": teams, "n": limits}),
        ("SELECT issue_key FROM jira.issues WHERE branch_name IN (SELECT branch FROM github.pull_requests "
         "WHERE repo = {r} AND status = {s}) AND coalesce(story_points, 0) >= {p}", "",
         {"r": repos, "s": ["open", "merged"], "p": [0, 3, 5.5]}),
        ("WITH t AS (SELECT issue_key, team, story_points FROM jira.issues WHERE team = {t}) "
         "SELECT count(*) AS n, sum(story_points) AS points FROM t WHERE team = {t} AND story_points >= {p}", "",
         {"t": teams, "p": points}),
        ("SELECT gh.number, gh.repo, ji.issue_key FROM github.pull_requests gh JOIN jira.issues ji "
         "ON gh.branch = ji.branch_name WHERE ji.status = {s} AND gh.repo = {r}", "", {"s": statuses, "r": repos}),
        ("SELECT gh.number, u.name FROM github.pull_requests gh JOIN github.users u ON u.login = gh.author "
         "WHERE gh.repo = {r} AND gh.number <= {n}", "", {"r": repos, "n": [3, 12]}),
        ("SELECT {x} AS x, issue_key FROM jira.issues WHERE project = {p}", " ORDER BY issue_key LIMIT {n}",
         {"x": [7, 2.5, "label", -1], "p": ["MOB", "WEB", "PLAT"], "n": limits}),
        ("SELECT issue_key, story_points * {k} AS scaled FROM jira.issues WHERE issue_key IN ({a}, {b})", "",
         {"k": [2, 0.5], "a": keys, "b": keys}),
        ("SELECT issue_key FROM jira.issues WHERE summary LIKE '%' || {w} || '%' AND project IN ({p}, 'WEB')", "",
         {"w": words, "p": ["MOB", "PLAT"]}),
        ("SELECT status, count(*) AS n FROM jira.issues GROUP BY status HAVING count(*) > {n}", "",
         {"n": [0, 150, 300]}),
        ("SELECT count(*) AS n FROM github.pull_requests WHERE created_at >= CAST({d} AS TIMESTAMPTZ) "
         "AND repo <> {r}", "", {"d": ["2026-03-01 00:00:00+00", "2026-07-15 12:00:00+00"], "r": repos}),
        ("SELECT {a} + {b} AS total, {b} AS b", "", {"a": [1, 2.5], "b": [40, 0.25]}),
    ]


def generated_cases(count: int, seed: int = 11) -> list[Case]:
    rng = random.Random(seed)
    templates = _templates(build_seed())
    cases = []
    for i in range(count):
        body, tail, choices = templates[i % len(templates)]
        values = {name: rng.choice(options) for name, options in choices.items()}
        cases.append(case(body, tail, values, "?" if (i // len(templates)) % 2 == 0 else "$", rng))
    return cases


CASES = [pytest.param(c, id=f"fixed-{i:02d}") for i, c in enumerate(FIXED)] + \
        [pytest.param(c, id=f"gen-{i:02d}") for i, c in enumerate(generated_cases(76))]


@pytest.mark.parametrize("c", CASES)
def test_parameters_answer_like_duckdb(c: Case, oracle: duckdb.DuckDBPyConnection, adbc_session: Any) -> None:
    got = adbc_answer(adbc_session, c.sql, c.params)
    expected = oracle_answer(oracle, c.sql, [duck_value(v) for v in c.params])
    context = f"{c.sql} with {c.params!r}"
    if c.superset is None:
        assert_same_answer(got, expected, is_ordered(c.sql), context=context)
    else:
        sql, params = c.superset
        assert_subset_answer(got, expected, oracle_answer(oracle, sql, [duck_value(v) for v in params]),
                             context=context)


def test_the_cases_cover_both_styles_and_every_place() -> None:
    """The generator must keep producing what the module docstring promises."""
    texts = [c.sql for c in FIXED + generated_cases(76)]
    assert any("?" in t for t in texts) and any(re.search(r"\$2.*\$1", t) for t in texts)
    assert any(re.search(r"(\$\d).*\1", t) for t in texts), "a repeated numbered parameter"
    for place in (r"LIMIT [?$]", r"OFFSET [?$]", r"IN \([?$]", r"WITH ", r"JOIN ", r"IN \(SELECT", r"^SELECT [?$]"):
        assert any(re.search(place, t) and re.search(r"[?$]", t) for t in texts), place
    assert any(pa.types.is_floating(pa.scalar(v).type) for c in FIXED for v in c.params)
