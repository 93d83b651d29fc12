"""A hostile stand-in upstream on 127.0.0.1: GitHub- and Jira-shaped answers that misbehave on purpose.

Two listeners share one record of every request: ``home`` (the connector's configured base URL) and
``foreign`` (another origin, where links and redirects point). A connector's base URL is
``{home}/{scenario}``, so each test picks its misbehaviour by name; the scenarios are below, one function each.
Only tests import this; it imports nothing of ours."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import threading
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

__all__ = ["Hit", "HostileUpstream", "pull", "running"]


def pull(number: int, repo: str = "app") -> dict[str, Any]:
    """A pull request with every field the connector reads."""
    return {"id": 1000 + number, "number": number, "state": "open", "title": f"PR {number}",
            "user": {"login": "octocat"}, "head": {"ref": f"feature/{number}"},
            "base": {"ref": "main", "repo": {"name": repo}}, "diff_url": f"https://example.test/{number}.diff",
            "labels": [], "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-02T00:00:00Z",
            "merged_at": None}


def issue(number: int) -> dict[str, Any]:
    return {"id": str(number), "key": f"WEB-{number}", "fields": {
        "summary": f"Issue {number}", "status": {"name": "Done"}, "project": {"key": "WEB"},
        "created": "2026-01-01T00:00:00.000+0000", "updated": "2026-01-02T00:00:00.000+0000"}}


@dataclass(frozen=True)
class Hit:
    listener: str  # "home" or "foreign"
    host: str  # the Host header as sent
    method: str
    path: str
    authorization: str | None


@dataclass
class HostileUpstream:
    home: str = ""
    foreign: str = ""
    hits: list[Hit] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def reset(self) -> None:
        self.hits.clear()
        self.counts.clear()

    def at(self, listener: str) -> list[Hit]:
        return [h for h in self.hits if h.listener == listener]

    @property
    def home_port(self) -> int:
        return int(self.home.rsplit(":", 1)[1])


Scenario = Callable[[Request, HostileUpstream, str], Awaitable[Response]]
SCENARIOS: dict[str, Scenario] = {}


def scenario(fn: Scenario) -> Scenario:
    SCENARIOS[fn.__name__] = fn
    return fn


def _pulls_route(rest: str) -> bool:
    return rest.endswith("/pulls")


async def _repos_or(request: Request, rest: str) -> Response | None:
    """Every GitHub scenario lists one repository, ``app``; scenarios misbehave on the pull request listing."""
    if rest.startswith("orgs/"):
        return JSONResponse([{"name": "app"}])
    return None


# -- GitHub-shaped scenarios ---------------------------------------------------------------------------------
@scenario
async def ok(request: Request, up: HostileUpstream, rest: str) -> Response:
    return await _repos_or(request, rest) or JSONResponse([pull(1), pull(2)])


@scenario
async def paged(request: Request, up: HostileUpstream, rest: str) -> Response:
    if (found := await _repos_or(request, rest)) is not None:
        return found
    if request.query_params.get("page") == "2":
        return JSONResponse([pull(3)])
    return JSONResponse([pull(1), pull(2)], headers={"link": '</paged/repositories/7/pulls?per_page=100&page=2>; '
                                                            'rel="next", </paged/repositories/7/pulls?page=2>; '
                                                            'rel="last"'})


@scenario
async def self_link(request: Request, up: HostileUpstream, rest: str) -> Response:
    return await _repos_or(request, rest) or JSONResponse([pull(1)], headers={
        "link": f'<{request.url}>; rel="next"'})


@scenario
async def link_cycle(request: Request, up: HostileUpstream, rest: str) -> Response:
    if (found := await _repos_or(request, rest)) is not None:
        return found
    page = request.query_params.get("page", "1")
    target = "2" if page == "1" else "1"
    return JSONResponse([pull(int(page))], headers={"link": f'</link_cycle/repos/acme/app/pulls?page={target}>; '
                                                            'rel="next"'})


@scenario
async def endless(request: Request, up: HostileUpstream, rest: str) -> Response:
    if (found := await _repos_or(request, rest)) is not None:
        return found
    page = int(request.query_params.get("page", "1"))
    return JSONResponse([pull(page)], headers={"link": f'</endless/repos/acme/app/pulls?page={page + 1}>; rel="next"'})


@scenario
async def foreign_link(request: Request, up: HostileUpstream, rest: str) -> Response:
    return await _repos_or(request, rest) or JSONResponse([pull(1)], headers={
        "link": f'<{up.foreign}/foreign_link/repos/acme/app/pulls?page=2>; rel="next"'})


@scenario
async def other_host_link(request: Request, up: HostileUpstream, rest: str) -> Response:
    """Same listener, but named ``localhost``: another host is another origin."""
    return await _repos_or(request, rest) or JSONResponse([pull(1)], headers={
        "link": f'<http://localhost:{up.home_port}/other_host_link/repos/acme/app/pulls?page=2>; rel="next"'})


@scenario
async def foreign_redirect(request: Request, up: HostileUpstream, rest: str) -> Response:
    if (found := await _repos_or(request, rest)) is not None:
        return found
    return Response(status_code=302, headers={"location": f"{up.foreign}/foreign_redirect/{rest}"})


@scenario
async def same_origin_redirect(request: Request, up: HostileUpstream, rest: str) -> Response:
    if (found := await _repos_or(request, rest)) is not None:
        return found
    if rest.startswith("moved/"):
        return JSONResponse([pull(1)])
    return Response(status_code=301, headers={"location": f"/same_origin_redirect/moved/{rest}?{request.url.query}"})


@scenario
async def redirect_loop(request: Request, up: HostileUpstream, rest: str) -> Response:
    if (found := await _repos_or(request, rest)) is not None:
        return found
    target = "/redirect_loop/b" if rest != "b" else "/redirect_loop/repos/acme/app/pulls"
    return Response(status_code=302, headers={"location": target})


@scenario
async def endless_body(request: Request, up: HostileUpstream, rest: str) -> Response:
    """A page that never ends (chunked, no Content-Length): only a streaming cap stops it."""
    if (found := await _repos_or(request, rest)) is not None:
        return found
    chunk = (json.dumps(pull(1)) + ",").encode() * 200

    async def body() -> AsyncIterator[bytes]:
        yield b"["
        while True:
            yield chunk
            await asyncio.sleep(0)

    return StreamingResponse(body(), media_type="application/json")


@scenario
async def huge_declared(request: Request, up: HostileUpstream, rest: str) -> Response:
    if (found := await _repos_or(request, rest)) is not None:
        return found
    return Response(b"[" + b" " * (4 << 20) + b"]", media_type="application/json")


@scenario
async def slow_body(request: Request, up: HostileUpstream, rest: str) -> Response:
    """Headers at once, then one byte every 200 ms, forever: each read is quick, the body never ends."""
    if (found := await _repos_or(request, rest)) is not None:
        return found

    async def body() -> AsyncIterator[bytes]:
        yield b"["
        while True:
            await asyncio.sleep(0.2)
            yield b" "

    return StreamingResponse(body(), media_type="application/json")


@scenario
async def wrong_shape(request: Request, up: HostileUpstream, rest: str) -> Response:
    return await _repos_or(request, rest) or JSONResponse({"pulls": [pull(1)]})


@scenario
async def bad_records(request: Request, up: HostileUpstream, rest: str) -> Response:
    return await _repos_or(request, rest) or JSONResponse([{**pull(1), "id": "not-a-number"}])


@scenario
async def not_json(request: Request, up: HostileUpstream, rest: str) -> Response:
    return await _repos_or(request, rest) or Response("<html>maintenance</html>", media_type="text/html")


@scenario
async def gzip_garbage(request: Request, up: HostileUpstream, rest: str) -> Response:
    if (found := await _repos_or(request, rest)) is not None:
        return found
    return Response(os.urandom(4096), headers={"content-encoding": "gzip", "content-type": "application/json"})


@scenario
async def flaky(request: Request, up: HostileUpstream, rest: str) -> Response:
    """500 twice, then the answer."""
    if (found := await _repos_or(request, rest)) is not None:
        return found
    up.counts["flaky"] += 1
    if up.counts["flaky"] <= 2:
        return JSONResponse({"message": "Server Error"}, status_code=500)
    return JSONResponse([pull(1), pull(2)])


@scenario
async def echo_error(request: Request, up: HostileUpstream, rest: str) -> Response:
    """An error that echoes our credentials and our request back, in a very long, multi-line message."""
    if (found := await _repos_or(request, rest)) is not None:
        return found
    echoed = f"you sent {request.headers.get('authorization')} for {request.url}\n\x1b[31m"
    return JSONResponse({"message": echoed + "x" * 10_000, "documentation_url": "https://example.test"},
                        status_code=422)


@scenario
async def html_error(request: Request, up: HostileUpstream, rest: str) -> Response:
    if (found := await _repos_or(request, rest)) is not None:
        return found
    return Response(f"<html>{request.headers.get('authorization')}</html>", status_code=404, media_type="text/html")


@scenario
async def rate_limited(request: Request, up: HostileUpstream, rest: str) -> Response:
    if (found := await _repos_or(request, rest)) is not None:
        return found
    return JSONResponse({"message": "API rate limit exceeded for user ID 1."}, status_code=403, headers={
        "x-ratelimit-remaining": "0", "x-ratelimit-limit": "5000", "x-ratelimit-reset": "4102444800"})


# -- Jira-shaped scenarios -----------------------------------------------------------------------------------
def _jira(rest: str) -> str:
    return "count" if rest.endswith("approximate-count") else "search"


@scenario
async def jira_ok(request: Request, up: HostileUpstream, rest: str) -> Response:
    if _jira(rest) == "count":
        return JSONResponse({"count": 3})
    token = (await request.json()).get("nextPageToken")
    if token == "p2":
        return JSONResponse({"issues": [issue(3)], "isLast": True})
    return JSONResponse({"issues": [issue(1), issue(2)], "nextPageToken": "p2", "isLast": False})


@scenario
async def jira_repeat_token(request: Request, up: HostileUpstream, rest: str) -> Response:
    return JSONResponse({"issues": [issue(1)], "nextPageToken": "same", "isLast": False})


@scenario
async def jira_no_token(request: Request, up: HostileUpstream, rest: str) -> Response:
    return JSONResponse({"issues": [issue(1)], "isLast": False})


@scenario
async def jira_endless(request: Request, up: HostileUpstream, rest: str) -> Response:
    token = (await request.json()).get("nextPageToken") or "t0"
    following = f"t{int(token[1:]) + 1}"
    return JSONResponse({"issues": [issue(int(token[1:]))], "nextPageToken": following, "isLast": False})


@scenario
async def jira_wrong_shape(request: Request, up: HostileUpstream, rest: str) -> Response:
    return JSONResponse({"issues": "none today", "isLast": True})


@scenario
async def jira_429_then_ok(request: Request, up: HostileUpstream, rest: str) -> Response:
    up.counts["jira_429_then_ok"] += 1
    if up.counts["jira_429_then_ok"] == 1:
        return JSONResponse({"errorMessages": ["Rate limit exceeded."]}, status_code=429, headers={"Retry-After": "0"})
    return JSONResponse({"issues": [issue(1)], "isLast": True})


@scenario
async def jira_foreign_redirect(request: Request, up: HostileUpstream, rest: str) -> Response:
    return Response(status_code=307, headers={"location": f"{up.foreign}/jira_foreign_redirect/{rest}"})


@scenario
async def jira_post_302(request: Request, up: HostileUpstream, rest: str) -> Response:
    return Response(status_code=302, headers={"location": f"/jira_post_302/elsewhere/{rest}"})


@scenario
async def jira_count_500(request: Request, up: HostileUpstream, rest: str) -> Response:
    if _jira(rest) == "count":
        return JSONResponse({"errorMessages": ["Internal server error"]}, status_code=500)
    return JSONResponse({"issues": [issue(1)], "isLast": True})


@scenario
async def jira_count_garbage(request: Request, up: HostileUpstream, rest: str) -> Response:
    if _jira(rest) == "count":
        return Response(b"\x00\xffnot json", media_type="application/json")
    return JSONResponse({"issues": [issue(1)], "isLast": True})


@scenario
async def jira_count_rate_limited(request: Request, up: HostileUpstream, rest: str) -> Response:
    return JSONResponse({"errorMessages": ["Rate limit exceeded."]}, status_code=429, headers={"Retry-After": "3600"})


@scenario
async def jira_count_foreign(request: Request, up: HostileUpstream, rest: str) -> Response:
    return Response(status_code=308, headers={"location": f"{up.foreign}/x"})


# -- plumbing ------------------------------------------------------------------------------------------------
def _app(listener: str, up: HostileUpstream) -> Starlette:
    async def endpoint(request: Request) -> Response:
        up.hits.append(Hit(listener, request.headers.get("host", ""), request.method, request.url.path,
                           request.headers.get("authorization")))
        name, rest = request.path_params["scenario"], request.path_params["rest"]
        if listener == "foreign" or name not in SCENARIOS:
            return JSONResponse([pull(99)])  # a foreign origin answers happily: it wants the credentials
        return await SCENARIOS[name](request, up, rest)

    return Starlette(routes=[Route("/{scenario}/{rest:path}", endpoint, methods=["GET", "POST"])])


def _bind() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    return sock


@contextlib.contextmanager
def running() -> Iterator[HostileUpstream]:
    """Both listeners in a daemon thread, for the duration of the block."""
    up = HostileUpstream()
    sockets = {"home": _bind(), "foreign": _bind()}
    up.home = f"http://127.0.0.1:{sockets['home'].getsockname()[1]}"
    up.foreign = f"http://127.0.0.1:{sockets['foreign'].getsockname()[1]}"
    servers = {name: uvicorn.Server(uvicorn.Config(_app(name, up), log_level="critical", access_log=False,
                                                   lifespan="off", timeout_graceful_shutdown=1))
               for name in sockets}
    started = threading.Event()

    async def run() -> None:
        tasks = [asyncio.create_task(servers[n].serve(sockets=[sockets[n]])) for n in sockets]
        while not all(s.started for s in servers.values()):
            await asyncio.sleep(0.01)
        started.set()
        await asyncio.gather(*tasks)

    thread = threading.Thread(target=asyncio.run, args=(run(),), name="hostile-upstream", daemon=True)
    thread.start()
    if not started.wait(timeout=20):
        raise RuntimeError("the hostile upstream did not start within 20 s")
    try:
        yield up
    finally:
        for server in servers.values():
            server.should_exit = True
        thread.join(timeout=10)
