"""Flight SQL sessions: per-session options (``catalog``, ``schema``, ``max_staleness_ms``) set by the
SetSessionOptions action and read by GetSessionOptions (and, later, by the planner through ``SessionStore.get``).

A session is named by the ``arrow_flight_session_id`` cookie, as the spec suggests and Arrow's C++ server does
(ADBC keeps it with ``adbc.flight.sql.rpc.with_cookie_middleware=true``); a plain ``arrow_flight_session_id``
header is accepted too. Ids are 256-bit random and bound to the principal that created them: another principal
presenting one gets the same NOT_FOUND as for an id that never existed. The store is bounded: sessions expire
after ``idle_ttl_s`` without use, a principal holds at most ``max_per_user`` (its least recently used goes
first) and the store at most ``max_sessions`` (the least recently used goes first).
"""

from __future__ import annotations

import math
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field

from google.protobuf.message import DecodeError

from core.errors import InvalidQuery, OmniSQLError
from flight_server.proto import flight_pb2 as fpb

__all__ = ["ACTION_TYPES", "COOKIE_NAME", "DEFAULTS", "OPTION_NAMES", "OptionError", "SessionNotFound",
           "SessionReply", "SessionStore", "clear_cookie", "handle_action", "session_id_from_metadata", "set_cookie",
           "validate_option"]

COOKIE_NAME = "arrow_flight_session_id"
OptionValue = str | int | None
# What a call without a session sees (and what an unset option reads as).
DEFAULTS: Mapping[str, OptionValue] = {"catalog": "omnisql", "schema": None, "max_staleness_ms": None}
OPTION_NAMES = tuple(DEFAULTS)


class SessionNotFound(OmniSQLError):
    """The call names a session that does not exist (never did, expired, was closed, or is another
    principal's)."""

    code = "SESSION_NOT_FOUND"


class OptionError(ValueError):
    """One option cannot be set; ``kind`` is ``"INVALID_NAME"`` or ``"INVALID_VALUE"`` (the spec's
    ``SetSessionOptionsResult.ErrorValue`` names)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def validate_option(name: str, value: object, catalog_name: str, schemas: Collection[str]) -> OptionValue:
    """The value to store for ``name`` (``None``: unset, back to the default), or ``OptionError``.

    ``value`` is what the client sent: str, bool, int, float, list of str, or None (the spec's valueless
    SessionOptionValue, which unsets the option).
    """
    if name not in DEFAULTS:
        raise OptionError("INVALID_NAME", f"unknown session option {name!r}; options: {', '.join(OPTION_NAMES)}")
    if value is None:
        return None
    if name == "catalog":
        if not isinstance(value, str) or value.lower() != catalog_name:
            raise OptionError("INVALID_VALUE", f"catalog {value!r} does not exist; the catalog is {catalog_name!r}")
        return catalog_name
    if name == "schema":
        if not isinstance(value, str):
            raise OptionError("INVALID_VALUE", f"schema must be a string, got {value!r}")
        if value == "":
            return None
        if value.lower() not in schemas:
            raise OptionError("INVALID_VALUE", f"schema {value!r} does not exist; schemas: {', '.join(schemas)}")
        return value.lower()
    # max_staleness_ms: a non-negative integer (ADBC's string options send it as text)
    number: float | int
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise OptionError("INVALID_VALUE", f"max_staleness_ms must be a non-negative integer, got {value!r}")
    try:
        number = int(value) if isinstance(value, str) else value
    except ValueError:
        raise OptionError("INVALID_VALUE", f"max_staleness_ms must be a non-negative integer, got {value!r}") from None
    if isinstance(number, float) and (not math.isfinite(number) or number != int(number)):
        raise OptionError("INVALID_VALUE", f"max_staleness_ms must be a non-negative integer, got {value!r}")
    if number < 0:
        raise OptionError("INVALID_VALUE", f"max_staleness_ms must be a non-negative integer, got {value!r}")
    return int(number)


@dataclass
class _Session:
    user: str
    options: dict[str, OptionValue] = field(default_factory=dict)
    last_used: float = 0.0


class SessionStore:
    """Sessions by id, each bound to its principal's user name. Thread-safe."""

    def __init__(self, max_sessions: int = 10_000, max_per_user: int = 100, idle_ttl_s: float = 3600.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if max_sessions < 1 or max_per_user < 1 or idle_ttl_s <= 0:
            raise ValueError("session limits must be positive")
        self.max_sessions = max_sessions
        self.max_per_user = max_per_user
        self.idle_ttl_s = idle_ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._sessions: OrderedDict[str, _Session] = OrderedDict()  # least recently used first
        self._by_user: dict[str, OrderedDict[str, None]] = {}

    def __len__(self) -> int:
        with self._lock:
            self._expire(self._clock())
            return len(self._sessions)

    # -- the planner's view ------------------------------------------------------------------------------------
    def get(self, session_id: str | None, user: str) -> dict[str, OptionValue]:
        """Every option's effective value for this call: the defaults without a session, else the session's
        options over the defaults (keeps the session alive). ``SessionNotFound`` for an unknown, expired,
        closed or foreign session id."""
        if session_id is None:
            return dict(DEFAULTS)
        with self._lock:
            session = self._touch(session_id, user)
            return {**DEFAULTS, **session.options}

    # -- the session actions -----------------------------------------------------------------------------------
    def exists(self, session_id: str | None, user: str) -> bool:
        if session_id is None:
            return False
        with self._lock:
            try:
                self._touch(session_id, user)
            except SessionNotFound:
                return False
            return True

    def create(self, user: str) -> str:
        """A new, empty session for ``user``; evicts to stay within the limits."""
        session_id = secrets.token_urlsafe(32)
        with self._lock:
            now = self._clock()
            self._expire(now)
            mine = self._by_user.setdefault(user, OrderedDict())
            while len(mine) >= self.max_per_user:
                self._drop(next(iter(mine)))
            while len(self._sessions) >= self.max_sessions:
                self._drop(next(iter(self._sessions)))
            self._sessions[session_id] = _Session(user, {}, now)
            self._by_user.setdefault(user, OrderedDict())[session_id] = None
        return session_id

    def update(self, session_id: str, user: str, options: Mapping[str, OptionValue]) -> None:
        """Set (value) or unset (None) options of an existing session."""
        with self._lock:
            session = self._touch(session_id, user)
            for name, value in options.items():
                if value is None:
                    session.options.pop(name, None)
                else:
                    session.options[name] = value

    def close(self, session_id: str | None, user: str) -> None:
        with self._lock:
            if session_id is None:
                raise SessionNotFound("there is no session to close: the call carries no "
                                      f"{COOKIE_NAME} cookie")
            self._touch(session_id, user)
            self._drop(session_id)

    # -- internals (under the lock) ----------------------------------------------------------------------------
    def _touch(self, session_id: str, user: str) -> _Session:
        now = self._clock()
        self._expire(now)
        session = self._sessions.get(session_id)
        if session is None or session.user != user:
            raise SessionNotFound("the session does not exist: it expired, was closed or was never created; "
                                  "SetSessionOptions starts a new one")
        session.last_used = now
        self._sessions.move_to_end(session_id)
        self._by_user[user].move_to_end(session_id)
        return session

    def _expire(self, now: float) -> None:
        while self._sessions:
            oldest_id, oldest = next(iter(self._sessions.items()))
            if now - oldest.last_used < self.idle_ttl_s:
                return
            self._drop(oldest_id)

    def _drop(self, session_id: str) -> None:
        session = self._sessions.pop(session_id)
        mine = self._by_user[session.user]
        del mine[session_id]
        if not mine:
            del self._by_user[session.user]


def session_id_from_metadata(metadata: Iterable[tuple[str, str | bytes]]) -> str | None:
    """The session id a call carries: the ``arrow_flight_session_id`` cookie (``cookie`` headers, pairs
    separated by ``;``) or an ``arrow_flight_session_id`` header."""
    for key, raw in metadata:
        value = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
        key = key.lower()
        if key == COOKIE_NAME and value.strip():
            return value.strip()
        if key != "cookie":
            continue
        for pair in value.split(";"):
            name, sep, cookie = pair.strip().partition("=")
            cookie = cookie.strip()
            if len(cookie) >= 2 and cookie[0] == cookie[-1] == '"':
                cookie = cookie[1:-1]
            if sep and name.strip() == COOKIE_NAME and cookie:
                return cookie
    return None


def set_cookie(session_id: str) -> str:
    """The ``set-cookie`` header value that hands a new session to the client."""
    return f"{COOKIE_NAME}={session_id}"


def clear_cookie(session_id: str) -> str:
    """The ``set-cookie`` header value that makes the client forget a closed session."""
    return f"{COOKIE_NAME}={session_id}; Max-Age=0"


# -- the Flight session actions (raw protobuf bodies and results, as the spec says) ------------------------------
ACTION_TYPES = ("SetSessionOptions", "GetSessionOptions", "CloseSession")


@dataclass(frozen=True)
class SessionReply:
    """The action's result bodies and, when the client's cookie must change, the ``set-cookie`` header value."""

    bodies: list[bytes]
    set_cookie: str | None = None


def handle_action(store: SessionStore, catalog_name: str, schemas: Collection[str], user: str, action_type: str,
                  body: bytes, session_id: str | None) -> SessionReply:
    """SetSessionOptions / GetSessionOptions / CloseSession for ``user``'s call carrying ``session_id``.

    - Set: applies each option on its own; the result lists only those that failed (INVALID_NAME /
      INVALID_VALUE). Without a usable session (none, expired, closed, another principal's) it starts a new
      one and hands it over with ``set-cookie`` - but only when at least one option was set.
    - Get: the session's options over the defaults; without a session cookie, the defaults (what such a call
      runs with); an unusable session id is NOT_FOUND.
    - Close: CLOSED, and ``set-cookie`` with ``Max-Age=0``; NOT_FOUND without a usable session.
    """
    if action_type == "SetSessionOptions":
        request = fpb.SetSessionOptionsRequest()
        _parse(request, body, action_type)
        result = fpb.SetSessionOptionsResult()
        accepted: dict[str, OptionValue] = {}
        for name, value in request.session_options.items():
            try:
                accepted[name] = validate_option(name, _from_proto(value), catalog_name, schemas)
            except OptionError as exc:
                result.errors[name].value = fpb.SetSessionOptionsResult.ErrorValue.Value(exc.kind)
        cookie = None
        if accepted:
            if not store.exists(session_id, user):
                session_id = store.create(user)
                cookie = set_cookie(session_id)
            assert session_id is not None
            store.update(session_id, user, accepted)
        return SessionReply([result.SerializeToString()], cookie)
    if action_type == "GetSessionOptions":
        _parse(fpb.GetSessionOptionsRequest(), body, action_type)
        current = store.get(session_id, user)
        options = fpb.GetSessionOptionsResult()
        for name, value in current.items():
            if name == "schema":
                options.session_options[name].string_value = value if isinstance(value, str) else ""
            elif isinstance(value, str):
                options.session_options[name].string_value = value
            elif isinstance(value, int):
                options.session_options[name].int64_value = value
        return SessionReply([options.SerializeToString()])
    if action_type == "CloseSession":
        _parse(fpb.CloseSessionRequest(), body, action_type)
        store.close(session_id, user)
        assert session_id is not None
        closed = fpb.CloseSessionResult(status=fpb.CloseSessionResult.Status.CLOSED)
        return SessionReply([closed.SerializeToString()], clear_cookie(session_id))
    raise ValueError(f"not a session action: {action_type}")


def _parse(message: fpb.SetSessionOptionsRequest | fpb.GetSessionOptionsRequest | fpb.CloseSessionRequest,
           body: bytes, action_type: str) -> None:
    try:
        message.ParseFromString(body)
    except DecodeError as exc:
        raise InvalidQuery(f"the {action_type} body is not a {type(message).__name__} (sent as is, not wrapped "
                           "in Any)") from exc


def _from_proto(value: fpb.SessionOptionValue) -> object:
    kind = value.WhichOneof("option_value")
    if kind is None:
        return None
    if kind == "string_list_value":
        return list(value.string_list_value.values)
    return getattr(value, kind)
