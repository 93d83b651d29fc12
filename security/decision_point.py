"""An external policy decision point (OPA-style) in place of the tenant file's rules: OmniSQL POSTs one question
per (principal, table) and enforces the answer exactly as it enforces a local rule's decision (row filter into the
scan before pushdown and re-checked on every row, masks as Arrow kernels, denied tables and columns refused).

Question (``input`` as OPA's data API expects it; never a token, never a row)::

    POST <url>  {"input": {"action": "select", "table": "github.pull_requests",
                           "columns": ["pr_id", "number", ...],
                           "principal": {"user": "qa", "tenant": "acme", "roles": ["qa"],
                                         "attributes": {"team": "mobile"}}}}

The answer is read by ``security/decision_answer.py``. Answers are kept ``cache_ttl_s`` per (principal identity,
table). Fail closed: no answer within ``timeout_ms``, an unreachable endpoint, a non-200 status or an answer that
does not read is ``DecisionPointError`` (UNAVAILABLE / ``UPSTREAM_ERROR``) and the query gets no data."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple, NoReturn
from urllib.parse import urlsplit

import httpx

from core.errors import UpstreamError
from core.types import TableSpec
from security.decision_answer import AnswerError, read_answer
from security.jwt_config import is_loopback_host
from security.policy import Policy, PolicyError, TableDecision, decision_fingerprint
from security.principals import Principal

__all__ = ["DecisionPoint", "DecisionPointError", "DecisionPointPolicy", "DecisionPointSettings",
           "decision_point_policy"]

log = logging.getLogger("omnisql.policy")

ENGINE_SCHEMAS = frozenset({"omnisql", "information_schema"})  # the engine's own tables (planner/access.py)
MAX_ANSWER_BYTES = 1 << 20
MAX_ENTRIES = 65_536  # cached (principal, table) answers
WORKERS = 8  # questions in flight at once (a new principal's first query asks about every table)
_KEYS = ("url", "timeout_ms", "cache_ttl_s", "token_env")
_SECTION = "policy.decision_point"
_UNSERVED = "; no data is served without a decision (retry later, or ask the operator to fix the decision point)"


class DecisionPointError(UpstreamError):
    """The decision point gave no usable answer: the query fails (fail closed), naming the decision point but
    never its address, the principal's values or the answer's text. ``detail`` (the table and what was wrong,
    never a token or a principal's value) goes to the server log, once per failed question round."""

    def __init__(self, message: str, detail: str) -> None:
        super().__init__(message)
        self.detail = detail


@dataclass(frozen=True)
class DecisionPointSettings:
    url: str
    timeout_s: float = 1.0  # the whole question: all of a principal's tables, asked concurrently
    cache_ttl_s: float = 10.0
    token: str | None = field(default=None, repr=False)  # sent as a bearer token; never logged

    @property
    def shown(self) -> str:
        """The URL for logs: without credentials or query string."""
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}{parts.path}"


def decision_point_policy(raw: Mapping[str, Any], mask_key: bytes, environ: Mapping[str, str] | None = None
                          ) -> DecisionPointPolicy:
    """A ``policy:`` section with ``decision_point`` (``mask_key_env`` already read into ``mask_key``)."""
    if set(raw) - {"decision_point"}:
        raise PolicyError(f"{_SECTION}: leave out policy.{', policy.'.join(sorted(set(raw) - {'decision_point'}))}; "
                          "the decision point decides every table (no decision: deny)")
    section = raw["decision_point"]
    if not isinstance(section, dict):
        raise PolicyError(f"{_SECTION} must be a mapping ({', '.join(_KEYS)})")
    unknown = set(section) - set(_KEYS)
    if unknown:
        raise PolicyError(f"{_SECTION}: unknown key(s) {sorted(unknown)}; expected {', '.join(_KEYS)}")
    settings = DecisionPointSettings(url=_url(section.get("url")),
                                     timeout_s=_number(section, "timeout_ms", 1000, 0, 60_000) / 1000,
                                     cache_ttl_s=_number(section, "cache_ttl_s", 10, 0, 3600),
                                     token=_token(section.get("token_env"), os.environ if environ is None else environ))
    return DecisionPointPolicy(mask_key=mask_key, point=DecisionPoint(settings, mask_key))


def _url(value: Any) -> str:
    parts = urlsplit(value) if isinstance(value, str) else None
    if parts is not None and (parts.username or parts.password):  # a URL is logged: keep secrets out of it
        raise PolicyError(f"{_SECTION}.url must not carry credentials; name the token's variable in "
                          f"{_SECTION}.token_env")
    if parts is not None and parts.hostname and (parts.scheme == "https" or (
            parts.scheme == "http" and is_loopback_host(parts.hostname))):
        return str(value)
    raise PolicyError(f"{_SECTION}.url is required: an https:// URL (http:// only for a loopback host), e.g. "
                      "http://127.0.0.1:8181/v1/data/omnisql/decision")


def _number(section: Mapping[str, Any], key: str, default: float, low: float, high: float) -> float:
    value = section.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not low < value <= high:
        raise PolicyError(f"{_SECTION}.{key} must be a number above {low} and at most {high}")
    return float(value)


def _token(name: Any, environ: Mapping[str, str]) -> str | None:
    if name is None:
        return None
    value = environ.get(str(name))
    if not value:
        raise PolicyError(f"environment variable {name} (from {_SECTION}.token_env) is not set")
    return value


class _Entry(NamedTuple):
    expires: float
    decision: TableDecision
    fingerprint: str  # decision_fingerprint as JSON: the scope is a digest of these


Identity = tuple[str, str, tuple[str, ...], tuple[tuple[str, str], ...]]


def _identity(principal: Principal) -> Identity:
    """Everything the question says about the principal (and so everything an answer may depend on)."""
    return (principal.tenant, principal.user, tuple(principal.roles),
            tuple(sorted((str(k), str(v)) for k, v in principal.attributes.items())))


class DecisionPoint:
    """Asks the decision point (a pooled sync client: policy is resolved on the request's own thread, while
    planning) and keeps each answer ``cache_ttl_s`` per (principal identity, table), at most ``MAX_ENTRIES``."""

    def __init__(self, settings: DecisionPointSettings, mask_key: bytes) -> None:
        self.settings = settings
        self.mask_key = mask_key
        self._lock = threading.Lock()
        self._cache: OrderedDict[tuple[Identity, str], _Entry] = OrderedDict()
        self._asking: dict[tuple[Identity, str], Future[_Entry]] = {}  # questions on their way (single-flight)
        self._client: httpx.Client | None = None
        self._pool: ThreadPoolExecutor | None = None

    def entries(self, principal: Principal, specs: Sequence[TableSpec]) -> list[_Entry]:
        """The answers for ``specs``, from the cache or asked concurrently; raises DecisionPointError."""
        identity, now = _identity(principal), time.monotonic()
        found: dict[str, _Entry] = {}
        with self._lock:
            for spec in specs:
                entry = self._cache.get((identity, spec.qualified_name))
                if entry is not None and entry.expires > now:
                    self._cache.move_to_end((identity, spec.qualified_name))
                    found[spec.qualified_name] = entry
            mine, theirs = self._claim(identity, [s for s in specs if s.qualified_name not in found])
        if mine:
            found.update(self._answer(principal, identity, mine))
        for name, running in theirs.items():  # asked by a concurrent query of the same principal: its answer
            try:
                found[name] = running.result(timeout=self.settings.timeout_s * (1 + len(specs) // WORKERS))
            except FutureTimeout:
                self._fail(f"did not answer within {round(self.settings.timeout_s * 1000)} ms", f"{name} unanswered")
        return [found[s.qualified_name] for s in specs]

    def _claim(self, identity: Identity, missing: Sequence[TableSpec]
               ) -> tuple[list[tuple[TableSpec, Future[_Entry]]], dict[str, Future[_Entry]]]:
        """(the questions this call asks, each with the future others may wait on; the ones already on their way).
        Called under the lock: identical concurrent questions go out once."""
        mine: list[tuple[TableSpec, Future[_Entry]]] = []
        theirs: dict[str, Future[_Entry]] = {}
        for spec in missing:
            key = (identity, spec.qualified_name)
            running = self._asking.get(key)
            if running is not None:
                theirs[spec.qualified_name] = running
            else:
                future: Future[_Entry] = Future()
                mine.append((spec, future))
                self._asking[key] = future
        return mine, theirs

    def _answer(self, principal: Principal, identity: Identity, mine: list[tuple[TableSpec, Future[_Entry]]]
                ) -> dict[str, _Entry]:
        """Ask the claimed questions, cache the answers and hand them (or the failure) to whoever waits."""
        try:
            fresh = self._ask_all(principal, [spec for spec, _ in mine])
        except BaseException as exc:
            if isinstance(exc, DecisionPointError):
                log.warning("policy decision point %s failed: %s", self.settings.shown, exc.detail)
            for _, future in mine:
                future.set_exception(exc)
            raise
        finally:
            with self._lock:
                for spec, _ in mine:
                    self._asking.pop((identity, spec.qualified_name), None)
        expires = time.monotonic() + self.settings.cache_ttl_s
        answered: dict[str, _Entry] = {}
        with self._lock:
            for (spec, future), decision in zip(mine, fresh, strict=True):
                entry = _Entry(expires, decision, json.dumps(decision_fingerprint(decision)))
                answered[spec.qualified_name] = self._cache[(identity, spec.qualified_name)] = entry
                self._cache.move_to_end((identity, spec.qualified_name))
                future.set_result(entry)
            while len(self._cache) > MAX_ENTRIES:
                self._cache.popitem(last=False)
        return answered

    def _ask_all(self, principal: Principal, specs: Sequence[TableSpec]) -> list[TableDecision]:
        """Every question at once; all must be answered within the timeout (one round of ``WORKERS`` each)."""
        pool = self._workers()
        futures: list[Future[TableDecision]] = [pool.submit(self._ask, principal, s) for s in specs]
        budget = self.settings.timeout_s * (1 + (len(specs) - 1) // WORKERS)
        done, pending = wait(futures, timeout=budget)
        for future in pending:
            future.cancel()
        failed = next((f.exception() for f in futures if f in done and f.exception() is not None), None)
        if failed is not None:
            raise failed
        if pending:
            self._fail(f"did not answer within {round(budget * 1000)} ms", f"{len(pending)} questions unanswered")
        return [f.result() for f in futures]

    def _ask(self, principal: Principal, spec: TableSpec) -> TableDecision:
        question = {"input": {"action": "select", "table": spec.qualified_name,
                              "columns": [c.name for c in spec.columns],
                              "principal": {"user": principal.user, "tenant": principal.tenant,
                                            "roles": list(principal.roles),
                                            "attributes": dict(principal.attributes)}}}
        body = self._post(question, spec.qualified_name)
        try:
            return read_answer(body, spec, principal, self.mask_key)
        except AnswerError as exc:
            self._fail("gave an answer OmniSQL cannot use (the server log says why)", f"{spec.qualified_name}: {exc}")

    def _post(self, question: dict[str, Any], table: str) -> Any:
        client = self._http()
        for attempt in (1, 2):  # once more on a fresh connection: a kept-alive one may have been closed
            try:
                raw = b""
                with client.stream("POST", self.settings.url, json=question) as response:
                    if response.status_code != 200:
                        self._fail(f"answered HTTP {response.status_code}", f"{table}: HTTP {response.status_code}")
                    for chunk in response.iter_bytes():
                        raw += chunk
                        if len(raw) > MAX_ANSWER_BYTES:
                            self._fail("answered with a body that is too large", f"{table}: over {MAX_ANSWER_BYTES}")
                break
            except httpx.TimeoutException as exc:
                self._fail(f"did not answer within {round(self.settings.timeout_s * 1000)} ms", f"{table}: timeout",
                           exc)
            except httpx.TransportError as exc:
                if attempt == 2:
                    self._fail("cannot be reached", f"{table}: {type(exc).__name__}", exc)
        try:
            return json.loads(raw)
        except ValueError as exc:
            self._fail("answered with a body that is not JSON", f"{table}: not JSON", exc)

    def _fail(self, what: str, detail: str, cause: BaseException | None = None) -> NoReturn:
        raise DecisionPointError(f"the policy decision point {what}{_UNSERVED}", detail) from cause

    def _http(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                headers = {"authorization": f"Bearer {self.settings.token}"} if self.settings.token else {}
                self._client = httpx.Client(timeout=httpx.Timeout(self.settings.timeout_s), headers=headers,
                                            follow_redirects=False,
                                            limits=httpx.Limits(max_connections=WORKERS * 2))
            return self._client

    def _workers(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="omnisql-decision")
            return self._pool

    def close(self) -> None:
        with self._lock:
            client, pool, self._client, self._pool = self._client, self._pool, None, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        if client is not None:
            client.close()


@dataclass(frozen=True, kw_only=True)
class DecisionPointPolicy(Policy):
    """The decisions come from ``point``; ``rules`` and ``default`` are unused. Not ``static``: answers may
    change, so a principal's scope is a digest of its identity and its current answers (a changed answer
    makes a new scope, so plans and cached rows of the old one are not reused; no two principals share one)."""

    point: DecisionPoint
    static: ClassVar[bool] = False

    def decide(self, principal: Principal, spec: TableSpec) -> TableDecision:
        return self.point.entries(principal, [spec])[0].decision

    def scope(self, principal: Principal, specs: Iterable[TableSpec]) -> str:
        asked = sorted((s for s in specs if s.schema_name not in ENGINE_SCHEMAS), key=lambda s: s.qualified_name)
        prints = [e.fingerprint for e in self.point.entries(principal, asked)]
        digest = hashlib.sha256(json.dumps([_identity(principal), prints]).encode()).hexdigest()
        return f"{principal.tenant}:{digest[:16]}"

    def close(self) -> None:
        self.point.close()

    def validate(self, specs: Sequence[TableSpec]) -> None:
        """Nothing to check at start-up: each answer is checked as it arrives (security/decision_answer.py)."""
