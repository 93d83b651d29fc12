"""Queries for the differential suite: hand-written ones that exercise SQL features, and generated ones
(seeded, so the same on every run) that hammer pushdown: every operator, ORs, NOTs, functions, hostile values,
joins with conditions on either side. Values come from the seed so most predicates match something."""

from __future__ import annotations

import random
from datetime import timedelta

from sandbox.seed import build_seed

HOSTILE = ["it's", 'say "hi"', "back\\slash", "In Progress\" OR status = \"Done", "ÄÖ ☃ 日本", "%", "_x",
           "a AND b", "(EMPTY)", "x\ny", "'; DROP TABLE x; --", "feature/"]

HAND_WRITTEN = [
    # typed time literals go to the APIs (JQL widened for the API user's unknown time zone; re-checked here)
    "SELECT issue_key FROM jira.issues WHERE updated_at >= TIMESTAMP '2026-06-07 23:30:00'",
    "SELECT issue_key FROM jira.issues WHERE created_at < TIMESTAMPTZ '2026-06-15 08:00:00+05:30' "
    "AND created_at >= DATE '2026-05-10'",
    "SELECT issue_key FROM jira.issues WHERE updated_at BETWEEN TIMESTAMP '2026-05-12' "
    "AND TIMESTAMP '2026-05-31 09:58'",
    "SELECT number, repo FROM github.pull_requests WHERE created_at >= TIMESTAMP '2026-05-15 12:00' "
    "AND merged_at < TIMESTAMPTZ '2026-07-01 00:00:00-08'",
    # CTEs, subqueries, set operations
    "WITH merged AS (SELECT branch, repo FROM github.pull_requests WHERE status = 'merged') "
    "SELECT ji.issue_key, m.repo FROM merged m JOIN jira.issues ji ON m.branch = ji.branch_name",
    "SELECT issue_key FROM jira.issues WHERE branch_name IN (SELECT branch FROM github.pull_requests "
    "WHERE repo = 'mobile-app' AND status = 'open')",
    "SELECT number, additions FROM github.pull_requests gh WHERE gh.branch IN "
    "(SELECT branch_name FROM jira.issues WHERE status = 'Done') AND gh.repo = 'web-frontend'",
    "SELECT issue_key FROM jira.issues WHERE branch_name NOT IN "
    "(SELECT branch FROM github.pull_requests WHERE repo = 'mobile-app' AND branch IS NOT NULL)",
    "SELECT gh.number FROM github.pull_requests gh WHERE gh.branch IN "
    "(SELECT ji.branch_name FROM jira.issues ji WHERE ji.team = gh.team_id AND ji.story_points >= 8)",
    "SELECT issue_key FROM jira.issues WHERE branch_name IN (SELECT branch FROM github.pull_requests "
    "WHERE repo = 'infra-tools' AND status = 'open') OR project = 'WEB'",
    "SELECT issue_key FROM jira.issues ji WHERE EXISTS (SELECT 1 FROM github.pull_requests gh "
    "WHERE gh.branch = ji.branch_name AND gh.status = 'merged') AND ji.project = 'WEB'",
    "SELECT issue_key FROM jira.issues ji WHERE NOT EXISTS (SELECT 1 FROM github.pull_requests gh "
    "WHERE gh.branch = ji.branch_name) AND ji.status = 'Done'",
    "SELECT number, repo, (SELECT count(*) FROM jira.issues ji WHERE ji.branch_name = gh.branch) AS tickets "
    "FROM github.pull_requests gh WHERE repo = 'infra-tools'",
    "SELECT branch FROM github.pull_requests WHERE repo = 'web-frontend' UNION "
    "SELECT branch_name FROM jira.issues WHERE project = 'WEB'",
    "SELECT branch FROM github.pull_requests UNION ALL SELECT branch_name FROM jira.issues WHERE status = 'To Do'",
    "SELECT branch_name FROM jira.issues WHERE project = 'MOB' EXCEPT SELECT branch FROM github.pull_requests",
    "SELECT branch_name FROM jira.issues INTERSECT SELECT branch FROM github.pull_requests WHERE status = 'open'",
    # grouping, windows, ordering
    "SELECT status, count(*) AS n, sum(story_points) AS points FROM jira.issues GROUP BY status HAVING count(*) > 50",
    "SELECT repo, status, count(*) FROM github.pull_requests GROUP BY ALL ORDER BY 1, 2",
    "SELECT issue_key, story_points, rank() OVER (PARTITION BY project ORDER BY story_points DESC NULLS LAST, "
    "issue_key) AS r FROM jira.issues WHERE status = 'In Progress'",
    "SELECT repo, number, row_number() OVER (PARTITION BY repo ORDER BY created_at, number) AS rn "
    "FROM github.pull_requests QUALIFY rn <= 3",
    "SELECT number, repo FROM github.pull_requests ORDER BY created_at DESC, pr_id LIMIT 7 OFFSET 5",
    "SELECT number FROM github.pull_requests WHERE repo = 'platform-api' ORDER BY number LIMIT 5",
    # top-N pushdown (a tie-breaker keeps the expected answer unique)
    "SELECT repo, number, created_at FROM github.pull_requests ORDER BY created_at DESC, pr_id LIMIT 5",
    "SELECT number, additions FROM github.pull_requests WHERE repo = 'web-frontend' ORDER BY created_at, pr_id "
    "LIMIT 3",
    "SELECT repo, number FROM github.pull_requests ORDER BY updated_at DESC, pr_id LIMIT 10 OFFSET 3",
    "SELECT issue_key, created_at FROM jira.issues ORDER BY created_at DESC, issue_key LIMIT 7",
    "SELECT issue_key FROM jira.issues WHERE story_points >= 5 ORDER BY updated_at, issue_key LIMIT 150",
    "SELECT issue_key FROM jira.issues WHERE team = 'web' ORDER BY created_at DESC, issue_key LIMIT 4 OFFSET 2",
    "SELECT DISTINCT status FROM jira.issues",
    "SELECT DISTINCT ON (project) project, issue_key FROM jira.issues ORDER BY project, issue_key",
    "SELECT count(DISTINCT assignee) FROM jira.issues WHERE team = 'web'",
    # expressions
    "SELECT issue_key, CASE WHEN story_points >= 8 THEN 'big' WHEN story_points IS NULL THEN 'unsized' "
    "ELSE 'small' END AS size FROM jira.issues WHERE project = 'PLAT'",
    "SELECT number, merged_at - created_at AS lead_time FROM github.pull_requests "
    "WHERE merged_at IS NOT NULL AND merged_at - created_at > INTERVAL 3 DAY",
    "SELECT issue_key FROM jira.issues WHERE created_at >= TIMESTAMP '2026-02-01' + INTERVAL 10 DAY "
    "AND created_at < DATE '2026-04-01'",
    "SELECT date_trunc('month', created_at) AS month, count(*) FROM jira.issues GROUP BY 1",
    "SELECT issue_key FROM jira.issues WHERE lower(status) = 'in progress' AND upper(project) = 'MOB'",
    "SELECT issue_key FROM jira.issues WHERE status ILIKE 'in%'",
    "SELECT issue_key FROM jira.issues WHERE issue_key LIKE 'WEB-1%'",
    "SELECT number, repo FROM github.pull_requests WHERE status <> 'open' AND repo = 'mobile-app'",
    "SELECT number, repo FROM github.pull_requests WHERE status <> 'merged' AND status <> 'open'",
    "SELECT issue_key FROM jira.issues WHERE issue_key LIKE 'PL%' OR issue_key LIKE 'MO%'",
    "SELECT issue_key FROM jira.issues WHERE issue_key LIKE 'web-%' OR issue_key LIKE 'WEB-x%'",
    "SELECT issue_key FROM jira.issues WHERE CAST(story_points AS INTEGER) = 5",
    "SELECT number FROM github.pull_requests WHERE list_contains(labels, 'bug') AND status <> 'closed'",
    "SELECT issue_key FROM jira.issues WHERE coalesce(branch_name, 'none') = 'none'",
    "SELECT issue_key FROM jira.issues WHERE story_points BETWEEN 3 AND 8 AND NOT (project = 'WEB')",
    "SELECT issue_key FROM jira.issues WHERE story_points = 2.5 OR story_points = 13",
    "SELECT number FROM github.pull_requests WHERE number = 3.5",
    "SELECT issue_key FROM jira.issues WHERE status = 'in progress'",  # case differs: SQL says no rows
    "SELECT issue_key FROM jira.issues WHERE status = 'In Progress ' OR status = ' Done'",
    # joins of every kind
    "SELECT gh.number, ji.issue_key FROM github.pull_requests gh LEFT JOIN jira.issues ji "
    "ON gh.branch = ji.branch_name AND ji.status = 'Done' WHERE gh.repo = 'mobile-app'",
    "SELECT gh.number, ji.issue_key FROM jira.issues ji RIGHT JOIN github.pull_requests gh "
    "ON gh.branch = ji.branch_name WHERE gh.status = 'open'",
    "SELECT gh.number, ji.issue_key FROM github.pull_requests gh FULL OUTER JOIN jira.issues ji "
    "ON gh.branch = ji.branch_name AND ji.project = 'PLAT'",
    "SELECT gh.number, ji.issue_key FROM github.pull_requests gh LEFT JOIN jira.issues ji "
    "ON gh.branch = ji.branch_name WHERE ji.issue_key IS NULL",
    "SELECT gh.number, ji.issue_key FROM github.pull_requests gh, jira.issues ji "
    "WHERE gh.branch = ji.branch_name AND ji.issue_key IN ('WEB-12', 'MOB-3', 'PLAT-40', 'WEB-77')",
    "SELECT gh.number, ji.issue_key FROM github.pull_requests gh JOIN jira.issues ji "
    "ON gh.branch = ji.branch_name OR gh.title = ji.summary WHERE ji.project = 'MOB'",
    "SELECT a.number, b.number FROM github.pull_requests a JOIN github.pull_requests b "
    "ON a.branch = b.branch AND a.pr_id < b.pr_id",
    "SELECT o.number, m.number FROM github.pull_requests o JOIN github.pull_requests m ON o.branch = m.branch "
    "WHERE o.status = 'open' AND m.status = 'merged'",
    "SELECT ji.issue_key, gh.number, g2.number FROM jira.issues ji JOIN github.pull_requests gh "
    "ON gh.branch = ji.branch_name JOIN github.pull_requests g2 ON g2.branch = gh.branch AND g2.pr_id <> gh.pr_id "
    "WHERE ji.status = 'In Review'",
    "SELECT gh.number, ji.issue_key FROM github.pull_requests gh JOIN jira.issues ji "
    "ON ji.branch_name = gh.branch AND ji.team = gh.team_id WHERE gh.base_branch = 'develop'",
    "SELECT gh.repo, count(*) FROM github.pull_requests gh JOIN jira.issues ji ON gh.branch = ji.branch_name "
    "WHERE ji.story_points >= 8 GROUP BY gh.repo",
    "SELECT gh.number, gh.additions, gh.author_email, ji.issue_key FROM github.pull_requests gh "
    "JOIN jira.issues ji ON gh.branch = ji.branch_name WHERE ji.issue_key IN ('WEB-12', 'MOB-30', 'PLAT-7')",
    "SELECT ji.assignee, SUM(ji.story_points) AS total_points, SUM(gh.additions + gh.deletions) AS total_loc "
    "FROM github.pull_requests gh JOIN jira.issues ji ON gh.branch = ji.branch_name "
    "WHERE ji.status = 'Done' GROUP BY ji.assignee",
    "SELECT * FROM (SELECT gh.branch AS b FROM github.pull_requests gh WHERE gh.repo = 'web-frontend') s "
    "JOIN jira.issues ji ON s.b = ji.branch_name",
    # local-only conditions applied (as Arrow) before per-row lookups
    "SELECT number, additions FROM github.pull_requests WHERE title LIKE '%cache%' OR author = 'ana-silva'",
    "SELECT number, author_email FROM github.pull_requests WHERE NOT (repo = 'web-frontend') AND number < 10",
    "SELECT number, deletions FROM github.pull_requests WHERE lower(title) LIKE '%cache%' AND number BETWEEN 5 AND 9",
    "SELECT number, additions FROM github.pull_requests WHERE NOT (title LIKE 'Fix%' OR merged_at IS NULL) "
    "AND repo = 'infra-tools'",
    "SELECT ji.issue_key, gh.additions FROM jira.issues ji LEFT JOIN github.pull_requests gh "
    "ON gh.branch = ji.branch_name WHERE (gh.title LIKE 'Fix%' OR gh.title IS NULL) AND ji.project = 'MOB'",
    # github.users can only be fetched by login: from a filter or from a join
    "SELECT gh.number, u.name, u.email FROM github.pull_requests gh JOIN github.users u ON u.login = gh.author "
    "WHERE gh.repo = 'infra-tools'",
    "SELECT login, name, user_id FROM github.users WHERE login IN ('ana-silva', 'nobody-at-all', 'ben-okafor')",
    "SELECT * FROM github.users WHERE login = 'it''s' OR login = '../orgs/acme-corp'",
    "SELECT u.name, count(*) AS prs FROM github.pull_requests gh LEFT JOIN github.users u ON u.login = gh.author "
    "GROUP BY 1",
    "SELECT ji.issue_key, u.email FROM jira.issues ji JOIN github.pull_requests gh ON gh.branch = ji.branch_name "
    "JOIN github.users u ON u.login = gh.author WHERE ji.status = 'In Review' AND u.email IS NOT NULL",
    # row generators (range, generate_series) beside the apps' tables: spines, gaps, joins on generated keys
    "SELECT n.range AS number, count(gh.pr_id) AS prs FROM range(1, 12) n LEFT JOIN github.pull_requests gh "
    "ON gh.number = n.range AND gh.repo = 'web-frontend' GROUP BY 1",
    "SELECT day::DATE AS day, count(ji.issue_key) AS created FROM generate_series(TIMESTAMP '2026-05-01', "
    "TIMESTAMP '2026-06-30', INTERVAL 1 DAY) AS s(day) LEFT JOIN jira.issues ji "
    "ON date_trunc('day', ji.created_at) = s.day GROUP BY 1",
    "SELECT gh.repo, gh.number, k.range AS k FROM github.pull_requests gh, range(2) k "
    "WHERE gh.repo = 'mobile-app' AND gh.number <= 3",
    "SELECT * FROM range(5) WHERE range NOT IN (SELECT number FROM github.pull_requests WHERE repo = 'infra-tools')",
    "SELECT issue_key FROM jira.issues WHERE story_points IN (SELECT * FROM generate_series(3, 5))",
    "SELECT * FROM range(4) JOIN jira.issues ji ON ji.story_points = range WHERE ji.project = 'MOB' ORDER BY 1, 2",
    "SELECT count(*) AS n FROM range(3), range(2), (SELECT issue_key FROM jira.issues WHERE project = 'WEB') t",
    # star modifiers: EXCLUDE must not fetch what it drops (nor fail on it), REPLACE/RENAME are DuckDB's to apply
    "SELECT * EXCLUDE (summary, labels) FROM jira.issues WHERE project = 'WEB' AND story_points >= 5",
    "SELECT ji.* REPLACE (upper(ji.status) AS status) FROM jira.issues ji WHERE ji.project = 'MOB'",
    "SELECT * REPLACE (story_points * 2 AS story_points) FROM jira.issues WHERE team = 'web'",
    "SELECT * EXCLUDE (additions, deletions, author_email) RENAME (title AS pr_title) FROM github.pull_requests "
    "WHERE repo = 'infra-tools'",
    "SELECT gh.* EXCLUDE (additions, deletions, author_email, title), ji.issue_key FROM github.pull_requests gh "
    "JOIN jira.issues ji ON gh.branch = ji.branch_name WHERE ji.status = 'Done'",
    # modifiers sqlglot keeps as flags on a node (NOT LIKE is Like(negate)): never pushed or pre-filtered as the
    # plain condition (issue_key NOT LIKE 'MOB%' went to JQL as the MOB project and answered nothing)
    "SELECT issue_key FROM jira.issues WHERE issue_key NOT LIKE 'MOB%' AND issue_key !~~* 'web%'",
    "SELECT issue_key FROM jira.issues WHERE issue_key NOT LIKE 'PLAT%' ORDER BY issue_key LIMIT 5",
    "SELECT number, additions FROM github.pull_requests WHERE title NOT LIKE 'Remove%' AND repo = 'mobile-app'",
    "SELECT number, repo FROM github.pull_requests WHERE status NOT LIKE 'me%' AND repo NOT ILIKE 'MOBILE%'",
    "SELECT gh.number, ji.issue_key FROM github.pull_requests gh JOIN jira.issues ji ON gh.branch = ji.branch_name "
    "WHERE ji.issue_key NOT LIKE 'MOB%' AND gh.title NOT LIKE 'Fix%'",
    # a DATE literal with a time part is that day's midnight (the time was pushed: the API dropped rows before it)
    "SELECT count(*) AS n FROM jira.issues WHERE created_at > DATE '2026-06-01 05:00:00'",
    "SELECT issue_key FROM jira.issues WHERE updated_at >= CAST('2026-06-07 23:30' AS DATE) "
    "ORDER BY updated_at, issue_key LIMIT 3",
    "SELECT number, repo FROM github.pull_requests WHERE created_at BETWEEN DATE '2026-05-01 12:00' "
    "AND DATE '2026-05-03 23:00'",
    # GitHub logins are case-insensitive: one search per login, not one per spelling (rows came back twice)
    "SELECT number, title FROM github.pull_requests WHERE author IN ('sam-ito', 'SAM-ITO', 'ana-silva')",
    "SELECT gh.number, gh.author FROM github.pull_requests gh JOIN (VALUES ('sam-ito'), ('Sam-Ito')) v(a) "
    "ON gh.author = v.a",
    # LIMIT n PERCENT is no row count (it went down as LIMIT n: 10 PERCENT answered 10 rows of 1,000, 1% none)
    "SELECT count(*) AS n FROM (SELECT issue_key FROM jira.issues WHERE project = 'WEB' LIMIT 10 PERCENT) s",
    "SELECT number FROM github.pull_requests ORDER BY created_at DESC, pr_id LIMIT 1%",
    # column aliases in FROM rename the table's first columns by position (they renamed the view's, which holds
    # only the fetched columns in another order: x(a, b) made a the status)
    "SELECT * FROM jira.issues AS x(a, b) WHERE x.project = 'WEB' AND a LIKE 'WEB-1%'",
    "SELECT a, c FROM jira.issues AS x(a, b, c) WHERE c = 'Done' ORDER BY a LIMIT 3",
    "SELECT n, r FROM github.pull_requests g(i, n, r) WHERE r = 'infra-tools' AND n < 4",
    "SELECT x.a, y.a FROM jira.issues x(a) JOIN jira.issues y(a, b) ON x.a = y.a WHERE y.b LIKE 'Harden%'",
    # an unaliased expression is named as DuckDB names the query as written, not after sqlglot's spelling of it
    # (string_agg came back as listagg(...), date_trunc('month', ...) as date_trunc('MONTH', ...))
    "SELECT repo, string_agg(DISTINCT status, ',' ORDER BY status), list(number ORDER BY number)[1:3] "
    "FROM github.pull_requests WHERE status = 'open' GROUP BY repo",
    "SELECT date_trunc('month', created_at), count(*) FROM jira.issues WHERE project = 'WEB' GROUP BY 1",
    "SELECT issue_key, if(story_points > 5, 'big', 'small'), datediff('day', created_at, updated_at), "
    "instr(issue_key, '-') FROM jira.issues WHERE project = 'MOB' AND story_points = 13",
    "SELECT project, group_concat(status) FROM jira.issues WHERE issue_key IN ('MOB-1', 'WEB-1') GROUP BY 1 "
    "UNION ALL SELECT 'x', string_agg(branch, ',') FROM github.pull_requests WHERE repo = 'infra-tools' "
    "AND number = 3",
    # TABLESAMPLE stays on the view (it was dropped: all 1,000 rows were counted)
    "SELECT count(*) AS n FROM jira.issues USING SAMPLE 10 ROWS",
]

# What a table reference carries besides its name stays on the view: PIVOT/UNPIVOT were dropped (the rows came
# back unpivoted). A PIVOT reads every column (its implicit GROUP BY); its conditions and LIMIT are on the
# pivot's output, so none is pushed. Not wrapped: the qualifier cannot name a pivot's output columns.
# A derived table that only filters one table, as BI tools and JDBC previews wrap a query: only the columns the
# enclosing query reads through it are fetched (planner._mark_star_wrappers), and the answer must not change —
# including where the full column list matters (DISTINCT, NATURAL/USING joins, whole-row references, ordinals).
STAR_WRAPPED = [
    "SELECT count(*) AS n FROM (SELECT * FROM github.pull_requests WHERE repo = 'web-frontend') s",
    "SELECT count(*) AS n FROM (SELECT * FROM github.pull_requests) s WHERE s.status = 'open'",
    "SELECT s.repo, count(*) AS n, max(s.additions) AS most FROM (SELECT * FROM github.pull_requests "
    "WHERE status = 'merged') s GROUP BY s.repo ORDER BY s.repo",
    "SELECT s.number, s.title FROM (SELECT * FROM github.pull_requests WHERE additions > 300) s "
    "ORDER BY s.number, s.title",
    "SELECT s.number, ji.issue_key FROM (SELECT * FROM github.pull_requests WHERE repo = 'mobile-app') s "
    "JOIN jira.issues ji ON s.branch = ji.branch_name ORDER BY s.number, ji.issue_key",
    "SELECT count(*) AS n FROM (SELECT * FROM jira.issues WHERE story_points > 3) a "
    "JOIN (SELECT * FROM github.pull_requests) b ON a.branch_name = b.branch",
    "SELECT s.title FROM (SELECT * FROM github.pull_requests) s WHERE s.number IN "
    "(SELECT p.number FROM github.pull_requests p WHERE p.repo = s.repo AND p.additions > 400) ORDER BY s.title",
    "SELECT count(*) AS n FROM (SELECT * FROM (SELECT * FROM jira.issues WHERE status <> 'Done') i "
    "WHERE i.team = 'web') j",
    "SELECT * EXCLUDE (labels, diff_link) FROM (SELECT * FROM github.pull_requests WHERE repo = 'infra-tools') s "
    "ORDER BY number, repo",
    "SELECT count(*) AS n FROM (SELECT * FROM github.pull_requests ORDER BY additions DESC, pr_id LIMIT 7) s",
    "SELECT count(*) AS n FROM (SELECT DISTINCT * FROM jira.issues) s",
    "SELECT count(*) AS n FROM (SELECT * FROM github.pull_requests WHERE repo = 'web-frontend') s "
    "NATURAL JOIN (SELECT * FROM github.pull_requests WHERE status = 'open') t",
    "SELECT count(*) AS n FROM (SELECT * FROM jira.issues) a JOIN (SELECT * FROM jira.issues) b USING (issue_key)",
    "SELECT count(DISTINCT s) AS n FROM (SELECT * FROM jira.issues WHERE project = 'WEB') s",
    "SELECT login, (SELECT count(*) FROM (SELECT * FROM github.pull_requests) p WHERE p.author = u.login) AS prs "
    "FROM github.users u WHERE u.login IN ('sam-ito', 'ana-silva') ORDER BY login",
    "SELECT * REPLACE (upper(title) AS title) FROM (SELECT * FROM github.pull_requests WHERE repo = 'infra-tools') s "
    "ORDER BY number, repo",
]

PIVOTED = [
    "SELECT * FROM jira.issues PIVOT (count(*) FOR status IN ('Done', 'To Do') GROUP BY project)",
    "SELECT * FROM jira.issues PIVOT (sum(story_points) FOR status IN ('Done', 'To Do') GROUP BY project, team) p "
    "WHERE p.team = 'web'",
    "SELECT * FROM jira.issues PIVOT (count(*) FOR status IN ('Done', 'To Do') GROUP BY project) "
    "ORDER BY project LIMIT 1",
    "SELECT * FROM jira.issues UNPIVOT (v FOR k IN (status, project)) WHERE issue_key = 'MOB-1'",
]

# ORDER BY a name a star's RENAME/REPLACE gives to another column: DuckDB sorts by the output column, the
# qualifier bound the name to the table's column, and the top-N went to the API sorted by the wrong one.
STAR_RENAMED_ORDER = [
    "SELECT * RENAME (updated_at AS created_at, created_at AS updated_at) FROM jira.issues "
    "ORDER BY created_at DESC, 1 LIMIT 3",
    "SELECT * EXCLUDE (created_at) RENAME (updated_at AS created_at) FROM jira.issues ORDER BY created_at DESC, 1 "
    "LIMIT 3",
    "SELECT * REPLACE (updated_at AS created_at) FROM jira.issues WHERE project = 'WEB' ORDER BY created_at, 1 "
    "LIMIT 4",
    "SELECT * EXCLUDE (additions, deletions, author_email) RENAME (created_at AS updated_at, updated_at AS "
    "created_at) FROM github.pull_requests ORDER BY updated_at DESC, pr_id LIMIT 3",
    "SELECT * FROM (SELECT * RENAME (updated_at AS created_at, created_at AS updated_at) FROM jira.issues) s "
    "ORDER BY created_at, issue_key LIMIT 3",
]

_PR_STRINGS = {"repo": lambda p: p.repo, "status": lambda p: "merged" if p.merged_at else p.state,
               "branch": lambda p: p.head, "base_branch": lambda p: p.base, "author": lambda p: p.author,
               "title": lambda p: p.title}
_ISSUE_STRINGS = {"issue_key": lambda i: i.key, "status": lambda i: i.status, "project": lambda i: i.project,
                  "branch_name": lambda i: i.branch, "summary": lambda i: i.summary}
_TEAMS = ["mobile", "web", "platform", "nobody"]


def _lit(value: object) -> str:
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return repr(value)


class _Generator:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        data = build_seed()
        self.values = {("gh", c): sorted({str(f(p)) for p in data.pulls}) for c, f in _PR_STRINGS.items()}
        self.values.update({("ji", c): sorted({f(i) for i in data.issues if f(i)})
                            for c, f in _ISSUE_STRINGS.items()})
        self.values[("gh", "team_id")] = self.values[("ji", "team")] = _TEAMS
        self.dates = [min(i.created for i in data.issues) + timedelta(days=d, hours=h)
                      for d in range(0, 200, 9) for h in (0, 7)]

    def string(self, alias: str, column: str) -> str:
        if self.rng.random() < 0.12:
            return _lit(self.rng.choice(HOSTILE))
        return _lit(self.rng.choice(self.values[(alias, column)]))

    def predicate(self, alias: str) -> str:
        r = self.rng
        strings = list(_PR_STRINGS if alias == "gh" else _ISSUE_STRINGS) + ["team_id" if alias == "gh" else "team"]
        kind = r.random()
        if kind < 0.45:
            col = r.choice(strings)
            op = r.choice(["=", "=", "<>", "IN", "IN", "LIKE", "IS NULL", "IS NOT NULL", "OR", "NOT", "lower"])
            c = f"{alias}.{col}"
            if op == "IN":
                return f"{c} IN ({', '.join(self.string(alias, col) for _ in range(r.randint(1, 5)))})"
            if op == "LIKE":
                return f"{c} LIKE {_lit(r.choice(self.values[(alias, col)])[:r.randint(1, 6)] + '%')}"
            if op in ("IS NULL", "IS NOT NULL"):
                return f"{c} {op}"
            if op == "OR":
                return f"({c} = {self.string(alias, col)} OR {c} = {self.string(alias, col)})"
            if op == "NOT":
                return f"NOT ({c} = {self.string(alias, col)})"
            if op == "lower":
                return f"lower({c}) = lower({self.string(alias, col)})"
            return f"{c} {op} {self.string(alias, col)}"
        if kind < 0.6 and alias == "ji":
            op = r.choice(["=", "<", "<=", ">", ">=", "<>", "BETWEEN", "IS NULL"])
            points = r.choice([1, 2, 3, 5, 8, 13, 4.5])
            if op == "BETWEEN":
                return f"ji.story_points BETWEEN {points} AND {points + r.choice([0, 3, 8])}"
            return "ji.story_points IS NULL" if op == "IS NULL" else f"ji.story_points {op} {points}"
        if kind < 0.6:
            return f"gh.number {r.choice(['=', '<', '>=', '<>'])} {r.randint(1, 95)}"
        if kind < 0.8:
            col = r.choice(["created_at", "updated_at"] + (["merged_at"] if alias == "gh" else []))
            day = r.choice(self.dates)
            op = r.choice([">=", "<", ">", "<=", "BETWEEN"])
            if op == "BETWEEN":
                return (f"{alias}.{col} BETWEEN TIMESTAMP '{day:%Y-%m-%d %H:%M:%S}' AND "
                        f"TIMESTAMP '{day + timedelta(days=r.randint(1, 40)):%Y-%m-%d %H:%M:%S}'")
            return f"{alias}.{col} {op} TIMESTAMP '{day:%Y-%m-%d %H:%M:%S}'"
        # an OR across columns (never pushed) or a multi-column condition
        a, b = r.sample(strings, 2)
        return f"({alias}.{a} = {self.string(alias, a)} OR {alias}.{b} = {self.string(alias, b)})"

    def where(self, aliases: list[str], n: int) -> str:
        parts = [self.predicate(self.rng.choice(aliases)) for _ in range(n)]
        return " AND ".join(parts)

    def single(self) -> str:
        r = self.rng
        alias, table, key = r.choice([("gh", "github.pull_requests", "gh.pr_id"),
                                      ("ji", "jira.issues", "ji.issue_key")])
        cols = {"gh": "gh.pr_id, gh.repo, gh.number, gh.status, gh.branch, gh.created_at",
                "ji": "ji.issue_key, ji.status, ji.story_points, ji.branch_name, ji.team"}[alias]
        sql = f"SELECT {cols} FROM {table} {alias} WHERE {self.where([alias], r.randint(1, 3))}"
        if r.random() < 0.25:
            sql += f" ORDER BY {key} LIMIT {r.randint(1, 40)}"
        elif r.random() < 0.15:
            sql = f"SELECT count(*) AS n FROM {table} {alias} WHERE {self.where([alias], r.randint(1, 3))}"
        return sql

    def join(self) -> str:
        r = self.rng
        kind = r.choice(["JOIN", "JOIN", "JOIN", "LEFT JOIN"])
        first, second = r.choice([("gh", "ji"), ("ji", "gh")])
        tables = {"gh": "github.pull_requests gh", "ji": "jira.issues ji"}
        on = "gh.branch = ji.branch_name"
        if kind == "LEFT JOIN" and r.random() < 0.5:
            on += f" AND {self.predicate(second)}"
        sql = (f"SELECT gh.pr_id, gh.number, gh.repo, ji.issue_key, ji.status FROM {tables[first]} {kind} "
               f"{tables[second]} ON {on}")
        conditions = self.where([first, second], r.randint(0, 3))
        return sql + (f" WHERE {conditions}" if conditions else "")


def generated_queries(count: int, seed: int = 7) -> list[str]:
    gen = _Generator(seed)
    return [gen.join() if i % 2 else gen.single() for i in range(count)]


def differential_queries() -> list[tuple[str, str]]:
    """``(id, sql)`` of the whole differential suite: the hand-written queries, then 240 generated ones."""
    return [(f"hand-{i:02d}", sql) for i, sql in enumerate(HAND_WRITTEN)] + \
           [(f"gen-{i:03d}", sql) for i, sql in enumerate(generated_queries(240))]


# ORDER BY a projection alias that shadows a column of the table. SQL sorts by the alias (the output column), so
# a planner that reads the name as the table's column sends the wrong sort to the API (GitHub sort=created, JQL
# ORDER BY created) or tops-N the wrong rows. Each ends with a unique tie-breaker, so the order is the answer.
SHADOW_ALIAS = [
    "SELECT number AS created_at, repo FROM github.pull_requests WHERE repo = 'web-frontend' "
    "ORDER BY created_at LIMIT 3",
    "SELECT number AS created_at, pr_id FROM github.pull_requests ORDER BY created_at DESC, pr_id LIMIT 5",
    "SELECT updated_at AS created_at, pr_id FROM github.pull_requests ORDER BY created_at DESC, pr_id LIMIT 4",
    "SELECT created_at AS updated_at, pr_id FROM github.pull_requests ORDER BY updated_at, pr_id LIMIT 4",
    "SELECT pr_id, merged_at AS created_at FROM github.pull_requests WHERE repo = 'infra-tools' "
    "ORDER BY created_at DESC NULLS LAST, pr_id LIMIT 3",
    "SELECT repo, -number AS number FROM github.pull_requests WHERE repo = 'mobile-app' ORDER BY number LIMIT 3",
    "SELECT title AS created_at, pr_id FROM github.pull_requests ORDER BY created_at, pr_id LIMIT 3",
    "SELECT gh.number AS created_at, gh.repo FROM github.pull_requests gh WHERE gh.status = 'open' "
    "ORDER BY created_at DESC, gh.repo LIMIT 6",
    "SELECT additions AS created_at, pr_id FROM github.pull_requests WHERE repo = 'web-frontend' "
    "ORDER BY created_at DESC, pr_id LIMIT 3",
    "SELECT issue_key, updated_at AS created_at FROM jira.issues ORDER BY created_at DESC, issue_key LIMIT 3",
    "SELECT issue_key, created_at AS updated_at FROM jira.issues WHERE team = 'web' "
    "ORDER BY updated_at, issue_key LIMIT 4",
    "SELECT story_points AS created_at, issue_key FROM jira.issues ORDER BY created_at DESC NULLS LAST, issue_key "
    "LIMIT 5",
    "SELECT issue_key AS created_at FROM jira.issues WHERE project = 'MOB' ORDER BY created_at LIMIT 3",
    "SELECT summary AS updated_at, issue_key FROM jira.issues ORDER BY updated_at DESC, issue_key LIMIT 3",
    "SELECT status AS created_at, issue_key AS status FROM jira.issues ORDER BY created_at, status LIMIT 5",
    "SELECT created_at AS updated_at, updated_at AS created_at, issue_key FROM jira.issues "
    "ORDER BY created_at DESC, issue_key LIMIT 3",
    "SELECT ji.issue_key AS created_at, gh.number, gh.repo FROM jira.issues ji JOIN github.pull_requests gh "
    "ON gh.branch = ji.branch_name ORDER BY created_at, gh.number, gh.repo LIMIT 5",
    "SELECT * FROM (SELECT number AS created_at, pr_id FROM github.pull_requests) s ORDER BY created_at, pr_id "
    "LIMIT 3",
]

# DuckDB's COLUMNS('regex'): the qualifier does not expand it, so what it may choose is fetched. Its output
# columns have no names before DuckDB runs, so a wrapper cannot refer to them by name (only LIMIT wrappers).
DYNAMIC_COLUMNS = [
    "SELECT COLUMNS('issue_.*|^status$') FROM jira.issues WHERE project = 'WEB'",
    "SELECT ji.issue_key, COLUMNS('number|repo') FROM jira.issues ji JOIN github.pull_requests gh "
    "ON gh.branch = ji.branch_name WHERE ji.status = 'Done'",
    "SELECT max(COLUMNS('_at$')) FROM github.pull_requests WHERE repo = 'mobile-app'",
    "SELECT min(COLUMNS(* EXCLUDE (labels, summary))) FROM jira.issues",
]
