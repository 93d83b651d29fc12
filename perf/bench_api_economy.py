"""API economy of cross-app joins: upstream requests per plan, counted from the sandbox's request log.

For each query it runs the same SQL under four planner settings and checks that all four answers are equal:
  full scan         every table listed in full (join_strategy=scan)
  one call per row  the driving side's keys sent one request per key (join_strategy=per_row, Steampipe's shape)
  auto (cold)       OmniSQL's choice on a fresh engine (estimates from the TableSpecs, plus one count call)
  auto (warm)       the same engine again, now with row counts from its earlier fetches

Queries: the seed join with ``ji.status = 'In Progress'`` over the demo org, and a join of 1,000 pull requests
(one repository of a larger org) against Jira. Starts its own sandboxes on 127.0.0.1; every loop is bounded.

    .venv/bin/python perf/bench_api_economy.py [--pulls 4000] [--issues 12000]
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from typing import Any

import httpx

from demo.launch import Sandbox, start_sandbox
from demo.tenant import SEED_QUERIES, UNTHROTTLED, demo_config
from flight_server.app import RunningService, start_service

BIG_JOIN = ("SELECT gh.number, gh.branch, ji.issue_key, ji.status FROM github.pull_requests gh "
            "JOIN jira.issues ji ON gh.branch = ji.branch_name WHERE gh.repo = 'web-frontend'")


def _requests(sandbox: Sandbox, clear: bool = True) -> dict[str, int]:
    counts = {}
    for app, url in (("github", sandbox.github_url), ("jira", sandbox.jira_url)):
        entries = httpx.get(f"{url}/_sandbox/requests", timeout=60).json()
        counts[app] = sum(1 for e in entries if not e["path"].startswith("/_sandbox"))
        if clear:
            httpx.delete(f"{url}/_sandbox/requests", timeout=60).raise_for_status()
    return counts


def _service(sandbox: Sandbox, strategy: str) -> RunningService:
    config = demo_config(sandbox.info(), "127.0.0.1", 0, UNTHROTTLED)
    return start_service(dataclasses.replace(config, join_strategy=strategy))


def _run(sandbox: Sandbox, service: RunningService, sql: str) -> dict[str, Any]:
    _requests(sandbox)
    started = time.perf_counter()
    result = service.engine.query(sql)
    ms = (time.perf_counter() - started) * 1000
    counts = _requests(sandbox)
    strategies = ", ".join(f"{s.strategy}" + (f" ({s.keys} keys)" if s.keys is not None else "")
                           for s in result.steps)
    rows = sorted(map(repr, result.table.to_pylist()))
    return {"github": counts["github"], "jira": counts["jira"], "total": sum(counts.values()), "ms": ms,
            "rows": result.table.num_rows, "answer": rows, "strategies": strategies}


def bench(title: str, sandbox: Sandbox, sql: str) -> None:
    services = {s: _service(sandbox, s) for s in ("scan", "per_row", "auto")}
    try:
        runs = {"full scan": _run(sandbox, services["scan"], sql),
                "one call per row": _run(sandbox, services["per_row"], sql),
                "auto (cold)": _run(sandbox, services["auto"], sql),
                "auto (warm)": _run(sandbox, services["auto"], sql)}
    finally:
        for service in services.values():
            service.stop()
    truth = runs["full scan"]["answer"]
    print(f"\n{title}\n  {sql}")
    print(f"  {'plan':<18}{'github':>8}{'jira':>8}{'total':>8}{'rows':>7}{'ms':>9}  same answer  strategies")
    for name, run in runs.items():
        print(f"  {name:<18}{run['github']:>8}{run['jira']:>8}{run['total']:>8}{run['rows']:>7}{run['ms']:>9.0f}"
              f"  {'yes' if run['answer'] == truth else 'NO':<11}  {run['strategies']}")
    if any(run["answer"] != truth for run in runs.values()):
        raise SystemExit("plans disagree: this is a bug")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pulls", type=int, default=4000, help="pull requests in the large org (4 repositories)")
    parser.add_argument("--issues", type=int, default=12000, help="Jira issues in the large org")
    args = parser.parse_args()
    demo = start_sandbox(github_rate_limit=1_000_000, jira_rate_limit=1_000_000)
    try:
        bench("Seed join, ji.status = 'In Progress' (demo org: 1,100 PRs, 1,000 issues)", demo,
              SEED_QUERIES["in_progress_join"])
    finally:
        demo.stop()
    large = start_sandbox(github_rate_limit=1_000_000, jira_rate_limit=1_000_000, pulls=args.pulls,
                          issues=args.issues)
    try:
        bench(f"1,000 PR branches against Jira (large org: {args.pulls} PRs, {args.issues} issues)", large,
              BIG_JOIN)
    finally:
        large.stop()


if __name__ == "__main__":
    main()
