"""``GET /repos/{owner}/{repo}/issues`` for the GitHub stand-in: issues *and* pull requests (those carry a
``pull_request`` key, as on GitHub; the singular ``assignee`` only for API version 2022-11-28), ``state`` (open by
default), ``since`` (updated at or after), ``labels`` (all of them), ``sort`` created|updated|comments,
``direction``, Link paging."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from sandbox.github_issues_seed import GhIssue, build_github_issues
from sandbox.seed import ORG

__all__ = ["list_issues"]

_ISSUES: dict[int, dict[str, list[GhIssue]]] = {}


def _ts(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _by_repo(standin: Any) -> dict[str, list[GhIssue]]:
    found = _ISSUES.get(id(standin))
    if found is None:
        found = _ISSUES[id(standin)] = {name: [] for name in standin.repo_ids}
        for issue in build_github_issues(standin.seed):
            found[issue.repo].append(issue)
    return found


def _issue_json(standin: Any, base: str, issue: GhIssue, version: str) -> dict[str, Any]:
    api = f"{base}/repos/{ORG}/{issue.repo}/issues/{issue.number}"
    assignees = [standin._user_json(base, standin.users[issue.assignee])] if issue.assignee else []
    body = {"id": issue.id, "node_id": f"I_kwDO{issue.id}", "url": api,
            "repository_url": f"{base}/repos/{ORG}/{issue.repo}", "html_url":
            f"https://github.com/{ORG}/{issue.repo}/issues/{issue.number}", "number": issue.number,
            "state": issue.state, "state_reason": "completed" if issue.state == "closed" else None,
            "title": issue.title, "body": None, "user": standin._user_json(base, standin.users[issue.author]),
            "labels": [{"id": 200 + i, "name": name, "color": "f29513", "default": False}
                       for i, name in enumerate(issue.labels)],
            "assignees": assignees, "locked": False, "comments": issue.comments, "created_at": _ts(issue.created),
            "updated_at": _ts(issue.updated), "closed_at": _ts(issue.closed), "author_association": "MEMBER"}
    if version == "2022-11-28":  # 2026-03-10 removed the singular assignee
        body["assignee"] = assignees[0] if assignees else None
    return body


def _pull_as_issue(standin: Any, base: str, pr: Any, version: str) -> dict[str, Any]:
    html = f"https://github.com/{ORG}/{pr.repo}/pull/{pr.number}"
    body = {"id": 5_000_000 + pr.id % 1_000_000, "number": pr.number, "state": pr.state, "title": pr.title,
            "user": standin._user_json(base, standin.users[pr.author]), "labels": [], "assignees": [],
            "comments": 0, "created_at": _ts(pr.created), "updated_at": _ts(pr.updated), "closed_at": _ts(pr.closed_at),
            "html_url": html, "pull_request": {"url": f"{base}/repos/{ORG}/{pr.repo}/pulls/{pr.number}",
                                               "html_url": html, "diff_url": f"{html}.diff",
                                               "patch_url": f"{html}.patch", "merged_at": _ts(pr.merged_at)}}
    if version == "2022-11-28":
        body["assignee"] = None
    return body


async def list_issues(standin: Any, request: Request, validation_error: Any) -> Response:
    repo = standin._repo_from_path(request)
    if repo is None:
        return Response('{"message": "Not Found"}', status_code=404, media_type="application/json")
    q = request.query_params
    state, sort = q.get("state", "open"), q.get("sort", "created")
    direction = q.get("direction", "desc")
    if state not in ("open", "closed", "all") or sort not in ("created", "updated", "comments") \
            or direction not in ("asc", "desc"):
        return validation_error("state, sort or direction has an invalid value")
    since = None
    if "since" in q:
        try:
            since = datetime.fromisoformat(q["since"].replace("Z", "+00:00"))
        except ValueError:
            return validation_error("since must be an ISO 8601 timestamp")
    labels = {name for name in q.get("labels", "").split(",") if name}
    items: list[tuple[Any, bool]] = [(i, True) for i in _by_repo(standin)[repo]]
    items += [(p, False) for p in standin.pulls_by_repo[repo]]
    kept = [(item, is_issue) for item, is_issue in items
            if (state == "all" or item.state == state) and (since is None or item.updated >= since)
            and labels <= set(item.labels if is_issue else ())]
    key = {"created": lambda x: x[0].created, "updated": lambda x: x[0].updated,
           "comments": lambda x: x[0].comments if x[1] else 0}[sort]
    kept.sort(key=key, reverse=direction == "desc")
    base = str(request.base_url).rstrip("/")
    version = request.headers.get("x-github-api-version", "2022-11-28")

    def render(entry: tuple[Any, bool]) -> str:
        import json

        item, is_issue = entry
        return json.dumps(_issue_json(standin, base, item, version) if is_issue
                          else _pull_as_issue(standin, base, item, version))

    return standin._page(request, kept, f"/repositories/{standin.repo_ids[repo]}/issues", render)
