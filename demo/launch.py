"""Start the sandbox and the demo tenant's config; the banner that tells a newcomer what to try."""

from __future__ import annotations

import dataclasses
import json
import os

from demo.tenant import SEED_QUERIES, demo_config, demo_tokens
from flight_server.config import TenantConfig
from sandbox.server import Sandbox, start_sandbox

__all__ = ["Sandbox", "banner", "demo_tokens", "start_demo", "start_sandbox"]


def start_demo(host: str, port: int, github_rate_limit: int) -> tuple[Sandbox, TenantConfig]:
    """The sandbox and the demo tenant. Tickets and session tokens are signed with ``$OMNISQL_SECRET`` when it is
    set (demo replicas that share it redeem each other's tickets), else with a random key per start."""
    sandbox = start_sandbox(host=host, github_rate_limit=github_rate_limit)
    config = demo_config(sandbox.info(), host, port)
    secret = os.environ.get("OMNISQL_SECRET", "")
    return sandbox, dataclasses.replace(config, secret=secret.encode()) if secret else config


def banner(uri: str, sandbox: Sandbox) -> str:
    admin = demo_tokens()["token_admin"]
    lines = [f"OmniSQL demo is serving Flight SQL at {uri}",
             f"  tokens: {json.dumps(demo_tokens())}",
             f"  sandbox: GitHub {sandbox.github_url}, Jira {sandbox.jira_url}",
             "  try (ADBC, Python):",
             "    import adbc_driver_flightsql.dbapi as f",
             f"    conn = f.connect('{uri}', db_kwargs={{'adbc.flight.sql.authorization_header': 'Bearer {admin}'}})"]
    for name in ("merged_prs", "in_progress_join", "points_vs_loc"):
        lines += [f"  -- {name}", f"  {SEED_QUERIES[name]};"]
    lines += [f"  or: omnisql query --uri {uri} --token {admin} \"SELECT ...\"",
              f"  see the fetch plan (API calls, bind joins): omnisql explain --uri {uri} --token {admin} "
              f"\"{SEED_QUERIES['merged_unresolved_audit']}\""]
    return "\n".join(lines)
