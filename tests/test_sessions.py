"""Flight SQL sessions: SetSessionOptions / GetSessionOptions / CloseSession through ADBC and pyarrow.flight, and
the store's bounds and principal binding in process."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from typing import Any

import adbc_driver_flightsql.dbapi as flightsql
import pyarrow as pa
import pyarrow.flight as flight
import pytest

from flight_server.proto import flight_pb2 as fpb
from flight_server.sessions import (
    COOKIE_NAME,
    DEFAULTS,
    OptionError,
    SessionNotFound,
    SessionStore,
    session_id_from_metadata,
    validate_option,
)

COOKIES = "adbc.flight.sql.rpc.with_cookie_middleware"
SCHEMAS = ["github", "jira"]


# -- through ADBC ----------------------------------------------------------------------------------------------
def _connect(demo: dict[str, Any], token: str, cookies: bool = True) -> Any:
    return flightsql.connect(demo["flight_uri"], db_kwargs={
        "adbc.flight.sql.authorization_header": f"Bearer {token}", COOKIES: "true" if cookies else "false"})


def _start_session(conn: Any) -> Any:
    """``conn`` with its session started. ADBC's Go cookie middleware may store a new session's cookie only after
    SetOptions has returned (when the action stream's context ends), so the call right after the first
    SetSessionOptions can still go out without it (seen once in a loaded full run). This starts the session and
    waits, boundedly, until a call carries the cookie, so the tests see the server, not that race."""
    key = "adbc.flight.sql.session.option.max_staleness_ms"
    conn.adbc_connection.set_options(**{key: "1"})
    for _ in range(100):
        with contextlib.suppress(flightsql.Error):
            if conn.adbc_connection.get_option_int(key) == 1:
                break
        time.sleep(0.02)
    conn.adbc_connection.set_options(**{"adbc.flight.sql.session.optionerase.max_staleness_ms": ""})
    return conn


@pytest.fixture()
def session_conn(demo: dict[str, Any], admin_token: str) -> Iterator[Any]:
    conn = _start_session(_connect(demo, admin_token))
    yield conn
    conn.close()


def _all_options(conn: Any) -> dict[str, Any]:
    return dict(json.loads(conn.adbc_connection.get_option("adbc.flight.sql.session.options")))


def test_current_catalog_and_schema(session_conn: Any) -> None:
    assert session_conn.adbc_current_catalog == "omnisql"
    assert session_conn.adbc_current_db_schema == ""  # no current schema: unqualified names resolve if unique
    session_conn.adbc_current_db_schema = "jira"
    assert session_conn.adbc_current_db_schema == "jira"
    session_conn.adbc_current_db_schema = "GitHub"
    assert session_conn.adbc_current_db_schema == "github"
    session_conn.adbc_current_catalog = "omnisql"
    assert session_conn.adbc_current_catalog == "omnisql"
    assert _all_options(session_conn) == {"catalog": "omnisql", "schema": "github"}


def test_unknown_values_and_names_are_refused_per_option(session_conn: Any) -> None:
    session_conn.adbc_current_db_schema = "jira"
    with pytest.raises(flightsql.ProgrammingError, match=r"'schema' \(invalid value\)"):
        session_conn.adbc_current_db_schema = "nope"
    with pytest.raises(flightsql.ProgrammingError, match=r"'catalog' \(invalid value\)"):
        session_conn.adbc_current_catalog = "other"
    with pytest.raises(flightsql.ProgrammingError, match=r"'bogus' \(invalid name\)"):
        session_conn.adbc_connection.set_options(**{"adbc.flight.sql.session.option.bogus": "1"})
    with pytest.raises(flightsql.ProgrammingError, match=r"'max_staleness_ms' \(invalid value\)"):
        session_conn.adbc_connection.set_options(**{"adbc.flight.sql.session.option.max_staleness_ms": "-5"})
    assert _all_options(session_conn) == {"catalog": "omnisql", "schema": "jira"}  # nothing changed


def test_max_staleness_and_erase(session_conn: Any) -> None:
    conn = session_conn.adbc_connection
    conn.set_options(**{"adbc.flight.sql.session.option.max_staleness_ms": "5000"})  # ADBC sends text here
    assert conn.get_option_int("adbc.flight.sql.session.option.max_staleness_ms") == 5000
    conn.set_options(**{"adbc.flight.sql.session.option.max_staleness_ms": 250})  # ... and int64 here
    assert conn.get_option_int("adbc.flight.sql.session.option.max_staleness_ms") == 250
    session_conn.adbc_current_db_schema = "jira"
    conn.set_options(**{"adbc.flight.sql.session.optionerase.schema": ""})
    conn.set_options(**{"adbc.flight.sql.session.optionerase.max_staleness_ms": ""})
    assert _all_options(session_conn) == {"catalog": "omnisql", "schema": ""}


def test_connections_have_their_own_sessions(demo: dict[str, Any], admin_token: str) -> None:
    first, second = _start_session(_connect(demo, admin_token)), _start_session(_connect(demo, admin_token))
    try:
        first.adbc_current_db_schema = "jira"
        second.adbc_current_db_schema = "github"
        assert (first.adbc_current_db_schema, second.adbc_current_db_schema) == ("jira", "github")
        cursor = first.cursor()
        cursor.execute("SELECT count(*) FROM jira.issues")  # queries still work in a session
        assert cursor.fetchone()[0] > 0
        cursor.close()
    finally:
        first.close()
        second.close()


def test_without_cookies_options_are_not_remembered(demo: dict[str, Any], admin_token: str) -> None:
    """The session lives in the arrow_flight_session_id cookie: a client that drops cookies (ADBC's default)
    reads the defaults back. README says to turn on adbc.flight.sql.rpc.with_cookie_middleware."""
    conn = _connect(demo, admin_token, cookies=False)
    try:
        assert conn.adbc_current_catalog == "omnisql"
        conn.adbc_current_db_schema = "jira"
        assert conn.adbc_current_db_schema == ""
    finally:
        conn.close()


# -- raw, through pyarrow.flight -------------------------------------------------------------------------------
class _Headers(flight.ClientMiddlewareFactory):
    """Collects the response headers of every call (pyarrow exposes no other way to see set-cookie)."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []

    def start_call(self, info: Any) -> flight.ClientMiddleware:
        return _HeaderRecorder(self)

    def set_cookies(self) -> list[str]:
        values = [v for headers in self.received for v in headers.get("set-cookie", [])]
        self.received.clear()
        return [v.decode() if isinstance(v, bytes) else v for v in values]


class _HeaderRecorder(flight.ClientMiddleware):
    def __init__(self, factory: _Headers) -> None:
        self.factory = factory

    def received_headers(self, headers: dict[str, Any]) -> None:
        self.factory.received.append(headers)


@pytest.fixture()
def raw(demo: dict[str, Any]) -> Iterator[tuple[flight.FlightClient, _Headers]]:
    headers = _Headers()
    client = flight.FlightClient(demo["flight_uri"], middleware=[headers])
    yield client, headers
    client.close()


def _options(token: str, session_id: str | None = None, plain_header: bool = False) -> flight.FlightCallOptions:
    headers = [(b"authorization", f"Bearer {token}".encode())]
    if session_id and plain_header:
        headers.append((COOKIE_NAME.encode(), session_id.encode()))
    elif session_id:  # as Go's cookie middleware sends it: pairs joined by ";"
        headers.append((b"cookie", f"other=1;{COOKIE_NAME}={session_id}".encode()))
    return flight.FlightCallOptions(headers=headers)


def _action(client: flight.FlightClient, name: str, body: bytes, options: flight.FlightCallOptions) -> bytes:
    results = list(client.do_action(flight.Action(name, body), options))
    assert len(results) == 1
    return bytes(results[0].body)


def _set(client: flight.FlightClient, options: flight.FlightCallOptions, **values: Any) -> dict[str, int]:
    request = fpb.SetSessionOptionsRequest()
    for name, value in values.items():
        option = request.session_options[name]
        if value is None:
            option.SetInParent()  # valueless: unset
        elif isinstance(value, bool):
            option.bool_value = value
        elif isinstance(value, int):
            option.int64_value = value
        elif isinstance(value, float):
            option.double_value = value
        elif isinstance(value, list):
            option.string_list_value.values.extend(value)
        else:
            option.string_value = value
    result = fpb.SetSessionOptionsResult.FromString(
        _action(client, "SetSessionOptions", request.SerializeToString(), options))
    return {name: error.value for name, error in result.errors.items()}


def _get(client: flight.FlightClient, options: flight.FlightCallOptions) -> dict[str, Any]:
    result = fpb.GetSessionOptionsResult.FromString(_action(client, "GetSessionOptions", b"", options))
    return {k: getattr(v, v.WhichOneof("option_value")) for k, v in result.session_options.items()}


def _new_session(client: flight.FlightClient, headers: _Headers, token: str, **values: Any) -> str:
    headers.set_cookies()
    assert _set(client, _options(token), **values) == {}
    (cookie,) = headers.set_cookies()
    name, _, session_id = cookie.partition("=")
    assert name == COOKIE_NAME and len(session_id) >= 40  # 256 random bits
    return session_id


def test_session_actions_raw(raw: tuple[flight.FlightClient, _Headers], admin_token: str) -> None:
    client, headers = raw
    assert _get(client, _options(admin_token)) == {"catalog": "omnisql", "schema": ""}  # no session: defaults
    assert headers.set_cookies() == []  # ... and none is created
    session_id = _new_session(client, headers, admin_token, schema="jira", max_staleness_ms=1000)
    assert _get(client, _options(admin_token, session_id)) == {"catalog": "omnisql", "schema": "jira",
                                                                "max_staleness_ms": 1000}
    assert _get(client, _options(admin_token, session_id, plain_header=True))["schema"] == "jira"
    errors = _set(client, _options(admin_token, session_id), schema="github", catalog="nope", colour="blue",
                  max_staleness_ms=True)
    invalid = fpb.SetSessionOptionsResult.ErrorValue
    assert errors == {"catalog": invalid.INVALID_VALUE, "colour": invalid.INVALID_NAME,
                      "max_staleness_ms": invalid.INVALID_VALUE}  # only the failures are listed
    assert headers.set_cookies() == []  # the existing session was used
    assert _set(client, _options(admin_token, session_id), max_staleness_ms=None, schema=["jira"]) == {
        "schema": invalid.INVALID_VALUE}
    assert _get(client, _options(admin_token, session_id)) == {"catalog": "omnisql", "schema": "github"}
    # an option set that fails entirely starts no session
    assert _set(client, _options(admin_token), schema="nope") == {"schema": invalid.INVALID_VALUE}
    assert headers.set_cookies() == []


def test_close_session(raw: tuple[flight.FlightClient, _Headers], admin_token: str) -> None:
    client, headers = raw
    session_id = _new_session(client, headers, admin_token, schema="jira")
    result = fpb.CloseSessionResult.FromString(_action(client, "CloseSession", b"",
                                                       _options(admin_token, session_id)))
    assert result.status == fpb.CloseSessionResult.Status.CLOSED
    assert headers.set_cookies() == [f"{COOKIE_NAME}={session_id}; Max-Age=0"]
    for action in ("GetSessionOptions", "CloseSession"):
        with pytest.raises(pa.ArrowKeyError, match="SESSION_NOT_FOUND: the session does not exist") as excinfo:
            _action(client, action, b"", _options(admin_token, session_id))
        assert "Traceback" not in str(excinfo.value)
    with pytest.raises(pa.ArrowKeyError, match="no session to close"):
        _action(client, "CloseSession", b"", _options(admin_token))
    # setting options with a dead session id starts a new session
    assert _set(client, _options(admin_token, session_id), schema="github") == {}
    (cookie,) = headers.set_cookies()
    assert cookie.startswith(f"{COOKIE_NAME}=") and session_id not in cookie


def test_a_session_is_bound_to_its_principal(raw: tuple[flight.FlightClient, _Headers], admin_token: str,
                                              demo: dict[str, Any]) -> None:
    client, headers = raw
    dev_token = demo["tokens"]["token_dev"]
    session_id = _new_session(client, headers, admin_token, schema="jira")
    for action in ("GetSessionOptions", "CloseSession"):  # the same answer as for an id that never existed
        with pytest.raises(pa.ArrowKeyError, match="SESSION_NOT_FOUND: the session does not exist"):
            _action(client, action, b"", _options(dev_token, session_id))
    assert _set(client, _options(dev_token, session_id), schema="github") == {}
    (cookie,) = headers.set_cookies()
    assert session_id not in cookie  # the other principal got a session of its own
    assert _get(client, _options(admin_token, session_id))["schema"] == "jira"  # the owner's is untouched


def test_not_found_is_grpc_not_found(demo: dict[str, Any], admin_token: str) -> None:
    import grpc

    with grpc.insecure_channel(demo["flight_uri"].removeprefix("grpc://")) as channel:
        call = channel.unary_stream("/arrow.flight.protocol.FlightService/DoAction",
                                    request_serializer=fpb.Action.SerializeToString,
                                    response_deserializer=fpb.Result.FromString)
        with pytest.raises(grpc.RpcError) as excinfo:
            list(call(fpb.Action(type="GetSessionOptions"), timeout=30, metadata=[
                ("authorization", f"Bearer {admin_token}"), ("cookie", f"{COOKIE_NAME}=made-up")]))
    error: Any = excinfo.value
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert ("x-omnisql-error-code", "SESSION_NOT_FOUND") in tuple(error.trailing_metadata())


def test_session_actions_are_listed(raw: tuple[flight.FlightClient, _Headers], admin_token: str) -> None:
    client, _ = raw
    names = {a.type for a in client.list_actions(_options(admin_token))}
    assert {"SetSessionOptions", "GetSessionOptions", "CloseSession"} <= names


# -- the store, in process -------------------------------------------------------------------------------------
class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_store_defaults_and_options() -> None:
    store = SessionStore()
    assert store.get(None, "alice") == {"catalog": "omnisql", "schema": None, "max_staleness_ms": None} == DEFAULTS
    session = store.create("alice")
    store.update(session, "alice", {"schema": "jira", "max_staleness_ms": 10})
    assert store.get(session, "alice") == {"catalog": "omnisql", "schema": "jira", "max_staleness_ms": 10}
    store.update(session, "alice", {"schema": None})
    assert store.get(session, "alice")["schema"] is None


def test_store_binds_sessions_to_their_user() -> None:
    store = SessionStore()
    session = store.create("alice")
    for call in (lambda: store.get(session, "bob"), lambda: store.update(session, "bob", {"schema": "jira"}),
                 lambda: store.close(session, "bob")):
        with pytest.raises(SessionNotFound):
            call()
    assert not store.exists(session, "bob") and store.exists(session, "alice")
    store.close(session, "alice")
    with pytest.raises(SessionNotFound):
        store.get(session, "alice")


def test_store_expires_idle_sessions() -> None:
    clock = _Clock()
    store = SessionStore(idle_ttl_s=60, clock=clock)
    kept, idle = store.create("alice"), store.create("alice")
    clock.now += 50
    store.get(kept, "alice")  # use keeps a session alive
    clock.now += 20
    assert store.get(kept, "alice")["catalog"] == "omnisql"
    with pytest.raises(SessionNotFound):
        store.get(idle, "alice")
    assert len(store) == 1
    clock.now += 61
    assert len(store) == 0


def test_store_is_bounded_per_user_and_overall() -> None:
    clock = _Clock()
    store = SessionStore(max_sessions=5, max_per_user=3, clock=clock)
    alice = []
    for _ in range(3):
        clock.now += 1
        alice.append(store.create("alice"))
    clock.now += 1
    store.get(alice[0], "alice")  # alice[1] is now her least recently used
    bob = [store.create("bob") for _ in range(2)]
    clock.now += 1
    alice.append(store.create("alice"))  # her fourth: her least recently used (alice[1]) goes, not bob's
    assert len(store) == 5
    carol = store.create("carol")  # the store is full: its least recently used session (alice[2]) goes
    assert len(store) == 5
    assert [store.exists(s, "alice") for s in alice] == [True, False, False, True]
    assert all(store.exists(s, "bob") for s in bob) and store.exists(carol, "carol")


def test_validate_option() -> None:
    def check(name: str, value: object) -> object:
        return validate_option(name, value, "omnisql", SCHEMAS)

    assert check("catalog", "OmniSQL") == "omnisql" and check("catalog", None) is None
    assert check("schema", "JIRA") == "jira" and check("schema", "") is None
    assert check("max_staleness_ms", "1500") == 1500 == check("max_staleness_ms", 1500.0)
    assert check("max_staleness_ms", 0) == 0
    invalid_values = [("catalog", ""), ("catalog", True), ("schema", "main"), ("schema", ["jira"]),
                      ("max_staleness_ms", -1), ("max_staleness_ms", 1.5), ("max_staleness_ms", "soon"),
                      ("max_staleness_ms", True), ("max_staleness_ms", float("nan"))]
    for name, value, kind in [*((n, v, "INVALID_VALUE") for n, v in invalid_values), ("tz", "UTC", "INVALID_NAME")]:
        with pytest.raises(OptionError) as excinfo:
            check(name, value)
        assert excinfo.value.kind == kind, (name, value)


def test_session_id_from_metadata() -> None:
    assert session_id_from_metadata([("cookie", f"a=1; {COOKIE_NAME}=abc; b=2")]) == "abc"
    assert session_id_from_metadata([("cookie", f'a=1;{COOKIE_NAME}="abc"')]) == "abc"  # Go joins with ";"
    assert session_id_from_metadata([("cookie", "a=1"), ("Cookie", f"{COOKIE_NAME}=xyz")]) == "xyz"
    assert session_id_from_metadata([(COOKIE_NAME, b"raw")]) == "raw"
    assert session_id_from_metadata([("cookie", f"{COOKIE_NAME}="), ("authorization", "Bearer x")]) is None
    assert session_id_from_metadata([]) is None


def test_grpc_status_of_session_not_found() -> None:
    import grpc

    from flight_server.errors import status_of

    code, message, trailers = status_of(SessionNotFound("gone"), "DoAction")
    assert code == grpc.StatusCode.NOT_FOUND and message == "SESSION_NOT_FOUND: gone"
    assert trailers == [("x-omnisql-error-code", "SESSION_NOT_FOUND")]
