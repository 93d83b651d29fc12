"""OIDC/JWT identity (security/jwt_identity.py, jwks.py, jwt_config.py): keys made with ``cryptography`` at test
time (RSA and EC), a JWKS from a file and from a local HTTP server, every refusal UNAUTHENTICATED with a message
that says nothing of keys, users or the token, and a valid token through a real ADBC connection."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from core.errors import Unauthenticated
from security.jwks import JwksCache, parse_jwks, url_source
from security.jwt_config import ClaimMap, IdentityConfigError, JwtSettings, parse_identity
from security.jwt_identity import EXPIRED, INVALID, NOT_YET, JwtVerifier
from security.principals import Principal, TokenAuthenticator

ISSUER = "https://idp.test/"
AUDIENCE = "omnisql"
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
OTHER_RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
CLAIMS = ClaimMap(user="sub", roles="roles", attributes=(("team", "team"),))


def _jwk(private: Any, kid: str) -> dict[str, Any]:
    public = private.public_key()
    algorithm = RSAAlgorithm if isinstance(public, rsa.RSAPublicKey) else ECAlgorithm
    jwk: dict[str, Any] = algorithm.to_jwk(public, as_dict=True)  # type: ignore[attr-defined]
    return {**jwk, "kid": kid, "use": "sig"}


def _jwks(*keys: tuple[Any, str]) -> bytes:
    return json.dumps({"keys": [_jwk(k, kid) for k, kid in keys]}).encode()


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "ana@acme.io", "iat": now, "nbf": now, "exp": now + 300,
              "roles": ["developer"], "team": "web"}
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _token(key: Any = RSA_KEY, kid: str | None = "rsa-1", algorithm: str = "RS256", **claims: Any) -> str:
    headers = {"kid": kid} if kid is not None else {}
    return jwt.encode(_claims(**claims), key, algorithm=algorithm, headers=headers)


def _settings(**overrides: Any) -> JwtSettings:
    values: dict[str, Any] = {"issuer": ISSUER, "audience": (AUDIENCE,), "jwks_file": "unused.json",
                              "tenant": "acme", "leeway_s": 5.0, "claims": CLAIMS}
    values.update(overrides)
    return JwtSettings(**values)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Counted:
    """A JWKS source that counts its fetches and can be changed (key rotation)."""

    def __init__(self, body: bytes) -> None:
        self.body, self.calls = body, 0

    def __call__(self) -> bytes:
        self.calls += 1
        return self.body


@pytest.fixture()
def jwks_file(tmp_path: Path) -> Path:
    path = tmp_path / "jwks.json"
    path.write_bytes(_jwks((RSA_KEY, "rsa-1"), (EC_KEY, "ec-1")))
    return path


@pytest.fixture()
def verifier(jwks_file: Path) -> JwtVerifier:
    return JwtVerifier(_settings(jwks_file=str(jwks_file)))


class _JwksHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        server: Any = self.server
        server.requests += 1
        if server.delay_s:
            time.sleep(server.delay_s)
        if server.redirect:
            self.send_response(302)
            self.send_header("location", server.redirect)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(server.body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture()
def jwks_server() -> Iterator[Any]:
    """A JWKS endpoint on 127.0.0.1; set ``.body``, ``.delay_s`` or ``.redirect``; read ``.requests``."""
    server: Any = ThreadingHTTPServer(("127.0.0.1", 0), _JwksHandler)
    server.body = _jwks((RSA_KEY, "rsa-1"), (EC_KEY, "ec-1"))
    server.requests, server.delay_s, server.redirect = 0, 0, ""
    server.url = f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


# Accepted


def test_rsa_and_ec_tokens_become_principals(verifier: JwtVerifier) -> None:
    principal = verifier.verify(_token())
    assert principal == Principal("ana@acme.io", "acme", ("developer",), {"team": "web"})
    ec_token = _token(EC_KEY, kid="ec-1", algorithm="ES256", sub="bo", roles="qa lead", team=None)
    assert verifier.verify(ec_token) == Principal("bo", "acme", ("qa", "lead"), {})


def test_jwks_from_a_url(jwks_server: Any) -> None:
    verifier = JwtVerifier(_settings(jwks_file=None, jwks_url=jwks_server.url))
    assert verifier.verify(_token()).user == "ana@acme.io"
    assert verifier.verify(_token(EC_KEY, kid="ec-1", algorithm="ES256")).user == "ana@acme.io"
    assert jwks_server.requests == 1, "keys are cached"


def test_leeway_tolerates_small_clock_skew(verifier: JwtVerifier) -> None:
    now = int(time.time())
    assert verifier.verify(_token(exp=now - 2, nbf=now + 2, iat=now + 2)).user == "ana@acme.io"


def test_claim_map_paths_and_attribute_types(jwks_file: Path) -> None:
    claims = ClaimMap(user="email", roles="realm_access.roles", tenant="tid",
                      attributes=(("team", "https://acme.io/team"), ("level", "level"), ("admin", "is_admin"),
                                  ("missing", "nope")))
    verifier = JwtVerifier(_settings(jwks_file=str(jwks_file), claims=claims))
    extra: dict[str, Any] = {"https://acme.io/team": "web", "level": 3, "is_admin": False}
    token = _token(email="ana@acme.io", realm_access={"roles": ["a", "b"]}, tid="acme", **extra)
    assert verifier.verify(token) == Principal("ana@acme.io", "acme", ("a", "b"),
                                               {"team": "web", "level": "3", "admin": "false"})


# Refused


def _hs256_with_public_pem() -> str:
    """The classic algorithm confusion: HMAC 'signed' with the RSA public key's PEM as the secret."""
    pem = RSA_KEY.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")
    signing_input = f"{b64(json.dumps({'alg': 'HS256', 'typ': 'JWT', 'kid': 'rsa-1'}).encode())}." \
                    f"{b64(json.dumps(_claims()).encode())}"
    return f"{signing_input}.{b64(hmac.new(pem, signing_input.encode(), hashlib.sha256).digest())}"


def _alg_none() -> str:
    return jwt.encode(_claims(), None, algorithm="none", headers={"kid": "rsa-1"})  # type: ignore[arg-type]


def _non_ascii() -> str:
    token = _token()
    return token[:20] + "é" + token[21:]


REFUSED: dict[str, Callable[[], str]] = {
    "wrong key": lambda: _token(OTHER_RSA_KEY),
    "EC key named as the RSA kid": lambda: _token(EC_KEY, kid="rsa-1", algorithm="ES256"),
    "alg none": _alg_none,
    "HS256 with the public key's PEM": _hs256_with_public_pem,
    "wrong audience": lambda: _token(aud="someone-else"),
    "no audience": lambda: _token(aud=None),
    "wrong issuer": lambda: _token(iss="https://evil.test/"),
    "issuer prefix": lambda: _token(iss="https://idp.test"),
    "no expiry": lambda: _token(exp=None),
    "missing kid": lambda: _token(kid=None),
    "unknown kid": lambda: _token(kid="rsa-2"),
    "garbage": lambda: "not-a-jwt",
    "three garbage parts": lambda: "aaa.bbb.ccc",
    "empty parts": lambda: "..",
    "non-ASCII": _non_ascii,
    "huge": lambda: "a" * 20_000 + ".b.c",
    "no user": lambda: _token(sub=None),
    "user not a string": lambda: _token(sub=42),
    "user with a newline": lambda: _token(sub="ana\nadmin"),
    "roles not strings": lambda: _token(roles=[1, 2]),
    "team not a string": lambda: _token(team=["web", "mobile"]),
    "critical extension": lambda: jwt.encode(_claims(), RSA_KEY, algorithm="RS256",
                                             headers={"kid": "rsa-1", "crit": ["exp"]}),
}


@pytest.mark.parametrize("name", REFUSED)
def test_refused_tokens_say_only_not_valid(verifier: JwtVerifier, name: str) -> None:
    token = REFUSED[name]()
    with pytest.raises(Unauthenticated) as refused:
        verifier.verify(token)
    message = str(refused.value)
    assert message == f"UNAUTHENTICATED: {INVALID}"
    assert "rsa-1" not in message and token not in message


def test_expired_and_not_yet_valid_are_told_apart(verifier: JwtVerifier) -> None:
    now = int(time.time())
    with pytest.raises(Unauthenticated, match=EXPIRED):
        verifier.verify(_token(exp=now - 60))
    with pytest.raises(Unauthenticated, match=NOT_YET):
        verifier.verify(_token(nbf=now + 60))
    with pytest.raises(Unauthenticated, match=INVALID):  # the signature is checked first: no hint for forgeries
        verifier.verify(_token(OTHER_RSA_KEY, exp=now - 60))


def test_tenant_claim_must_name_this_tenant(jwks_file: Path) -> None:
    verifier = JwtVerifier(_settings(jwks_file=str(jwks_file), claims=ClaimMap(tenant="tid")))
    assert verifier.verify(_token(tid="acme")).tenant == "acme"
    for other in ("globex", None):
        with pytest.raises(Unauthenticated, match=INVALID):
            verifier.verify(_token(tid=other))


# The JWKS: refresh, rate limit, bounds, which keys count


def test_unknown_kid_refreshes_once_per_interval_and_rotation_works() -> None:
    source, clock = Counted(_jwks((RSA_KEY, "rsa-1"))), Clock()
    verifier = JwtVerifier(_settings(jwks_refresh_min_interval_s=30), source=source, clock=clock)
    assert verifier.verify(_token()).user and source.calls == 1
    for i in range(50):  # a flood of made-up kids: no fetch at all inside the interval
        with pytest.raises(Unauthenticated, match=INVALID):
            verifier.verify(_token(kid=f"made-up-{i}"))
    assert source.calls == 1
    source.body = _jwks((RSA_KEY, "rsa-1"), (OTHER_RSA_KEY, "rsa-2"))  # the IdP rotates in a new key
    clock.now += 31
    assert verifier.verify(_token(OTHER_RSA_KEY, kid="rsa-2")).user and source.calls == 2
    with pytest.raises(Unauthenticated, match=INVALID):  # unknown after that one refresh
        verifier.verify(_token(kid="rsa-3"))
    assert source.calls == 2


def test_unknown_kid_refresh_against_a_real_endpoint(jwks_server: Any) -> None:
    verifier = JwtVerifier(_settings(jwks_file=None, jwks_url=jwks_server.url))
    verifier.verify(_token())
    for i in range(20):
        with pytest.raises(Unauthenticated, match=INVALID):
            verifier.verify(_token(kid=f"nope-{i}"))
    assert jwks_server.requests == 1, "the first load was this interval's fetch"


def test_stale_keys_are_reread_and_a_removed_key_stops_working() -> None:
    source, clock = Counted(_jwks((RSA_KEY, "rsa-1"))), Clock()
    verifier = JwtVerifier(_settings(jwks_max_age_s=600), source=source, clock=clock)
    verifier.verify(_token())
    source.body = _jwks((EC_KEY, "ec-1"))
    clock.now += 601
    with pytest.raises(Unauthenticated, match=INVALID):
        verifier.verify(_token())
    assert source.calls == 2


def test_a_failed_refresh_keeps_the_known_keys() -> None:
    source, clock = Counted(_jwks((RSA_KEY, "rsa-1"))), Clock()
    verifier = JwtVerifier(_settings(jwks_max_age_s=600), source=source, clock=clock)
    verifier.verify(_token())
    source.body = b"<html>down for maintenance</html>"
    clock.now += 601
    assert verifier.verify(_token()).user == "ana@acme.io"


def test_fetches_are_bounded_in_size_time_and_redirects(jwks_server: Any) -> None:
    fetch = url_source(jwks_server.url, timeout_s=5, max_bytes=64)
    with pytest.raises(Exception, match="larger than 64 bytes"):
        fetch()
    jwks_server.redirect = "http://127.0.0.1:9/elsewhere"
    with pytest.raises(Exception, match="HTTP 302"):
        url_source(jwks_server.url, timeout_s=5, max_bytes=1 << 20)()
    jwks_server.redirect, jwks_server.delay_s = "", 2.0
    started = time.monotonic()
    with pytest.raises(Exception, match="cannot fetch the JWKS"):
        url_source(jwks_server.url, timeout_s=0.3, max_bytes=1 << 20)()
    assert time.monotonic() - started < 1.5


def test_only_fitting_public_signature_keys_are_kept() -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    p384 = ec.generate_private_key(ec.SECP384R1())
    keys = [_jwk(RSA_KEY, "good-rsa"), _jwk(EC_KEY, "good-ec"), _jwk(weak, "weak"), _jwk(p384, "p384"),
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"}, {**_jwk(RSA_KEY, "enc"), "use": "enc"},
            {**_jwk(RSA_KEY, "mislabelled"), "alg": "ES256"}, {**_jwk(EC_KEY, "no-kid"), "kid": ""},
            {**_jwk(RSA_KEY, "private"), "d": "AAAA"}, "not an object", {**_jwk(EC_KEY, "good-ec")}]
    kept = parse_jwks(json.dumps({"keys": keys}).encode(), ("RS256", "ES256"))
    assert sorted(kept) == [("good-ec", "ES256"), ("good-rsa", "RS256")]
    assert sorted(parse_jwks(json.dumps({"keys": keys}).encode(), ("ES256",))) == [("good-ec", "ES256")]
    for bad in (b"nope", b"[]", b'{"keys": 1}'):
        with pytest.raises(Exception, match="JWKS"):
            parse_jwks(bad, ("RS256",))


def test_concurrent_unknown_kids_share_one_fetch() -> None:
    def slow() -> bytes:
        time.sleep(0.2)
        return _jwks((RSA_KEY, "rsa-1"))
    counted = Counted(b"")
    cache = JwksCache(lambda: (counted(), slow())[1], ("RS256",), 60, 3600)
    threads = [threading.Thread(target=cache.key, args=(f"kid-{i}", "RS256")) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert counted.calls == 1


# With the static tokens and session tokens


def test_the_authenticator_tries_static_session_then_jwt(verifier: JwtVerifier) -> None:
    static = Principal("svc", "acme", ("admin",))
    auth = TokenAuthenticator([("static-token", static)], secret=b"s" * 32, jwt=verifier)
    assert auth.from_bearer("static-token") is static
    assert auth.from_bearer(auth.issue_session(static)) is static
    assert auth.from_basic("svc", "static-token") is static
    assert auth.from_bearer(_token()).user == "ana@acme.io"
    with pytest.raises(Unauthenticated, match=INVALID):
        auth.from_bearer(_token(OTHER_RSA_KEY))
    with pytest.raises(Unauthenticated, match="not valid"):
        auth.from_bearer("wrong-static-token")


def test_a_jwt_subject_named_like_a_static_principal_is_refused(verifier: JwtVerifier) -> None:
    auth = TokenAuthenticator([("static-token", Principal("admin", "acme", ("admin",)))], jwt=verifier)
    with pytest.raises(Unauthenticated, match=INVALID):
        auth.from_bearer(_token(sub="admin"))


def test_without_jwt_settings_a_jwt_is_just_a_wrong_token() -> None:
    auth = TokenAuthenticator([("static-token", Principal("svc"))])
    with pytest.raises(Unauthenticated, match="OmniSQL admin"):
        auth.from_bearer(_token())


# Config


def test_identity_section_parses(jwks_file: Path) -> None:
    settings = parse_identity({"jwt": {"jwks_file": str(jwks_file), "issuer": ISSUER, "audience": [AUDIENCE, "b"],
                                       "leeway_s": 10, "algorithms": ["ES256"],
                                       "claims": {"user": "email", "roles": "groups", "attributes": {"team": "t"}}}},
                              tenant="acme")
    assert settings == JwtSettings(issuer=ISSUER, audience=(AUDIENCE, "b"), jwks_file=str(jwks_file), tenant="acme",
                                   leeway_s=10.0, algorithms=("ES256",),
                                   claims=ClaimMap(user="email", roles="groups", attributes=(("team", "t"),)))
    assert parse_identity(None) is None and parse_identity({}) is None


@pytest.mark.parametrize(("jwt_section", "named"), [
    ({"issuer": ISSUER, "audience": AUDIENCE}, "exactly one of jwks_file and jwks_url"),
    ({"jwks_url": "http://idp.example.com/jwks", "issuer": ISSUER, "audience": AUDIENCE}, "identity.jwt.jwks_url"),
    ({"jwks_url": "ftp://127.0.0.1/jwks", "issuer": ISSUER, "audience": AUDIENCE}, "identity.jwt.jwks_url"),
    ({"jwks_url": "https://idp/jwks", "audience": AUDIENCE}, "identity.jwt.issuer"),
    ({"jwks_url": "https://idp/jwks", "issuer": ISSUER}, "identity.jwt.audience"),
    ({"jwks_url": "https://idp/jwks", "issuer": ISSUER, "audience": AUDIENCE, "leeway_s": 3600},
     "identity.jwt.leeway_s"),
    ({"jwks_url": "https://idp/jwks", "issuer": ISSUER, "audience": AUDIENCE, "algorithms": ["HS256"]},
     "identity.jwt.algorithms"),
    ({"jwks_url": "https://idp/jwks", "issuer": ISSUER, "audience": AUDIENCE, "jwks_timeout_s": "soon"},
     "identity.jwt.jwks_timeout_s"),
    ({"jwks_url": "https://idp/jwks", "issuer": ISSUER, "audience": AUDIENCE, "jwks_ur": "x"},
     "identity.jwt.jwks_ur is not a known key"),
    ({"jwks_url": "https://idp/jwks", "issuer": ISSUER, "audience": AUDIENCE, "claims": {"usr": "sub"}},
     "identity.jwt.claims.usr"),
    ({"jwks_url": "https://idp/jwks", "issuer": ISSUER, "audience": AUDIENCE, "claims": {"attributes": {"t": 1}}},
     "identity.jwt.claims.attributes.t"),
    ({"jwks_file": "/nonexistent/jwks.json", "issuer": ISSUER, "audience": AUDIENCE}, "identity.jwt.jwks_file"),
])
def test_identity_errors_name_the_key(jwt_section: dict[str, Any], named: str) -> None:
    with pytest.raises(IdentityConfigError, match=named.replace(".", r"\.")):
        parse_identity({"jwt": jwt_section})


def test_tenant_yaml_carries_the_identity_section(tmp_path: Path, jwks_file: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from flight_server.config import ConfigError, load_config

    path = tmp_path / "tenant.yaml"
    path.write_text(f"tenant: acme\nidentity:\n  jwt: {{jwks_file: {jwks_file}, issuer: '{ISSUER}', "
                    f"audience: {AUDIENCE}, claims: {{roles: roles}}}}\n")
    config = load_config(path)  # no static principal needed when JWTs are accepted
    assert config.principals == () and config.jwt is not None and config.jwt.tenant == "acme"
    path.write_text("identity: {jwt: {jwks_url: 'http://idp.example.com/k', issuer: x, audience: y}}\n")
    with pytest.raises(ConfigError, match=r"identity\.jwt\.jwks_url"):
        load_config(path)


# End to end


def test_a_jwt_through_adbc(demo: dict[str, Any], jwks_server: Any) -> None:
    """A server started with JWT settings: the token's roles and team reach the policy (developers see their
    team's rows); a forged token is UNAUTHENTICATED; the demo's static tokens keep working beside it."""
    import adbc_driver_flightsql.dbapi as flightsql
    from adbc_driver_manager import ProgrammingError

    from demo.tenant import UNTHROTTLED, demo_config
    from flight_server.app import start_service

    config = demo_config(demo["sandbox"], "127.0.0.1", 0, UNTHROTTLED)
    settings = _settings(jwks_file=None, jwks_url=jwks_server.url, tenant="demo")
    service = start_service(dataclasses.replace(config, jwt=settings))
    sql = "SELECT DISTINCT team_id FROM github.pull_requests ORDER BY team_id"

    def rows(token: str) -> list[tuple[Any, ...]]:
        with flightsql.connect(service.uri, db_kwargs={"adbc.flight.sql.authorization_header": f"Bearer {token}"}
                               ) as conn, conn.cursor() as cursor:
            cursor.execute(sql)
            return list(cursor.fetchall())
    try:
        assert rows(_token()) == [("web",)]
        assert rows(_token(EC_KEY, kid="ec-1", algorithm="ES256", team="mobile")) == [("mobile",)]
        assert len(rows(demo["tokens"]["token_admin"])) > 2
        with pytest.raises(ProgrammingError, match="UNAUTHENTICATED") as refused:
            rows(_token(OTHER_RSA_KEY))
        assert "rsa-1" not in str(refused.value)
    finally:
        service.stop()
