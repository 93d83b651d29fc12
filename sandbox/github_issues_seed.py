"""GitHub issues of the synthetic org (not pull requests), deterministic and apart from ``seed.py`` so that adding
them changed nothing else. Numbers start at 1001 in each repository (pull requests use 1-275)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from sandbox.seed import EPOCH, REPOS, Seed

__all__ = ["GhIssue", "build_github_issues"]

_TOPICS = ("crash on start", "slow sync", "typo in docs", "login loop", "export fails", "flaky test", "dark mode",
           "wrong totals", "timeout on upload", "missing translation")
_LABELS = ("bug", "enhancement", "docs", "good first issue", "perf")


@dataclass(frozen=True)
class GhIssue:
    id: int
    repo: str
    number: int
    title: str
    state: str  # open | closed
    author: str
    assignee: str | None
    labels: tuple[str, ...]
    comments: int
    created: datetime
    updated: datetime
    closed: datetime | None


def build_github_issues(seed: Seed, per_repo: int = 60) -> tuple[GhIssue, ...]:
    rng = random.Random(4242)
    logins = [u.login for u in seed.users]
    out = []
    for r, (repo, _) in enumerate(REPOS):
        for n in range(per_repo):
            created = EPOCH + timedelta(hours=29 * n + 3 * r, minutes=rng.randint(0, 59))
            closed = created + timedelta(hours=rng.randint(1, 500)) if rng.random() < 0.55 else None
            updated = (closed or created) + timedelta(minutes=rng.randint(1, 900))
            out.append(GhIssue(id=3_000_000 + r * 1000 + n, repo=repo, number=1001 + n,
                               title=f"{rng.choice(_TOPICS).capitalize()} in {repo}", state="closed" if closed
                               else "open", author=rng.choice(logins),
                               assignee=rng.choice(logins) if rng.random() < 0.6 else None,
                               labels=tuple(sorted(rng.sample(_LABELS, rng.randint(0, 2)))),
                               comments=rng.randint(0, 12), created=created, updated=updated, closed=closed))
    return tuple(out)
