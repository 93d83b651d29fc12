"""Start the sandbox and the demo tenant's config; the banner that tells a newcomer what to try."""

from __future__ import annotations

import dataclasses
import json
import os
import shlex

from demo.linear import with_linear
from demo.tenant import DEMO_TOKENS, SEED_QUERIES, demo_config, demo_tokens
from flight_server.config import TenantConfig
from sandbox.fault_spec import parse_fault_specs
from sandbox.server import Sandbox, start_sandbox

__all__ = ["Sandbox", "banner", "banner_commands", "banner_http", "banner_python", "demo_tokens",
           "parse_fault_specs", "start_demo", "start_sandbox"]


def start_demo(host: str, port: int, github_rate_limit: int) -> tuple[Sandbox, TenantConfig]:
    """The sandbox and the demo tenant. Tickets and session tokens are signed with ``$OMNISQL_SECRET`` when it is
    set (demo replicas that share it redeem each other's tickets), else with a random key per start."""
    sandbox = start_sandbox(host=host, github_rate_limit=github_rate_limit)
    config = with_linear(demo_config(sandbox.info(), host, port), sandbox.info())
    secret = os.environ.get("OMNISQL_SECRET", "")
    return sandbox, dataclasses.replace(config, secret=secret.encode()) if secret else config


DEFAULT_URI = "grpc://127.0.0.1:8815"  # the CLI's default --uri


def shell_quote(text: str) -> str:
    """``text`` as one shell word: in double quotes when that is safe (SQL reads better), else in single quotes."""
    return f'"{text}"' if not set(text) & set('"$`\\!') else shlex.quote(text)


def banner_commands(uri: str) -> list[str]:
    """CLI commands that run as printed from the checkout (where ``make demo`` runs)."""
    admin = demo_tokens()["token_admin"]
    head = ".venv/bin/omnisql {command} " + (f"--uri {uri} " if uri != DEFAULT_URI else "") + f"--token {admin}"
    return [head.format(command="tables"),
            head.format(command="describe") + " jira.issues",
            head.format(command="query") + " " + shell_quote(SEED_QUERIES["merged_prs"]),
            head.format(command="query") + " " + shell_quote(SEED_QUERIES["in_progress_join"]),
            head.format(command="query") + " --format csv " + shell_quote(SEED_QUERIES["points_vs_loc"]),
            head.format(command="explain") + " " + shell_quote(SEED_QUERIES["merged_unresolved_audit"])]


def banner_python(uri: str) -> list[str]:
    """Python lines that run as printed in ``.venv/bin/python`` (``make demo`` installs the ADBC driver there)."""
    admin = demo_tokens()["token_admin"]
    return ["import adbc_driver_flightsql.dbapi as flightsql",
            f"conn = flightsql.connect({uri!r}, db_kwargs={{'adbc.flight.sql.authorization_header': "
            f"'Bearer {admin}'}}, autocommit=True)",  # OmniSQL has no transactions: no autocommit warning
            "cur = conn.cursor()",
            f"cur.execute({SEED_QUERIES['merged_prs']!r})",
            "print(cur.fetch_arrow_table())"]


def banner_http(http_url: str) -> list[str]:
    """The web console's address and a curl line that runs as printed (the HTTP API beside Flight)."""
    admin = demo_tokens()["token_admin"]
    body = json.dumps({"sql": "SELECT repo, count(*) AS merged FROM github.pull_requests WHERE status = ? "
                              "GROUP BY repo", "params": ["merged"]})
    return [f"Web console: {http_url}/   (metrics: {http_url}/metrics, API: {http_url}/openapi.json)",
            f"  curl -s -X POST {http_url}/v1/query -H 'X-User-Token: {admin}' -d {shlex.quote(body)}"]


def banner(uri: str, sandbox: Sandbox, http_url: str | None = None) -> str:
    tokens = " · ".join(f"{user} {token}" for user, token, _, _ in DEMO_TOKENS.values())
    lines = [f"OmniSQL demo is serving Flight SQL at {uri}",
             *(banner_http(http_url) if http_url else []),
             f"  tokens: {tokens}",
             "  sandbox: " + ", ".join(f"{app} {url}" for app, url in (
                 ("GitHub", sandbox.github_url), ("Jira", sandbox.jira_url), ("Linear", sandbox.linear_url),
                 ("Salesforce", sandbox.salesforce_url)) if url),
             "",
             "Try it in another terminal, from this directory (Ctrl-C here stops the demo):",
             *(f"  {command}" for command in banner_commands(uri)),
             "",
             "From Python: start .venv/bin/python (make demo installed the ADBC driver there) and paste:",
             *(f"  {line}" for line in banner_python(uri))]
    return "\n".join(lines)
