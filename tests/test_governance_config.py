"""The operator's side of rate limits and the cache: the tenant YAML's ``rate_limits`` and ``cache`` sections, the
serve flags over them, a Redis that cannot be reached at start-up, and passwords kept out of messages."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from connectors.ratelimit import RateLimit
from flight_server import app
from flight_server.config import ConfigError, TenantConfig, load_config
from flight_server.governance import GovernanceError, add_serve_flags, apply_serve_flags, redacted
from security.principals import Principal

BASE = """
connectors: {github: {org: acme, token_env: GH}, jira: {base_url: "https://x.atlassian.net", email_env: GH,
             api_token_env: GH}}
principals: [{user: a, token_env: GH}]
"""


def write(tmp_path: Path, text: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GH", "token")
    path = tmp_path / "tenant.yaml"
    path.write_text(BASE + text)
    return path


def test_defaults_without_the_sections(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = load_config(write(tmp_path, "", monkeypatch))
    assert config.rate_limits.for_connector("github") == RateLimit(burst=50, refill_per_s=10.0, max_wait_ms=1000)
    assert config.cache.max_bytes == 256 << 20 and config.cache.redis_url is None
    assert config.cache.default_max_staleness_ms == 0


def test_sections_with_a_per_connector_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://:hunter2@cache.internal:6379/0")
    config = load_config(write(tmp_path, """
rate_limits: {burst: 20, refill_per_s: 2.5, max_wait_ms: 250, connectors: {github: {refill_per_s: 1.4}}}
cache: {max_bytes: 64MiB, max_age_s: 600, default_max_staleness_ms: 30000, redis_url_env: REDIS_URL}
""", monkeypatch))
    assert config.rate_limits.for_connector("jira") == RateLimit(20, 2.5, 250)
    assert config.rate_limits.for_connector("github") == RateLimit(20, 1.4, 250)  # the rest from the section
    assert (config.cache.max_bytes, config.cache.max_age_s, config.cache.default_max_staleness_ms) == (
        64 << 20, 600.0, 30000)
    assert config.cache.redis_url == "redis://:hunter2@cache.internal:6379/0"
    assert "hunter2" not in repr(config.cache)


@pytest.mark.parametrize(("text", "message"), [
    ("rate_limits: {connectors: {linear: {burst: 5}}}", "rate_limits.connectors.linear"),
    ("rate_limits: {burst: 0}", "rate_limits.burst"),
    ("cache: {redis_url: 'http://x'}", "cache.redis_url"),
    ("cache: {redis_url_env: NOT_SET_ANYWHERE}", "NOT_SET_ANYWHERE"),
    ("cache: {redis_url: 'redis://a', redis_url_env: R}", "redis_url"),
])
def test_mistakes_name_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, message: str) -> None:
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    monkeypatch.setenv("R", "redis://b")
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, text, monkeypatch))


def flags(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_serve_flags(parser)
    return parser.parse_args(argv)


def test_flags_override_the_file_but_not_its_per_connector_entries(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    config = load_config(write(tmp_path, "rate_limits: {connectors: {github: {burst: 7}}}", monkeypatch))
    changed = apply_serve_flags(config, flags("--rate-limit-burst", "1000", "--rate-limit-refill-per-s", "500",
                                              "--redis", "redis://127.0.0.1:6379/1", "--cache-max-bytes", "1GiB",
                                              "--default-max-staleness-ms", "5000"))
    assert changed.rate_limits.for_connector("jira") == RateLimit(1000, 500.0, 1000)
    assert changed.rate_limits.for_connector("github").burst == 7
    assert changed.cache.redis_url == "redis://127.0.0.1:6379/1" and changed.cache.max_bytes == 1 << 30
    assert changed.cache.default_max_staleness_ms == 5000
    assert apply_serve_flags(config, flags()) == config
    for bad in (("--redis", "localhost:6379"), ("--rate-limit-refill-per-s", "0"), ("--cache-max-bytes", "lots")):
        with pytest.raises(GovernanceError):
            apply_serve_flags(config, flags(*bad))


def test_a_redis_that_does_not_answer_stops_the_start(monkeypatch: pytest.MonkeyPatch) -> None:
    import dataclasses
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = TenantConfig(github=None, jira=None, principals=(("t", Principal(user="a")),), port=0)
    config = dataclasses.replace(config, cache=dataclasses.replace(
        config.cache, redis_url=f"redis://user:s3cret@127.0.0.1:{port}/0"))
    with pytest.raises(ConfigError, match=r"cannot reach Redis at redis://user:\*\*\*@127\.0\.0\.1") as raised:
        app.start_service(config)
    assert "s3cret" not in str(raised.value)


def test_redacted_keeps_passwords_out() -> None:
    assert redacted("redis://:pw@h:1/0") == "redis://***@h:1/0"
    assert redacted("rediss://me:pw@h/0") == "rediss://me:***@h/0"
    assert redacted("redis://h:6379/0") == "redis://h:6379/0"
