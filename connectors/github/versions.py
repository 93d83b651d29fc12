"""What differs between the GitHub REST versions we accept (``X-GitHub-Api-Version`` 2022-11-28 and 2026-03-10,
``../shared/api-contracts/github/breaking-changes-2026-03-10.json``) and that a decoder reads. Of what 2026-03-10
removed, only the singular ``assignee`` of issues and pull requests is read (``github.issues.assignee``): there it
comes from ``assignees``, present in both versions. ``merge_commit_sha``, ``has_downloads``, the repository's
``master_branch``/``use_squash_pr_title_as_default`` and ``/rate_limit``'s ``rate`` are never read, so both shapes
decode alike; the ``pull_request`` fields that became non-nullable only mark items we drop."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

__all__ = ["first_logins"]


def first_logins(items: list[Any], key: str) -> pa.Array:
    """Per record, the ``login`` of the first user in its ``key`` list (null when absent or empty)."""
    out: list[str | None] = []
    for item in items:
        users = item.get(key) if isinstance(item, dict) else None
        first = users[0] if isinstance(users, list) and users else None
        login = first.get("login") if isinstance(first, dict) else None
        out.append(login if isinstance(login, str) else None)
    return pa.array(out, pa.string())
