"""The demo tenant: the sandbox's org, four principals with fixed tokens, the seed queries."""

from __future__ import annotations

from typing import Any

from connectors.github.connector import GitHubConfig
from connectors.jira.connector import JiraConfig
from connectors.mcp.connector import McpConfig
from connectors.ratelimit import RateLimit, RateLimits
from connectors.registry import ConnectorConfig
from connectors.salesforce.connector import SalesforceConfig
from flight_server.config import TenantConfig
from security.policy import parse_policy
from security.principals import Principal

DEMO_TOKENS = {
    "token_admin": ("admin", "omni-demo-admin-token", ("admin",), {}),
    "token_dev": ("dev", "omni-demo-dev-token", ("developer",), {"team": "mobile"}),
    "token_qa": ("qa", "omni-demo-qa-token", ("qa",), {"team": "mobile"}),
    "token_web_dev": ("web_dev", "omni-demo-web-dev-token", ("developer",), {"team": "web"}),
}
REPO_TEAMS = {"mobile-app": "mobile", "web-frontend": "web", "platform-api": "platform", "infra-tools": "platform"}
PROJECT_TEAMS = {"MOB": "mobile", "WEB": "web", "PLAT": "platform"}

SEED_QUERIES = {
    "merged_prs": "SELECT repo, number, title, author, merged_at FROM github.pull_requests "
                  "WHERE status = 'merged' ORDER BY merged_at DESC, repo, number",
    "in_progress_join": "SELECT gh.repo, gh.number, gh.title, gh.author, ji.issue_key, ji.summary "
                        "FROM github.pull_requests gh JOIN jira.issues ji ON gh.branch = ji.branch_name "
                        "WHERE ji.status = 'In Progress' ORDER BY gh.repo, gh.number, ji.issue_key",
    "merged_unresolved_audit": "SELECT gh.repo, gh.number, gh.merged_at, ji.issue_key, ji.status "
                               "FROM github.pull_requests gh JOIN jira.issues ji ON gh.branch = ji.branch_name "
                               "WHERE gh.status = 'merged' AND ji.status <> 'Done' "
                               "ORDER BY gh.merged_at, gh.repo, gh.number",
    "points_vs_loc": "SELECT ji.assignee, SUM(ji.story_points) AS total_points, "
                     "SUM(gh.additions + gh.deletions) AS total_loc "
                     "FROM github.pull_requests gh JOIN jira.issues ji ON gh.branch = ji.branch_name "
                     "GROUP BY ji.assignee ORDER BY total_loc DESC, ji.assignee LIMIT 10",
}


MASK_KEY = b"omnisql-demo-mask-key"  # the demo's only; a real tenant's comes from policy.mask_key_env
# The seed's access matrix: admins see everything raw; developers see their team's rows; QA sees its team's rows
# with people hidden, emails masked and diff links denied; everyone else nothing (default: deny).
POLICY = parse_policy({"default": "deny", "rules": [
    {"name": "admins", "match": {"roles": ["admin"]}, "tables": ["*"]},
    {"name": "qa pull requests", "match": {"roles": ["qa"]}, "tables": ["github.pull_requests"],
     "row_filter": "team_id = :user.team",
     "masks": {"author": "redact", "author_email": "email", "diff_link": "deny"}},
    {"name": "qa issues", "match": {"roles": ["qa"]}, "tables": ["jira.issues"], "row_filter": "team = :user.team",
     "masks": {"assignee": "redact", "assignee_email": "email"}},
    {"name": "qa users", "match": {"roles": ["qa"]}, "tables": ["github.users"], "masks": {"email": "email"}},
    {"name": "developer pull requests", "match": {"roles": ["developer"]}, "tables": ["github.pull_requests"],
     "row_filter": "team_id = :user.team"},
    {"name": "developer issues", "match": {"roles": ["developer"]}, "tables": ["jira.issues"],
     "row_filter": "team = :user.team"},
    {"name": "developer users", "match": {"roles": ["developer"]}, "tables": ["github.users"]},
]}, MASK_KEY)


# For tests and benchmarks that measure something else than rate-limit governance (the suite makes thousands of
# API calls within minutes); ``make demo`` keeps the tenant default (50 requests at once, then 10/s).
UNTHROTTLED = RateLimits(RateLimit(burst=1_000_000, refill_per_s=1_000_000.0))


def demo_config(sandbox_info: dict[str, Any], host: str, port: int, rate_limits: RateLimits | None = None
                ) -> TenantConfig:
    gh, jira = sandbox_info["github"], sandbox_info["jira"]
    principals = tuple((token, Principal(user=user, tenant="demo", roles=roles, attributes=attrs))
                       for user, token, roles, attrs in DEMO_TOKENS.values())
    return TenantConfig(
        github=GitHubConfig(base_url=gh["base_url"], token=gh["token"], org=gh["org"], repo_teams=REPO_TEAMS),
        jira=JiraConfig(base_url=jira["base_url"], email=jira["email"], api_token=jira["api_token"],
                        project_teams=PROJECT_TEAMS),
        principals=principals, host=host, port=port, policy=POLICY,
        rate_limits=rate_limits or RateLimits(), connectors=_salesforce(sandbox_info) + _mcp(sandbox_info))


def _salesforce(sandbox_info: dict[str, Any]) -> tuple[ConnectorConfig, ...]:
    """The sandbox's Salesforce org (client-credentials flow; batches of 200 so listings page), when it runs."""
    sf = sandbox_info.get("salesforce")
    if not sf:
        return ()
    return (ConnectorConfig("salesforce", "salesforce", SalesforceConfig(
        base_url=sf["base_url"], client_id=sf["client_id"], client_secret=sf["client_secret"], batch_size=200)),)


def demo_tokens() -> dict[str, str]:
    return {key: token for key, (_, token, _, _) in DEMO_TOKENS.items()}


def _mcp(sandbox_info: dict[str, Any]) -> tuple[ConnectorConfig, ...]:
    """The sandbox's MCP incident tracker as ``incidents`` (stdio: the server runs as our subprocess)."""
    mcp = sandbox_info.get("mcp")
    if not mcp:
        return ()
    return (ConnectorConfig("incidents", "mcp", McpConfig("stdio", command=mcp["command"], args=tuple(mcp["args"]),
                                                          cwd=mcp.get("cwd"))),)
