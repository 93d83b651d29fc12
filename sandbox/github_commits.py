"""``GET /repos/{owner}/{repo}/commits`` for the GitHub stand-in: the default branch's history, one merge commit
per merged pull request of the seed (newest first), with ``since``/``until`` (commit date), ``author`` (login or
e-mail) and Link paging."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from sandbox.seed import ORG

__all__ = ["commit_sha", "list_commits"]


def commit_sha(repo: str, number: int) -> str:
    return hashlib.sha1(f"{ORG}/{repo}#{number}".encode()).hexdigest()


def _ts(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _commit_json(standin: Any, base: str, pr: Any) -> dict[str, Any]:
    sha = commit_sha(pr.repo, pr.number)
    user = standin.users[pr.author]
    email = user.email or f"{user.github_id}+{user.login}@users.noreply.github.com"
    person = {"name": user.name, "email": email, "date": _ts(pr.merged_at)}
    return {"sha": sha, "node_id": f"C_kwDO{sha[:12]}", "url": f"{base}/repos/{ORG}/{pr.repo}/commits/{sha}",
            "html_url": f"https://github.com/{ORG}/{pr.repo}/commit/{sha}",
            "commit": {"author": person, "committer": {**person, "name": "GitHub", "email": "noreply@github.com"},
                       "message": f"Merge pull request #{pr.number} from {ORG}/{pr.head}\n\n{pr.title}",
                       "comment_count": 0},
            "author": standin._user_json(base, user), "committer": None, "parents": []}


async def list_commits(standin: Any, request: Request, validation_error: Any) -> Response:
    repo = standin._repo_from_path(request)
    if repo is None:
        return Response('{"message": "Not Found"}', status_code=404, media_type="application/json")
    q = request.query_params
    try:
        since = datetime.fromisoformat(q["since"].replace("Z", "+00:00")) if "since" in q else None
        until = datetime.fromisoformat(q["until"].replace("Z", "+00:00")) if "until" in q else None
    except ValueError:
        return validation_error("since and until must be ISO 8601 timestamps")
    author = q.get("author")
    merged = [p for p in standin.pulls_by_repo[repo] if p.merged_at is not None
              and (since is None or p.merged_at >= since) and (until is None or p.merged_at <= until)
              and (author is None or author in (p.author, standin.users[p.author].email))]
    merged.sort(key=lambda p: p.merged_at, reverse=True)
    base = str(request.base_url).rstrip("/")
    return standin._page(request, merged, f"/repositories/{standin.repo_ids[repo]}/commits",
                         lambda p: json.dumps(_commit_json(standin, base, p)))
