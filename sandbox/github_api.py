"""GitHub REST stand-in: the endpoints OmniSQL reads, faithful to ../shared/api-contracts/github/CONTRACT.md.

Auth (``Bearer``/``token``), ``User-Agent`` required, ``X-GitHub-Api-Version`` checked and followed (2026-03-10
drops ``merge_commit_sha``, singular ``assignee``, ``has_downloads`` and ``/rate_limit``'s ``rate``), ``per_page``
capped at 100, ``link`` headers in the ``/repositories/{id}/...`` form, ``x-ratelimit-*`` on every response, 403
once the budget is spent, ``etag`` on every 200 GET and an uncounted 304 to a matching ``If-None-Match``
(sandbox/github_etag.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.common import Faults, RateBudget, RequestLog, control_routes
from sandbox.github_commits import list_commits
from sandbox.github_etag import revalidate
from sandbox.github_issues import list_issues
from sandbox.github_reviews import list_reviews
from sandbox.github_search import search_issues
from sandbox.seed import ORG, REPOS, PullRequest, Seed, User

DOCS = "https://docs.github.com/rest"
VERSIONS = ("2022-11-28", "2026-03-10")
STATES = ("open", "closed", "all")


def _ts(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


class GitHubStandIn:
    """State and handlers of the GitHub stand-in; ``app`` is the Starlette application."""

    def __init__(self, seed: Seed, token: str, rate_limit: int = 5000) -> None:
        self.seed = seed
        self.token = token
        self.budget = RateBudget(limit=rate_limit)
        self.log = RequestLog()
        self.faults = Faults()
        self.repo_ids = {name: 700_000 + i for i, (name, _) in enumerate(REPOS)}
        self.pulls_by_repo: dict[str, list[PullRequest]] = {name: [] for name, _ in REPOS}
        for pr in seed.pulls:
            self.pulls_by_repo[pr.repo].append(pr)
        self.users = {u.login: u for u in seed.users}
        self._listed: dict[tuple[str, int, str], str] = {}  # see _listed_pull
        routes = [
            Route("/orgs/{org}/repos", self._guard(self.org_repos)),
            Route("/organizations/{org_id:int}/repos", self._guard(self.org_repos)),
            Route("/repos/{owner}/{repo}/pulls", self._guard(self.list_pulls)),
            Route("/repositories/{repo_id:int}/pulls", self._guard(self.list_pulls)),
            Route("/repos/{owner}/{repo}/pulls/{number:int}", self._guard(self.get_pull)),
            Route("/users/{login}", self._guard(self.get_user)),
            Route("/repos/{owner}/{repo}/issues", self._guard(self.list_issues)),
            Route("/repositories/{repo_id:int}/issues", self._guard(self.list_issues)),
            Route("/repos/{owner}/{repo}/commits", self._guard(self.list_commits)),
            Route("/repositories/{repo_id:int}/commits", self._guard(self.list_commits)),
            Route("/repos/{owner}/{repo}/pulls/{number:int}/reviews", self._guard(self.list_reviews)),
            Route("/repositories/{repo_id:int}/pulls/{number:int}/reviews", self._guard(self.list_reviews)),
            Route("/search/issues", self._guard(self.search, counts=False)),  # its own 30/min budget
            Route("/rate_limit", self._guard(self.rate_limit, counts=False)),
            *control_routes(self.log, self.faults),
            Route("/_sandbox/mutate", self.mutate, methods=["POST"]),
        ]
        self.app = Starlette(routes=routes)

    # -- plumbing ----------------------------------------------------------------------------------------------
    def _guard(self, handler: Callable[[Request], Awaitable[Response]], counts: bool = True
               ) -> Callable[[Request], Awaitable[Response]]:
        """Auth, version, faults and rate limit in front of every endpoint; records the request."""

        async def endpoint(request: Request) -> Response:
            response = await self._check(request, counts) or await handler(request)
            if counts and self.faults.etags:
                response = revalidate(request, response, lambda: self._refund(request))
            self.log.record(request, response.status_code)
            return response

        return endpoint

    async def _check(self, request: Request, counts: bool) -> Response | None:
        if self.faults.latency_s:
            await asyncio.sleep(self.faults.latency_s)
        if not request.headers.get("user-agent"):
            return error(403, "Request forbidden by administrative rules. Please make sure your request has a "
                              "User-Agent header (https://docs.github.com/en/rest/overview/resources-in-the-rest-api"
                              "#user-agent-required).")
        version = request.headers.get("x-github-api-version")
        if version and version not in VERSIONS:
            return error(400, f"Unsupported 'X-GitHub-Api-Version' header: {version}. Supported versions are: "
                              f"{', '.join(VERSIONS)}.")
        auth = request.headers.get("authorization", "")
        scheme, _, credential = auth.partition(" ")
        if not auth:
            return error(401, "Requires authentication")
        if scheme.lower() not in ("bearer", "token") or credential != self.token:
            return error(401, "Bad credentials")
        if self.faults.fail_next > 0:
            self.faults.fail_next -= 1
            headers = {"retry-after": self.faults.retry_after} if self.faults.retry_after else {}
            return error(self.faults.fail_status, "Server Error" if self.faults.fail_status >= 500
                         else "You have exceeded a secondary rate limit.", headers)
        if counts:
            remaining, used, reset = self.budget.take(credential)
            request.state.credential = credential
            request.state.rate = (max(remaining, 0), min(used, self.budget.limit), reset)
            if remaining < 0:
                return error(403, "API rate limit exceeded for user ID 1.", self._rate_headers(request))
        return None

    def _refund(self, request: Request) -> dict[str, str]:
        """A 304 is not counted against the rate limit: give its request back; the headers to send with it."""
        credential = getattr(request.state, "credential", None)
        if credential is not None and self.budget.used.get(credential, 0) > 0:
            self.budget.used[credential] -= 1
            used = self.budget.used[credential]
            request.state.rate = (max(self.budget.limit - used, 0), used, int(self.budget.reset_at[credential]))
        return self._rate_headers(request)

    def _rate_headers(self, request: Request) -> dict[str, str]:
        rate = getattr(request.state, "rate", None)
        if rate is None:
            return {}
        remaining, used, reset = rate
        return {"x-ratelimit-limit": str(self.budget.limit), "x-ratelimit-remaining": str(remaining),
                "x-ratelimit-used": str(used), "x-ratelimit-reset": str(reset), "x-ratelimit-resource": "core"}

    def _page(self, request: Request, items: Sequence[Any], link_path: str,
              render: Callable[[Any], str] = json.dumps) -> Response:
        """Slice ``items`` by ``per_page``/``page`` and add a ``link`` header in GitHub's order. Only the page's
        items are rendered (``render``: one item → its JSON text), so paging a big listing stays cheap."""
        try:
            per_page = min(max(int(request.query_params.get("per_page", 30)), 1), 100)
            page = max(int(request.query_params.get("page", 1)), 1)
        except ValueError:
            return validation_error("per_page and page must be integers")
        last = max((len(items) + per_page - 1) // per_page, 1)
        chunk = items[(page - 1) * per_page: page * per_page]
        params = {k: v for k, v in request.query_params.items() if k not in ("page", "per_page")}
        base = str(request.base_url).rstrip("/") + link_path

        def url(n: int) -> str:
            return f"<{base}?{urlencode({**params, 'per_page': per_page, 'page': n})}>"

        links = []
        if page > 1:
            links.append(f'{url(page - 1)}; rel="prev"')
        if page < last:
            links += [f'{url(page + 1)}; rel="next"', f'{url(last)}; rel="last"']
        if page > 1:
            links.append(f'{url(1)}; rel="first"')
        headers = self._rate_headers(request)
        if links:
            headers["link"] = ", ".join(links)
        return Response("[" + ",".join(render(item) for item in chunk) + "]", headers=headers,
                        media_type="application/json; charset=utf-8")

    def _repo_from_path(self, request: Request) -> str | None:
        if "repo_id" in request.path_params:
            by_id = {v: k for k, v in self.repo_ids.items()}
            return by_id.get(request.path_params["repo_id"])
        if request.path_params["owner"] != ORG:
            return None
        repo = request.path_params["repo"]
        return repo if repo in self.repo_ids else None

    # -- endpoints ---------------------------------------------------------------------------------------------
    async def mutate(self, request: Request) -> Response:
        """Tests change the data as users would: ``{"update": [{"id": pr_id, "title": ..., "state": "closed",
        "merged": true}], "delete": [pr_id]}``; an update stamps ``updated_at`` now (what sort=updated sees)."""
        body = await request.json()
        now = datetime.now(UTC)
        changes = {int(u["id"]): u for u in body.get("update", [])}
        gone = {int(i) for i in body.get("delete", [])}
        for repo, pulls in self.pulls_by_repo.items():
            kept = []
            for pr in pulls:
                if pr.id in gone:
                    continue
                if pr.id in changes:
                    wanted = changes[pr.id]
                    merged = now if wanted.get("merged") else pr.merged_at
                    state = "closed" if wanted.get("merged") else wanted.get("state", pr.state)
                    pr = dataclasses.replace(pr, title=wanted.get("title", pr.title), state=state, merged_at=merged,
                                             closed_at=now if state == "closed" and pr.closed_at is None
                                             else pr.closed_at, updated=now)
                kept.append(pr)
            self.pulls_by_repo[repo] = kept
        self._listed = {k: v for k, v in self._listed.items() if k[1] not in changes and k[1] not in gone}
        return json_response({"updated": len(changes), "deleted": len(gone)})

    async def org_repos(self, request: Request) -> Response:
        org = request.path_params.get("org")
        if org is not None and org != ORG:
            return error(404, "Not Found")
        legacy = request.headers.get("x-github-api-version", VERSIONS[0]) == "2022-11-28"
        repos = [{**self._repo_json(str(request.base_url).rstrip("/"), name), **({"has_downloads": True} if legacy
                                                                                 else {})} for name, _ in REPOS]
        return self._page(request, repos, "/organizations/1/repos")

    async def list_pulls(self, request: Request) -> Response:
        repo = self._repo_from_path(request)
        if repo is None:
            return error(404, "Not Found")
        q = request.query_params
        state = q.get("state", "open")
        sort = q.get("sort", "created")
        direction = q.get("direction", "desc" if sort == "created" else "asc")
        if state not in STATES or sort not in ("created", "updated", "popularity", "long-running") \
                or direction not in ("asc", "desc"):
            return validation_error("state, sort or direction has an invalid value")
        pulls = [p for p in self.pulls_by_repo[repo] if state == "all" or p.state == state]
        if "head" in q:
            owner, _, ref = q["head"].partition(":")
            pulls = [p for p in pulls if owner == ORG and p.head == ref] if ref else []
        if "base" in q:
            pulls = [p for p in pulls if p.base == q["base"]]
        key = (lambda p: p.updated) if sort == "updated" else (lambda p: p.created)
        pulls.sort(key=key, reverse=direction == "desc")
        base = str(request.base_url).rstrip("/")
        version = request.headers.get("x-github-api-version", VERSIONS[0])
        return self._page(request, pulls, f"/repositories/{self.repo_ids[repo]}/pulls",
                          lambda p: self._listed_pull(base, p, version))

    async def list_issues(self, request: Request) -> Response:
        return await list_issues(self, request, validation_error)  # sandbox/github_issues.py

    async def list_commits(self, request: Request) -> Response:
        return await list_commits(self, request, validation_error)  # sandbox/github_commits.py

    async def search(self, request: Request) -> Response:
        return await search_issues(self, request, error, validation_error)  # sandbox/github_search.py

    async def list_reviews(self, request: Request) -> Response:
        return await list_reviews(self, request)  # sandbox/github_reviews.py

    async def get_pull(self, request: Request) -> Response:
        repo = self._repo_from_path(request)
        number = request.path_params["number"]
        pr = next((p for p in self.pulls_by_repo.get(repo or "", []) if p.number == number), None)
        if pr is None:
            return error(404, "Not Found")
        version = request.headers.get("x-github-api-version", VERSIONS[0])
        body = self._pull_json(str(request.base_url).rstrip("/"), pr, version, detail=True)
        return json_response(body, headers=self._rate_headers(request))

    async def get_user(self, request: Request) -> Response:
        user = self.users.get(request.path_params["login"])
        if user is None:
            return error(404, "Not Found")
        return json_response({**self._user_json(str(request.base_url).rstrip("/"), user), "name": user.name,
                              "company": user.company, "blog": "", "location": user.location, "email": user.email,
                              "hireable": None, "bio": None, "public_repos": 3, "followers": 1, "following": 0,
                              "created_at": _ts(user.created), "updated_at": "2026-01-01T00:00:00Z"},
                             headers=self._rate_headers(request))

    async def rate_limit(self, request: Request) -> Response:
        auth = request.headers.get("authorization", "").partition(" ")[2]
        used = self.budget.used.get(auth, 0)
        core = {"limit": self.budget.limit, "used": used, "remaining": self.budget.limit - used,
                "reset": int(self.budget.reset_at.get(auth, 0)), "resource": "core"}
        body: dict[str, Any] = {"resources": {"core": core}}
        if request.headers.get("x-github-api-version", VERSIONS[0]) == "2022-11-28":
            body["rate"] = core
        return json_response(body)

    # -- JSON shapes -------------------------------------------------------------------------------------------
    def _user_json(self, base: str, user: User) -> dict[str, Any]:
        return {"login": user.login, "id": user.github_id, "node_id": f"MDQ6VXNlcj{user.github_id}",
                "avatar_url": f"{base}/avatars/{user.login}", "gravatar_id": "", "url": f"{base}/users/{user.login}",
                "html_url": f"https://github.com/{user.login}", "type": "User", "site_admin": False}

    def _repo_json(self, base: str, name: str) -> dict[str, Any]:
        rid = self.repo_ids[name]
        return {"id": rid, "node_id": f"MDEwOlJlcG9zaXRvcnk{rid}", "name": name, "full_name": f"{ORG}/{name}",
                "private": True, "owner": {"login": ORG, "id": 1, "type": "Organization"},
                "html_url": f"https://github.com/{ORG}/{name}", "description": None, "fork": False,
                "url": f"{base}/repos/{ORG}/{name}", "default_branch": "main", "visibility": "private"}

    def _listed_pull(self, base: str, pr: PullRequest, version: str) -> str:
        """A pull request as the listing shows it, encoded once per (host, pull request, API version)."""
        key = (base, pr.id, version)
        text = self._listed.get(key)
        if text is None:
            text = self._listed[key] = json.dumps(self._pull_json(base, pr, version, detail=False))
        return text

    def _pull_json(self, base: str, pr: PullRequest, version: str, detail: bool) -> dict[str, Any]:
        author = self.users[pr.author]
        html = f"https://github.com/{ORG}/{pr.repo}/pull/{pr.number}"
        url = f"{base}/repos/{ORG}/{pr.repo}/pulls/{pr.number}"
        repo = self._repo_json(base, pr.repo)
        body: dict[str, Any] = {
            "url": url, "id": pr.id, "node_id": f"PR_kwDO{pr.id}", "html_url": html,
            "diff_url": f"{html}.diff", "patch_url": f"{html}.patch",
            "issue_url": f"{base}/repos/{ORG}/{pr.repo}/issues/{pr.number}", "number": pr.number,
            "state": pr.state, "locked": False, "title": pr.title, "user": self._user_json(base, author),
            "body": f"Implements {pr.head}.",
            "labels": [{"id": 4000 + i, "node_id": f"LA_{name}", "url": f"{base}/labels/{name}", "name": name,
                        "description": None, "color": "ededed", "default": False}
                       for i, name in enumerate(pr.labels)],
            "milestone": None, "active_lock_reason": None, "created_at": _ts(pr.created),
            "updated_at": _ts(pr.updated), "closed_at": _ts(pr.closed_at), "merged_at": _ts(pr.merged_at),
            "assignees": [], "requested_reviewers": [], "requested_teams": [],
            "head": {"label": f"{ORG}:{pr.head}", "ref": pr.head, "sha": f"{pr.id:040x}"[-40:],
                     "user": {"login": ORG, "id": 1}, "repo": repo},
            "base": {"label": f"{ORG}:{pr.base}", "ref": pr.base, "sha": f"{pr.id + 1:040x}"[-40:],
                     "user": {"login": ORG, "id": 1}, "repo": repo},
            "_links": {"self": {"href": url}, "html": {"href": html}},
            "author_association": "MEMBER", "auto_merge": None, "draft": False,
        }
        if version == "2022-11-28":
            body["merge_commit_sha"] = f"{pr.id + 2:040x}"[-40:] if pr.merged_at else None
            body["assignee"] = None
        if detail:
            body.update({"merged": pr.merged_at is not None, "mergeable": None, "rebaseable": None,
                         "mergeable_state": "unknown", "merged_by": None, "comments": 0, "review_comments": 0,
                         "maintainer_can_modify": False, "commits": 1, "additions": pr.additions,
                         "deletions": pr.deletions, "changed_files": pr.changed_files})
        return body


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body), status_code=status, headers=headers,
                    media_type="application/json; charset=utf-8")


def error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return json_response({"message": message, "documentation_url": DOCS, "status": str(status)}, status, headers)


def validation_error(message: str) -> Response:
    return json_response({"message": "Validation Failed", "documentation_url": DOCS,
                          "errors": [{"resource": "PullRequest", "code": "invalid", "message": message}]}, 422)
