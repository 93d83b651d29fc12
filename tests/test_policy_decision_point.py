"""The external policy decision point (security/decision_point.py) against a small real decision server on
127.0.0.1, through the real Flight service and ADBC: allow and deny, row filters pushed upstream and re-checked,
masks, answers cached per principal, principal values kept literal, and fail-closed on every kind of failure."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import adbc_driver_flightsql.dbapi as flightsql
import httpx
import pyarrow as pa
import pytest

from connectors.github.tables import PULL_REQUESTS
from demo.tenant import MASK_KEY, REPO_TEAMS, UNTHROTTLED, demo_config
from flight_server.app import RunningService, start_service
from flight_server.config import ConfigError, load_config
from sandbox.seed import build_seed, team_of_project
from sandbox.server import Sandbox, start_sandbox
from security.decision_answer import AnswerError, read_answer
from security.decision_point import DecisionPointError, DecisionPointPolicy, decision_point_policy
from security.principals import Principal

SEED = build_seed()
MOBILE_PULLS = [p for p in SEED.pulls if REPO_TEAMS[p.repo] == "mobile"]
MOBILE_ISSUES = [i for i in SEED.issues if team_of_project(i.project) == "mobile"]
MASKED_EMAIL = re.compile(r"^[0-9a-f]{8}\*\*\*\*@acme\.example$")
HOSTILE = "mobile' OR '1'='1"
TEAM = {"row_filter": "team_id = :user.team"}

# token → (user, roles, attributes); what the decision server answers depends on them (see ``decide``)
PRINCIPALS: dict[str, tuple[str, tuple[str, ...], dict[str, str]]] = {
    "dp-admin": ("admin", ("admin",), {}),
    "dp-dev": ("dev", ("developer",), {"team": "mobile"}),
    "dp-qa": ("qa", ("qa",), {"team": "mobile"}),
    "dp-recheck": ("recheck", ("recheck",), {"team": "mobile"}),
    "dp-hostile": ("hostile", ("developer",), {"team": HOSTILE}),
    "dp-cached": ("cached", ("developer",), {"team": "mobile"}),
    "dp-flip": ("flip", ("developer",), {"team": "mobile"}),
    "dp-herd": ("herd", ("developer",), {"team": "mobile"}),  # answered after 0.3 s (single-flight)
    "dp-nobody": ("nobody", (), {}),
    **{f"dp-{fault}": (fault, ("developer",), {"team": "mobile"}) for fault in (
        "http500", "notjson", "array", "typo", "subquery", "unknowncolumn", "badmask", "maskcolumn", "slow",
        "noallow", "badrule", "huge")},
}


def decide(question: dict[str, Any]) -> tuple[int, bytes, float]:
    """The decision server's policy: (HTTP status, body, seconds to wait first). The demo's matrix by role, and
    one broken answer per fault principal."""
    table, principal = question["table"], question["principal"]
    user, roles = principal["user"], set(principal["roles"])
    faults: dict[str, tuple[int, bytes, float]] = {
        "http500": (500, b'{"error": "boom"}', 0), "notjson": (200, b"<html>oops</html>", 0),
        "array": (200, b"[1, 2]", 0), "slow": (200, b'{"result": true}', 3),
        "huge": (200, b'{"result": true, "pad": "' + b"x" * (2 << 20) + b'"}', 0)}
    broken: dict[str, dict[str, Any]] = {
        "typo": {"allow": True, "row_fitler": "team_id = :user.team"},
        "subquery": {"allow": True, "row_filter": "team_id IN (SELECT team_id FROM github.pull_requests)"},
        "unknowncolumn": {"allow": True, "row_filter": "nope = :user.team"},
        "badmask": {"allow": True, "masks": {"author": "scramble"}},
        "maskcolumn": {"allow": True, "masks": {"nope": "redact"}},
        "noallow": {"row_filter": "team_id = :user.team"},
        "badrule": {"allow": True, "rule": "x\n" * 50}}
    if user in faults:
        return faults[user]
    if user in broken and table == "github.pull_requests":
        return 200, json.dumps({"result": broken[user]}).encode(), 0
    result: Any = None  # undefined: no "result" key
    if "admin" in roles:
        result = True
    elif "qa" in roles:
        result = {"github.pull_requests": {"allow": True, "rule": "qa pull requests", **TEAM,
                                           "masks": {"author": "redact", "author_email": "email",
                                                     "diff_link": "deny"}},
                  "jira.issues": {"allow": True, "row_filter": "team = :user.team",
                                  "masks": {"assignee": "redact", "assignee_email": "email"}},
                  "github.users": {"allow": True, "masks": {"email": "email"}}}.get(table)
    elif "recheck" in roles and table == "github.pull_requests":
        result = {"allow": True, "row_filter": "team_id = :user.team AND lower(title) LIKE '%fix%'"}
    elif "developer" in roles:
        result = {"github.pull_requests": {"allow": True, **TEAM},
                  "jira.issues": {"allow": True, "row_filter": "team = :user.team"},
                  "github.users": {"allow": True}}.get(table, False)
        if user == "flip" and FLIPPED.is_set() and table == "github.pull_requests":
            result = False
    return 200, json.dumps({} if result is None else {"result": result}).encode(), 0.3 if user == "herd" else 0


FLIPPED = threading.Event()


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # a new principal's questions arrive at once (the default backlog is 5)
    daemon_threads = True


class DecisionServer:
    """An OPA-style decision server in a thread: POST {"input": ...} → {"result": ...}, recording each question
    (its body and headers) for the tests."""

    def __init__(self, policy: Callable[[dict[str, Any]], tuple[int, bytes, float]]) -> None:
        questions: list[dict[str, Any]] = []
        self.questions = questions

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                questions.append({"body": body, "headers": dict(self.headers), "path": self.path})
                status, answer, delay = policy(body["input"])
                time.sleep(delay)
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                with contextlib.suppress(OSError):  # the client gave up (a timeout test)
                    self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/data/omnisql/decision"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def asked(self, user: str) -> list[str]:
        return [q["body"]["input"]["table"] for q in self.questions if q["body"]["input"]["principal"]["user"] == user]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _policy(url: str, timeout_ms: int = 10_000, cache_ttl_s: float = 300) -> DecisionPointPolicy:
    return decision_point_policy({"decision_point": {"url": url, "timeout_ms": timeout_ms,
                                                     "cache_ttl_s": cache_ttl_s}}, MASK_KEY)


def _serve(sandbox: Sandbox, policy: DecisionPointPolicy) -> RunningService:
    info = {k: v for k, v in sandbox.info().items() if k in ("github", "jira")}
    principals = tuple((token, Principal(user, "acme", roles, attributes))
                       for token, (user, roles, attributes) in PRINCIPALS.items())
    return start_service(dataclasses.replace(demo_config(info, "127.0.0.1", 0, UNTHROTTLED), principals=principals,
                                             policy=policy))


@dataclasses.dataclass
class World:
    sandbox: Sandbox
    decider: DecisionServer
    service: RunningService  # cache_ttl_s 300 (timeouts generous: other work may share the cores)
    short: RunningService  # cache_ttl_s 0.2
    strict: RunningService  # timeout 300 ms
    down: RunningService  # a decision point nobody listens on
    connections: dict[tuple[str, str], Any] = dataclasses.field(default_factory=dict)

    def connect(self, token: str, service: RunningService | None = None) -> Any:
        service = service or self.service
        key = (service.uri, token)
        if key not in self.connections:
            self.connections[key] = flightsql.connect(service.uri, db_kwargs={
                "adbc.flight.sql.authorization_header": f"Bearer {token}"})
        return self.connections[key]

    def github_requests(self) -> list[str]:
        return [e["path"] for e in httpx.get(f"{self.sandbox.github_url}/_sandbox/requests").json()
                if not e["path"].startswith("/_sandbox")]


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    sandbox, decider = start_sandbox(), DecisionServer(decide)
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        closed_port = unused.getsockname()[1]
    services = [_serve(sandbox, _policy(decider.url)), _serve(sandbox, _policy(decider.url, cache_ttl_s=0.2)),
                _serve(sandbox, _policy(decider.url, timeout_ms=300)),
                _serve(sandbox, _policy(f"http://127.0.0.1:{closed_port}/v1/data/omnisql/decision"))]
    world = World(sandbox, decider, services[0], services[1], services[2], services[3])
    yield world
    for conn in world.connections.values():
        conn.close()
    for service in services:
        service.stop()  # closes the decision point's client too
    decider.stop()
    sandbox.stop()


def run(conn: Any, sql: str) -> pa.Table:
    with conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetch_arrow_table()


def scalar(conn: Any, sql: str) -> Any:
    return run(conn, sql).column(0)[0].as_py()


# -- decisions enforced like local rules -------------------------------------------------------------------------
def test_allow_everything(world: World) -> None:
    admin = world.connect("dp-admin")
    assert scalar(admin, "SELECT count(*) FROM github.pull_requests") == len(SEED.pulls)
    assert scalar(admin, "SELECT count(*) FROM jira.issues") == len(SEED.issues)


def test_the_question_names_principal_table_and_columns_and_carries_no_token(world: World) -> None:
    run(world.connect("dp-dev"), "SELECT count(*) FROM github.pull_requests")
    question = next(q for q in world.decider.questions if q["body"]["input"]["principal"]["user"] == "dev"
                    and q["body"]["input"]["table"] == "github.pull_requests")
    assert question["path"] == "/v1/data/omnisql/decision"
    assert question["body"] == {"input": {
        "action": "select", "table": "github.pull_requests", "columns": [c.name for c in PULL_REQUESTS.columns],
        "principal": {"user": "dev", "tenant": "acme", "roles": ["developer"], "attributes": {"team": "mobile"}}}}
    assert "authorization" not in {k.lower() for k in question["headers"]}
    assert "dp-dev" not in json.dumps(world.decider.questions)
    assert not {"omnisql.query_log", "information_schema.tables"} & set(world.decider.asked("dev"))


def test_deny_and_no_decision_are_entitlement_denied_and_hidden(world: World) -> None:
    dev = world.connect("dp-dev")
    with pytest.raises(flightsql.Error, match="ENTITLEMENT_DENIED: you may not read github.commits"):
        run(dev, "SELECT count(*) FROM github.commits")  # {"result": false}
    tables = run(dev, "SELECT table_schema || '.' || table_name AS t FROM information_schema.tables ORDER BY t")
    assert tables.column("t").to_pylist() == ["github.pull_requests", "github.users", "jira.issues"]
    nobody = world.connect("dp-nobody")  # {} (OPA's undefined decision): deny
    with pytest.raises(flightsql.Error, match="ENTITLEMENT_DENIED: you may not read github.pull_requests"):
        run(nobody, "SELECT count(*) FROM github.pull_requests")


def test_row_filter_goes_upstream_and_is_enforced(world: World) -> None:
    httpx.delete(f"{world.sandbox.github_url}/_sandbox/requests").raise_for_status()
    dev = world.connect("dp-dev")
    assert scalar(dev, "SELECT count(*) FROM github.pull_requests") == len(MOBILE_PULLS)
    assert run(dev, "SELECT DISTINCT team_id FROM github.pull_requests").column(0).to_pylist() == ["mobile"]
    assert scalar(dev, "SELECT count(*) FROM jira.issues") == len(MOBILE_ISSUES)
    listed = [p for p in world.github_requests() if p.endswith("/pulls")]
    assert listed and all("mobile-app" in p for p in listed), listed  # other teams' rows never fetched
    plan = run(dev, "EXPLAIN SELECT number FROM github.pull_requests")
    assert "team_id = 'mobile'" in plan.column("pushed_exact")[0].as_py()


def test_a_row_filter_the_api_cannot_apply_is_rechecked(world: World) -> None:
    recheck = world.connect("dp-recheck")
    expected = [p for p in MOBILE_PULLS if "fix" in p.title.lower()]
    assert 0 < len(expected) < len(MOBILE_PULLS)
    assert scalar(recheck, "SELECT count(*) FROM github.pull_requests") == len(expected)
    plan = run(recheck, "EXPLAIN SELECT number FROM github.pull_requests")
    assert "team_id = 'mobile'" in plan.column("pushed_exact")[0].as_py()
    assert "LIKE" in plan.column("local")[0].as_py()


def test_masks_and_denied_columns_apply(world: World) -> None:
    qa = world.connect("dp-qa")
    rows = run(qa, "SELECT author, author_email, team_id FROM github.pull_requests")
    assert rows.num_rows == len(MOBILE_PULLS) and set(rows.column("team_id").to_pylist()) == {"mobile"}
    assert set(rows.column("author").to_pylist()) == {"[HIDDEN]"}
    emails = [e for e in rows.column("author_email").to_pylist() if e is not None]
    assert emails and all(MASKED_EMAIL.match(e) for e in emails)
    assert "diff_link" not in run(qa, "SELECT * FROM github.pull_requests LIMIT 1").schema.names
    with pytest.raises(flightsql.Error, match="ENTITLEMENT_DENIED: you may not read github.pull_requests.diff_link"):
        run(qa, "SELECT diff_link FROM github.pull_requests")
    authors = {p.author for p in MOBILE_PULLS}
    grouped = run(qa, "SELECT author, count(*) AS n FROM github.pull_requests GROUP BY author")
    assert grouped.column("author").to_pylist() == ["[HIDDEN]"] and not authors & set(grouped.column(0).to_pylist())
    plan = run(qa, "EXPLAIN SELECT number FROM github.pull_requests WHERE author = 'x'")
    assert "author" not in (plan.column("pushed_exact")[0].as_py() or "")  # never filtered upstream on raw values


def test_principal_values_with_quotes_stay_literals(world: World) -> None:
    hostile = world.connect("dp-hostile")
    assert scalar(hostile, "SELECT count(*) FROM github.pull_requests") == 0
    pushed = run(hostile, "EXPLAIN SELECT number FROM github.pull_requests").column("pushed_exact")[0].as_py()
    assert pushed == f'team_id = "{HOSTILE}"'  # one comparison with the whole value


# -- caching -----------------------------------------------------------------------------------------------------
def test_answers_are_cached_per_principal_and_table(world: World) -> None:
    cached = world.connect("dp-cached")
    for _ in range(3):
        assert scalar(cached, "SELECT count(*) FROM github.pull_requests") == len(MOBILE_PULLS)
    asked = world.decider.asked("cached")
    assert sorted(asked) == sorted(set(asked)) and "github.pull_requests" in asked  # each table once


def test_concurrent_first_queries_ask_each_question_once(world: World) -> None:
    """Four queries of one principal at once (its concurrency cap), before any answer is cached: the decision
    point hears each (principal, table) question once (single-flight), and every query gets its answer."""
    import concurrent.futures

    def count(_: int) -> Any:
        with flightsql.connect(world.service.uri, db_kwargs={
                "adbc.flight.sql.authorization_header": "Bearer dp-herd"}) as conn:
            return scalar(conn, "SELECT count(*) FROM github.pull_requests")

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        counts = list(pool.map(count, range(4)))
    assert counts == [len(MOBILE_PULLS)] * 4
    assert world.decider.asked("herd").count("github.pull_requests") == 1


def test_a_changed_answer_applies_once_the_cached_one_expires(world: World) -> None:
    flip = world.connect("dp-flip", world.short)
    assert scalar(flip, "SELECT count(*) FROM github.pull_requests") == len(MOBILE_PULLS)
    FLIPPED.set()
    try:
        time.sleep(0.3)
        with pytest.raises(flightsql.Error, match="ENTITLEMENT_DENIED: you may not read github.pull_requests"):
            run(flip, "SELECT count(*) FROM github.pull_requests")
    finally:
        FLIPPED.clear()


def test_each_principal_is_its_own_scope_and_a_changed_answer_a_new_one(world: World) -> None:
    policy = _policy(world.decider.url, cache_ttl_s=0.05)
    try:
        specs = list(world.service.engine.catalog.tables.values())
        dev = Principal("flip", "acme", ("developer",), {"team": "mobile"})
        twin = Principal("twin", "acme", ("developer",), {"team": "mobile"})  # the same answers as dev
        first = policy.scope(dev, specs)
        assert first == policy.scope(dev, specs) and first != policy.scope(twin, specs)
        FLIPPED.set()
        time.sleep(0.1)
        assert policy.scope(dev, specs) != first
    finally:
        FLIPPED.clear()
        policy.close()


def test_the_decision_points_own_token_is_sent_and_never_logged(world: World, caplog: pytest.LogCaptureFixture
                                                                ) -> None:
    policy = decision_point_policy({"decision_point": {"url": world.decider.url, "token_env": "DP"}}, MASK_KEY,
                                   {"DP": "s3cret-dp"})
    try:
        assert policy.decide(Principal("tokened", "acme", ("admin",)), PULL_REQUESTS).allowed
        (question,) = [q for q in world.decider.questions if q["body"]["input"]["principal"]["user"] == "tokened"]
        assert {k.lower(): v for k, v in question["headers"].items()}["authorization"] == "Bearer s3cret-dp"
    finally:
        policy.close()
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    down = decision_point_policy({"decision_point": {"url": f"http://127.0.0.1:{port}/d?k=v",
                                                     "token_env": "DP"}}, MASK_KEY, {"DP": "s3cret-dp"})
    try:
        with caplog.at_level("WARNING", "omnisql.policy"), pytest.raises(DecisionPointError, match="cannot be reached"):
            down.decide(Principal("tokened", "acme", ("admin",)), PULL_REQUESTS)
    finally:
        down.close()
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert f"http://127.0.0.1:{port}/d failed" in logged
    assert not any(secret in logged for secret in ("s3cret-dp", "k=v"))


# -- fail closed ---------------------------------------------------------------------------------------------------
UNAVAILABLE = "UPSTREAM_ERROR: the policy decision point"


def test_an_unreachable_decision_point_serves_nothing(world: World) -> None:
    httpx.delete(f"{world.sandbox.github_url}/_sandbox/requests").raise_for_status()
    admin = world.connect("dp-admin", world.down)
    with pytest.raises(flightsql.Error, match=f"{UNAVAILABLE} cannot be reached; no data is served"):
        run(admin, "SELECT count(*) FROM github.pull_requests")
    assert world.github_requests() == []  # not one upstream call


def test_a_slow_decision_point_times_out(world: World) -> None:
    started = time.monotonic()
    with pytest.raises(flightsql.Error, match=f"{UNAVAILABLE} did not answer within 300 ms"):
        run(world.connect("dp-slow", world.strict), "SELECT count(*) FROM github.pull_requests")
    assert time.monotonic() - started < 2.5  # not the 3 s the decision server takes


@pytest.mark.parametrize(("token", "message"), [
    ("dp-http500", "answered HTTP 500"),
    ("dp-notjson", "answered with a body that is not JSON"),
    ("dp-huge", "answered with a body that is too large"),
    ("dp-array", "gave an answer OmniSQL cannot use"),
    ("dp-typo", "gave an answer OmniSQL cannot use"),
    ("dp-subquery", "gave an answer OmniSQL cannot use"),
    ("dp-unknowncolumn", "gave an answer OmniSQL cannot use"),
    ("dp-badmask", "gave an answer OmniSQL cannot use"),
    ("dp-maskcolumn", "gave an answer OmniSQL cannot use"),
    ("dp-noallow", "gave an answer OmniSQL cannot use"),
    ("dp-badrule", "gave an answer OmniSQL cannot use"),
])
def test_a_broken_answer_fails_the_query(world: World, token: str, message: str, caplog: pytest.LogCaptureFixture
                                         ) -> None:
    with caplog.at_level("WARNING", "omnisql.policy"), \
            pytest.raises(flightsql.Error, match=f"{UNAVAILABLE} {message}") as raised:
        run(world.connect(token), "SELECT count(*) FROM github.pull_requests")
    assert "Unavailable" in str(raised.value), raised.value  # gRPC UNAVAILABLE
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "policy decision point http://127.0.0.1:" in logged and token not in logged and "mobile" not in logged


# -- the answer on its own -----------------------------------------------------------------------------------------
DEV = Principal("dev", "acme", ("developer",), {"team": "x'); DROP TABLE t; --"})


@pytest.mark.parametrize(("answer", "reason"), [
    ({"result": {"allow": "yes"}}, "allow must be true or false"),
    ({"result": {"allow": True, "deny_columns": ["author"]}}, "unknown key"),
    ({"result": {"allow": True, "row_filter": 3}}, "row_filter must be a SQL condition"),
    ({"result": {"allow": True, "row_filter": "team_id = = 1"}}, "is not a SQL condition"),
    ({"result": {"allow": True, "row_filter": "EXISTS (SELECT 1)"}}, "subquery"),
    ({"result": {"allow": True, "masks": {"author": {"partial": -1}}}}, "masks.author must be"),
    ({"result": {"allow": True, "masks": ["author"]}}, "must map column names"),
    ({"result": "allow"}, "result must be an object"),
])
def test_answers_are_checked_like_rules(answer: Any, reason: str) -> None:
    with pytest.raises(AnswerError, match=reason):
        read_answer(answer, PULL_REQUESTS, DEV, MASK_KEY)


def test_keyed_masks_need_the_mask_key() -> None:
    with pytest.raises(AnswerError, match="email mask needs a key"):
        read_answer({"result": {"allow": True, "masks": {"author_email": "email"}}}, PULL_REQUESTS, DEV, b"")


def test_an_answer_binds_principal_values_as_literals() -> None:
    decision = read_answer({"result": {"allow": True, "rule": "devs", "row_filter": "team_id = :user.team",
                                       "masks": {"author": {"partial": 2}, "diff_link": "deny"}}},
                           PULL_REQUESTS, DEV, MASK_KEY)
    assert decision.row_filter is not None
    assert decision.row_filter.sql("duckdb") == "team_id = 'x''); DROP TABLE t; --'"
    assert (decision.rule, decision.denied_columns, decision.masks["author"].keep) == ("decision point: devs",
                                                                                       {"diff_link"}, 2)


# -- the tenant file -----------------------------------------------------------------------------------------------
PRINCIPAL_LINE = "principals: [{user: a, token_env: T}]\n"


def _load(tmp_path: Path, text: str) -> Any:
    path = tmp_path / "t.yaml"
    path.write_text(PRINCIPAL_LINE + text)
    return load_config(path)


def test_a_tenant_file_configures_the_decision_point(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("T", "token")
    monkeypatch.setenv("DP_TOKEN", "dp-secret")
    monkeypatch.setenv("MASKS", "k" * 32)
    config = _load(tmp_path, "policy:\n  mask_key_env: MASKS\n  decision_point:\n"
                             "    url: https://opa.internal:8181/v1/data/omnisql/decision\n"
                             "    timeout_ms: 250\n    cache_ttl_s: 5\n    token_env: DP_TOKEN\n")
    policy = config.policy
    assert isinstance(policy, DecisionPointPolicy) and not policy.static and policy.mask_key == b"k" * 32
    settings = policy.point.settings
    assert (settings.timeout_s, settings.cache_ttl_s, settings.token) == (0.25, 5.0, "dp-secret")
    assert "dp-secret" not in repr(settings)


@pytest.mark.parametrize(("text", "expected"), [
    ("policy:\n  decision_point: {url: 'http://127.0.0.1:8181/d', timout_ms: 5}\n",
     "3:52: policy.decision_point.timout_ms: unknown key; did you mean 'timeout_ms'?"),
    ("policy:\n  decision_point:\n    url: ftp://opa\n",
     "4:5: policy.decision_point.url must be an https:// URL (http:// only for a loopback host), not 'ftp://opa'"),
    ("policy:\n  decision_point:\n    url: https://opa\n    cache_ttl_s: 0\n",
     "5:5: policy.decision_point.cache_ttl_s must be above 0, not 0"),
    ("policy:\n  decision_point:\n    url: https://opa\n    token_env: UNSET_DP_TOKEN\n",
     "5:5: policy.decision_point.token_env: environment variable UNSET_DP_TOKEN (from "
     "policy.decision_point.token_env) is not set"),
    ("policy:\n  decision_point:\n    url: http://opa.internal/d\n",
     "4:5: policy.decision_point.url is required: an https:// URL (http:// only for a loopback host)"),
    ("policy:\n  decision_point:\n    url: https://opa:pw@opa.internal/d\n",
     "4:5: policy.decision_point.url must not carry credentials; name the token's variable in "
     "policy.decision_point.token_env"),
    ("policy:\n  default: allow\n  decision_point:\n    url: https://opa\n",
     "3:3: policy.decision_point: leave out policy.default; the decision point decides every table"),
])
def test_tenant_file_errors_name_the_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str,
                                         expected: str) -> None:
    monkeypatch.setenv("T", "token")
    monkeypatch.delenv("UNSET_DP_TOKEN", raising=False)
    with pytest.raises(ConfigError) as raised:
        _load(tmp_path, text)
    (problem,) = raised.value.problems
    assert problem.split(":", 1)[1].startswith(expected), problem


def test_config_check_asks_the_decision_point_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``omnisql config check``: one question as a query would ask it; an unreachable point is named."""
    from flight_server.config_check import check_file

    monkeypatch.setenv("T", "token")
    server = DecisionServer(decide)
    try:
        tenant = tmp_path / "t.yaml"
        connectors = "connectors:\n  github: {base_url: 'http://127.0.0.1:9', org: acme, token_env: T}\n"
        roles = "principals:\n  - {user: ana, token_env: T, roles: [admin]}\n"
        tenant.write_text(connectors + roles + f"policy:\n  decision_point: {{url: '{server.url}'}}\n")
        probe = next(p for p in check_file(tenant).probes if p.connector == "policy.decision_point")
        assert probe.ok and "allows github." in probe.message and "ana" in probe.message, probe
        assert server.asked("ana")  # one real question reached it
        tenant.write_text(connectors + roles + "policy:\n  decision_point: {url: 'http://127.0.0.1:9/d'}\n")
        probe = next(p for p in check_file(tenant).probes if p.connector == "policy.decision_point")
        assert not probe.ok and "cannot be reached" in probe.message and "decision_point.url" in probe.message
    finally:
        server.stop()
