"""A deterministic synthetic organisation shared by the GitHub and Jira stand-ins.

Same seed, same data, on every machine: tests and benchmarks compare against it. Branch names are shared
between Jira issues (a "Branch" custom field) and GitHub pull requests (``head.ref``) so cross-app joins match.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

ORG = "acme-corp"
TEAMS = ("mobile", "web", "platform")
REPOS = (("mobile-app", "mobile"), ("web-frontend", "web"), ("platform-api", "platform"), ("infra-tools", "platform"))
PROJECTS = (("MOB", "Mobile", "mobile"), ("WEB", "Web", "web"), ("PLAT", "Platform", "platform"))
JIRA_STATUSES = (("To Do", "new", 0.25), ("In Progress", "indeterminate", 0.3),
                 ("In Review", "indeterminate", 0.15), ("Done", "done", 0.3))
STORY_POINTS_FIELD = "customfield_10016"
BRANCH_FIELD = "customfield_10100"
EPOCH = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

_FIRST = ("ana", "ben", "chloe", "dev", "eli", "fatima", "gus", "hana", "ivan", "jun", "kai", "lena",
          "milo", "nora", "omar", "priya", "quinn", "rosa", "sam", "tara", "uma", "vic", "wen", "yusuf")
_LAST = ("silva", "okafor", "martin", "patel", "kim", "haddad", "berg", "sato", "novak", "chen", "ross",
         "meyer", "diaz", "lund", "aziz", "rao", "byrne", "costa", "ito", "shah", "ueda", "vale", "wu", "yilmaz")
_WORDS = ("login", "cache", "payments", "search", "onboarding", "checkout", "profile", "billing", "sync",
          "export", "alerts", "dashboard", "oauth", "upload", "metrics", "retry", "webhooks", "settings")
_VERBS = ("Fix", "Add", "Refactor", "Speed up", "Remove", "Harden", "Document", "Migrate")
_LABELS = ("bug", "feature", "tech-debt", "security", "perf", "ux")
CUSTOMER_FIELD = "customfield_10200"  # Jira's "Customer" field: the Salesforce account name an issue is for
# Salesforce accounts (sandbox/salesforce_seed.py) start with these names; quotes, % and _ keep escaping honest.
CUSTOMERS = ("Acme Corp", "Globex", "Initech", "Umbrella Health", "Stark Industries", "Wayne Enterprises",
             "O'Reilly Media", "Hooli", "Soylent Foods", "Tyrell Robotics", "Cyberdyne Systems", "Wonka Retail",
             "50% Discount Stores", "Under_Score Labs", "Massive Dynamic", "Vandelay Imports", "Pied Piper",
             "Dunder Mifflin", "Oscorp", "Gringotts Capital")


@dataclass(frozen=True)
class User:
    login: str
    github_id: int
    name: str
    email: str | None  # None = the user hides their email (both APIs allow that)
    account_id: str
    team: str
    # The rest of the public profile (GET /users/{login}); the same for everyone in the synthetic org.
    company: str | None = "Acme Corp"
    location: str | None = None
    created: datetime = datetime(2020, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class JiraIssue:
    id: int
    key: str
    project: str
    summary: str
    status: str
    story_points: float | None
    assignee: str | None  # login
    labels: tuple[str, ...]
    branch: str | None
    created: datetime
    updated: datetime
    customer: str | None = None  # the Customer custom field (a Salesforce account name)


@dataclass(frozen=True)
class PullRequest:
    id: int
    number: int
    repo: str
    title: str
    author: str  # login
    state: str  # open | closed
    merged_at: datetime | None
    closed_at: datetime | None
    head: str
    base: str
    additions: int
    deletions: int
    changed_files: int
    labels: tuple[str, ...]
    created: datetime
    updated: datetime


@dataclass(frozen=True)
class Seed:
    users: tuple[User, ...]
    issues: tuple[JiraIssue, ...]
    pulls: tuple[PullRequest, ...]

    def user(self, login: str) -> User | None:
        return next((u for u in self.users if u.login == login), None)


def _users(rng: random.Random) -> tuple[User, ...]:
    users = []
    for i, (first, last) in enumerate(zip(_FIRST, _LAST, strict=True)):
        login = f"{first}-{last}"
        hidden = i % 5 == 4
        users.append(User(login=login, github_id=100_000 + i, name=f"{first.title()} {last.title()}",
                          email=None if hidden else f"{first}.{last}@acme.example",
                          account_id=f"5b10a2844c2016570{i:07d}", team=TEAMS[i % 3]))
    rng.shuffle(users)
    return tuple(users)


def _issues(rng: random.Random, users: tuple[User, ...], count: int) -> tuple[JiraIssue, ...]:
    issues: list[JiraIssue] = []
    counters = dict.fromkeys((p for p, _, _ in PROJECTS), 0)
    for n in range(count):
        project, _, team = PROJECTS[n % 3]
        counters[project] += 1
        key = f"{project}-{counters[project]}"
        word = rng.choice(_WORDS)
        status = rng.choices([s for s, _, _ in JIRA_STATUSES], [w for _, _, w in JIRA_STATUSES])[0]
        team_users = [u for u in users if u.team == team]
        assignee = rng.choice(team_users).login if rng.random() < 0.9 else None
        created = EPOCH + timedelta(hours=7 * n + rng.randint(0, 6), minutes=rng.randint(0, 59))
        updated = created + timedelta(hours=rng.randint(1, 400))
        has_branch = rng.random() < 0.75
        issues.append(JiraIssue(
            id=10_000 + n, key=key, project=project,
            summary=f"{rng.choice(_VERBS)} {word} for {team} ({key})", status=status,
            story_points=rng.choice([1.0, 2.0, 3.0, 5.0, 8.0, 13.0]) if rng.random() < 0.85 else None,
            assignee=assignee, labels=tuple(sorted(rng.sample(_LABELS, rng.randint(0, 2)))),
            branch=f"feature/{key.lower()}-{word}" if has_branch else None,
            created=created, updated=updated, customer=_customer(n)))
    return tuple(issues)


def _customer(n: int) -> str | None:
    """Six issues in ten name a customer; derived from the position alone, so the seed's random stream (and
    every other value) is unchanged."""
    return CUSTOMERS[(n * 7919) % len(CUSTOMERS)] if (n * 31) % 10 < 6 else None


def _pulls(rng: random.Random, users: tuple[User, ...], issues: tuple[JiraIssue, ...], count: int
           ) -> tuple[PullRequest, ...]:
    pulls: list[PullRequest] = []
    branches_by_team = {t: [i.branch for i in issues if i.branch and team_of_project(i.project) == t] for t in TEAMS}
    numbers = {r: 0 for r, _ in REPOS}
    for n in range(count):
        repo, team = REPOS[n % len(REPOS)]
        numbers[repo] += 1
        author = rng.choice([u for u in users if u.team == team])
        head = rng.choice(branches_by_team[team]) if rng.random() < 0.8 else f"chore/{rng.choice(_WORDS)}-{n}"
        created = EPOCH + timedelta(hours=6 * n + rng.randint(0, 5), minutes=rng.randint(0, 59))
        roll = rng.random()
        merged_at = closed_at = None
        state = "open"
        if roll < 0.62:
            state = "closed"
            merged_at = closed_at = created + timedelta(hours=rng.randint(2, 200), minutes=rng.randint(0, 59))
        elif roll < 0.8:
            state = "closed"
            closed_at = created + timedelta(hours=rng.randint(2, 200))
        updated = (closed_at or created) + timedelta(minutes=rng.randint(1, 600))
        additions = int(rng.paretovariate(1.2) * 20) + rng.randint(0, 9)
        pulls.append(PullRequest(
            id=2_000_000_000 + n * 7919, number=numbers[repo], repo=repo,
            title=f"{rng.choice(_VERBS)} {rng.choice(_WORDS)} in {repo}", author=author.login, state=state,
            merged_at=merged_at, closed_at=closed_at, head=head, base="main" if rng.random() < 0.9 else "develop",
            additions=min(additions, 50_000), deletions=int(rng.paretovariate(1.5) * 10),
            changed_files=rng.randint(1, 40), labels=tuple(sorted(rng.sample(_LABELS, rng.randint(0, 2)))),
            created=created, updated=updated))
    return tuple(pulls)


# Big enough that every listing pages, so tests really follow GitHub's ``link: rel="next"`` and Jira's
# ``nextPageToken``: 275 pull requests per repository (3 pages of 100: 100, 100, 75; state=closed is 3 pages too)
# and 333-334 issues per project (4 pages of 100; 10 for all three projects).
DEFAULT_PULLS = 1100
DEFAULT_ISSUES = 1000


@lru_cache(maxsize=4)
def build_seed(seed: int = 20261121, pulls: int = DEFAULT_PULLS, issues: int = DEFAULT_ISSUES) -> Seed:
    """Build the whole synthetic org; cached because it is immutable. Larger ``pulls``/``issues`` are for
    benchmarks (the default org is what the demo and the tests use)."""
    rng = random.Random(seed)
    users = _users(rng)
    issue_list = _issues(rng, users, issues)
    return Seed(users=users, issues=issue_list, pulls=_pulls(rng, users, issue_list, pulls))


def team_of_project(project: str) -> str:
    return next(t for p, _, t in PROJECTS if p == project)


def team_of_repo(repo: str) -> str:
    return next(t for r, t in REPOS if r == repo)
