"""Linear's share of the synthetic org, derived from ``sandbox.seed`` (never edited here): one Linear team per Jira
project (same keys), and a Linear issue for every other Jira issue with the same identifier, so that
``branchName`` is the Jira issue's branch when it has one. GitHub pull requests are opened from those branches,
so ``github.pull_requests ⋈ jira.issues ⋈ linear.issues`` on the branch name has rows.

Records are plain dicts in Linear's GraphQL shape (camelCase), which the stand-in serves as they are."""

from __future__ import annotations

import random
import re
import uuid
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any

from sandbox.seed import PROJECTS, Seed, build_seed

__all__ = ["LinearSeed", "build_linear_seed"]

_NS = uuid.UUID("6f1c8a52-3b7e-4d0a-9a57-0c1d2e3f4a5b")
STATES = (("Backlog", "backlog"), ("Todo", "unstarted"), ("In Progress", "started"), ("In Review", "started"),
          ("Done", "completed"), ("Canceled", "canceled"))
PRIORITIES = ("No priority", "Urgent", "High", "Medium", "Low")
_FROM_JIRA = {"To Do": ("Todo", "Backlog"), "In Progress": ("In Progress",), "In Review": ("In Review",),
              "Done": ("Done", "Done", "Done", "Canceled")}
PROJECT_NAMES = ("Q1 launch", "Mobile revamp", "Platform hardening", None, None)


def _uid(*parts: object) -> str:
    return str(uuid.uuid5(_NS, "/".join(map(str, parts))))


def _ts(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + \
        f"{value.microsecond // 1000:03d}Z"


class LinearSeed:
    """Teams, users, workflow states and issues as Linear's API returns them."""

    def __init__(self, seed: Seed) -> None:
        rng = random.Random(20261123)
        self.teams = [{"id": _uid("team", key), "key": key, "name": name, "description": f"The {team} team",
                       "createdAt": "2025-06-01T09:00:00.000Z"} for key, name, team in PROJECTS]
        by_key = {t["key"]: t for t in self.teams}
        self.users: list[dict[str, Any]] = []
        for i, user in enumerate(sorted(seed.users, key=lambda u: u.login)):
            self.users.append({"id": _uid("user", user.login), "name": user.name, "displayName": user.login,
                               "email": user.email or f"{user.login}@users.acme.example", "active": i % 7 != 6,
                               "admin": i == 0, "createdAt": "2025-06-02T09:00:00.000Z", "_login": user.login})
        by_login = {u["_login"]: u for u in self.users}
        self.states = {(team["key"], name): {"id": _uid("state", team["key"], name), "name": name, "type": kind}
                       for team in self.teams for name, kind in STATES}
        self.issues: list[dict[str, Any]] = []
        for n, issue in enumerate(seed.issues):
            if n % 2:
                continue
            team = by_key[issue.project]
            state_name = rng.choice(_FROM_JIRA.get(issue.status, ("Todo",)))
            state = self.states[(team["key"], state_name)]
            assignee = by_login.get(issue.assignee) if issue.assignee else None
            team_users = [u for u in self.users if _team_of(u, seed) == _team_of_project(issue.project)]
            creator = rng.choice(team_users) if rng.random() < 0.95 else None
            slug = re.sub(r"[^a-z0-9]+", "-", issue.summary.lower()).strip("-")[:40].strip("-")
            branch = issue.branch or f"{(assignee or {}).get('displayName', 'omnisql')}/{issue.key.lower()}-{slug}"
            priority = rng.choice((0, 1, 2, 2, 3, 3, 3, 4))
            started = issue.created + timedelta(hours=rng.randint(1, 48)) if state["type"] in (
                "started", "completed") else None
            completed = (started or issue.created) + timedelta(hours=rng.randint(2, 200)) \
                if state["type"] == "completed" else None
            canceled = issue.created + timedelta(hours=rng.randint(2, 100)) if state["type"] == "canceled" else None
            due = (issue.created + timedelta(days=rng.randint(3, 40))).date() if rng.random() < 0.35 else None
            project = rng.choice(PROJECT_NAMES)
            self.issues.append({
                "id": _uid("issue", issue.key), "identifier": issue.key, "number": float(issue.key.split("-")[1]),
                "title": issue.summary, "description": f"Tracked in Jira as {issue.key}." if n % 3 else None,
                "state": state, "team": team,
                "assignee": _public(assignee), "creator": _public(creator),
                "estimate": issue.story_points if rng.random() < 0.9 else None, "priority": float(priority),
                "priorityLabel": PRIORITIES[priority],
                "labels": [{"id": _uid("label", name), "name": name.title()} for name in issue.labels],
                "branchName": branch, "url": f"https://linear.app/acme/issue/{issue.key}/{slug}",
                "createdAt": _ts(issue.created), "updatedAt": _ts(issue.updated), "startedAt": _ts(started),
                "completedAt": _ts(completed), "canceledAt": _ts(canceled),
                "dueDate": due.isoformat() if isinstance(due, date) else None,
                "project": {"id": _uid("project", project), "name": project} if project else None,
                "cycle": {"id": _uid("cycle", team["key"], n // 60), "number": float(n // 60 + 1)}
                if rng.random() < 0.6 else None,
            })

    def user_by_id(self, user_id: str) -> dict[str, Any] | None:
        return next((_public(u) for u in self.users if u["id"] == user_id), None)


def _public(user: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if user is None else {k: v for k, v in user.items() if not k.startswith("_")}


def _team_of(user: dict[str, Any], seed: Seed) -> str:
    found = seed.user(user["_login"])
    return found.team if found else ""


def _team_of_project(project: str) -> str:
    return next(t for p, _, t in PROJECTS if p == project)


@lru_cache(maxsize=2)
def build_linear_seed() -> LinearSeed:
    """The default org's Linear data (immutable; cached)."""
    return LinearSeed(build_seed())
