"""Tenant config loading: env-var credentials and errors that name the wrong key."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from flight_server.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parent.parent


def test_example_config_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GITHUB_TOKEN", "JIRA_EMAIL", "JIRA_API_TOKEN", "OMNISQL_TOKEN_ADMIN", "OMNISQL_SECRET"):
        monkeypatch.setenv(name, f"value-of-{name}")
    config = load_config(ROOT / "tenant.example.yaml")
    assert config.github and config.github.token == "value-of-GITHUB_TOKEN"
    assert config.jira and config.jira.project_teams["WEB"] == "web"
    assert config.principals[0][0] == "value-of-OMNISQL_TOKEN_ADMIN"


def test_missing_env_var_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOPE_TOKEN", raising=False)
    path = tmp_path / "t.yaml"
    path.write_text("connectors: {github: {org: x, token_env: NOPE_TOKEN}}\nprincipals: []\n")
    with pytest.raises(ConfigError, match="NOPE_TOKEN"):
        load_config(path)


def test_tls_needs_both_files_that_exist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("T", "token")
    path = tmp_path / "t.yaml"
    base = "principals: [{user: a, token_env: T}]\n"
    path.write_text(base)
    assert load_config(path).tls() is None
    path.write_text(base + f"listen: {{tls_cert_file: {tmp_path / 'c.pem'}}}\n")
    with pytest.raises(ConfigError, match="both a certificate and a key"):
        load_config(path).tls()
    path.write_text(base + f"listen: {{tls_cert_file: {tmp_path / 'c.pem'}, tls_key_file: {tmp_path / 'k.pem'}}}\n")
    with pytest.raises(ConfigError, match="cannot read the TLS certificate"):
        load_config(path).tls()


# -- the file checked whole: every problem with its line ----------------------------------------------------------
BASE = "principals: [{user: a, token_env: T}]\n"


def problems_of(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "t.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    prefix = f"{path}:"
    assert all(p.startswith(prefix) for p in raised.value.problems), raised.value.problems
    return [p[len(str(path)) + 1:] for p in raised.value.problems]  # "LINE:COLUMN: key message"


@pytest.fixture()
def t_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("T", "token")
    monkeypatch.setenv("GH", "gh-token")


@pytest.mark.parametrize(("text", "expected"), [
    ("conectors: {}\n", "2:1: conectors: unknown key; did you mean 'connectors'?"),
    ("connectors:\n  github:\n    base_ur: https://x.test\n    org: a\n    token_env: GH\n",
     "4:5: connectors.github.base_ur: unknown key; did you mean 'base_url'?"),
    ("listen: {host: 0.0.0.0, prot: 1}\n", "2:25: listen.prot: unknown key; did you mean 'port'?"),
    ("listen:\n  port: '8815'\n", "3:3: listen.port must be an integer, not '8815'"),
    ("planner:\n  pushdown: \"no\"\n", "3:3: planner.pushdown must be true or false, not 'no' (quoted, it is a "
                                      "string: write true or false without quotes)"),
    ("planner:\n  join_strategy: bnd\n", "3:3: planner.join_strategy must be one of auto, scan, bind, per_row, "
                                         "not 'bnd'; did you mean 'bind'?"),
    ("max_upload_bytes: 3 parsecs\n", "2:1: max_upload_bytes must be a number of bytes or a size such as '4GiB' or "
                                      "'512MiB', not '3 parsecs'"),
    ("max_concurrent_queries: 0\n", "2:1: max_concurrent_queries must be at least 1, not 0"),
    ("query_deadline_s: 0\n", "2:1: query_deadline_s must be above 0, not 0"),
    ("tenant: a\ntenant: b\n", "3:1: tenant: appears twice (first on line 2); keep one"),
    ("connectors:\n  Bad-Name: {type: github, org: a, token_env: GH}\n",
     "3:3: connectors.Bad-Name: a connector name is its SQL schema, so it must be lowercase letters, digits and _ "
     "(starting with a letter), and not a reserved schema name"),
    ("connectors:\n  gh: {type: gitlab}\n", "3:8: connectors.gh.type: unknown connector type 'gitlab' (known: "
                                            "github, jira, manifest, mcp, salesforce)"),
    ("connectors:\n  gh: {org: a, token_env: GH}\n", "3:3: connectors.gh.type is required (github, jira, manifest, "
                                                     "mcp, salesforce), unless the name is a type"),
    ("connectors:\n  github:\n    token_env: GH\n", "3:3: connectors.github.org is required"),
    ("connectors:\n  github: {org: a, token_env: GH, max_pages: lots}\n",
     "3:35: connectors.github.max_pages must be an integer, not 'lots'"),
    ("connectors:\n  github: {org: a, token_env: \"ghp 123\"}\n",
     "3:20: connectors.github.token_env must name an environment variable (letters, digits and _), never hold the "
     "secret itself"),
    ("policy:\n  rules:\n    - name: r\n      masks: {author: redcat}\n",
     "5:15: policy.rules[0].masks.author must be redact, null, hash, email, deny or {partial: N}, not 'redcat'"),
    ("policy:\n  defualt: deny\n", "3:3: policy.defualt: unknown key; did you mean 'default'?"),
    ("identity:\n  jwt: {issuer: x, audience: y, jwks_file: /k, leway_s: 3}\n",
     "3:48: identity.jwt.leway_s: unknown key; did you mean 'leeway_s'?"),
    ("rate_limits:\n  brust: 5\n", "3:3: rate_limits.brust: unknown key; did you mean 'burst'?"),
    ("cache:\n  redis_url: http://redis:6379\n", "3:3: cache.redis_url must be a redis://, rediss:// or unix:// URL, "
                                                 "not 'http://redis:6379'"),
    ("principals: [{user: b, token_env: T, rolse: [x]}]\n",
     "2:38: principals[0].rolse: unknown key; did you mean 'roles'?"),
])
def test_each_problem_names_file_line_and_key(tmp_path: Path, t_env: None, text: str, expected: str) -> None:
    body = ("tenant: acme\n" if text.startswith("principals") else BASE) + text  # the case starts on line 2
    assert problems_of(tmp_path, body) == [expected]


def test_every_problem_is_reported_in_one_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("UNSET_A", "UNSET_B", "UNSET_C", "UNSET_D"):
        monkeypatch.delenv(name, raising=False)
    text = """tenant: acme
conectors: {}
connectors:
  github: {org: a, token_env: UNSET_A}
  jira:
    base_url: https://x.atlassian.net
    email_env: UNSET_B
    api_token_env: UNSET_C
planner: {pushdown: "yes"}
principals:
  - {user: a, token_env: UNSET_D}
"""
    assert problems_of(tmp_path, text) == [
        "2:1: conectors: unknown key; did you mean 'connectors'?",
        "4:20: connectors.github.token_env: environment variable UNSET_A (from connectors.github.token_env) is not set",
        "7:5: connectors.jira.email_env: environment variable UNSET_B (from connectors.jira.email_env) is not set",
        "8:5: connectors.jira.api_token_env: environment variable UNSET_C (from connectors.jira.api_token_env) is not "
        "set",
        "9:11: planner.pushdown must be true or false, not 'yes' (quoted, it is a string: write true or false without "
        "quotes)",
        "11:15: principals[0].token_env: environment variable UNSET_D (from principals[0].token_env) is not set",
    ]


def test_a_secret_env_may_be_unset_and_unquoted_no_is_false(tmp_path: Path, t_env: None,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("UNSET_SECRET", raising=False)
    path = tmp_path / "t.yaml"
    path.write_text(BASE + "secret_env: UNSET_SECRET\nplanner: {pushdown: no}\n")
    config = load_config(path)
    assert config.secret is None and config.pushdown is False


@pytest.mark.parametrize(("text", "expected"), [
    ("identity:\n  jwt:\n    jwks_url: http://idp.example.com/k\n    issuer: x\n    audience: y\n",
     "4:5: identity.jwt.jwks_url must be an https:// URL (http:// only for a loopback host)"),
    ("policy:\n  rules:\n    - {name: a, tables: ['*']}\n    - name: qa\n      row_filter: 'team_id = = 1'\n",
     "5:7: policy rule 'qa': row_filter is not a SQL condition"),
    ("connectors:\n  github: {org: a, token_env: GH}\nrate_limits:\n  connectors:\n    gitlab: {burst: 1}\n",
     "6:5: rate_limits.connectors.gitlab: no such connector (configured: github)"),
])
def test_a_section_parsers_error_names_its_line(tmp_path: Path, t_env: None, text: str, expected: str) -> None:
    (problem,) = problems_of(tmp_path, BASE + text)
    assert problem.startswith(expected), problem
    assert "\x1b[" not in problem  # no terminal colours from a parser


def test_yaml_syntax_errors_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("tenant: acme\nconnectors: {github: [\n")
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert str(raised.value) == (f"{path}:3:1: not valid YAML: while parsing a flow node expected the node content, "
                                 "but found '<stream end>'")


# -- the schema ------------------------------------------------------------------------------------------------------
def test_the_schema_is_published_and_matches_the_code() -> None:
    import jsonschema

    from connectors.registry import default_registry
    from flight_server import governance
    from flight_server.limits import KEYS
    from flight_server.tenant_schema import SCHEMA_PATH, load_schema
    from planner.engine import JOIN_STRATEGIES
    from security import jwt_config

    schema = load_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert (ROOT / "schemas" / "tenant.schema.json").read_text() == SCHEMA_PATH.read_text()
    top = schema["properties"]
    assert set(KEYS) <= set(top)
    assert top["planner"]["properties"]["join_strategy"]["enum"] == list(JOIN_STRATEGIES)
    assert schema["$defs"]["connector"]["properties"]["type"]["enum"] == list(default_registry().types)
    assert set(top["rate_limits"]["properties"]) == {*governance._RATE_KEYS, "connectors"}
    assert set(top["cache"]["properties"]) == set(governance._CACHE_KEYS)
    assert set(top["identity"]["properties"]["jwt"]["properties"]) == jwt_config._JWT_KEYS
    assert set(top["identity"]["properties"]["jwt"]["properties"]["claims"]["properties"]) == jwt_config._CLAIM_KEYS


def test_the_example_is_clean_and_covers_the_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    from flight_server.config import read_document
    from sandbox.seed import REPOS, build_seed

    for name in ("GITHUB_TOKEN", "JIRA_EMAIL", "JIRA_API_TOKEN", "OMNISQL_TOKEN_ADMIN", "OMNISQL_SECRET"):
        monkeypatch.setenv(name, "x")
    example = ROOT / "tenant.example.yaml"
    assert example.read_text().startswith("# yaml-language-server: $schema=schemas/tenant.schema.json\n")
    connectors = read_document(example).data["connectors"]
    assert connectors["github"]["repo_teams"] == dict(REPOS)
    assert set(connectors["jira"]["project_teams"]) == {i.project for i in build_seed().issues}


@pytest.mark.parametrize(("data", "where", "byte"), [(b"tenant: acme\n# caf\xe9\n", "2:6", "0xe9"),
                                                     (b"\xff\xfetenant: acme\n", "1:1", "0xff")])
def test_a_file_that_is_not_utf8_names_its_first_bad_byte(tmp_path: Path, data: bytes, where: str, byte: str) -> None:
    path = tmp_path / "t.yaml"
    path.write_bytes(data)  # a Latin-1 editor's file, a UTF-16 one: a sentence, not a UnicodeDecodeError
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == f"{path}:{where}: not UTF-8 text (byte {byte}); save the file as UTF-8"


def test_tls_files_that_are_not_a_pem_pair_are_named(tmp_path: Path) -> None:
    """gRPC refuses a bad certificate or key with the same failure as a taken port ("cannot listen ...: is the port
    taken?"); each mistake is said by name before it gets there."""
    import trustme

    from flight_server.config import check_tls_pair

    ca = trustme.CA()
    issued, other = ca.issue_cert("127.0.0.1"), ca.issue_cert("127.0.0.1")
    cert = issued.cert_chain_pems[0].bytes()
    key = issued.private_key_pem.bytes()
    check_tls_pair(cert, key, "c.pem", "k.pem")  # a right pair passes
    wrong = [(b"not a cert", key, "TLS certificate c.pem (--tls-cert, listen.tls_cert_file) is not a PEM certificate"),
             (cert, cert, "TLS key k.pem (--tls-key, listen.tls_key_file) is not a PEM private key"),
             (cert, other.private_key_pem.bytes(), "TLS key k.pem does not belong to the certificate c.pem")]
    for cert_pem, key_pem, said in wrong:
        with pytest.raises(ConfigError) as caught:
            check_tls_pair(cert_pem, key_pem, "c.pem", "k.pem")
        assert str(caught.value).startswith(said), caught.value


def test_a_tls_flag_alone_names_the_flags_too(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("principals: [{user: a, token_env: CFG_T}]\n")
    done = subprocess.run([sys.executable, "-m", "clients.cli", "serve", "--config", str(path), "--no-http", "--port",
                           "0", "--tls-cert", str(path), "--tls-key", str(path)], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env={**os.environ, "CFG_T": "t"})
    assert done.returncode == 2
    assert done.stderr.startswith(f"omnisql serve: TLS certificate {path} (--tls-cert, listen.tls_cert_file) is not a "
                                  "PEM certificate chain"), done.stderr


def test_config_check_checks_the_tls_files_with_their_line(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(f"principals: [{{user: a, token_env: CFG_T}}]\nlisten:\n  tls_cert_file: {tmp_path / 'no.pem'}\n"
                    f"  tls_key_file: {path}\n")
    done = subprocess.run([sys.executable, "-m", "clients.cli", "config", "check", "--no-probe", str(path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, env={**os.environ, "CFG_T": "t"})
    assert done.returncode == 2  # what serve would refuse, config check says first, with the key's line
    assert done.stderr == (f"omnisql config check: {path}:3:3: cannot read the TLS certificate {tmp_path / 'no.pem'} "
                           "(--tls-cert, listen.tls_cert_file): No such file or directory\n"), done.stderr
