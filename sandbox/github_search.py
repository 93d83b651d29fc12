"""``GET /search/issues`` for the GitHub stand-in, pull requests only (CONTRACT.md, search): the qualifiers
``is:pr|issue``, ``is:open|closed|merged|unmerged``, ``state:``, ``author:``, ``label:``, ``org:``, ``repo:``, and
``created:``/``updated:``/``merged:``/``closed:`` with ``>``, ``>=``, ``<``, ``<=`` (dates or date-times); at most
1,000 results reachable (a page past them is 422), 30 searches a minute per token (its own ``search`` budget,
answered 403 with ``x-ratelimit-remaining: 0`` beyond), ``incomplete_results`` false, Link paging. Matching is
case-insensitive; anything else in ``q`` (free text) is a 422 here, to keep the stand-in honest about what it knows."""

from __future__ import annotations

import json
import re
import shlex
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from sandbox.common import RateBudget
from sandbox.seed import ORG, PullRequest

__all__ = ["SEARCH_CAP", "search_issues"]

SEARCH_CAP = 1000
_BUDGETS: dict[int, RateBudget] = {}
_DATE = re.compile(r"(>=|<=|>|<)?(\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}:\d{2}(?:Z|[+-]\d{2}:\d{2})?)?)$")


def _ts(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _when(text: str) -> tuple[str, datetime] | None:
    m = _DATE.match(text)
    if m is None:
        return None
    moment = datetime.fromisoformat(m.group(2).replace("Z", "+00:00"))
    return m.group(1) or ">=", moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _test(op: str, value: datetime | None, bound: datetime) -> bool:
    if value is None:
        return False
    return {">": value > bound, ">=": value >= bound, "<": value < bound, "<=": value <= bound}[op]


def _matcher(q: str) -> Any:
    """A predicate over pull requests for ``q``, or an error message."""
    tests: list[Any] = []
    try:
        words = shlex.split(q)
    except ValueError:
        return "q is not valid: unbalanced quotes"
    for word in words:
        key, sep, value = word.partition(":")
        key, low = key.lower(), value.lower()
        if not sep or not value:
            return f"q has text the stand-in does not search: {word[:40]!r}"
        if key in ("is", "type", "state") and low in ("pr", "pull-request", "open", "closed", "merged", "unmerged",
                                                      "issue"):
            tests.append({"pr": lambda p: True, "pull-request": lambda p: True, "issue": lambda p: False,
                          "open": lambda p: p.state == "open", "closed": lambda p: p.state == "closed",
                          "merged": lambda p: p.merged_at is not None,
                          "unmerged": lambda p: p.merged_at is None}[low])
        elif key == "author":
            tests.append(lambda p, who=low: p.author.lower() == who)
        elif key == "label":
            names = frozenset(low.split(","))
            tests.append(lambda p, names=names: bool(names & {x.lower() for x in p.labels}))
        elif key == "org":
            tests.append(lambda p, org=low: org == ORG.lower())
        elif key == "repo":
            tests.append(lambda p, full=low: f"{ORG}/{p.repo}".lower() == full)
        elif key in ("created", "updated", "merged", "closed") and (when := _when(value)) is not None:
            attr = {"created": "created", "updated": "updated", "merged": "merged_at", "closed": "closed_at"}[key]
            tests.append(lambda p, a=attr, w=when: _test(w[0], getattr(p, a), w[1]))
        else:
            return f"q has a qualifier the stand-in does not know: {word[:40]!r}"
    return lambda p: all(t(p) for t in tests)


def _item(standin: Any, base: str, pr: PullRequest, version: str) -> dict[str, Any]:
    html = f"https://github.com/{ORG}/{pr.repo}/pull/{pr.number}"
    body: dict[str, Any] = {
        "url": f"{base}/repos/{ORG}/{pr.repo}/issues/{pr.number}", "repository_url": f"{base}/repos/{ORG}/{pr.repo}",
        "html_url": html, "id": 5_000_000 + pr.id % 1_000_000, "node_id": f"PR_kwDO{pr.id}", "number": pr.number,
        "title": pr.title, "user": standin._user_json(base, standin.users[pr.author]), "state": pr.state,
        "labels": [{"id": 4000 + i, "name": name, "color": "ededed", "default": False}
                   for i, name in enumerate(pr.labels)],
        "assignees": [], "milestone": None, "locked": False, "comments": 0, "created_at": _ts(pr.created),
        "updated_at": _ts(pr.updated), "closed_at": _ts(pr.closed_at), "author_association": "MEMBER",
        "draft": False, "body": None, "score": 1.0,
        "pull_request": {"url": f"{base}/repos/{ORG}/{pr.repo}/pulls/{pr.number}", "html_url": html,
                         "diff_url": f"{html}.diff", "patch_url": f"{html}.patch", "merged_at": _ts(pr.merged_at)}}
    if version == "2022-11-28":
        body["assignee"] = None
    return body


async def search_issues(standin: Any, request: Request, error: Any, validation_error: Any) -> Response:
    budget = _BUDGETS.setdefault(id(standin), RateBudget(limit=30, window_s=60))
    credential = request.headers.get("authorization", "").partition(" ")[2]
    remaining, used, reset = budget.take(credential)
    rate = {"x-ratelimit-limit": "30", "x-ratelimit-remaining": str(max(remaining, 0)),
            "x-ratelimit-used": str(min(used, 30)), "x-ratelimit-reset": str(reset), "x-ratelimit-resource": "search"}
    if remaining < 0:
        return error(403, "API rate limit exceeded for user ID 1. (search)", rate)
    q = request.query_params.get("q", "")
    if not q:
        return validation_error("q is required")
    matcher = _matcher(q)
    if isinstance(matcher, str):
        return validation_error(matcher)
    try:
        per_page = min(max(int(request.query_params.get("per_page", 30)), 1), 100)
        page = max(int(request.query_params.get("page", 1)), 1)
    except ValueError:
        return validation_error("per_page and page must be integers")
    if (page - 1) * per_page >= SEARCH_CAP and page > 1:
        return validation_error("Only the first 1000 search results are available")
    found = [p for pulls in standin.pulls_by_repo.values() for p in pulls if matcher(p)]
    found.sort(key=lambda p: (p.created, p.id), reverse=True)
    reachable = found[:SEARCH_CAP]
    chunk = reachable[(page - 1) * per_page: page * per_page]
    last = max((len(reachable) + per_page - 1) // per_page, 1)
    base = str(request.base_url).rstrip("/")
    params = {k: v for k, v in request.query_params.items() if k not in ("page", "per_page")}

    def url(n: int) -> str:
        return f"<{base}/search/issues?{urlencode({**params, 'per_page': per_page, 'page': n})}>"

    links = ([f'{url(page - 1)}; rel="prev"'] if page > 1 else []) + \
        ([f'{url(page + 1)}; rel="next"', f'{url(last)}; rel="last"'] if page < last else []) + \
        ([f'{url(1)}; rel="first"'] if page > 1 else [])
    version = request.headers.get("x-github-api-version", "2022-11-28")
    body = {"total_count": len(found), "incomplete_results": False, "search_type": "lexical",  # no search_type asked
            "items": [_item(standin, base, p, version) for p in chunk]}
    headers = {**rate, **({"link": ", ".join(links)} if links else {})}
    return Response(json.dumps(body), headers=headers, media_type="application/json; charset=utf-8")
