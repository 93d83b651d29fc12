"""Issue #11's rule for ``omnisql serve``: the tenant file is the truth, and only flags the user actually passed
override it. Every serve flag names the tenant key it overrides in its help (the README documents that key), or
is one of the few with a stated reason to have none; and for each flag, the file's value holds when the flag is
left out and the flag's wins when it is given."""

from __future__ import annotations

import argparse
import operator
import re
from pathlib import Path
from typing import Any

import pytest

from clients.cli import build_parser
from clients.serve_cmd import NO_TENANT_KEY, serve_settings
from flight_server.config import load_config
from flight_server.tenant_schema import load_schema
from tests.conftest import ROOT

TENANT = """tenant: acme
connectors:
  github: {base_url: "http://127.0.0.1:1", org: acme, token_env: SO_GH}
principals:
  - {user: admin, token_env: SO_ADMIN}
"""

# flag → (the file's lines, the file's value, the flag's argv, the flag's value, where the effective value is)
CASES: dict[str, tuple[str, Any, list[str], Any, str]] = {
    "--host": ("listen: {host: 10.1.2.3}", "10.1.2.3", ["--host", "0.0.0.0"], "0.0.0.0", "config.host"),
    "--port": ("listen: {port: 9999}", 9999, ["--port", "0"], 0, "config.port"),
    "--tls-cert": ("listen: {tls_cert_file: c.pem}", "c.pem", ["--tls-cert", "o.pem"], "o.pem",
                   "config.tls_cert_file"),
    "--tls-key": ("listen: {tls_key_file: k.pem}", "k.pem", ["--tls-key", "o.pem"], "o.pem", "config.tls_key_file"),
    "--workers": ("workers: 3", 3, ["--workers", "2"], 2, "workers"),
    "--query-deadline-s": ("query_deadline_s: 5", 5.0, ["--query-deadline-s", "7"], 7.0, "config.deadline_s"),
    "--duckdb-memory-limit": ("duckdb_memory_limit: 1GiB", 1 << 30, ["--duckdb-memory-limit", "2GiB"], 2 << 30,
                              "config.limits.duckdb_memory_limit"),
    "--max-result-bytes": ("max_result_bytes: 1MiB", 1 << 20, ["--max-result-bytes", "2MiB"], 2 << 20,
                           "config.limits.max_result_bytes"),
    "--max-fetch-bytes-per-query": ("max_fetch_bytes_per_query: 1MiB", 1 << 20,
                                    ["--max-fetch-bytes-per-query", "2MiB"], 2 << 20,
                                    "config.limits.max_fetch_bytes_per_query"),
    "--max-api-calls-per-query": ("max_api_calls_per_query: 7", 7, ["--max-api-calls-per-query", "9"], 9,
                                  "config.limits.max_api_calls_per_query"),
    "--max-concurrent-queries": ("max_concurrent_queries: 7", 7, ["--max-concurrent-queries", "9"], 9,
                                 "config.limits.max_concurrent_queries"),
    "--max-concurrent-queries-per-principal": (
        "max_concurrent_queries_per_principal: 2", 2, ["--max-concurrent-queries-per-principal", "3"], 3,
        "config.limits.max_concurrent_queries_per_principal"),
    "--max-prepared-statements-per-principal": (
        "max_prepared_statements_per_principal: 7", 7, ["--max-prepared-statements-per-principal", "9"], 9,
        "config.limits.max_prepared_statements_per_principal"),
    "--max-upload-bytes": ("max_upload_bytes: 1MiB", 1 << 20, ["--max-upload-bytes", "2MiB"], 2 << 20,
                           "config.limits.max_upload_bytes"),
    "--redis": ("cache: {redis_url: 'redis://a:1/0'}", "redis://a:1/0", ["--redis", "redis://b:2/0"],
                "redis://b:2/0", "config.cache.redis_url"),
    "--cache-max-bytes": ("cache: {max_bytes: 1MiB}", 1 << 20, ["--cache-max-bytes", "2MiB"], 2 << 20,
                          "config.cache.max_bytes"),
    "--default-max-staleness-ms": ("cache: {default_max_staleness_ms: 5}", 5, ["--default-max-staleness-ms", "7"],
                                   7, "config.cache.default_max_staleness_ms"),
    "--cache-full-refresh-s": ("cache: {full_refresh_s: 5}", 5.0, ["--cache-full-refresh-s", "0"], 0.0,
                               "config.cache.full_refresh_s"),
    "--rate-limit-burst": ("rate_limits: {burst: 5}", 5, ["--rate-limit-burst", "7"], 7,
                           "config.rate_limits.default.burst"),
    "--rate-limit-refill-per-s": ("rate_limits: {refill_per_s: 5}", 5.0, ["--rate-limit-refill-per-s", "7"], 7.0,
                                  "config.rate_limits.default.refill_per_s"),
    "--rate-limit-max-wait-ms": ("rate_limits: {max_wait_ms: 5}", 5, ["--rate-limit-max-wait-ms", "7"], 7,
                                 "config.rate_limits.default.max_wait_ms"),
    "--http-port": ("listen: {http_port: 9001}", 9001, ["--http-port", "0"], 0, "http.port"),
    "--no-http": ("listen: {http_port: 9001}", True, ["--no-http"], False, "http"),
    "--http-max-rows": ("http_max_rows: 5", 5, ["--http-max-rows", "7"], 7, "http.max_rows"),
    "--trace-exporter": ("tracing: {exporter: console}", "console", ["--trace-exporter", "none"], "none",
                         "trace_exporter"),
}


def serve_options() -> list[argparse.Action]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return [a for a in sub.choices["serve"]._actions if a.option_strings and not isinstance(a, argparse._HelpAction)]


def schema_has(key: str) -> bool:
    node: dict[str, Any] = load_schema()
    for part in key.split("."):
        properties = node.get("properties", {})
        if part not in properties:
            return False
        node = properties[part]
    return True


def test_every_serve_flag_names_its_tenant_key_or_why_it_has_none() -> None:
    readme = (ROOT / "README.md").read_text()
    for action in serve_options():
        flag = action.option_strings[-1]
        keys = re.findall(r"overrides ([a-z_][a-z0-9_.]*[a-z0-9_])", action.help or "")
        if flag in NO_TENANT_KEY:
            assert not keys, flag
            assert f"`{flag}`" in readme.split("Flags without a tenant key", 1)[1].split("\n\n", 1)[0], flag
            continue
        assert keys, f"{flag}: its help names no tenant key it overrides, and it has no stated reason for none"
        for key in keys:
            assert schema_has(key), (flag, key)
            assert f"`{key}`" in readme, f"{flag}: the README does not document `{key}`"
    assert set(NO_TENANT_KEY) | set(CASES) == {a.option_strings[-1] for a in serve_options()}


@pytest.mark.parametrize("flag", sorted(CASES))
def test_the_file_decides_unless_the_flag_is_given(flag: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                   ) -> None:
    lines, from_file, argv, from_flag, where = CASES[flag]
    monkeypatch.setenv("SO_GH", "t")
    monkeypatch.setenv("SO_ADMIN", "a")
    path = tmp_path / "tenant.yaml"
    path.write_text(TENANT + lines + "\n")
    config = load_config(path)

    def effective(*flags: str) -> Any:
        args = build_parser().parse_args(["serve", "--config", str(path), *flags])
        value = operator.attrgetter(where)(serve_settings(config, args))
        return value is not None if flag == "--no-http" else value

    assert effective() == from_file
    assert effective(*argv) == from_flag


def test_left_out_everywhere_the_defaults_hold(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SO_GH", "t")
    monkeypatch.setenv("SO_ADMIN", "a")
    path = tmp_path / "tenant.yaml"
    path.write_text(TENANT)
    settings = serve_settings(load_config(path), build_parser().parse_args(["serve", "--config", str(path)]))
    assert (settings.workers, settings.trace_exporter) == (1, "none")
    assert settings.http is not None and (settings.http.port, settings.http.max_rows) == (8001, 10_000)


@pytest.mark.parametrize(("lines", "message"), [
    ("http_max_rows: 0", "6:1: http_max_rows must be at least 1, not 0"),
    ("http_max_rows: many", "6:1: http_max_rows must be an integer, not 'many'"),
    ("workers: 0", "6:1: workers must be at least 1, not 0"),
    ("worker: 2", "6:1: worker: unknown key; did you mean 'workers'?"),
])
def test_the_new_keys_are_checked_with_their_line(lines: str, message: str, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from flight_server.config import ConfigError

    monkeypatch.setenv("SO_GH", "t")
    monkeypatch.setenv("SO_ADMIN", "a")
    path = tmp_path / "tenant.yaml"
    path.write_text(TENANT + lines + "\n")
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert raised.value.problems == [f"{path}:{message}"]


def test_a_demo_only_flag_with_a_tenant_file_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Like ``--demo --config``: a flag that would be silently ignored is refused, naming why."""
    from clients.serve_cmd import cmd_serve

    args = build_parser().parse_args(["serve", "--config", str(tmp_path / "t.yaml"), "--github-rate-limit", "10"])
    assert cmd_serve(args) == 2
    assert capsys.readouterr().err.strip() == ("omnisql serve: --github-rate-limit sets the sandbox GitHub's budget "
                                               "(with --demo); a tenant file's GitHub sets its own")
    demo = build_parser().parse_args(["serve", "--demo"])
    assert demo.github_rate_limit is None  # the demo's default (5000) is applied where the sandbox starts


def test_the_container_command_lines_serve_the_ports_they_publish(monkeypatch: pytest.MonkeyPatch) -> None:
    """docker-compose.yml and the Dockerfile cannot run here (no Docker engine): their command lines are parsed by
    the real CLI over the tenant file they mount, and must listen on every interface, on the ports published."""
    import yaml

    for name in ("GITHUB_TOKEN", "JIRA_EMAIL", "JIRA_API_TOKEN", "OMNISQL_TOKEN_ADMIN", "OMNISQL_SECRET"):
        monkeypatch.setenv(name, "x")
    config = load_config(ROOT / "tenant.example.yaml")
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    dockerfile = (ROOT / "Dockerfile").read_text()
    cmd = next(line for line in dockerfile.splitlines() if line.startswith("CMD "))
    lines = {name: (s["command"], {p.rsplit(":", 1)[1] for p in s["ports"]}) for name, s in services.items()
             if name.startswith("omnisql")}
    lines["Dockerfile"] = (yaml.safe_load(cmd[len("CMD "):]), {p.split()[1] for p in dockerfile.splitlines()
                                                                if p.startswith("EXPOSE ")})
    assert len(lines) == 3
    for name, (command, published) in lines.items():
        assert command[:2] == ["omnisql", "serve"], name
        settings = serve_settings(config, build_parser().parse_args(command[1:]))
        assert settings.config.host == "0.0.0.0", name
        assert published == {str(settings.config.port), str(settings.http.port)}, name
