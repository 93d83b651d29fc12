"""``GET /repos/{owner}/{repo}/pulls/{number}/reviews`` for the GitHub stand-in: zero to three reviews per pull
request by teammates of its author, derived from the pull request alone (deterministic, nothing else changes)."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from sandbox.seed import ORG, PullRequest, Seed

__all__ = ["list_reviews", "reviews_of"]

STATES = ("APPROVED", "CHANGES_REQUESTED", "COMMENTED")


def reviews_of(seed: Seed, pr: PullRequest) -> list[dict[str, Any]]:
    """``[{id, reviewer, state, submitted_at, body}]`` of one pull request."""
    rng = random.Random(pr.id)
    author = next(u for u in seed.users if u.login == pr.author)
    mates = sorted(u.login for u in seed.users if u.team == author.team and u.login != pr.author)
    out = []
    for n in range(rng.randint(0, 3)):
        submitted = pr.created + timedelta(hours=rng.randint(1, 72), minutes=rng.randint(0, 59))
        out.append({"id": pr.id + 1 + n, "reviewer": rng.choice(mates), "state": rng.choice(STATES),
                    "submitted_at": submitted, "body": rng.choice(("LGTM", "Please add tests", "", "Nit: naming"))})
    return out


def _ts(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def list_reviews(standin: Any, request: Request) -> Response:
    repo = standin._repo_from_path(request)
    number = request.path_params["number"]
    pr = next((p for p in standin.pulls_by_repo.get(repo or "", []) if p.number == number), None)
    if pr is None:
        return Response('{"message": "Not Found"}', status_code=404, media_type="application/json")
    base = str(request.base_url).rstrip("/")
    html = f"https://github.com/{ORG}/{pr.repo}/pull/{pr.number}"

    def render(review: dict[str, Any]) -> str:
        return json.dumps({"id": review["id"], "node_id": f"PRR_kwDO{review['id']}",
                           "user": standin._user_json(base, standin.users[review["reviewer"]]),
                           "body": review["body"], "state": review["state"],
                           "html_url": f"{html}#pullrequestreview-{review['id']}",
                           "pull_request_url": f"{base}/repos/{ORG}/{pr.repo}/pulls/{pr.number}",
                           "submitted_at": _ts(review["submitted_at"]), "commit_id": "0" * 40,
                           "author_association": "MEMBER"})

    return standin._page(request, reviews_of(standin.seed, pr), f"/repositories/{standin.repo_ids[pr.repo]}/pulls/"
                         f"{pr.number}/reviews", render)
